"""Write every generated toy artifact into a directory (by default the package's generated/).

The artifacts are package data, so `interp` works offline with no build step; this module is how
they are regenerated. Output is a pure function of the seed: same seed → byte-identical files
(fixed orders, no timestamps, `json.dumps` with a fixed separator style).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from interp.data.toy.corpus import build_corpus, write_corpus
from interp.data.toy.instructions import build_instructions, format_example
from interp.data.toy.tasks import build_tasks
from interp.data.toy.world import World, build_world

GENERATED_DIR = Path(__file__).resolve().parent / "generated"
CORPUS_FILE = "corpus.txt"
TASKS_DIR = "tasks"
INSTRUCTION_FILE = "instructions_{split}.jsonl"
WORLD_FILE = "world.json"
INSTRUCTION_CORPUS_FRACTION = 3  # one train instruction row in this many also goes into the corpus


def _write_jsonl(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def world_summary(world: World) -> dict:
    """The world's entities and attributes as plain JSON (for users and analyses to look facts up)."""
    return {
        "seed": world.seed,
        "countries": list(world.countries),
        "cities": [vars(c) for c in world.cities],
        "landmarks": [dict(vars(lm), ref=lm.ref) for lm in world.landmarks],
        "people": [vars(p) for p in world.people],
        "animals": [vars(a) for a in world.animals],
        "objects": [vars(o) for o in world.objects],
    }


def build_all(out_dir: Path = GENERATED_DIR, seed: int = 0) -> dict[str, Path]:
    """Generate world → tasks, instructions, corpus; write them under out_dir; return the paths."""
    out_dir = Path(out_dir)
    (out_dir / TASKS_DIR).mkdir(parents=True, exist_ok=True)
    world = build_world(seed)
    paths: dict[str, Path] = {}

    for name, items in build_tasks(world, seed).items():
        paths[name] = out_dir / TASKS_DIR / f"{name}.jsonl"
        _write_jsonl(items, paths[name])

    instructions = build_instructions(world, seed)
    for split, rows in instructions.items():
        paths[f"instructions_{split}"] = out_dir / INSTRUCTION_FILE.format(split=split)
        _write_jsonl(rows, paths[f"instructions_{split}"])

    rng = random.Random(f"{seed}:corpus-instructions")
    in_corpus = [format_example(r) for r in instructions["train"] if rng.randrange(INSTRUCTION_CORPUS_FRACTION) == 0]
    paths["corpus"] = out_dir / CORPUS_FILE
    write_corpus(build_corpus(world, in_corpus, seed), paths["corpus"])

    paths["world"] = out_dir / WORLD_FILE
    paths["world"].write_text(json.dumps(world_summary(world), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths
