"""Commands that run the engine directly: next-token predictions and greedy generation."""

from __future__ import annotations

from typing import Annotated

import typer

from interp.cli.common import (
    AttentionOpt, BidirectionalLayersOpt, DeviceMapOpt, DeviceOpt, DtypeOpt, ModelOpt, TrustOpt, check_at_least,
    check_device, load_quietly, read_prompt,
)


def predict(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text, or a path to a .txt file.")],
    model: ModelOpt = None,
    attention: AttentionOpt = "causal",
    top_k: Annotated[int, typer.Option(help="How many next tokens to show.")] = 5,
    device: DeviceOpt = "cpu",
    device_map: DeviceMapOpt = None,
    dtype: DtypeOpt = "float32",
    trust_remote_code: TrustOpt = False,
) -> None:
    """Show the model's top next tokens after PROMPT (prefix mode: the whole prompt is the prefix)."""
    from interp.analyses.impact.predict import top_next_tokens
    from interp.engine.masks import check_mode

    text = read_prompt(prompt)
    check_at_least("--top-k", top_k, 1)
    check_mode(attention)
    check_device(None if device_map else device)
    engine = load_quietly(model, device, dtype, trust_remote_code, device_map)
    for token, prob in top_next_tokens(engine, text, attention=attention, k=top_k):
        typer.echo(f"{prob:8.4f}  {token!r}")


def generate(
    prompt: Annotated[str, typer.Option("--prompt", "-p", help="Text, or a path to a .txt file.")],
    model: ModelOpt = None,
    attention: AttentionOpt = "causal",
    max_new_tokens: Annotated[int, typer.Option(help="Stop after this many tokens (or at EOS).")] = 20,
    bidirectional_layers: BidirectionalLayersOpt = None,
    device: DeviceOpt = "cpu",
    device_map: DeviceMapOpt = None,
    dtype: DtypeOpt = "float32",
    trust_remote_code: TrustOpt = False,
) -> None:
    """Greedy text after PROMPT; --attention prefix prefills the prompt bidirectionally, then decodes causally."""
    from interp.analyses.interventions.layer_sets import parse_bidirectional_layers
    from interp.engine.masks import check_mode

    text = read_prompt(prompt)
    check_at_least("--max-new-tokens", max_new_tokens, 1)
    check_mode(attention)
    layers = parse_bidirectional_layers(bidirectional_layers)
    check_device(None if device_map else device)
    engine = load_quietly(model, device, dtype, trust_remote_code, device_map)
    out = engine.generate(text, max_new_tokens=max_new_tokens, attention=attention, bidirectional_layers=layers)
    typer.echo(text + out.texts[0])
