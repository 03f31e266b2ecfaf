"""Command-line options made from the settings' declarations (:func:`scireflect.run.config.setting`).

A setting's flag, help text and lower bound are written once, on its settings field; a command
only says which settings it takes, with their short aliases and metavars. Importing the settings
module here is cheap (no LangGraph), so ``--help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import typer

from ..run.config import setting_of


def setting_option(owner: type, name: str, *aliases: str, metavar: str | None = None, help: str | None = None) -> Any:
    """The ``typer.Option`` of setting ``name`` of ``owner`` (default ``None``: unset, so the TOML file
    and the defaults apply): its declared flag, help text and ``min`` (an ``int>=N``/``num>=N`` check).

    Args:
        owner: the settings class (:class:`~scireflect.run.config.RunSettings`, ``LLMSettings``, ``VerifierSettings``).
        name: the field's name.
        aliases: short forms (``-k``).
        metavar: the value's name in ``--help``.
        help: a command's own wording, where it uses the setting differently (``scireflect judge``'s
            ``--concurrency`` counts judge calls); default the declared help.

    Raises:
        KeyError: ``name`` is not a declared setting of ``owner``.
        ValueError: the setting has no command-line flag.
    """
    declared = setting_of(owner, name)
    if declared.flag is None:
        raise ValueError(f"setting {name} has no command-line flag")
    bound = declared.bound()
    extra: dict[str, Any] = {} if bound is None else {"min": bound}
    return typer.Option(None, declared.flag, *aliases, metavar=metavar, help=help or declared.help, **extra)


__all__ = ["setting_option"]
