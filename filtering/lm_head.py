"""The ``lm`` head: SciGLM's rule, a causal LM (transformers) that answers True/False.

SciGLM (Zhang et al. 2024, arXiv 2401.07950, section 2.3) fine-tunes ChatGLM3-6B to answer ``True`` or
``False`` about a solution and keeps it when P(True) > P(False). :class:`LMHeadScorer` scores that way
and fine-tunes on the two-way cross-entropy at the last position.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from .errors import ClassifierError

LM_QUESTION = "\n\n### Is the solution above correct? Answer True or False.\n### Answer\n"


class LMHeadScorer:
    """SciGLM-style LM head: a causal LM scores ``True`` vs ``False`` at the last position.

    The prompt is ``classifier_input(...) + LM_QUESTION``; P(True) is the softmax of the two logits
    of the first token of ``"True"`` and of ``"False"`` at the last prompt position. Prompts longer
    than ``max_length`` tokens keep their first and last ``max_length // 2`` tokens.

    Args:
        model: a ``transformers`` causal LM; tokenizer: its tokenizer.
        max_length: the prompt length limit in tokens.
        batch_size: scoring batch size.

    Raises:
        ClassifierError: ``"True"`` and ``"False"`` start with the same token.
    """

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int = 1024, batch_size: int = 4):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.true_id = tokenizer.encode("True", add_special_tokens=False)[0]
        self.false_id = tokenizer.encode("False", add_special_tokens=False)[0]
        if self.true_id == self.false_id:
            raise ClassifierError("the tokenizer gives 'True' and 'False' the same first token")

    @classmethod
    def from_pretrained(cls, path: str, *, device: str | None = None, dtype: str = "auto", **kw: Any) -> LMHeadScorer:
        """Load a causal LM and its tokenizer (``transformers.AutoModelForCausalLM``) from ``path``."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
        return cls(model, tokenizer, **kw)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        ids = []
        half = self.max_length // 2
        for text in texts:
            tok = self.tokenizer.encode(text + LM_QUESTION, add_special_tokens=True)
            ids.append(tok if len(tok) <= self.max_length else tok[:half] + tok[-half:])
        return ids

    def _logits(self, batch: list[list[int]]) -> Any:
        """Two-way logits ``(b, 2)`` ([True, False]) at each prompt's last token; left-padded batch."""
        import torch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        width = max(len(t) for t in batch)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([[pad] * (width - len(t)) + t for t in batch], device=device)
        mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in batch], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions)
        return out.logits[:, -1, :][:, [self.true_id, self.false_id]].float()

    def score_texts(self, texts: Sequence[str]) -> list[float]:
        """P(True) for each text (a :func:`classifier_input` string), in order."""
        import torch

        self.model.eval()
        ids = self._encode(texts)
        scores: list[float] = []
        with torch.no_grad():
            for i in range(0, len(ids), self.batch_size):
                scores += torch.softmax(self._logits(ids[i:i + self.batch_size]), dim=-1)[:, 0].tolist()
        return scores

    def finetune(self, texts: Sequence[str], labels: Sequence[bool], *, epochs: int = 1, lr: float = 1e-5, seed: int = 0) -> list[float]:
        """Fine-tune on two-way cross-entropy at the last position (SciGLM trains the LM to say
        True/False); returns the mean loss of each epoch."""
        import torch

        torch.manual_seed(seed)
        rng = random.Random(seed)
        ids = self._encode(texts)
        order = list(range(len(ids)))
        optim = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=lr)
        losses = []
        self.model.train()
        for _ in range(epochs):
            rng.shuffle(order)
            total = 0.0
            for i in range(0, len(order), self.batch_size):
                idx = order[i:i + self.batch_size]
                logits = self._logits([ids[j] for j in idx])
                target = torch.tensor([0 if labels[j] else 1 for j in idx], device=logits.device)
                loss = torch.nn.functional.cross_entropy(logits, target)
                optim.zero_grad()
                loss.backward()
                optim.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / max(len(ids), 1))
        self.model.eval()
        return losses
