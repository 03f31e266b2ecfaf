"""``python -m scireflect.cli``."""

from . import app

app()
