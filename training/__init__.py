"""Training and evaluation: DeepSpeed SFT on verified traces, and evaluation of any model with the same verifiers."""
