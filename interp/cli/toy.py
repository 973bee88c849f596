"""`interp toy`: regenerate the bundled toy data, or retrain the toy model. Thin wrappers only."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

toy_app = typer.Typer(
    help="The bundled toy world: regenerate its corpus/tasks/instructions, or retrain the toy model.",
    no_args_is_help=True,
)


@toy_app.command()
def build(
    out: Optional[Path] = typer.Option(None, "--out", help="Directory to write into (default: the package's generated/)."),
    seed: int = typer.Option(0, help="World seed; the shipped data uses 0."),
    episodes_per_family: Optional[int] = typer.Option(None, help="Answered in-context episodes per family in "
                                                      "the corpus (default: as shipped). Tasks and instructions do "
                                                      "not change."),
    family_episodes: Optional[list[str]] = typer.Option(None, "--family-episodes", help="FAMILY=N, repeatable: "
                                                        "this many episodes of one family (binding, order, copy, "
                                                        "tracking), overriding --episodes-per-family."),
) -> None:
    """Write corpus.txt, tasks/*.jsonl, instructions_{train,eval}.jsonl and world.json."""
    from interp.cli.common import check_out
    from interp.data.toy.build import GENERATED_DIR, build_all
    from interp.util.settings import parse_settings

    check_out(out or GENERATED_DIR)

    per_family = parse_settings(family_episodes or [], flag="--family-episodes")
    paths = build_all(out or GENERATED_DIR, seed, episodes_per_family, per_family)
    for name, path in paths.items():
        typer.echo(f"{name:20s} {path}  ({path.stat().st_size:,} bytes)")


@toy_app.command()
def train(
    out: Path = typer.Option(..., "--out", help="Directory for the checkpoint (safetensors) and tokenizer."),
    seed: int = typer.Option(0, help="Training seed (init, data order)."),
    steps: int = typer.Option(1400, help="Optimizer steps."),
    batch_size: int = typer.Option(16, help="Blocks per step."),
    block_size: int = typer.Option(256, help="Tokens per packed block."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate (cosine schedule)."),
    corpus: Optional[Path] = typer.Option(None, help="A corpus.txt to train on (default: the bundled one)."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's choice)."),
    warmup_steps: int = typer.Option(100, help="Linear warmup steps before the cosine decay."),
    init_from: Optional[Path] = typer.Option(None, help="Continue pretraining this saved toy checkpoint "
                                             "(its weights and tokenizer) instead of starting from scratch."),
    arch: Optional[list[str]] = typer.Option(None, "--arch", help="Architecture field KEY=VALUE, repeatable "
                                             "(num_hidden_layers, hidden_size, intermediate_size, num_attention_heads, "
                                             "num_key_value_heads, head_dim, max_position_embeddings, rope_theta, rope_factor: "
                                             "linear RoPE scaling); default: the bundled model's. With --init-from "
                                             "only rope_factor (slows the saved model's positions)."),
    snapshot_steps: Optional[int] = typer.Option(None, help="Also save the model every N steps under "
                                                 "OUT/snapshots/step-N (to score a long run early)."),
) -> None:
    """Pretrain a fresh toy Qwen3 model on the corpus (the bundled one: see its model card); log in OUT/train.log."""
    from interp.cli.common import check_out
    from interp.data.toy.train import ToyModelConfig, train_toy_model
    from interp.errors import InterpError
    from interp.util.settings import parse_settings

    check_out(out)
    settings = parse_settings(arch or [], flag="--arch")
    rope_factor = None
    if init_from is not None:
        if set(settings) - {"rope_factor"}:
            raise InterpError("--arch shapes a fresh model; --init-from continues a saved one in its own "
                              "architecture (only --arch rope_factor=F may slow its positions)")
        rope_factor = ToyModelConfig().with_overrides(settings).rope_factor if settings else None
        settings = {}
    model = ToyModelConfig().with_overrides(settings)
    result = train_toy_model(out, seed=seed, steps=steps, batch_size=batch_size, block_size=block_size,
                             learning_rate=lr, corpus_path=corpus, threads=threads,
                             warmup_steps=warmup_steps, init_from=init_from, model=model,
                             snapshot_steps=snapshot_steps, rope_factor=rope_factor)
    typer.echo(f"saved {result.out_dir}: {result.parameters:,} parameters, {result.steps} steps, "
               f"{result.tokens_seen:,} tokens, {result.train_seconds:.0f}s, "
               f"loss {result.first_loss:.3f} -> {result.final_loss:.3f}")
