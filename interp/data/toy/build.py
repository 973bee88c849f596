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
from interp.data.toy.incontext import FAMILIES, episodes
from interp.data.toy.instructions import build_instructions, format_example
from interp.data.toy.tasks import build_tasks
from interp.data.toy.world import World, build_world
from interp.errors import InterpError

GENERATED_DIR = Path(__file__).resolve().parent / "generated"
CORPUS_FILE = "corpus.txt"
TASKS_DIR = "tasks"
INSTRUCTION_FILE = "instructions_{split}.jsonl"
WORLD_FILE = "world.json"
INSTRUCTION_CORPUS_FRACTION = 3  # one train instruction row in this many also goes into the corpus
# Answered in-context episodes per family in the shipped corpus: the word-order families weighted
# eightfold, as the bundled model was trained (docs/replication/attempts.md).
CORPUS_EPISODES_PER_FAMILY = {"binding": 1000, "order": 8000, "copy": 8000, "tracking": 1000}


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


def corpus_episode_counts(episodes_per_family: int | None = None,
                          per_family: dict[str, int] | None = None) -> dict[str, int]:
    """How many answered episodes of each in-context family the corpus holds.

    `episodes_per_family` is the count for every family (None: as shipped); `per_family` overrides
    it for the families it names, so a corpus can weight the word-order families more.
    """
    if episodes_per_family is None:
        counts = {family: CORPUS_EPISODES_PER_FAMILY[family] for family in FAMILIES}
    else:
        counts = {family: episodes_per_family for family in FAMILIES}
    for family, n in (per_family or {}).items():
        if family not in FAMILIES:
            raise InterpError(f"unknown in-context family {family!r}; known: {', '.join(FAMILIES)}")
        counts[family] = n
    for family, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InterpError(f"episodes per family must be 0 or more, not {n} ({family})")
    return counts


def build_all(out_dir: Path = GENERATED_DIR, seed: int = 0, episodes_per_family: int | None = None,
              per_family: dict[str, int] | None = None) -> dict[str, Path]:
    """Generate world → tasks, instructions, corpus; write them under out_dir; return the paths.

    `episodes_per_family` (and `per_family`, by family name) set how many answered in-context
    episodes the corpus holds (None: as shipped; a training-data knob: the tasks and instructions
    do not change with it).
    """
    counts = corpus_episode_counts(episodes_per_family, per_family)
    out_dir = Path(out_dir)
    (out_dir / TASKS_DIR).mkdir(parents=True, exist_ok=True)
    world = build_world(seed)
    paths: dict[str, Path] = {}

    tasks = build_tasks(world, seed)
    for name, items in tasks.items():
        paths[name] = out_dir / TASKS_DIR / f"{name}.jsonl"
        _write_jsonl(items, paths[name])
    held_out_stories = frozenset(it["story"] for items in tasks.values() for it in items if "story" in it)
    held_out_facts = [it["fact"] for items in tasks.values() for it in items if "fact" in it]

    instructions = build_instructions(world, seed, held_out_stories, held_out_facts)
    for split, rows in instructions.items():
        paths[f"instructions_{split}"] = out_dir / INSTRUCTION_FILE.format(split=split)
        _write_jsonl(rows, paths[f"instructions_{split}"])

    rng = random.Random(f"{seed}:corpus-instructions")
    in_corpus = [format_example(r) for r in instructions["train"] if rng.randrange(INSTRUCTION_CORPUS_FRACTION) == 0]
    rng = random.Random(f"{seed}:corpus-incontext")
    in_context = [ep.document() for family in FAMILIES
                  for ep in episodes(family, rng, counts[family], held_out_stories)]
    paths["corpus"] = out_dir / CORPUS_FILE
    write_corpus(build_corpus(world, in_corpus, seed, in_context), paths["corpus"])

    paths["world"] = out_dir / WORLD_FILE
    paths["world"].write_text(json.dumps(world_summary(world), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths
