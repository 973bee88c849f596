"""`interp view FILE [FILE …] -o view.html`: the interactive viewer as one self-contained HTML file.

Register in interp/cli/app.py:
    app.command("view")(view_cmd)
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def view_cmd(
    files: Annotated[list[str], typer.Argument(metavar="FILE [FILE …]", help="mask-impact results (.csv/.parquet, sidecar beside) and/or knockout result directories.")],
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="HTML file to write (default: beside the first input).")] = None,
    title: Annotated[Optional[str], typer.Option(help="Page title.")] = None,
) -> None:
    """One self-contained HTML page to explore results: heatmaps, head breakdowns, checkpoint differences, knockout curves.

    Several mask-impact files of the same prompt (checkpoints) are shown side by side on one colour scale with their difference to the first; files whose tokens differ are refused.

    The page makes no network request: open it offline, attach it to an e-mail, or show it in a notebook.
    """
    from interp.cli.common import check_out
    from interp.view import default_output, write_view

    if files:
        check_out(out if out is not None else default_output(files[0]), directory=False)
    path = write_view(files, out, title=title)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
