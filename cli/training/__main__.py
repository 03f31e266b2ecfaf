"""``python -m scireflect.cli.training train|eval``: how the DeepSpeed launcher starts training on every rank.

A ``__main__`` of its own, rather than an ``if __name__ == "__main__"`` in the package: ``scireflect.cli``
imports the commands, so running that module itself as ``__main__`` would load it twice (and runpy warns).
"""

from . import app

app()
