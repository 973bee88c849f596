"""A PNG of a viewer page, taken in headless chromium: the README's screenshot.

    python -m devtools.screenshot out/view.html -o docs/img/viewer.png --state "layer=3&pos=2&x0=1"

`--state` is the page's #fragment: metric, variant, step, layer, pos (a clicked cell; `max` picks
the strongest layer, or the strongest token at that layer), x0=1 (position 0 outside the colour scale).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from devtools.browser import browser_context, open_view


def screenshot(view_html: str | os.PathLike, out: str | os.PathLike, *, state: str = "", width: int = 1280,
               height: int = 800, scale: float = 1.0) -> Path:
    """Render `view_html` (optionally in the state given as a #fragment) and write the full page as PNG."""
    from interp.util.io import atomic_path

    with browser_context(width=width, height=height, scale=scale) as context:
        page = open_view(context, view_html, state)
        with atomic_path(out) as tmp:
            page.screenshot(path=str(tmp), full_page=True, type="png")
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("view", help="a viewer page written by `interp view` or --html")
    parser.add_argument("-o", "--out", required=True, help="PNG to write")
    parser.add_argument("--state", default="", help="the page's #fragment, e.g. layer=3&pos=2&x0=1")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--scale", type=float, default=1.0, help="device pixel ratio")
    args = parser.parse_args(argv)
    from interp.errors import InterpError

    try:
        path = screenshot(args.view, args.out, state=args.state, width=args.width, height=args.height, scale=args.scale)
    except InterpError as err:
        parser.exit(2, f"error: {err}\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
