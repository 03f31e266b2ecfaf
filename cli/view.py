"""``scireflect view``: the loopback web viewer of a run directory (the server is :mod:`scireflect.viewer`)."""

from __future__ import annotations

import threading
import webbrowser
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

DEFAULT_PORT = 8765


def view_command(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="Run directory (traces.jsonl, checkpoints.sqlite); may be in progress."),
    port: int = typer.Option(DEFAULT_PORT, "--port", "-p", min=0, max=65535, metavar="PORT", help="Port on 127.0.0.1 (0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a browser; just print the URL."),
    review: bool = typer.Option(False, "--review", help="Open the review page: label a seeded, stratified sample of accepted "
                                "traces by keyboard (v valid, x invalid, s skip) into RUN_DIR/labels.jsonl."),
    reviewer: str = typer.Option("", "--reviewer", metavar="NAME", help="Name the labels are recorded under (default: your user name)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the review sample's order."),
) -> None:
    """Browse a run in a local web viewer (127.0.0.1 only): questions table, attempts side by side, diffs, live updates,
    and review (--review): label accepted traces; 'scireflect traces RUN_DIR precision' then reports their precision."""
    from ..rundata.files import CHECKPOINTS, TRACES
    from ..viewer.server import LOOPBACK, serve

    err = Console(stderr=True, highlight=False)
    if not run_dir.is_dir():
        err.print(Text("error: ", style="bold red") + Text(f"{run_dir}: not a directory"))
        raise typer.Exit(2)
    if not (run_dir / TRACES).exists() and not (run_dir / CHECKPOINTS).exists():
        err.print(Text("note: ", style="yellow") + Text(f"no {TRACES} in {run_dir} yet; the page fills in as questions finish"))
    import getpass

    if not reviewer:
        try:
            reviewer = getpass.getuser()
        except (KeyError, OSError):
            reviewer = "reviewer"
    if reviewer.startswith("model:"):
        err.print(Text("error: ", style="bold red") + Text("reviewer names starting with 'model:' are for model judges"))
        raise typer.Exit(2)
    try:
        server = serve(run_dir, port, reviewer=reviewer, review_seed=seed)
    except OSError as exc:
        err.print(Text("error: ", style="bold red")
                  + Text(f"cannot listen on {LOOPBACK}:{port} ({exc.strerror or exc}); try --port 0 for a free port"))
        raise typer.Exit(2) from None
    url = server.url + ("review" if review else "")
    console = Console(highlight=False)
    console.print(Text(f"scireflect viewer for {run_dir} (Ctrl-C to stop):"))
    console.print(Text(url), soft_wrap=True)  # on a line of its own, never broken: to click or copy
    if not no_browser:
        webbrowser.open(url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


__all__ = ["view_command"]
