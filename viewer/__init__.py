"""The local web viewer of a run directory (``scireflect view RUN_DIR``).

A standard-library HTTP server bound to 127.0.0.1 (:func:`serve`, :class:`ViewerServer`) with a
questions table, a page per question (attempts side by side, diffs between attempts, verdicts,
tool calls, reference answer), live updates while a run is in progress, and math rendered by a
vendored KaTeX. ``scireflect view`` (:mod:`scireflect.cli.view`) is the command.
"""

from .index import InProgress, TraceIndex
from .pages import diff_html, question_html, question_url
from .server import ViewerServer, serve

__all__ = ["InProgress", "TraceIndex", "ViewerServer", "diff_html", "question_html", "question_url", "serve"]
