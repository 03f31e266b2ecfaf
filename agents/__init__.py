"""Agents: the Solver, Critic and Reviser chat-model runnables and their prompts."""
