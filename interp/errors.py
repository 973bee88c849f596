"""User-facing errors.

Anything raised as `InterpError` is the user's input being wrong (unknown model, empty prompt,
layer out of range, malformed file): the CLI prints its one-line message and exits with code 2
instead of a traceback. Library callers can catch it like any other exception.
"""


class InterpError(ValueError):
    """Bad input: printed as one line by the CLI, exit code 2."""


def one_line(exc: BaseException, limit: int = 240) -> str:
    """An exception from a library (hub client, datasets) as one short line for an InterpError."""
    return (" ".join(str(exc).split()) or type(exc).__name__)[:limit]
