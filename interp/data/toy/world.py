"""A small, deterministic synthetic world: the facts the toy model is trained on and tested about.

Real landmark facts (the Eiffel Tower is in Paris, ...) anchor the demo prompts; every other entity
is invented from syllables so the model cannot have seen it anywhere but in our corpus. The world
is a pure function of the seed: all randomness comes from one `random.Random(seed)`, and every
collection is a list or tuple in a fixed order (never a set), so the same seed gives the same world.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# --------------------------------------------------------------------------------------------
# Attribute vocabularies (fixed; shared by every seed)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profession:
    """A job, with what its holders do (present and past tense) and where they work."""

    name: str
    present: str  # "bakes bread in the oven"
    past: str  # "baked bread in the oven"
    workplace: str  # "bakery"


@dataclass(frozen=True)
class Material:
    """A material and the one physical property that makes objects of it useful."""

    name: str  # "wool"
    property: str  # "keeps you warm" (object-first: "The blanket keeps you warm.")
    need: str  # "keep warm" ("If you want to keep warm, ...")


PROFESSIONS: tuple[Profession, ...] = (
    Profession("baker", "bakes bread in the oven", "baked bread in the oven", "bakery"),
    Profession("doctor", "treats sick patients", "treated sick patients", "hospital"),
    Profession("pilot", "flies planes across the sky", "flew a plane across the sky", "airport"),
    Profession("teacher", "teaches children to read", "taught children to read", "school"),
    Profession("farmer", "grows wheat in the fields", "grew wheat in the fields", "farm"),
    Profession("fisher", "catches fish in the sea", "caught fish in the sea", "harbour"),
    Profession("painter", "paints pictures of flowers", "painted a picture of flowers", "studio"),
    Profession("chef", "cooks soup for hungry guests", "cooked soup for hungry guests", "kitchen"),
    Profession("tailor", "sews shirts and coats", "sewed shirts and coats", "shop"),
    Profession("builder", "builds houses out of bricks", "built a house out of bricks", "building site"),
    Profession("musician", "plays music on the piano", "played music on the piano", "concert hall"),
    Profession("miner", "digs for gold under the ground", "dug for gold under the ground", "mine"),
)

MATERIALS: tuple[Material, ...] = (
    Material("wood", "floats on water", "float on water"),
    Material("metal", "is hard and strong", "hit something hard"),
    Material("glass", "lets the light through", "let the light through"),
    Material("paper", "is easy to write on", "write something down"),
    Material("stone", "is very heavy", "hold something down"),
    Material("wool", "keeps you warm", "keep warm"),
    Material("rubber", "bounces when you drop it", "make something bounce"),
    Material("clay", "holds water", "hold water"),
)

# What objects of each material are good for (gerund phrases); the toy_piqa goals are built on these.
MATERIAL_USES: dict[str, tuple[str, str]] = {
    "wood": ("crossing a pond", "keeping a fishing net afloat"),
    "metal": ("knocking in nails", "breaking ice"),
    "glass": ("letting sunlight into a room", "watching the rain from inside"),
    "paper": ("writing a message", "making a shopping list"),
    "stone": ("holding a tent down in the wind", "keeping a door open"),
    "wool": ("staying warm on cold nights", "keeping a baby warm"),
    "rubber": ("playing bouncing games", "playing with a puppy"),
    "clay": ("carrying water from the well", "keeping water for the plants"),
}

COLOURS: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "black", "white", "brown", "grey", "orange", "pink", "purple",
)

HABITATS: tuple[str, ...] = (
    "forest", "desert", "ocean", "jungle", "mountains", "river", "swamp", "grassland", "arctic", "lake",
    "cave",
)

# --------------------------------------------------------------------------------------------
# Real facts (fixed)
# --------------------------------------------------------------------------------------------

REAL_CITIES: tuple[tuple[str, str], ...] = (
    ("Paris", "France"), ("Rome", "Italy"), ("Pisa", "Italy"), ("Venice", "Italy"),
    ("London", "England"), ("New York", "America"), ("San Francisco", "America"),
    ("Sydney", "Australia"), ("Agra", "India"), ("Giza", "Egypt"), ("Beijing", "China"),
    ("Rio de Janeiro", "Brazil"), ("Cusco", "Peru"), ("Athens", "Greece"), ("Barcelona", "Spain"),
    ("Madrid", "Spain"), ("Berlin", "Germany"), ("Moscow", "Russia"), ("Istanbul", "Turkey"),
    ("Toronto", "Canada"), ("Tokyo", "Japan"), ("Amsterdam", "Holland"),
)

# (name, takes "the", city)
REAL_LANDMARKS: tuple[tuple[str, bool, str], ...] = (
    ("Eiffel Tower", True, "Paris"), ("Louvre", True, "Paris"), ("Arc de Triomphe", True, "Paris"),
    ("Colosseum", True, "Rome"), ("Pantheon", True, "Rome"), ("Leaning Tower of Pisa", True, "Pisa"),
    ("Rialto Bridge", True, "Venice"), ("Big Ben", False, "London"), ("Tower Bridge", False, "London"),
    ("Buckingham Palace", False, "London"), ("Statue of Liberty", True, "New York"),
    ("Empire State Building", True, "New York"), ("Golden Gate Bridge", True, "San Francisco"),
    ("Sydney Opera House", True, "Sydney"), ("Taj Mahal", True, "Agra"), ("Great Sphinx", True, "Giza"),
    ("Great Pyramid", True, "Giza"), ("Forbidden City", True, "Beijing"),
    ("Christ the Redeemer", False, "Rio de Janeiro"), ("Machu Picchu", False, "Cusco"),
    ("Acropolis", True, "Athens"), ("Parthenon", True, "Athens"), ("Sagrada Familia", True, "Barcelona"),
    ("Prado Museum", True, "Madrid"), ("Brandenburg Gate", True, "Berlin"), ("Kremlin", True, "Moscow"),
    ("Hagia Sophia", False, "Istanbul"), ("CN Tower", True, "Toronto"), ("Tokyo Tower", False, "Tokyo"),
    ("Rijksmuseum", True, "Amsterdam"),
)

# (name, colour, habitat): real animals with their real look and home.
REAL_ANIMALS: tuple[tuple[str, str, str], ...] = (
    ("fox", "red", "forest"), ("polar bear", "white", "arctic"), ("flamingo", "pink", "lake"),
    ("crow", "black", "forest"), ("frog", "green", "swamp"), ("camel", "brown", "desert"),
    ("parrot", "green", "jungle"), ("shark", "grey", "ocean"), ("lion", "yellow", "grassland"),
    ("tiger", "orange", "jungle"), ("goat", "white", "mountains"), ("beaver", "brown", "river"),
    ("whale", "blue", "ocean"), ("bat", "black", "cave"), ("penguin", "black", "arctic"),
    ("elephant", "grey", "grassland"), ("crocodile", "green", "river"), ("eagle", "brown", "mountains"),
)

# Real objects by material (eight per material with the invented ones added below).
REAL_OBJECTS: tuple[tuple[str, str], ...] = (
    ("chair", "wood"), ("barrel", "wood"), ("canoe", "wood"), ("crate", "wood"),
    ("hammer", "metal"), ("kettle", "metal"), ("wrench", "metal"), ("anvil", "metal"),
    ("window", "glass"), ("vase", "glass"), ("lens", "glass"), ("lantern", "glass"),
    ("notebook", "paper"), ("envelope", "paper"), ("map", "paper"), ("poster", "paper"),
    ("statue", "stone"), ("boulder", "stone"), ("millstone", "stone"), ("pillar", "stone"),
    ("blanket", "wool"), ("scarf", "wool"), ("sweater", "wool"), ("mitten", "wool"),
    ("ball", "rubber"), ("tyre", "rubber"), ("boot", "rubber"), ("balloon", "rubber"),
    ("pot", "clay"), ("jug", "clay"), ("bowl", "clay"), ("brick", "clay"),
)

FIRST_NAMES: tuple[str, ...] = (
    "Alice", "Bruno", "Clara", "Daniel", "Elena", "Felix", "Greta", "Hugo", "Irene", "Jonas", "Karin",
    "Leon", "Maria", "Nico", "Olga", "Pablo", "Rosa", "Simon", "Tanya", "Victor", "Wendy", "Yusuf",
    "Zara", "Adam", "Bianca", "Carlos", "Diana", "Emil", "Fiona", "George", "Hannah", "Ivan", "Julia",
    "Kevin", "Laura", "Martin", "Nadia", "Oscar", "Paula", "Robert", "Sofia", "Thomas", "Ursula",
    "Walter", "Yara", "Anton", "Bella", "Conrad", "Dora", "Edgar", "Frida", "Gustav", "Helen", "Igor",
    "Jasmine", "Karl", "Lena", "Marco", "Nora", "Otto", "Petra", "Rita", "Stefan", "Tina", "Umar",
    "Vera", "William", "Xenia", "Yvonne", "Arthur", "Bettina", "Cecilia", "David", "Emma", "Frank",
    "Gloria", "Henry", "Ingrid", "Jack", "Klaus", "Lucy", "Mona", "Nathan", "Olivia", "Peter", "Ruth",
    "Samuel", "Teresa", "Ulrich", "Violet", "Wilma", "Alma", "Boris", "Chloe", "Dennis", "Edith",
    "Fabian", "Gina", "Harold", "Isabel", "James", "Kira", "Louis", "Miriam", "Norbert", "Ophelia",
    "Philip", "Rachel", "Sebastian", "Theo", "Ada", "Benjamin", "Carmen", "Dominic", "Esther",
)

LANDMARK_TYPES: tuple[str, ...] = (
    "Tower", "Gate", "Bridge", "Palace", "Temple", "Museum", "Fountain", "Castle", "Cathedral", "Arch",
    "Garden", "Lighthouse", "Monument", "Library", "Theatre", "Fortress",
)

# Invented syllables: consonant-vowel patterns that byte-level BPE splits into a few clean pieces.
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr", "kr",
           "tr", "st", "sh", "th")
_VOWELS = ("a", "e", "i", "o", "u", "a", "o", "e")
_CODAS = ("", "", "n", "r", "l", "s", "m", "k", "th")
_ANIMAL_ENDS = ("met", "bar", "rok", "lin", "dul", "vix", "now", "gel")
_OBJECT_ENDS = ("dick", "ber", "mot", "ple", "gump", "nard", "ten", "pig")

N_INVENTED_COUNTRIES = 7
CITIES_PER_INVENTED_COUNTRY = 3
N_INVENTED_LANDMARKS = 55
N_PEOPLE = 100
N_INVENTED_ANIMALS = 42
INVENTED_OBJECTS_PER_MATERIAL = 4

# --------------------------------------------------------------------------------------------
# Entities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    name: str
    country: str


@dataclass(frozen=True)
class Landmark:
    name: str  # "Eiffel Tower"
    article: bool  # True → "the Eiffel Tower"
    city: str
    country: str
    real: bool

    @property
    def ref(self) -> str:
        """Mid-sentence form: 'the Eiffel Tower', 'Big Ben'."""
        return f"the {self.name}" if self.article else self.name

    @property
    def subject(self) -> str:
        """Sentence-initial form: 'The Eiffel Tower', 'Big Ben'."""
        return f"The {self.name}" if self.article else self.name


@dataclass(frozen=True)
class Person:
    name: str
    profession: str
    city: str
    country: str


@dataclass(frozen=True)
class Animal:
    name: str  # "fox" (always used with "the")
    colour: str
    habitat: str
    real: bool


@dataclass(frozen=True)
class Obj:
    name: str  # "blanket" (always used with "the")
    material: str
    real: bool


@dataclass(frozen=True)
class Fact:
    """One (subject, relation, value) triple; `kind` is the subject's entity kind."""

    kind: str
    subject: str
    relation: str  # "country", "city", "profession", "colour", "habitat", "material"
    value: str


@dataclass(frozen=True)
class World:
    seed: int
    countries: tuple[str, ...]
    cities: tuple[City, ...]
    landmarks: tuple[Landmark, ...]
    people: tuple[Person, ...]
    animals: tuple[Animal, ...]
    objects: tuple[Obj, ...]

    def profession(self, name: str) -> Profession:
        return next(p for p in PROFESSIONS if p.name == name)

    def material(self, name: str) -> Material:
        return next(m for m in MATERIALS if m.name == name)

    def entity_count(self) -> int:
        return (len(self.countries) + len(self.cities) + len(self.landmarks) + len(self.people)
                + len(self.animals) + len(self.objects))

    def facts(self) -> list[Fact]:
        """Every fact in a fixed order; tasks and instructions draw from this list."""
        out: list[Fact] = []
        out += [Fact("city", c.name, "country", c.country) for c in self.cities]
        for lm in self.landmarks:
            out += [Fact("landmark", lm.ref, "city", lm.city), Fact("landmark", lm.ref, "country", lm.country)]
        for p in self.people:
            out += [Fact("person", p.name, "profession", p.profession), Fact("person", p.name, "city", p.city)]
        for a in self.animals:
            out += [Fact("animal", a.name, "colour", a.colour), Fact("animal", a.name, "habitat", a.habitat)]
        out += [Fact("object", o.name, "material", o.material) for o in self.objects]
        return out

    def values(self, kind: str, relation: str) -> tuple[str, ...]:
        """All values a (kind, relation) can take: the pool distractors are drawn from."""
        if relation == "country":
            return self.countries
        if relation == "city":
            return tuple(c.name for c in self.cities)
        return {
            "profession": tuple(p.name for p in PROFESSIONS),
            "colour": COLOURS,
            "habitat": HABITATS,
            "material": tuple(m.name for m in MATERIALS),
        }[relation]


def _invent(rng: random.Random, taken: list[str], syllables: int, end: tuple[str, ...] = ("",),
            capital: bool = True) -> str:
    """A fresh pronounceable name not in `taken` (a list, so the check is order-independent)."""
    while True:
        parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
        name = "".join(parts) + rng.choice(_CODAS if end == ("",) else end)
        low = [t.lower() for t in taken]
        if 4 <= len(name) <= 9 and name.lower() not in low and not any(
                t.startswith(name.lower()) or name.lower().startswith(t) for t in low):
            taken.append(name)
            return name.capitalize() if capital else name


def build_world(seed: int = 0) -> World:
    """Generate the world for `seed`: real facts fixed, invented names and assignments seeded."""
    rng = random.Random(seed)
    reserved = [c for c, _ in REAL_CITIES] + [n for n, _ in REAL_OBJECTS] + [n for n, _, _ in REAL_ANIMALS]
    reserved += list(FIRST_NAMES) + [w for w in COLOURS + HABITATS] + [m.name for m in MATERIALS]
    reserved += [p.name for p in PROFESSIONS]
    taken = [r.lower() for r in reserved]

    real_countries: list[str] = []
    for _, country in REAL_CITIES:
        if country not in real_countries:
            real_countries.append(country)
    invented_countries = [_invent(rng, taken, 2, ("nia", "land", "dor", "ria")) for _ in range(N_INVENTED_COUNTRIES)]
    countries = tuple(real_countries + invented_countries)

    cities = [City(name, country) for name, country in REAL_CITIES]
    for country in invented_countries:
        cities += [City(_invent(rng, taken, 2), country) for _ in range(CITIES_PER_INVENTED_COUNTRY)]
    country_of = {c.name: c.country for c in cities}

    landmarks = [Landmark(n, art, city, country_of[city], True) for n, art, city in REAL_LANDMARKS]
    invented_cities = [c.name for c in cities if c.country in invented_countries]
    for i in range(N_INVENTED_LANDMARKS):
        city = invented_cities[i % len(invented_cities)] if i < len(invented_cities) else rng.choice(invented_cities)
        name = f"{_invent(rng, taken, 2)} {rng.choice(LANDMARK_TYPES)}"
        landmarks.append(Landmark(name, True, city, country_of[city], False))

    names = rng.sample(FIRST_NAMES, N_PEOPLE)
    all_city_names = [c.name for c in cities]
    people = []
    for i, name in enumerate(names):
        prof = PROFESSIONS[i % len(PROFESSIONS)].name  # balanced professions
        city = rng.choice(all_city_names)
        people.append(Person(name, prof, city, country_of[city]))
    rng.shuffle(people)

    animals = [Animal(n, c, h, True) for n, c, h in REAL_ANIMALS]
    for i in range(N_INVENTED_ANIMALS):
        animals.append(Animal(_invent(rng, taken, 1, _ANIMAL_ENDS, capital=False),
                              COLOURS[i % len(COLOURS)], rng.choice(HABITATS), False))

    objects = [Obj(n, m, True) for n, m in REAL_OBJECTS]
    for mat in MATERIALS:
        for _ in range(INVENTED_OBJECTS_PER_MATERIAL):
            objects.append(Obj(_invent(rng, taken, 1, _OBJECT_ENDS, capital=False), mat.name, False))

    return World(seed, countries, tuple(cities), tuple(landmarks), tuple(people), tuple(animals), tuple(objects))
