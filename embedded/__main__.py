"""``python -m scireflect.embedded serve ...``: the embedded server's child process (see :class:`EmbeddedServer`)."""

import sys

from .server import _serve

if __name__ == "__main__":  # pragma: no cover - exercised through EmbeddedServer in the e2e test
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        raise SystemExit(_serve(sys.argv[2:]))
    raise SystemExit("usage: python -m scireflect.embedded serve --gguf PATH --port N")
