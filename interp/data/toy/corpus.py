"""The pretraining corpus: every fact of the world in many wordings, plus Q&A, stories, instructions
and in-context episodes (incontext.py: stories whose question is answered by the story itself).

Why so many wordings: a model this small stores a fact inside the frames it saw it in. It can only
answer the held-out task templates in tasks.py (which this module never uses) if it has seen each
fact in varied frames: plain statements, statements with an aside between subject and predicate,
two entities contrasted, questions and answers, and short stories where the fact is the payoff.
Everyday sentences that state no fact teach the ordinary words the task templates are written in.
"The Eiffel Tower is in Paris." is one of the statements on purpose: it is the demo completion.

Documents are short (one to a few sentences); corpus.txt stores them separated by DOC_SEPARATOR.
"""

from __future__ import annotations

import random
from pathlib import Path

from interp.data.toy.templates import (
    LANDMARK_CITY,
    LANDMARK_COUNTRY,
    CITY_COUNTRY,
    PERSON_PROFESSION,
    PERSON_CITY,
    ANIMAL_COLOUR,
    ANIMAL_HABITAT,
    OBJECT_MATERIAL,
    OBJECT_USE,
    OBJECT_USE_QA,
    ASIDES,
    STORY_FILLERS,
    STORIES_PER_ENTITY,
    USE_HOWTO,
    PROFESSION_GENERIC,
    MATERIAL_GENERIC,
    QA,
    NARRATIVES,
    EVERYDAY,
    NUMBERS,
    N_EVERYDAY,
    USE_QA,
    CONTRASTS,
    ASIDE_PREDICATES,
    STORY_SETUPS,
    STORY_PAYOFFS,
)
from interp.data.toy.world import MATERIAL_USES, MATERIALS, PROFESSIONS, World

DOC_SEPARATOR = "\n\n\n"  # documents never contain two blank lines in a row


def everyday_sentences(world: World, rng: random.Random, n: int = N_EVERYDAY) -> list[str]:
    """`n` everyday sentences with random names; see EVERYDAY for why they exist."""
    names = [p.name for p in world.people]
    out = []
    for i in range(n):
        a, b = rng.sample(names, 2)
        out.append(EVERYDAY[i % len(EVERYDAY)].format(a=a, b=b, n=rng.choice(NUMBERS)))
    return out


def _fill(template: str, **slots: str) -> str:
    return template.format(**slots)


def entity_slots(world: World) -> list[tuple[str, dict[str, str]]]:
    """(kind, slots) for every entity: the placeholder values its templates need."""
    out: list[tuple[str, dict[str, str]]] = []
    for c in world.cities:
        out.append(("city", dict(S=c.name, s=c.name, country=c.country)))
    for lm in world.landmarks:
        out.append(("landmark", dict(S=lm.subject, s=lm.ref, city=lm.city, country=lm.country)))
    for p in world.people:
        prof = world.profession(p.profession)
        out.append(("person", dict(S=p.name, s=p.name, profession=prof.name, present=prof.present,
                                   past=prof.past, workplace=prof.workplace, city=p.city, country=p.country)))
    for a in world.animals:
        out.append(("animal", dict(S=a.name.capitalize(), s=a.name, colour=a.colour, habitat=a.habitat)))
    for o in world.objects:
        mat = world.material(o.material)
        out.append(("object", dict(S=o.name.capitalize(), s=o.name, material=mat.name, property=mat.property,
                                   need=mat.need)))
    return out


STATEMENTS = {
    "city": (CITY_COUNTRY,),
    "landmark": (LANDMARK_CITY, LANDMARK_COUNTRY),
    "person": (PERSON_PROFESSION, PERSON_CITY),
    "animal": (ANIMAL_COLOUR, ANIMAL_HABITAT),
    "object": (OBJECT_MATERIAL,),
}


def fact_sentences(world: World) -> list[str]:
    """Every fact in every statement phrasing, plus the generic profession/material facts."""
    out: list[str] = []
    for kind, slots in entity_slots(world):
        for group in STATEMENTS[kind]:
            out += [_fill(t, **slots) for t in group]
        if kind == "object":
            for use in MATERIAL_USES[slots["material"]]:
                out += [_fill(t, use=use, **slots) for t in OBJECT_USE]
    for prof in PROFESSIONS:
        out += [_fill(t, profession=prof.name, present=prof.present, workplace=prof.workplace)
                for t in PROFESSION_GENERIC]
    for mat in MATERIALS:
        for use in MATERIAL_USES[mat.name]:
            out += [_fill(t, material=mat.name, property=mat.property, use=use) for t in MATERIAL_GENERIC]
            out.append(USE_HOWTO[use])
    return out


def qa_documents(world: World) -> list[str]:
    """'Question: ...\\nAnswer: ...' documents, every QA phrasing for every fact."""
    out: list[str] = []
    for kind, slots in entity_slots(world):
        for (k, _), templates in QA.items():
            if k != kind:
                continue
            for t in templates:
                q, a = _fill(t, **slots).split("|")
                out.append(f"Question: {q}\nAnswer: {a}")
        if kind == "object":
            for use in MATERIAL_USES[slots["material"]]:
                for t in OBJECT_USE_QA + USE_QA[use]:
                    q, a = _fill(t, use=use, **slots).split("|")
                    out.append(f"Question: {q}\nAnswer: {a}")
    return out


def contrast_sentences(world: World, rng: random.Random) -> list[str]:
    """For every entity and CONTRASTS template, one sentence against a random differing entity."""
    refs = {
        "person": [(p.name, {"profession": p.profession, "city": p.city}) for p in world.people],
        "animal": [(f"the {a.name}", {"colour": a.colour, "habitat": a.habitat}) for a in world.animals],
        "object": [(f"the {o.name}", {"material": o.material}) for o in world.objects],
        "landmark": [(lm.ref, {"city": lm.city}) for lm in world.landmarks],
    }
    out = []
    for (kind, rel), templates in CONTRASTS.items():
        for x, attrs in refs[kind]:
            for t in templates:
                y, y_attrs = rng.choice([(o, a) for o, a in refs[kind] if a[rel] != attrs[rel]])
                out.append(t.format(x=x, X=x[0].upper() + x[1:], y=y, vx=attrs[rel], vy=y_attrs[rel]))
    return out


def aside_sentences(world: World, rng: random.Random) -> list[str]:
    """Each entity's facts once more, with an aside between subject and predicate."""
    out = []
    for kind, slots in entity_slots(world):
        for pred in ASIDE_PREDICATES.get(kind, ()):
            subject = slots["S"] if kind in ("landmark", "city", "person") else f"The {slots['s']}"
            out.append(f"{subject}, {rng.choice(ASIDES)}, {_fill(pred, **slots)}.")
    return out


def story_documents(world: World, rng: random.Random) -> list[str]:
    """STORIES_PER_ENTITY random setup/filler/payoff stories per entity (and per animal fact)."""
    out = []
    for kind, slots in entity_slots(world):
        for scene in ([kind] if kind != "animal" else ["animal_habitat", "animal_colour"]):
            if scene not in STORY_SETUPS:
                continue
            for _ in range(STORIES_PER_ENTITY):
                fillers = rng.sample(STORY_FILLERS, rng.randint(0, 2))
                parts = [rng.choice(STORY_SETUPS[scene])] + fillers + [rng.choice(STORY_PAYOFFS[scene])]
                out.append(" ".join(_fill(p, **slots) for p in parts))
    return out


def narrative_documents(world: World) -> list[str]:
    """Two- or three-sentence stories that use facts the way the story-shaped tasks do."""
    out: list[str] = []
    for kind, slots in entity_slots(world):
        out += [_fill(t, **slots) for t in NARRATIVES.get(kind, ())]
    return out


def build_corpus(world: World, instruction_docs: list[str], seed: int = 0,
                 in_context_docs: list[str] = ()) -> list[str]:
    """All documents, shuffled by `seed`; single sentences are grouped into short paragraphs.

    in_context_docs: episodes of the in-context families with their answers (incontext.py).
    """
    rng = random.Random(seed)
    sentences = (fact_sentences(world) + contrast_sentences(world, rng) + aside_sentences(world, rng)
                 + everyday_sentences(world, rng))
    rng.shuffle(sentences)
    paragraphs: list[str] = []
    i = 0
    while i < len(sentences):
        n = rng.randint(1, 4)
        paragraphs.append(" ".join(sentences[i:i + n]))
        i += n
    docs = (paragraphs + qa_documents(world) + narrative_documents(world) + story_documents(world, rng)
            + list(instruction_docs) + list(in_context_docs))
    rng.shuffle(docs)
    for d in docs:
        if DOC_SEPARATOR in d or d != d.strip():
            raise ValueError(f"document breaks the corpus format: {d!r}")
    return docs


def write_corpus(docs: list[str], path: Path) -> None:
    path.write_text(DOC_SEPARATOR.join(docs) + "\n", encoding="utf-8")


def read_corpus(path: Path) -> list[str]:
    """The documents of a corpus.txt written by `write_corpus`."""
    return [d for d in path.read_text(encoding="utf-8").strip("\n").split(DOC_SEPARATOR) if d]
