"""The viewer in a real headless Chromium: values shown are the files' values, text stays text, nothing is fetched.

Skipped, with the reason, where Playwright or a chromium binary is missing (.ci/run installs chromium).
"""

from __future__ import annotations

from contextlib import ExitStack

import pandas as pd
import pytest

import interp
from interp.view import write_view
from devtools.browser import browser_context, open_view, unavailable_reason
from tests.test_view import HOSTILE, HOSTILE_2, make_impact_results, make_knockout_dir

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"browser tests need headless chromium: {REASON}")


@pytest.fixture(scope="module")
def pages(engines, tmp_path_factory):
    """Viewer files: one result, two checkpoints compared, hostile tokens, a knockout directory."""
    out = tmp_path_factory.mktemp("view_pages")
    results = make_impact_results(engines, out)
    ko = make_knockout_dir(out / "ko")
    return {
        "results": results,
        "single": write_view([results["a"], ko], out / "single.html"),
        "compare": write_view([results["a"], results["b"]], out / "compare.html"),
        "hostile": write_view([results["hostile"], ko], out / "hostile.html"),
        "ko": ko,
    }


@pytest.fixture(scope="module")
def browser():
    with ExitStack() as stack:
        yield stack.enter_context(browser_context(width=1280, height=900))


@pytest.fixture
def watched(browser):
    """open(path, fragment) → page; every console error, page error and request is recorded."""
    log = {"errors": [], "requests": []}
    opened = []

    def watch(page) -> None:
        page.on("console", lambda msg: msg.type == "error" and log["errors"].append(msg.text))
        page.on("pageerror", lambda exc: log["errors"].append(str(exc)))
        page.on("request", lambda request: log["requests"].append(request.url))
        opened.append(page)

    def open_page(path, fragment: str = ""):
        return open_view(browser, path, fragment, watch=watch)

    yield open_page, log
    for page in opened:
        page.close()


def table(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype={"token_masked": str})


def csv_values(df, *, step, layer, variant, column="l2_distance") -> list[float]:
    rows = df[(df.generation_step == step) & (df.layer == layer) & (df.variant == variant)].sort_values("token_position")
    return rows[column].tolist()


def strip_values(page, kind="value", run=0) -> list[float]:
    spans = page.locator(f'.panel[data-run="{run}"] .strip[data-kind="{kind}"] .tok')
    return [float(v) for v in spans.evaluate_all("nodes => nodes.map(n => n.dataset.value)")]


def click_cell(page, canvas, row: int, col: int) -> None:
    box = canvas.evaluate("c => ({left: +c.dataset.left, w: +c.dataset.cellWidth, h: +c.dataset.cellHeight})")
    canvas.click(position={"x": box["left"] + col * box["w"] + box["w"] / 2, "y": row * box["h"] + box["h"] / 2})


def test_page_loads_without_errors_and_fetches_nothing(pages, watched, tmp_path):
    open_page, log = watched
    page = open_page(pages["single"])
    page.locator('.panel[data-run="0"] canvas.grid').hover()
    page.locator("tr[data-prompt='1']").click()
    assert log["errors"] == []
    assert log["requests"] == [pages["single"].resolve().as_uri()]  # the file itself, nothing else
    control = tmp_path / "control.html"  # the watcher does see a request when a page makes one
    control.write_text('<img src="http://127.0.0.1:9/x.png"><script>window.__interpViewReady = 1</script>')
    open_page(control)
    assert any(url.startswith("http://127.0.0.1:9/") for url in log["requests"])


def test_clicking_a_heatmap_cell_shows_the_heads_at_that_layer(pages, watched):
    open_page, log = watched
    page = open_page(pages["single"])
    assert page.locator("table.heads").count() == 0
    df = table(pages["results"]["a"])
    layer, pos = 1, 2
    click_cell(page, page.locator('.panel[data-run="0"] canvas.grid').first, layer, pos)
    cells = page.locator('table.heads td[data-kind="value"][data-run="0"]')
    shown = dict(zip(cells.evaluate_all("ns => ns.map(n => n.dataset.head)"),
                     map(float, cells.evaluate_all("ns => ns.map(n => n.dataset.value)"))))
    rows = df[(df.generation_step == 0) & (df.layer == layer) & (df.token_position == pos) & df.variant.str.startswith("Head_")]
    expected = dict(zip(rows.variant, rows.l2_distance))
    assert len(expected) == 4 and shown == pytest.approx(expected, rel=1e-6, abs=1e-7)
    assert page.locator("table.heads").get_attribute("data-layer") == str(layer)
    assert page.locator(".breakdown h3").first.text_content().startswith(f"Heads at layer {layer}")
    assert strip_values(page) == pytest.approx(csv_values(df, step=0, layer=layer, variant="Full"), rel=1e-6, abs=1e-7)
    page.locator('.panel[data-run="0"] canvas.grid').first.hover(position={"x": 30, "y": 5})
    assert "layer 0" in page.locator(".mi .readout").text_content()
    assert log["errors"] == []


def test_step_selector_changes_the_values_shown(pages, watched):
    open_page, log = watched
    page = open_page(pages["single"], "layer=1")
    df = table(pages["results"]["a"])
    step0 = csv_values(df, step=0, layer=1, variant="Attn", column="cosine_distance")
    step1 = csv_values(df, step=1, layer=1, variant="Attn", column="cosine_distance")
    page.select_option("select[name=metric]", "cosine")
    page.select_option("select[name=variant]", "Attn")
    assert strip_values(page) == pytest.approx(step0, rel=1e-6, abs=1e-7)
    page.select_option("select[name=step]", "1")
    assert len(step1) == len(step0) + 1 and strip_values(page) == pytest.approx(step1, rel=1e-6, abs=1e-7)
    assert log["errors"] == []


def test_comparison_shows_the_difference_of_the_two_files(pages, watched):
    open_page, log = watched
    page = open_page(pages["compare"], "layer=1&pos=1")
    a, b = table(pages["results"]["a"]), table(pages["results"]["b"])
    va, vb = (csv_values(t, step=0, layer=1, variant="Full") for t in (a, b))
    assert strip_values(page, run=1) == pytest.approx(vb, rel=1e-6, abs=1e-7)
    assert strip_values(page, "diff", run=1) == pytest.approx([y - x for x, y in zip(va, vb)], rel=1e-5, abs=1e-6)
    diff = page.locator('table.heads td[data-kind="diff"][data-head="Head_0"]').get_attribute("data-value")
    ha, hb = (t[(t.generation_step == 0) & (t.layer == 1) & (t.token_position == 1) & (t.variant == "Head_0")].l2_distance.item()
              for t in (a, b))
    assert float(diff) == pytest.approx(hb - ha, rel=1e-5, abs=1e-6)
    assert log["errors"] == []


def test_hostile_token_text_stays_text(pages, watched):
    open_page, log = watched
    page = open_page(pages["hostile"], "layer=0&pos=1")
    page.locator('.panel[data-run="0"] .strip .tok[data-pos="1"]').hover()
    page.locator("tr[data-prompt='0']").click()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img").count() == 0 and page.locator("script").count() == 2
    texts = page.locator(".tok").all_text_contents()
    assert HOSTILE in texts and HOSTILE_2 in texts
    assert HOSTILE in page.locator(".mi .readout").text_content()
    assert page.locator(".mi h3").first.text_content() == HOSTILE  # the label, too
    assert log["errors"] == [] and len(log["requests"]) == 1


def test_knockout_curves_per_source_and_drill_down_to_one_prompt(pages, watched):
    open_page, log = watched
    page = open_page(pages["single"])
    df = pd.read_csv(pages["ko"] / "knockout.csv")

    def points() -> dict:
        found = page.locator(".ko circle.point").evaluate_all(
            "ns => ns.map(n => [n.dataset.source, +n.dataset.layer, +n.dataset.value])")
        return {(s, layer): v for s, layer, v in found}

    mean = df.groupby(["source", "layer"]).rel_change_pct.mean()
    assert points() == pytest.approx(mean.to_dict(), rel=1e-6)
    page.locator("tr[data-prompt='2']").click()
    one = df[df.prompt_index == 2].set_index(["source", "layer"]).rel_change_pct
    assert points() == pytest.approx(one.to_dict(), rel=1e-6)
    subject = page.locator('.ko .drill .tok[data-source="subject"]').all_text_contents()
    assert subject == ["␣Eiffel", "␣Tower"]
    page.select_option(".ko select[name=metric]", "kl")
    assert points() == pytest.approx(df[df.prompt_index == 2].set_index(["source", "layer"]).kl.to_dict(), rel=1e-6)
    assert log["errors"] == []


def test_notebook_iframe_renders_the_viewer(pages, watched, tmp_path):
    open_page, log = watched
    notebook = tmp_path / "notebook.html"  # what Jupyter does with _repr_html_: put it in the page
    viewer = interp.view(pages["results"]["a"])
    notebook.write_text(viewer._repr_html_() + "<script>window.__interpViewReady = 1</script>")
    page = open_page(notebook)
    frame = page.frame_locator("iframe")
    frame.locator("canvas.grid").first.wait_for()
    assert frame.locator(".panel h3").first.text_content() == "a"
    assert log["errors"] == [] and log["requests"] == [notebook.resolve().as_uri()]
