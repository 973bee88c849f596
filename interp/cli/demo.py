"""`interp demo`: the main job on the bundled model, on a fresh machine, with no hub."""

from __future__ import annotations

from typing import Annotated

import typer

from interp.cli.common import load_quietly


def demo(
    prompt: Annotated[str, typer.Option(help="The prompt to analyse.")] = "The Eiffel Tower is in",
    out: Annotated[str, typer.Option(help="Directory for the demo's outputs.")] = "out/demo",
) -> None:
    """Load the bundled model and show what it predicts after PROMPT (causal vs bidirectional prefill)."""
    from pathlib import Path

    from interp.analyses.predict import top_next_tokens
    from interp.data.toy import BUNDLED_MODEL_DIR

    model = "toy"
    if not (BUNDLED_MODEL_DIR / "config.json").exists():
        from interp.data.random_models import build_random_model

        model = str(build_random_model("qwen3", Path(out) / "random-qwen3"))
        typer.echo(f"bundled toy model not present yet: using a tiny random Qwen3 at {model}")
    engine = load_quietly(model)
    typer.echo(repr(engine))
    for mode in ("causal", "prefix"):
        typer.echo(f"\n{prompt!r} → next token ({mode} prefill):")
        for token, prob in top_next_tokens(engine, prompt, attention=mode):
            typer.echo(f"  {prob:8.4f}  {token!r}")
