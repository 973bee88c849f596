"""The payload and the page's own JS and CSS, inlined into one HTML document.

Nothing is fetched: a Content-Security-Policy without any source allows only the inline script
and style, so even a mistake could not make the page load anything. Data sits in a
`<script type="application/json">` block that the script reads with JSON.parse; every `<`, `>`
and `&` in it is written as a \\u escape, so token text can never close the block or open a
comment. The script builds the DOM with textContent, never innerHTML.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources

CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def embed_json(data: object) -> str:
    """JSON that is safe inside a <script> element whatever its strings hold."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    for char, escape in _JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return text


@cache
def _asset(name: str) -> str:
    return resources.files("interp.view").joinpath(name).read_text(encoding="utf-8")


@cache
def colormaps() -> dict[str, list[str]]:
    """The PNG heatmaps' colour maps (seaborn's rocket_r for values, vlag for differences), 256 steps each."""
    import seaborn as sns

    return {name: sns.color_palette(name, 256).as_hex() for name in ("rocket_r", "vlag")}


def render_page(payload: dict) -> str:
    """One self-contained HTML document for `payload` (see interp.view.data.build_payload)."""
    script = _asset("viewer.js")
    if "</script" in script.lower() or "<!--" in script:
        raise AssertionError("viewer.js must not contain </script or <!--")  # would end the inline block
    title = html.escape(str(payload.get("title") or "interp view"))
    data = embed_json(payload | {"colormaps": colormaps()})
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{title}</title>\n<style>\n{_asset('viewer.css')}</style>\n</head>\n<body>\n"
        "<div id=\"app\"><noscript>This viewer needs JavaScript.</noscript></div>\n"
        f"<script type=\"application/json\" id=\"interp-data\">{data}</script>\n"
        f"<script>\n{script}</script>\n</body>\n</html>\n"
    )
