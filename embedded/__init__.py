"""The embedded default model: a GGUF model installed from PyPI, served by llama.cpp on loopback.

When the user configures no endpoint, ``scireflect annotate`` starts a local OpenAI-compatible
llama.cpp server (``xllamacpp``) and talks to it like any other endpoint. A user can also pass any
GGUF file (``--gguf PATH``) or an endpoint (``--base-url``) instead. One module per job:

``models``   the catalogue of embedded models and their materialisation from PyPI parts.
``server``   :class:`EmbeddedServer`, the llama.cpp server in a child process, and its counters.
``tuning``   slots, threads and batch sizes for the machine; speculative decoding's draft model.

This is a bottom layer: it imports nothing of the run, graphs or agents layers.
"""

from .choice import embedded_draft, embedded_gguf, embedded_mmproj
from .models import (
    DEFAULT_EMBEDDED_MODEL,
    EMBEDDED_MODEL_ALIASES,
    EMBEDDED_MODELS,
    EmbeddedModelError,
    EmbeddedModelSpec,
    available_embedded_models,
    check_gguf_metadata,
    default_cache_dir,
    materialise_embedded_model,
    resolve_embedded_model,
)
from .server import EMBEDDING_POOLINGS, EmbeddedServer, free_loopback_port, parse_prometheus
from .tuning import DRAFT_MODELS, SPECULATIVE_CHOICES, DraftSettings, ServerTuning, SlotAffinity, available_cores, default_slots

__all__ = [
    "embedded_draft",
    "embedded_gguf",
    "embedded_mmproj",
    "DEFAULT_EMBEDDED_MODEL",
    "DRAFT_MODELS",
    "EMBEDDED_MODELS",
    "EMBEDDED_MODEL_ALIASES",
    "EMBEDDING_POOLINGS",
    "SPECULATIVE_CHOICES",
    "DraftSettings",
    "EmbeddedModelError",
    "EmbeddedModelSpec",
    "EmbeddedServer",
    "ServerTuning",
    "SlotAffinity",
    "available_cores",
    "available_embedded_models",
    "check_gguf_metadata",
    "default_slots",
    "default_cache_dir",
    "free_loopback_port",
    "materialise_embedded_model",
    "parse_prometheus",
    "resolve_embedded_model",
]
