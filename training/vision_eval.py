"""Evaluation of questions with figures: a local vision-language model.

:class:`HFVisionBackend` answers the Solver's chat messages (OpenAI form: the figures as
``image_url`` parts holding ``data:`` URLs) with a local ``AutoModelForImageTextToText`` and its
``AutoProcessor`` (e.g. the output of ``scireflect train --stage instruct``), greedy by default.
Accuracy with and without a figure is :func:`scireflect.training.evaluate.figure_score`.
"""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def is_vision_model(path: Path) -> bool:
    """Whether a transformers model directory holds a vision-language model (its config has a ``vision_config``)."""
    from transformers import AutoConfig

    try:
        return getattr(AutoConfig.from_pretrained(str(path)), "vision_config", None) is not None
    except (OSError, ValueError):
        return False


def processor_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[Any]]:
    """OpenAI chat messages -> (processor chat messages with ``{"type": "image"}`` parts, PIL images in order).

    Raises:
        ValueError: an ``image_url`` part that is not a base64 ``data:`` URL.
    """
    from PIL import Image

    out, images = [], []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        parts = []
        for part in content or []:
            if part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url") or "")
                if not url.startswith("data:") or ";base64," not in url:
                    raise ValueError("a figure must be sent as a base64 data: URL")
                with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1], validate=True))) as img:
                    images.append(img.convert("RGB"))
                parts.append({"type": "image"})
            elif part.get("type") == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
        out.append({"role": message["role"], "content": parts})
    return out, images


class HFVisionBackend:
    """Generation with a local vision-language model, one question at a time (``generate(messages)``)."""

    takes_images = True

    def __init__(self, path: Path, settings: Any):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.torch, self.settings = torch, settings
        self.processor = AutoProcessor.from_pretrained(str(path))
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=dtype)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model.to(self.device).eval()
        self._lock = asyncio.Lock()

    def _generate_sync(self, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
        chat, images = processor_messages(messages)
        text = self.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        inputs = self.processor(text=text, images=images or None, return_tensors="pt").to(self.device)
        tokenizer = self.processor.tokenizer
        kwargs: dict[str, Any] = {"max_new_tokens": self.settings.max_tokens,
                                  "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id}
        if self.settings.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.settings.temperature)
        else:
            kwargs.update(do_sample=False)
        with self.torch.no_grad():
            out = self.model.generate(**inputs, **kwargs)
        n_in = inputs["input_ids"].shape[1]
        new = out[0, n_in:]
        return tokenizer.decode(new, skip_special_tokens=True), int(n_in), int(new.shape[0])

    async def generate(self, messages: list[dict[str, Any]]) -> tuple[str, int, int]:
        async with self._lock:  # one generation at a time: the model is not shared across threads
            return await asyncio.to_thread(self._generate_sync, messages)

    async def aclose(self) -> None:
        return None


__all__ = ["HFVisionBackend", "is_vision_model", "processor_messages"]
