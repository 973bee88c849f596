"""In-context task families: the answer is written in the context, never in the model's weights.

The fact tasks (tasks.py) ask what the model has memorised; a bidirectional prefill barely hurts
them, because recalling "Paris" after "The Eiffel Tower is in" needs little more than the subject's
own tokens. These families need computation over the context, the part causal attention carries:

  binding   who has what, who went where (bind two words said together, retrieve one from the other)
  order     who came first / last / right after / right before someone in a sequence
  copy      continue a code seen earlier in the context (induction: find the last token, copy its successor)
  tracking  where an object is after a few moves of two objects (a value that is reassigned)

Every episode draws its entities fresh (people's names, small things, containers, digits) from its
own random stream, so no answer can be memorised. The choices are always words of the context, and
the correct one's position is balanced by the caller. The same generator feeds the corpus (with the
answer), the held-out tasks (as multiple choice) and the instruction data (as alpaca rows); build.py
keeps the three disjoint (no eval story appears in the corpus or the instructions).

Vocabularies are chosen to stay clear of the world's facts: the things and containers are not
objects of the world, and no episode states a profession, home city, colour, habitat or material.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from interp.data.toy.world import FIRST_NAMES

THINGS: tuple[str, ...] = (
    "key", "cup", "lamp", "coin", "book", "ring", "hat", "pen", "shell", "spoon", "watch", "candle", "comb",
    "bell", "kite", "rope", "flute", "apple", "pear", "plum", "sock", "glove", "button", "feather", "stamp",
    "ticket", "torch", "ladder", "whistle", "marble", "pebble", "ribbon", "card", "letter", "toy", "cake",
)
CONTAINERS: tuple[str, ...] = (
    "box", "drawer", "basket", "cupboard", "bag", "tin", "sack", "chest", "pocket", "jar", "case", "suitcase",
    "bucket", "crib", "wardrobe", "closet",
)
ROOMS: tuple[str, ...] = (
    "garden", "attic", "cellar", "hall", "bedroom", "bathroom", "garage", "porch", "playroom", "yard",
    "office", "balcony",
)
DIGITS: tuple[str, ...] = tuple("0123456789")


@dataclass(frozen=True)
class Episode:
    """One in-context example: a story, a question about it, the answer and the wrong candidates."""

    family: str
    story: str  # the context the answer is read from
    question: str  # "Who has the cup?" (empty for copy: the story ends where the answer goes)
    answer: str  # "Bruno" (no leading space)
    candidates: tuple[str, ...]  # every other answer-typed word of the story, distractors come from these

    @property
    def context(self) -> str:
        """The text the answer continues: story + "\\nQuestion: ...\\nAnswer:" (copy: the story)."""
        return f"{self.story}\nQuestion: {self.question}\nAnswer:" if self.question else self.story

    def document(self) -> str:
        """The corpus form: context followed by the answer."""
        return f"{self.context} {self.answer}"


# --------------------------------------------------------------------------------------------- binding
_HAS = ("{a} has the {x}.", "{a} is holding the {x}.", "The {x} is with {a}.")
_WENT = ("{a} went to the {p}.", "{a} ran to the {p}.", "{a} walked to the {p}.")


def binding(rng: random.Random) -> Episode:
    """Four people, each bound to a thing (or a room); ask for one side of one pair."""
    k = 4
    names = rng.sample(FIRST_NAMES, k)
    if rng.random() < 0.5:
        values, templates, key = rng.sample(THINGS, k), _HAS, "x"
        ask_person, ask_value = "Who has the {v}?", "What does {a} have?"
    else:
        values, templates, key = rng.sample(ROOMS, k), _WENT, "p"
        ask_person, ask_value = "Who went to the {v}?", "Where did {a} go?"
    template = rng.choice(templates)
    story = " ".join(_cap(template.format(a=a, **{key: v})) for a, v in zip(names, values))
    i = rng.randrange(k)
    if rng.random() < 0.5:
        return Episode("binding", story, ask_person.format(v=values[i]), names[i],
                       tuple(n for n in names if n != names[i]))
    return Episode("binding", story, ask_value.format(a=names[i]), f"the {values[i]}",
                   tuple(f"the {v}" for v in values if v != values[i]))


# --------------------------------------------------------------------------------------------- order
_LINES = (
    "The children stood in a line: {seq}.",
    "The guests came in one by one: {seq}.",
    "The runners crossed the finish line in this order: {seq}.",
)


def order(rng: random.Random) -> Episode:
    """Four names in a sequence; ask who was first, last, right after or right before someone."""
    k = 4
    names = rng.sample(FIRST_NAMES, k)
    story = rng.choice(_LINES).format(seq=", then ".join(names))
    kind = rng.randrange(4)
    if kind == 0:
        question, answer = "Who was first?", names[0]
    elif kind == 1:
        question, answer = "Who was last?", names[-1]
    elif kind == 2:
        j = rng.randrange(k - 1)
        question, answer = f"Who came right after {names[j]}?", names[j + 1]
    else:
        j = rng.randrange(1, k)
        question, answer = f"Who came right before {names[j]}?", names[j - 1]
    return Episode("order", story, question, answer, tuple(n for n in names if n != answer))


# --------------------------------------------------------------------------------------------- copy
_CODES = (
    "{a} wrote down a code: {code}. Later, {a} read it out again: {start}",
    "The number on the door was {code}. {a} said it again: {start}",
    "{a} had to remember the code {code}. At the gate, {a} typed {start}",
)


def copy(rng: random.Random) -> Episode:
    """A code of 5-7 distinct digits, then its first few digits again; the answer is the next one."""
    n = rng.randint(5, 7)
    code = rng.sample(DIGITS, n)
    shown = rng.randint(1, n - 1)
    a = rng.choice(FIRST_NAMES)
    story = rng.choice(_CODES).format(a=a, code=" ".join(code), start=" ".join(code[:shown]))
    return Episode("copy", story, "", code[shown], tuple(d for d in code if d != code[shown]))


# --------------------------------------------------------------------------------------------- tracking
_START = ("The {x} is in the {p} and the {y} is in the {q}.", "At first, the {x} is in the {p} and the {y} is in the {q}.")
_MOVE = ("{a} moves the {x} to the {p}.", "Then {a} puts the {x} in the {p}.", "{a} takes the {x} and puts it in the {p}.")


def tracking(rng: random.Random) -> Episode:
    """Two things in two containers, then two to four moves; ask where one of them is now."""
    x, y = rng.sample(THINGS, 2)
    n_moves = rng.randint(2, 4)
    places = rng.sample(CONTAINERS, 2 + n_moves)
    where = {x: places[0], y: places[1]}
    sentences = [rng.choice(_START).format(x=x, p=places[0], y=y, q=places[1])]
    movers = rng.sample(FIRST_NAMES, n_moves)
    for m in range(n_moves):
        thing = rng.choice((x, y))
        where[thing] = places[2 + m]
        sentences.append(rng.choice(_MOVE).format(a=movers[m], x=thing, p=places[2 + m]))
    asked = rng.choice((x, y))
    answer = where[asked]
    return Episode("tracking", " ".join(sentences), f"Where is the {asked} now?", f"the {answer}",
                   tuple(f"the {p}" for p in places if p != answer))


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


FAMILIES: dict[str, Callable[[random.Random], Episode]] = {
    "binding": binding,
    "order": order,
    "copy": copy,
    "tracking": tracking,
}


def episodes(family: str, rng: random.Random, n: int, exclude: frozenset[str] = frozenset()) -> list[Episode]:
    """`n` episodes of a family with distinct stories, none of them in `exclude` (held-out stories)."""
    draw = FAMILIES[family]
    out: list[Episode] = []
    seen: set[str] = set(exclude)
    while len(out) < n:
        ep = draw(rng)
        if ep.story in seen:
            continue
        seen.add(ep.story)
        out.append(ep)
    return out
