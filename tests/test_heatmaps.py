"""Heatmaps and checkpoint comparisons: valid PNGs, honest colour scales, mismatches refused."""

from __future__ import annotations

import numpy as np
import pytest
import typer

from interp.analyses.impact.heatmaps import comparison_figure, grid, heatmap_figure
from interp.analyses.impact.mask_impact import mask_impact, mask_impact_metadata
from interp.analyses.impact.mask_impact.io import read_result, write_result
from interp.cli.impact.mask_impact import heatmap
from tests.cli_helpers import invoke

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(engines, tmp_path_factory):
    """The same prompt on two 'checkpoints', and a different prompt."""
    out = tmp_path_factory.mktemp("results")
    paths = {}
    for key, variant, prompt in (("a", "qwen3", "Paris is big"), ("b", "qwen3_gqa4", "Paris is big"),
                                 ("other", "qwen3", "Rome is old!"), ("layer1", "qwen3", "Paris is big")):
        engine = engines(variant)
        df = mask_impact(engine, prompt, num_tokens=2, layers=[1] if key == "layer1" else None)
        paths[key] = write_result(df, mask_impact_metadata(engine, df), out / f"{key}.csv")[0]
    return paths


def cli(*args: str):
    app = typer.Typer()
    app.command("heatmap")(heatmap)
    app.command("unused")(lambda: None)  # two commands, so `heatmap` stays a named subcommand
    return invoke(app, ["heatmap", *args])


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # IHDR width, height


def test_heatmap_command_writes_a_png(results, tmp_path):
    out = tmp_path / "h.png"
    code, output = cli(str(results["a"]), "--variant", "Head_2", "--metric", "cosine", "--step", "1", "--out", str(out))
    assert code == 0 and str(out) in output
    width, height = png_size(out)
    assert 400 < width < 4000 and 150 < height < 2000 and width > height  # 13 tokens × 2 layers: wide
    assert out.stat().st_size > 5_000
    code, _ = cli(str(results["a"]), "--exclude-first")  # default name, beside the input
    assert code == 0 and png_size(results["a"].with_name("a_full_l2_step0.png"))


def test_heatmap_axes_are_layers_by_tokens(results):
    df, _ = read_result(results["a"])
    g = grid(df, variant="Full", metric="l2", step=1)
    assert list(g.values.index) == [0, 1] and g.values.shape == (2, 14)  # step 1: BOS + 12 bytes + 1 generated
    ax = heatmap_figure(g).axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[:7] == ["<s>", "P", "a", "r", "i", "s", "␣"]
    expected = df[(df.generation_step == 1) & (df.variant == "Full") & (df.layer == 1)].l2_distance.to_numpy()
    assert np.allclose(g.values.loc[1].to_numpy(), expected)


def test_exclude_first_keeps_position_0_out_of_the_colour_scale(results):
    df, _ = read_result(results["a"])
    g = grid(df)
    g.values.iloc[:, 0] = 100.0  # an overwhelming attention sink
    rest = g.values.iloc[:, 1:].to_numpy()
    clim = heatmap_figure(g, exclude_first=True).axes[0].collections[0].get_clim()
    assert clim == pytest.approx((rest.min(), rest.max()))
    assert heatmap_figure(g).axes[0].collections[0].get_clim()[1] == 100.0


def test_compare_shares_one_scale_and_shows_differences(results, tmp_path):
    out = tmp_path / "cmp.png"
    code, output = cli("compare", str(results["a"]), str(results["b"]), "--out", str(out))
    assert code == 0, output
    width, height = png_size(out)
    assert width > 800 and height > 300 and out.stat().st_size > 10_000
    grids = [grid(read_result(results[k])[0], label=k) for k in ("a", "b")]
    fig = comparison_figure(grids)
    meshes = [ax.collections[0] for ax in fig.axes if ax.get_xlabel() == "masked token"]  # not the colour bars
    a_clim, b_clim, diff_clim = (m.get_clim() for m in meshes)
    assert a_clim == b_clim
    both = np.concatenate([g.values.to_numpy().ravel() for g in grids])
    assert a_clim == pytest.approx((both.min(), both.max()))
    diff = (grids[1].values - grids[0].values).to_numpy()
    assert np.allclose(meshes[2].get_array().reshape(diff.shape), diff)
    assert diff_clim[0] == -diff_clim[1] == pytest.approx(-np.abs(diff).max())


@pytest.mark.parametrize("other, fragment", [("other", "their tokens differ (position 1: 'R' vs 'P')"),
                                             ("layer1", "they cover different layers")])
def test_compare_refuses_mismatched_files(results, other, fragment):
    code, err = cli("compare", str(results["a"]), str(results[other]))
    assert code == 2 and fragment in err and "\n" not in err, err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--variant", "Head_9"], "has no variant 'Head_9'"),
        (["--metric", "kl"], "only defined for variant Logits"),
        (["--step", "5"], "no generation step 5"),
        ([], "give one result file, or `compare`"),  # a second file without `compare`
    ],
)
def test_heatmap_bad_input_is_one_line(results, args, fragment):
    code, err = cli(str(results["a"]), *(args or [str(results["b"])]))
    assert code == 2 and fragment in err and "\n" not in err, err


def test_unreadable_files_are_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    code, err = cli(str(bad))
    assert code == 2 and "not a mask-impact result" in err
    code, err = cli(str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file" in err
