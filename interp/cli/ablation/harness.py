"""`interp harness`: any lm-evaluation-harness task, with the model under an attention mode."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from interp.cli.common import DeviceOpt, DtypeOpt, ModelOpt, TrustOpt, check_at_least, check_device, check_out


def harness_cmd(
    tasks: Annotated[str, typer.Option(help="Comma-separated lm-eval task names (hellaswag, mmlu, lambada_openai, …).")],
    out: Annotated[str, typer.Option(help="Directory for results.json and samples_<task>.jsonl.")],
    model: ModelOpt = None,
    attention: Annotated[str, typer.Option(
        help="causal; prefix (context bidirectional, continuation causal: the ablation); "
             "bidirectional (LEAKY: continuation sees its own future).")] = "causal",
    num_fewshot: Annotated[Optional[int], typer.Option(help="Few-shot examples per prompt (default: the task's).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="Documents per task (the first N).")] = None,
    include_path: Annotated[Optional[str], typer.Option(help="A directory of extra task YAMLs (lm-eval's --include_path).")] = None,
    batch_size: Annotated[int, typer.Option(help="Contexts per forward.")] = 16,
    seed: Annotated[int, typer.Option(help="Random seed (few-shot sampling).")] = 0,
    device: DeviceOpt = "cpu",
    dtype: DtypeOpt = "float32",
    trust_remote_code: TrustOpt = False,
) -> None:
    """Run lm-eval tasks with interp as the model (needs lm-eval: the harness extra of interp); writes lm-eval's results and samples."""
    from pathlib import Path

    from interp.cli.ablation.eval import split_tasks
    from interp.errors import InterpError
    from interp.util.logs import quiet_transformers

    check_out(out)
    check_at_least("--batch-size", batch_size, 1)
    check_at_least("--limit", limit, 1)
    check_at_least("--num-fewshot", num_fewshot, 0)
    check_device(device)
    try:
        from interp.analyses.ablation.harness import format_results, run_harness
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "lm_eval":
            raise InterpError("interp harness needs lm-evaluation-harness: pip install 'interp[harness]'") from None
        raise
    quiet_transformers()
    results = run_harness(model, split_tasks(tasks), out_dir=out, attention=attention, num_fewshot=num_fewshot,
                          limit=limit, include_path=include_path, batch_size=batch_size, device=device, dtype=dtype,
                          trust_remote_code=trust_remote_code, seed=seed)
    if results:  # empty on the other processes of a torchrun / accelerate launch: rank 0 reports
        typer.echo(format_results(results))
        typer.echo(f"wrote {Path(out) / 'results.json'} and samples_<task>.jsonl")
