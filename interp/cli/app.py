"""The `interp` console script: registers the command modules and turns bad input into exit 2."""

from __future__ import annotations

import os
import sys

import typer

from interp.cli import engine_cmds
from interp.cli.demo import demo
from interp.cli.ablation.drift import drift_cmd
from interp.cli.ablation.eval import eval_cmd
from interp.cli.ablation.finetune import finetune_cmd, probe_app
from interp.cli.impact.knockout import knockout_cmd
from interp.cli.ablation.harness import harness_cmd
from interp.cli.impact.mask_impact import heatmap, mask_impact_app
from interp.cli.ablation.stage import stage_app
from interp.cli.toy import toy_app
from interp.cli.view import view_cmd
from interp.errors import InterpError

app = typer.Typer(
    name="interp",
    help="Which tokens matter where (mask-impact), and what causal masking buys (the prefill-mask ablation).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Question 1: which tokens matter, where?
app.add_typer(mask_impact_app, name="mask-impact")
app.command("heatmap")(heatmap)
app.command("knockout")(knockout_cmd)
app.command("view")(view_cmd)
# Question 2: what does causal masking buy?
app.add_typer(stage_app, name="stage")
app.command("eval")(eval_cmd)
app.command("harness")(harness_cmd)
app.command("finetune")(finetune_cmd)
app.add_typer(probe_app, name="probe")
app.command("drift")(drift_cmd)
# The engine directly, the bundled model, the demo.
app.command("predict")(engine_cmds.predict)
app.command("generate")(engine_cmds.generate)
app.add_typer(toy_app, name="toy")
app.command("demo")(demo)


def main() -> None:
    """Entry point: InterpError (bad input) → one line on stderr, exit code 2, no traceback."""
    from interp.util.distributed import is_main

    if not is_main():  # torchrun / accelerate launch: rank 0 prints the tables, every rank its errors
        sys.stdout = open(os.devnull, "w")
    try:
        app()
    except InterpError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
