"""A self-contained, interactive HTML viewer for mask-impact and knockout results.

    import interp
    interp.view("out/mask_impact/eiffel.csv")          # in Jupyter: renders inline
    interp.view(df_base, df_finetuned).save("view.html")  # two checkpoints, side by side
    write_view(["runs/knockout"], "runs/knockout/view.html")

One HTML file holds the data, the script and the style: it makes no network request and works
offline, as an e-mail attachment, or inside a notebook (an iframe `srcdoc`). Several mask-impact
results of the same prompt are shown side by side on one colour scale with their differences to
the first; results of different prompts are refused.

`interp.view` is the function `view` below (`interp/__init__.py` binds it); the rest of this
package is imported by name: `from interp.view import write_view`. Importing this package is
cheap: the page builder and pandas load when a viewer is built.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import pandas as pd

Source = Union[str, os.PathLike, "pd.DataFrame"]  # a result file or directory, or a result DataFrame

__all__ = ["Viewer", "default_output", "view", "write_view"]


@dataclass(frozen=True)
class Viewer:
    """The viewer page for some results; Jupyter shows it inline, `save` writes it."""

    html: str
    height: int = 720  # pixels of the notebook iframe

    def _repr_html_(self) -> str:
        doc = html.escape(self.html, quote=True)
        return (f'<iframe srcdoc="{doc}" sandbox="allow-scripts" title="interp view" '
                f'style="width:100%;height:{int(self.height)}px;border:1px solid #ddd"></iframe>')

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page atomically."""
        from interp.util.io import write_text

        return write_text(path, self.html)


def view(*sources: Source | list[Source], title: str | None = None, height: int = 720) -> Viewer:
    """The viewer for mask-impact results (paths or DataFrames) and knockout results (directories)."""
    from interp.view.data import build_payload
    from interp.view.page import render_page

    flat: list[Source] = [s for item in sources for s in (item if isinstance(item, (list, tuple)) else [item])]
    return Viewer(render_page(build_payload(flat, title=title)), height=height)


def write_view(sources: list[Source], out: str | os.PathLike | None = None, *, title: str | None = None) -> Path:
    """Write the viewer for `sources` to `out` (default: see `default_output`); returns the path.

    This is what `interp view` and the analyses' `--html` call.
    """
    if not sources:
        from interp.errors import InterpError

        raise InterpError("give at least one result file (mask-impact .csv/.parquet or a knockout directory)")
    return view(list(sources), title=title).save(out if out is not None else default_output(sources[0]))


def default_output(source: Source) -> Path:
    """Beside the first input: `result.csv` → `result.html`; a knockout directory → `DIR/view.html`."""
    if not isinstance(source, (str, os.PathLike)):
        return Path("view.html")
    path = Path(source)
    if path.is_dir():
        return path / "view.html"
    if path.name in ("knockout.csv", "knockout.parquet", "summary.json"):
        return path.parent / "view.html"
    return path.with_suffix(".html")

