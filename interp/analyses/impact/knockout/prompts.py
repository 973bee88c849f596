"""Fact prompts with subjects: a JSONL file of {"prompt", "subject"} rows, or the toy set.

The toy set is built from the bundled toy world's facts (world.json), one prompt per fact in the
phrasings the toy corpus states them in, each ending just before the fact's value:
"The Eiffel Tower is in" (subject "Eiffel Tower", answer " Paris"). It reads only the fields it
needs, so a world with more entities (or more kinds of them) gives a larger set, not a broken one;
entries missing a field are left out.
"""

from __future__ import annotations

import json
import os
from itertools import zip_longest
from interp.errors import InterpError

# (world.json key, relation, template → prompt text, the field holding the answer)
_LANDMARK = "{The}{name}"
TOY_TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    ("landmarks", "city", _LANDMARK + " is in", "city"),
    ("landmarks", "country", _LANDMARK + " is located in", "country"),
    ("cities", "country", "{name} is a city in", "country"),
    ("people", "city", "{name} lives in", "city"),
    ("people", "profession", "{name} works as a", "profession"),
    ("animals", "habitat", "The {name} lives in the", "habitat"),
    ("objects", "material", "The {name} is made of", "material"),
)


def toy_prompts(world: dict | None = None) -> list[dict]:
    """Rows {"prompt", "subject", "answer", "relation"} for every fact of the toy world, relations interleaved."""
    if world is None:
        from interp.data.toy import GENERATED_DIR

        path = GENERATED_DIR / "world.json"
        if not path.is_file():
            raise InterpError(f"the toy world is missing from {path}; run `interp toy build`")
        world = json.loads(path.read_text(encoding="utf-8"))
    by_relation = []
    for key, relation, template, answer in TOY_TEMPLATES:
        rows = []
        for entry in world.get(key) or []:
            name, value = entry.get("name"), entry.get(answer)
            if not isinstance(name, str) or not isinstance(value, str):
                continue
            prompt = template.format(name=name, The="The " if entry.get("article") else "")
            rows.append({"prompt": prompt, "subject": name, "answer": " " + value, "relation": f"{key}.{relation}"})
        by_relation.append(rows)
    # Relations interleaved, so the first N rows (--limit N) mix every kind of fact.
    return [row for group in zip_longest(*by_relation) for row in group if row is not None]


def load_prompts(source: str | os.PathLike) -> tuple[list[dict], int]:
    """"toy" → the toy set; a path → its JSONL rows. Returns (rows, rows skipped while reading)."""
    from interp.data.jsonl import read_jsonl

    if str(source) == "toy":
        return toy_prompts(), 0
    rows = list(read_jsonl(source))
    objects = [row for row in rows if isinstance(row, dict)]  # a line that is not a JSON object is a bad row
    return objects, len(rows) - len(objects)
