"""The serializer every reader of LangGraph checkpoints uses: plain data only (see :mod:`.checkpoints`).

LangGraph's default serializer imports and calls any callable a checkpoint names (msgpack "ext"
values), so a crafted checkpoint would run code. :class:`PlainDataSerializer` reads plain msgpack data
only and refuses everything else with :class:`CheckpointRejected`. Both checkpointers use it: the
run directory's SQLite one (:mod:`.checkpoints`) and the shared PostgreSQL one (:mod:`.postgres`).
"""

from __future__ import annotations

from typing import Any

import ormsgpack
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer


class CheckpointRejected(ValueError):
    """A checkpoint holds something other than plain data (an object to construct, a pickle, ...),
    or its row is malformed (metadata that is not JSON, a checkpoint that is not a mapping)."""


_BIN_MARKERS = (b"\xc4", b"\xc5", b"\xc6")  # msgpack bin 8/16/32


def _surrogates_to_bytes(value: Any) -> Any:
    """Strings with lone surrogates (not encodable as UTF-8) become UTF-8 ``surrogatepass`` bytes."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass")
    if isinstance(value, dict):
        return {k: _surrogates_to_bytes(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_surrogates_to_bytes(v) for v in value]
    return value


def _bytes_to_surrogates(value: Any) -> Any:
    """The inverse of :func:`_surrogates_to_bytes` (the graph's state holds no other bytes)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogatepass")
    if isinstance(value, dict):
        return {k: _bytes_to_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_bytes_to_surrogates(v) for v in value]
    return value


class PlainDataSerializer(JsonPlusSerializer):
    """Checkpoint serializer of plain data: msgpack without extension values, both ways.

    ``dumps_typed`` writes plain msgpack (dicts, lists, strings, numbers, booleans, None) and raises
    ``TypeError`` for anything else (the graph's state is plain data by design; an object there is
    a bug). A string with a lone surrogate (``"\\ud800"``, possible in model output), which msgpack
    cannot hold as text, is stored as its ``surrogatepass`` UTF-8 bytes and read back unchanged
    (LangGraph's own serializer silently turns it into ``?``).

    ``loads_typed`` accepts ``null``, ``bytes`` and such msgpack, and raises
    :class:`CheckpointRejected` for anything else: an extension value (a constructor or method call
    LangGraph would import and run), ``pickle``, ``json`` with LangChain constructors, unknown types.
    """

    def __init__(self) -> None:
        super().__init__(allowed_msgpack_modules=None, pickle_fallback=False)

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if obj is None or isinstance(obj, (bytes, bytearray)):
            return super().dumps_typed(obj)
        try:
            return "msgpack", ormsgpack.packb(obj, option=ormsgpack.OPT_NON_STR_KEYS)
        except ormsgpack.MsgpackEncodeError as exc:
            if "surrogates" not in str(exc):
                raise TypeError(f"a checkpoint value is not plain data ({exc}); the graph state must hold JSON values only") from None
            return "msgpack", ormsgpack.packb(_surrogates_to_bytes(obj), option=ormsgpack.OPT_NON_STR_KEYS)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, payload = data
        if type_ == "msgpack":
            extensions: list[int] = []

            def refuse(code: int, data: bytes) -> None:  # never import or call what the value names
                extensions.append(code)

            try:
                value = ormsgpack.unpackb(payload, ext_hook=refuse, option=ormsgpack.OPT_NON_STR_KEYS)
            except ormsgpack.MsgpackDecodeError as exc:
                raise CheckpointRejected(f"the checkpoint is not valid msgpack ({exc})") from None
            if extensions:
                raise CheckpointRejected(f"the checkpoint holds a msgpack extension value (type {extensions[0]}), "
                                         "an object LangGraph would construct, not plain data")
            return _bytes_to_surrogates(value) if any(m in payload for m in _BIN_MARKERS) else value
        if type_ in ("null", "bytes", "bytearray"):
            return super().loads_typed(data)
        raise CheckpointRejected(f"the checkpoint holds a value of type '{type_}' (only plain msgpack data is read)")


__all__ = ["CheckpointRejected", "PlainDataSerializer"]
