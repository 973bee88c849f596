"""Held-out multiple-choice tasks: four fact tasks shaped like ARC, PIQA, HellaSwag and WinoGrande,
and four in-context tasks (toy_binding, toy_order, toy_copy, toy_tracking; see incontext.py).

Fact tasks ask what the model memorised from the corpus; in-context tasks give the answer in the
context with entities drawn fresh per item, so only reading the context can answer them. Every
fact item records the fact it asks about (`fact`: subject, relation, value) so the instruction
data can be checked to never state it.

Every item is `{"context": str, "choices": [str, ...], "label": int}`; the scored continuation is
exactly `choices[i]` appended to `context`, as in lm-evaluation-harness. The facts behind each item
are in the corpus, but the wording is not: every template here is one corpus.py never uses, so a
model can only answer by knowing the fact, not by recalling a string (tests/test_toy.py checks).
Distractors are always values of the same attribute type, and the correct answer's position is
balanced across items so no position bias can score above chance.
"""

from __future__ import annotations

import random
from typing import Callable

from interp.data.toy.incontext import FAMILIES, Episode, episodes
from interp.data.toy.world import MATERIAL_USES, PROFESSIONS, World

N_ITEMS = 300
IN_CONTEXT_CHOICES = 4  # chance 0.25 on every in-context task

# ---------------------------------------------------------------------------------------------
# toy_arc: "Question: ...\nAnswer:" → four one-attribute answers
# ---------------------------------------------------------------------------------------------

ARC_QUESTIONS: dict[tuple[str, str], tuple[str, str]] = {  # (kind, relation) → (question, answer)
    ("landmark", "country"): ("In which country is {s}?", "{v}"),
    ("landmark", "city"): ("In which city can you find {s}?", "{v}"),
    ("city", "country"): ("In which country is the city of {s}?", "{v}"),
    ("person", "profession"): ("What does {s} do for a living?", "a {v}"),
    ("person", "city"): ("In which city does {s} live?", "{v}"),
    ("animal", "colour"): ("Which colour is the {s}?", "{v}"),
    ("animal", "habitat"): ("What is the natural home of the {s}?", "the {v}"),
    ("object", "material"): ("Which material is the {s} made from?", "{v}"),
}

# ---------------------------------------------------------------------------------------------
# toy_piqa: a physical goal → two solutions that differ in the object used
# ---------------------------------------------------------------------------------------------

PIQA_GOALS: dict[str, tuple[str, str]] = {  # material use → (goal, solution with {o})
    "crossing a pond": ("How can you get across a small pond?", "Float across on the {o}."),
    "keeping a fishing net afloat": ("How do you stop a fishing net from sinking?", "Tie the net to the {o}."),
    "knocking in nails": ("How do you knock a nail into a wall?", "Hit the nail with the {o}."),
    "breaking ice": ("How can you break a thick block of ice?", "Strike the ice with the {o}."),
    "letting sunlight into a room": ("How do you get sunlight into a dark room?",
                                     "Let the sun shine in through the {o}."),
    "watching the rain from inside": ("How can you watch the rain without getting wet?", "Look out through the {o}."),
    "writing a message": ("How can you leave a message for a friend?", "Write the message on the {o}."),
    "making a shopping list": ("How do you remember what to buy at the market?", "Write a shopping list on the {o}."),
    "holding a tent down in the wind": ("How do you stop a tent from blowing away?", "Weigh the tent down with the {o}."),
    "keeping a door open": ("How can you stop a door from swinging shut?", "Push the {o} against the door."),
    "staying warm on cold nights": ("How can you stay warm when the night is cold?", "Wrap yourself in the {o}."),
    "keeping a baby warm": ("How do you keep a baby warm in winter?", "Cover the baby with the {o}."),
    "playing bouncing games": ("How can children play a bouncing game?", "Throw the {o} at the ground and catch it."),
    "playing with a puppy": ("How do you get a puppy to jump and play?", "Bounce the {o} in front of the puppy."),
    "carrying water from the well": ("How can you bring water home from the well?",
                                     "Fill the {o} with water and carry it."),
    "keeping water for the plants": ("How do you keep water ready for the plants?", "Pour the water into the {o}."),
}

# ---------------------------------------------------------------------------------------------
# toy_hellaswag: a short scene → four endings, one consistent with a known fact
# ---------------------------------------------------------------------------------------------

HELLASWAG_SCENES: dict[str, tuple[str, str]] = {  # name → (context, ending with {v})
    "person_recall": ("{s} got up early and walked to work. At work, {s}", "{v}."),
    "person_told": ("{s} has been a {profession} for many years. One busy afternoon, {s}", "{v}."),
    "landmark": ("A tourist wanted to see {s} with her own eyes. She packed a bag and",
                 "bought a train ticket to {v}."),
    "animal_habitat": ("The {s} had been away all day looking for food. When the sun went down, it",
                       "returned to its home in the {v}."),
    "animal_colour": ("A boy wanted to paint a picture of the {s}. He opened his box of paints and",
                      "picked up the {v} paint."),
    "object": ("A boy dropped the {s} on the floor and it broke. He knelt down and",
               "picked up the pieces of {v}."),
}

# ---------------------------------------------------------------------------------------------
# toy_winogrande: a sentence with a blank "_" → two options (entities of one kind)
# ---------------------------------------------------------------------------------------------

WINOGRANDE_SENTENCES: tuple[tuple[str, str, str], ...] = (  # (kind, relation, sentence with {a} {b} {v})
    ("person", "profession", "{a} and {b} are old friends, and _ is the one who earns a living as a {v}."),
    ("person", "profession", "When the town needed a {v}, it asked {a} and {b}, and _ was the one who could help."),
    ("person", "city", "{a} and {b} both like to travel, but _ has lived in {v} since childhood."),
    ("animal", "colour", "{a} and {b} stood side by side, and _ was clearly the {v} one."),
    ("animal", "habitat", "{a} and {b} were both in the film, but only _ comes from the {v}."),
    ("object", "material", "Mia compared {a} and {b} and found that _ was the one made of {v}."),
    ("landmark", "city", "The guide talked about {a} and {b}, and explained that _ can be seen in {v}."),
)


def _place(correct: str, distractors: list[str], label: int) -> list[str]:
    """Choices with the correct one at index `label` (labels are assigned round-robin)."""
    return distractors[:label] + [correct] + distractors[label:]


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _refs(world: World) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Per kind, (mid-sentence reference, attribute values) for every entity."""
    return {
        "landmark": [(lm.ref, {"city": lm.city, "country": lm.country}) for lm in world.landmarks],
        "city": [(c.name, {"country": c.country}) for c in world.cities],
        "person": [(p.name, {"profession": p.profession, "city": p.city}) for p in world.people],
        "animal": [(a.name, {"colour": a.colour, "habitat": a.habitat}) for a in world.animals],
        "object": [(o.name, {"material": o.material}) for o in world.objects],
    }


def _round_robin(pools: list[list], n: int) -> list:
    """Take from each (already shuffled) pool in turn until n items, so kinds stay balanced."""
    out, i = [], 0
    while len(out) < n and any(pools):
        pool = pools[i % len(pools)]
        if pool:
            out.append(pool.pop())
        i += 1
    return out


def arc_items(world: World, rng: random.Random, n: int = N_ITEMS) -> list[dict]:
    """One-fact questions, relations taken in turn so each is about equally represented."""
    refs = _refs(world)
    pools = []
    for (kind, rel) in ARC_QUESTIONS:
        pool = [(kind, rel, s, attrs[rel]) for s, attrs in refs[kind]]
        rng.shuffle(pool)
        pools.append(pool)
    items = []
    for i, (kind, rel, s, v) in enumerate(_round_robin(pools, n)):
        q, a = ARC_QUESTIONS[(kind, rel)]
        others = [x for x in world.values(kind, rel) if x != v]
        choices = [" " + a.format(v=x) for x in _place(v, rng.sample(others, 3), i % 4)]
        items.append({"context": f"Question: {q.format(s=s)}\nAnswer:", "choices": choices, "label": i % 4,
                      "kind": kind, "relation": rel, "fact": [s, rel, v]})
    return items


def piqa_items(world: World, rng: random.Random, n: int = N_ITEMS) -> list[dict]:
    """A goal that one material serves; the wrong solution uses an object of another material."""
    pairs = [(o.name, o.material, use) for o in world.objects for use in MATERIAL_USES[o.material]]
    rng.shuffle(pairs)
    items: list[dict] = []
    seen: list[tuple[str, str]] = []
    while len(items) < n:
        for obj, mat, use in pairs:
            if len(items) == n:
                break
            wrong = rng.choice([o.name for o in world.objects if o.material != mat])
            if (obj + use, wrong) in seen:
                continue
            seen.append((obj + use, wrong))
            goal, solution = PIQA_GOALS[use]
            label = len(items) % 2
            choices = [" " + solution.format(o=x) for x in _place(obj, [wrong], label)]
            items.append({"context": f"Question: {goal}\nAnswer:", "choices": choices, "label": label,
                          "goal": goal, "fact": [obj, "material", mat]})
    return items


def hellaswag_items(world: World, rng: random.Random, n: int = N_ITEMS) -> list[dict]:
    """Scenes whose only sensible ending depends on a fact (recalled, or stated in the scene)."""
    profs = {p.name: p for p in PROFESSIONS}
    pools: list[list[tuple[str, str, dict, str, list[str], list[str]]]] = []
    for scene in HELLASWAG_SCENES:
        if scene.startswith("person"):
            pool = [(scene, p.name, {"profession": p.profession}, profs[p.profession].past,
                     [q.past for q in PROFESSIONS if q.name != p.profession], [p.name, "profession", p.profession])
                    for p in world.people]
        elif scene == "landmark":
            pool = [(scene, lm.ref, {}, lm.city, [c for c in world.values("landmark", "city") if c != lm.city],
                     [lm.ref, "city", lm.city]) for lm in world.landmarks]
        elif scene.startswith("animal"):
            rel = scene.split("_")[1]
            pool = [(scene, a.name, {}, getattr(a, rel), [x for x in world.values("animal", rel) if x != getattr(a, rel)],
                     [a.name, rel, getattr(a, rel)]) for a in world.animals]
        else:
            pool = [(scene, o.name, {}, o.material, [x for x in world.values("object", "material") if x != o.material],
                     [o.name, "material", o.material]) for o in world.objects]
        rng.shuffle(pool)
        pools.append(pool)
    items = []
    for i, (scene, s, extra, v, others, fact) in enumerate(_round_robin(pools, n)):
        ctx, ending = HELLASWAG_SCENES[scene]
        choices = [" " + ending.format(v=x) for x in _place(v, rng.sample(others, 3), i % 4)]
        items.append({"context": _cap(ctx.format(s=s, **extra)), "choices": choices, "label": i % 4, "scene": scene,
                      "fact": fact})
    return items


def split_winogrande(sentence: str, option1: str, option2: str) -> tuple[str, list[str]]:
    """Like the winogrande loader: context = text before "_", choice = option + rest of sentence."""
    idx = sentence.index("_")
    rest = sentence[idx + 1:]
    return sentence[:idx].rstrip(), [" " + option1 + rest, " " + option2 + rest]


def winogrande_items(world: World, rng: random.Random, n: int = N_ITEMS) -> list[dict]:
    """Two same-kind entities, one blank; the rest of the sentence holds only for one of them."""
    refs = _refs(world)
    pools = []
    for t_idx, (kind, rel, _) in enumerate(WINOGRANDE_SENTENCES):
        pool = []
        for s, attrs in refs[kind]:
            others = [o for o, o_attrs in refs[kind] if o_attrs[rel] != attrs[rel]]
            pool.append((t_idx, s, rng.choice(others), attrs[rel]))
        rng.shuffle(pool)
        pools.append(pool)
    items = []
    for i, (t_idx, right, wrong, v) in enumerate(_round_robin(pools, n)):
        kind, rel, template = WINOGRANDE_SENTENCES[t_idx]
        fact = [right, rel, v]
        if kind in ("animal", "object"):
            right, wrong = f"the {right}", f"the {wrong}"
        label = i % 2
        option1, option2 = (right, wrong) if label == 0 else (wrong, right)
        a, b = (option1, option2) if rng.random() < 0.5 else (option2, option1)  # mention order ≠ option order
        sentence = _cap(template.format(a=a, b=b, v=v))
        context, choices = split_winogrande(sentence, option1, option2)
        items.append({"context": context, "choices": choices, "label": label, "sentence": sentence,
                      "option1": option1, "option2": option2, "answer": str(label + 1), "fact": fact})
    return items


def in_context_item(ep: Episode, rng: random.Random, label: int) -> dict:
    """An episode as multiple choice: the answer at `label` among three other words of the context."""
    distractors = rng.sample(list(ep.candidates), IN_CONTEXT_CHOICES - 1)
    choices = [" " + c for c in _place(ep.answer, distractors, label)]
    return {"context": ep.context, "choices": choices, "label": label, "family": ep.family,
            "story": ep.story, "question": ep.question}


def in_context_items(family: str) -> Callable[[World, random.Random], list[dict]]:
    """The task builder of one in-context family (the world is not used: entities are drawn fresh)."""
    def build(world: World, rng: random.Random, n: int = N_ITEMS) -> list[dict]:
        return [in_context_item(ep, rng, i % IN_CONTEXT_CHOICES) for i, ep in enumerate(episodes(family, rng, n))]

    build.__name__ = f"{family}_items"
    return build


TASK_BUILDERS: dict[str, Callable[[World, random.Random], list[dict]]] = {
    "toy_arc": arc_items,
    "toy_piqa": piqa_items,
    "toy_hellaswag": hellaswag_items,
    "toy_winogrande": winogrande_items,
    **{f"toy_{family}": in_context_items(family) for family in FAMILIES},
}
FACT_TASKS: tuple[str, ...] = ("toy_arc", "toy_piqa", "toy_hellaswag", "toy_winogrande")
IN_CONTEXT_TASKS: tuple[str, ...] = tuple(f"toy_{family}" for family in FAMILIES)


def build_tasks(world: World, seed: int = 0) -> dict[str, list[dict]]:
    """Eval items for every toy task; each task has its own seeded stream so they vary independently."""
    return {name: build(world, random.Random(f"{seed}:{name}")) for name, build in TASK_BUILDERS.items()}
