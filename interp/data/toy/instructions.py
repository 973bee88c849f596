"""An alpaca-schema instruction dataset (`instruction`, `input`, `output`) that teaches formats, not answers.

The finetuning stages (3a causal, 3b prefix) train on the train split with the alpaca prompt template of
`interp.data.instructions.format_prompt` (the one the finetuning code uses). Two kinds of rows:

  * in-context rows: a fresh episode of each in-context family (incontext.py), its story and question
    as the input, the answer as the output. They teach reading the context; under the prefix mask
    (stage 3b) they are what lets the model relearn the in-context tasks with a bidirectional prompt.
  * fact rows: questions about facts of the world, but only facts no eval item asks about.

So no eval item's context, and no eval item's fact (its subject named together with its value),
appears in any row (`build_instructions` filters with `fact_matcher`; tests/test_toy.py checks).
Some train rows are also in the pretraining corpus so the base model already knows the format. The
eval split is disjoint from train (no shared instruction+input) and never appears in the corpus.
"""

from __future__ import annotations

import random
import re
from typing import Iterable, Sequence

from interp.data.instructions import format_prompt
from interp.data.toy.incontext import FAMILIES, Episode, episodes
from interp.data.toy.world import MATERIAL_USES, PROFESSIONS, World

N_EVAL = 300
N_TRAIN = 3000
IN_CONTEXT_ROWS_PER_FAMILY = 650  # train + eval rows drawn per family

IN_CONTEXT_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "binding": ("Read the text and answer the question.", "Answer the question using the text."),
    "order": ("Read the text and answer the question.", "Answer the question about the order in the text."),
    "copy": ("Continue the text with the next digit.", "What digit comes next?"),
    "tracking": ("Read the text and answer the question.", "Follow the moves in the text and answer the question."),
}


# (kind, relation) → [(instruction, input, output)]; {S}/{s} subject, {v} value, {V} capitalised value.
TEMPLATES: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {
    ("landmark", "city"): (
        ("Name the city where this landmark stands.", "{s}", "{v}"),
        ("Complete the sentence.", "{S} is in", "{S} is in {v}."),
        ("Where would you travel to see {s}?", "", "You would travel to {v}."),
        ("Which city should a tourist visit to see {s}?", "", "{v}"),
    ),
    ("landmark", "country"): (
        ("Which country is {s} located in?", "", "{S} is located in {v}."),
        ("Name the country of this landmark.", "{s}", "{v}"),
        ("Write a short sentence about {s}.", "", "{S} is one of the best known sights of {v}."),
        ("In one word, name the country of {s}.", "", "{v}."),
    ),
    ("city", "country"): (
        ("Name the country this city belongs to.", "{s}", "{v}"),
        ("Write one sentence about the city of {s}.", "", "{S} is a city in {v}."),
        ("Which country would you visit to see {s}?", "", "You would visit {v}."),
        ("Where is {s}?", "", "{S} is in {v}."),
    ),
    ("person", "profession"): (
        ("What is the job of the person below?", "{s}", "{S} is a {v}."),
        ("Describe what {s} does at work.", "", "{S} is a {v} and {present}."),
        ("Tell me the profession of {s} in one word.", "", "{V}."),
        ("Write a sentence about the work of this person.", "{s}", "{S} works as a {v}."),
    ),
    ("person", "city"): (
        ("Tell me where {s} lives.", "", "{S} lives in {v}, {country}."),
        ("Which city is this person from?", "{s}", "{v}"),
        ("Write a sentence about the home of {s}.", "", "{S} has a house in {v}."),
        ("Name the city where this person lives.", "{s}", "{v}"),
    ),
    ("animal", "colour"): (
        ("Answer with one word: what colour is the {s}?", "", "{V}."),
        ("Describe the colour of this animal.", "the {s}", "The {s} is {v}."),
        ("Describe the animal.", "the {s}", "The {s} is {v} and lives in the {habitat}."),
        ("What colour is this animal?", "the {s}", "{V}."),
    ),
    ("animal", "habitat"): (
        ("Where can you find this animal?", "the {s}", "In the {v}."),
        ("Tell me where the {s} lives.", "", "The {s} lives in the {v}."),
        ("Describe where this animal lives.", "the {s}", "The {s} makes its home in the {v}."),
    ),
    ("object", "material"): (
        ("What material is this object made of?", "the {s}", "The {s} is made of {v}."),
        ("Give a use for the {s}.", "", "The {s} is good for {use}."),
        ("Explain why the {s} is useful.", "", "The {s} is made of {v}, so it {property}."),
        ("Name the material of the {s}.", "", "{V}."),
    ),
}
CHOICE_TEMPLATE = ("Choose the right answer.", "{question} Options: {options}.", "{v}")
CHOICE_QUESTIONS: dict[tuple[str, str], str] = {
    ("landmark", "city"): "Which city is {s} in?",
    ("landmark", "country"): "Which country is {s} in?",
    ("city", "country"): "Which country is {s} in?",
    ("person", "profession"): "What is the job of {s}?",
    ("person", "city"): "Where does {s} live?",
    ("animal", "colour"): "What colour is the {s}?",
    ("animal", "habitat"): "Where does the {s} live?",
    ("object", "material"): "What is the {s} made of?",
}


def format_example(row: dict) -> str:
    """Prompt plus response: the full text a finetuning step (or the corpus) sees."""
    return format_prompt(row) + row["output"]


def _fact_slots(world: World) -> list[tuple[str, str, dict[str, str]]]:
    """(kind, relation, slots) for every fact; slots fill TEMPLATES."""
    out = []
    profs = {p.name: p for p in PROFESSIONS}
    for lm in world.landmarks:
        base = dict(S=lm.subject, s=lm.ref)
        out += [("landmark", "city", dict(base, v=lm.city)), ("landmark", "country", dict(base, v=lm.country))]
    out += [("city", "country", dict(S=c.name, s=c.name, v=c.country)) for c in world.cities]
    for p in world.people:
        out.append(("person", "profession", dict(S=p.name, s=p.name, v=p.profession,
                                                 present=profs[p.profession].present)))
        out.append(("person", "city", dict(S=p.name, s=p.name, v=p.city, country=p.country)))
    for a in world.animals:
        out.append(("animal", "colour", dict(s=a.name, v=a.colour, habitat=a.habitat)))
        out.append(("animal", "habitat", dict(s=a.name, v=a.habitat)))
    for i, o in enumerate(world.objects):
        mat = world.material(o.material)
        out.append(("object", "material", dict(s=o.name, v=mat.name, property=mat.property,
                                               use=MATERIAL_USES[mat.name][i % 2])))
    return out


def all_rows(world: World, rng: random.Random) -> list[dict]:
    """Every template applied to every fact, plus one multiple-choice row per fact."""
    rows = []
    for kind, rel, slots in _fact_slots(world):
        slots = dict(slots, V=slots["v"].capitalize())
        for instruction, inp, output in TEMPLATES[(kind, rel)]:
            rows.append({"instruction": instruction.format(**slots), "input": inp.format(**slots),
                         "output": output.format(**slots)})
        options = rng.sample([x for x in world.values(kind, rel) if x != slots["v"]], 3) + [slots["v"]]
        rng.shuffle(options)
        question = CHOICE_QUESTIONS[(kind, rel)].format(**slots)
        instruction, inp, output = CHOICE_TEMPLATE
        rows.append({"instruction": instruction, "input": inp.format(question=question, options=", ".join(options)),
                     "output": output.format(**slots)})
    return rows


def in_context_row(ep: Episode, rng: random.Random) -> dict:
    """An episode as an alpaca row: story (+ question) in, answer out."""
    text = f"{ep.story}\nQuestion: {ep.question}" if ep.question else ep.story
    return {"instruction": rng.choice(IN_CONTEXT_INSTRUCTIONS[ep.family]), "input": text, "output": ep.answer}


def _word_pattern(phrase: str) -> re.Pattern:
    phrase = phrase.lower().removeprefix("the ")  # "the Eiffel Tower" is also named as "Eiffel Tower"
    return re.compile(r"\b" + re.escape(phrase) + r"\b")


def fact_matcher(facts: Sequence[Sequence[str]]):
    """A predicate: does a text name some fact's subject together with its value (whole words, any case)?"""
    patterns = [(_word_pattern(subject), _word_pattern(value)) for subject, _, value in _unique_facts(facts)]

    def states_fact(text: str) -> bool:
        low = text.lower()
        return any(s.search(low) and v.search(low) for s, v in patterns)

    return states_fact


def row_text(row: dict) -> str:
    return " ".join((row["instruction"], row["input"], row["output"]))


def build_instructions(world: World, seed: int = 0, held_out_stories: Iterable[str] = (),
                       held_out_facts: Sequence[Sequence[str]] = ()) -> dict[str, list[dict]]:
    """{"train": [...], "eval": [...]}: a seeded, disjoint split of in-context and fact rows.

    held_out_stories: the eval tasks' in-context stories (never drawn again here);
    held_out_facts: the eval tasks' facts [subject, relation, value] (no row states one).
    """
    rng = random.Random(f"{seed}:instructions")
    states_fact = fact_matcher(held_out_facts)
    rows = [r for r in all_rows(world, rng) if not states_fact(row_text(r))]
    exclude = frozenset(held_out_stories)
    for family in FAMILIES:
        rows += [in_context_row(ep, rng) for ep in episodes(family, rng, IN_CONTEXT_ROWS_PER_FAMILY, exclude)]
    rng.shuffle(rows)
    eval_rows = rows[:N_EVAL]
    eval_keys = [format_prompt(r) for r in eval_rows]
    train_rows = [r for r in rows[N_EVAL:] if format_prompt(r) not in eval_keys][:N_TRAIN]
    return {"train": train_rows, "eval": eval_rows}


def _unique_facts(facts: Sequence[Sequence[str]]) -> list[tuple[str, str, str]]:
    """Facts once each, in first-seen order (lists from JSON become tuples)."""
    out: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str, str]] = set()
    for fact in facts:
        key = tuple(fact)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out
