"""--device-map: accelerate's big-model loading, and the engine running each layer where it sits.

This machine has one device (CPU), so what is checked is that a device_map load is the same model
(identical logits, KV-cache decode and knockouts) and that bad maps fail in one line.
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

import interp
from interp import Knockout
from interp.cli.app import app
from interp.errors import InterpError
from tests.conftest import random_ids


@pytest.mark.parametrize("variant", ["llama", "ministral3"])
def test_device_map_load_runs_the_same_model(model_dirs, engines, variant):
    plain = engines(variant)
    layers = {f"model.layers.{i}": "cpu" for i in range(plain.n_layers)}
    explicit = {"model.embed_tokens": "cpu", "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu", **layers}
    maps = ["auto", explicit] if variant == "llama" else ["auto"]
    ids = random_ids(2, 9)
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[1, :3] = False  # padded row: the explicit-mask path
    knock = Knockout(layers=[1], keys=[2])
    with torch.no_grad():
        want = plain.run(ids, attention_mask=mask).logits
        want_knocked = plain.run(ids, knockout=knock).logits
        want_text = plain.generate(ids, max_new_tokens=4).new_ids
        for device_map in maps:
            placed = interp.load(model_dirs(variant), device_map=device_map)
            assert placed.layer_devices == [torch.device("cpu")] * placed.n_layers
            assert torch.equal(placed.run(ids, attention_mask=mask).logits, want)
            assert torch.equal(placed.run(ids, knockout=knock).logits, want_knocked)
            assert torch.equal(placed.generate(ids, max_new_tokens=4).new_ids, want_text)


def test_bad_or_offloading_device_map_is_one_line(model_dirs):
    with pytest.raises(InterpError, match="unknown device map 'everywhere'"):
        interp.load(model_dirs("llama"), device_map="everywhere")
    # "cpu" beside another main device is accelerate's CPU offload (weights on meta until a hook
    # loads them): the engine calls each layer's parts itself, so it refuses instead of failing later.
    offloading = {"model.embed_tokens": torch.device("cpu"), "model.layers": "cpu", "model.norm": torch.device("cpu"),
                  "model.rotary_emb": torch.device("cpu"), "lm_head": torch.device("cpu")}
    with pytest.raises(InterpError, match="offloads weights"):
        interp.load(model_dirs("llama"), device_map=offloading)


def test_predict_with_device_map_auto_prints_the_same(model_dirs):
    args = ["predict", "--prompt", "The Eiffel Tower is in", "--model", str(model_dirs("llama"))]
    plain, placed = CliRunner().invoke(app, args), CliRunner().invoke(app, [*args, "--device-map", "auto"])
    assert plain.exit_code == placed.exit_code == 0, placed.output
    assert placed.output == plain.output and plain.output.count("\n") == 5
