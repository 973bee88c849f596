"""A prompt as a user gives it: inline text, or a path to a .txt file holding it.

One rule for `--prompt` and for the prompts of a prompts.yaml: text ending in `.txt` is a file,
and a file that does not exist is an error (never analysed as the text "nosuch.txt").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from interp.errors import InterpError, one_line


def read_prompt(prompt: object, *, bases: Iterable[str | os.PathLike] = (), where: str = "") -> str:
    """The prompt's text: inline, or the contents of a .txt file (relative paths are looked up from
    the working directory, then from each of `bases`). `where` prefixes the one-line errors."""
    if not isinstance(prompt, str):
        raise InterpError(f"{where}the prompt must be text or a .txt path, not {prompt!r}")
    text = prompt
    if prompt.endswith(".txt"):
        candidates = [Path(prompt), *(Path(base) / prompt for base in bases)]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            raise InterpError(f"{where}no such prompt file: {prompt} (a prompt ending in .txt is read from that file)")
        try:
            text = found.read_text(encoding="utf-8").rstrip("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise InterpError(f"{where}cannot read prompt file {found}: {one_line(exc)}") from None
    if not text.strip():
        raise InterpError(f"{where}empty prompt: give some text (or a .txt file that has some)")
    return text
