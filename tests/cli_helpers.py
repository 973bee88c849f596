"""Invoke a typer app as `interp` would: an InterpError becomes one line and exit code 2 (as interp.cli.app.main)."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from interp.errors import InterpError


def invoke(app: typer.Typer, args) -> tuple[int, str]:
    """(exit code, output); any other exception fails the test with its own message."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, InterpError):
        return 2, f"error: {result.exception}"
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output
