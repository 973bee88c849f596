"""The `interp` console script: registers the command modules and turns bad input into exit 2."""

from __future__ import annotations

import sys

import typer

from interp.cli import engine_cmds
from interp.cli.eval import eval_cmd
from interp.cli.finetune import finetune_cmd, probe_app
from interp.cli.stage import stage_app
from interp.errors import InterpError

app = typer.Typer(
    name="interp",
    help="Which tokens matter where (mask-impact), and what causal masking buys (the prefill-mask ablation).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("predict")(engine_cmds.predict)
app.command("generate")(engine_cmds.generate)
app.command("eval")(eval_cmd)
app.add_typer(stage_app, name="stage")
app.command("finetune")(finetune_cmd)
app.add_typer(probe_app, name="probe")


def _register_optional() -> None:
    """Sub-apps that live in their own modules (registered if present)."""
    try:
        from interp.cli.toy import toy_app

        app.add_typer(toy_app, name="toy")
    except ImportError:
        pass
    from interp.cli.demo import demo

    app.command("demo")(demo)


_register_optional()


def main() -> None:
    """Entry point: InterpError (bad input) → one line on stderr, exit code 2, no traceback."""
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
