"""Viewer size and load time at a real model's shape: 28 layers × 512 tokens × 16 heads × 2 metrics.

Prints the HTML file's size (target ≤ 10 MB), the time from navigation to the first full render
in headless chromium (target < 2 s), the time a heatmap click takes to draw the head breakdown,
and, as the reference measured in the same run, the load time of a page of the same size that only
parses its JSON (ratio = what rendering adds on top of reading the bytes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from timing import median_time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # devtools/ lives beside interp/, outside the package

import interp
from devtools.browser import browser_context, unavailable_reason
from devtools.synthetic import synthetic_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=28)
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"skipped: {reason}")
        return

    df = synthetic_result(args.layers, args.tokens, args.heads)
    start = time.perf_counter()
    page_html = interp.view(df).html
    build = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        view = Path(tmp) / "view.html"
        view.write_text(page_html, encoding="utf-8")
        data = page_html[page_html.index('<script type="application/json"'):page_html.index("</script>") + 9]
        plain = Path(tmp) / "plain.html"
        plain.write_text("<!DOCTYPE html><meta charset=utf-8>" + data + "<script>JSON.parse(document.getElementById("
                         "'interp-data').textContent); window.__interpViewReady = performance.now();</script>", encoding="utf-8")
        with browser_context(width=1400, height=900) as context:
            page = context.new_page()

            def load(path: Path) -> float:
                page.goto(path.as_uri())
                page.wait_for_function("window.__interpViewReady !== undefined")
                return float(page.evaluate("window.__interpViewReady"))

            in_page = {name: statistics.median(load(p) for _ in range(args.repeats)) for name, p in (("view", view), ("plain", plain))}
            wall = {name: median_time(lambda p=p: load(p), args.repeats) for name, p in (("view", view), ("plain", plain))}
            load(view)
            canvas = page.locator("canvas.grid").first
            clicks = []
            for layer in range(min(args.repeats, args.layers)):
                t = page.evaluate("performance.now()")
                canvas.click(position={"x": 40.0, "y": layer * float(canvas.get_attribute("data-cell-height")) + 3})
                page.wait_for_selector("table.heads")
                clicks.append(page.evaluate(f"performance.now() - {t}"))
    print(f"shape: {args.layers} layers × {args.tokens} tokens × {args.heads} heads × 2 metrics ({len(df)} rows)")
    print(f"html size: {len(page_html.encode()) / 1e6:.2f} MB (target ≤ 10 MB); built in {build:.2f} s")
    print(f"load to first render (in page): {in_page['view']:.0f} ms (target < 2000 ms); "
          f"same-size JSON-only page: {in_page['plain']:.0f} ms; ratio {in_page['view'] / in_page['plain']:.2f}")
    print(f"load wall-clock (goto → rendered): {wall['view'] * 1e3:.0f} ms vs {wall['plain'] * 1e3:.0f} ms; "
          f"ratio {wall['view'] / wall['plain']:.2f}")
    print(f"heatmap click → head breakdown: median {statistics.median(clicks):.0f} ms")


if __name__ == "__main__":
    main()
