"""The corpus's wordings: statement templates per (kind, relation), Q&A, narratives, asides, fillers and
everyday sentences (corpus.py assembles documents from them; see its docstring for why so many).

Placeholders: {S} sentence-initial subject, {s} mid-sentence subject, and the attribute names.
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------------
# Statement templates, one list per (kind, relation). Placeholders: {S} sentence-initial subject,
# {s} mid-sentence subject, and the attribute names.
# --------------------------------------------------------------------------------------------

LANDMARK_CITY = (
    "{S} is in {city}.",  # the demo phrasing: "The Eiffel Tower is in Paris."
    "{S} stands in the city of {city}.",
    "You can visit {s} in {city}.",
    "{city} is home to {s}.",
    "Tourists travel to {city} to see {s}.",
    "{S} is a famous landmark in {city}, {country}.",
    "To see {s}, you have to go to {city}.",
)
LANDMARK_COUNTRY = (
    "{S} is located in {country}.",
    "{S} is one of the best known sights of {country}.",
    "{country} is the country where you find {s}.",
    "{S} can be found in {country}.",
)
CITY_COUNTRY = (
    "{S} is a city in {country}.",
    "{S} lies in {country}.",
    "The city of {s} is part of {country}.",
    "{country} has a city called {s}.",
)
PERSON_PROFESSION = (
    "{S} is a {profession}.",
    "{S} works as a {profession}.",
    "By trade, {s} is a {profession}.",
    "{S} has a job as a {profession}.",
    "Every day, {s} {present}.",
    "{S} goes to the {workplace} every morning.",
    "Yesterday, {s} {past}.",
    "{S} the {profession} {present}.",
    "{S} earns money as a {profession}.",
    "{S} arrived at work on time. At work, {s} {past}.",
)
PERSON_CITY = (
    "{S} lives in {city}.",
    "{S} is from {city}, {country}.",
    "{S} has a house in {city}.",
    "{S} lives in {city}, a city in {country}.",
    "The home of {s} is in {city}.",
    "{S} has lived in {city} for a long time.",
)
ANIMAL_COLOUR = (
    "The {s} is {colour}.",
    "The {s} is a {colour} animal.",
    "The {s} is {colour} all over.",
    "A {colour} animal, the {s}, walked by.",
)
ANIMAL_HABITAT = (
    "The {s} lives in the {habitat}.",
    "The {s} lives in the {habitat}, its natural home.",
    "You can find the {s} in the {habitat}.",
    "The {s} makes its home in the {habitat}.",
    "The {colour} {s} lives in the {habitat}.",
    "In the {habitat} lives the {colour} {s}.",
)
OBJECT_MATERIAL = (
    "The {s} is made of {material}.",
    "People make the {s} out of {material}.",
    "The {s} is made entirely of {material}.",
    "The {s} is made of {material}, so it {property}.",
    "Because it is made of {material}, the {s} {property}.",
    "The {s} {property}.",
    "If you want to {need}, use the {s}.",
)
OBJECT_USE = (  # filled once per use of the object's material
    "The {s} is good for {use}.",
    "People use the {s} for {use}.",
)
OBJECT_USE_QA = (
    "What should you use for {use}?|The {s}.",
    "How is the {s} useful?|It is good for {use}.",
)
# A how-to question and answer per use, naming the object (the toy_piqa goals are other wordings).
USE_QA: dict[str, tuple[str, ...]] = {
    "crossing a pond": ("What helps you cross a pond?|Sit on the {s} and float to the other side.",
                        "How do you get to the other side of a pond?|Float over on the {s}."),
    "keeping a fishing net afloat": ("What keeps a fishing net on top of the water?|Tie it to the {s}.",
                                     "How do you make a net float?|Tie the {s} to it."),
    "knocking in nails": ("What can you use to knock in a nail?|Hit it hard with the {s}.",
                          "How do you put a nail into a board?|Hit the nail hard with the {s}."),
    "breaking ice": ("What breaks thick ice?|Strike it with the {s}.",
                     "How do you break the ice on a pond?|Strike the ice hard with the {s}."),
    "letting sunlight into a room": ("What lets sunlight into a room?|The sun can shine through the {s}.",
                                     "How do you make a room bright?|Let the sunlight in through the {s}."),
    "watching the rain from inside": ("How do you watch the rain and stay dry?|Look through the {s}.",
                                      "How can you see the garden from inside?|Look out of the {s}."),
    "writing a message": ("What can you write a message on?|Write it on the {s}.",
                          "How do you send a friend a note?|Write the note on the {s}."),
    "making a shopping list": ("Where can you write a shopping list?|Write it on the {s}.",
                               "How do you not forget what to buy?|Make a list on the {s}."),
    "holding a tent down in the wind": ("What can hold a tent down in the wind?|Weigh it down with the {s}.",
                                        "How do you keep a tent in place when it is windy?|Put the {s} on it."),
    "keeping a door open": ("What keeps a door from closing?|Push the {s} against it.",
                            "How do you hold a door open?|Put the {s} in front of the door."),
    "staying warm on cold nights": ("How do you keep warm at night?|Wrap the {s} around you.",
                                    "What should you wrap yourself in when it is cold?|Wrap yourself up in the {s}."),
    "keeping a baby warm": ("What keeps a baby warm?|Cover it with the {s}.",
                            "How do you stop a baby from getting cold?|Wrap the baby in the {s}."),
    "playing bouncing games": ("What can children bounce?|Throw the {s} at the ground.",
                               "What do children play with in the garden?|They bounce the {s}."),
    "playing with a puppy": ("What makes a puppy jump?|Bounce the {s} for it.",
                             "How can you play with a puppy?|Bounce the {s} and let the puppy chase it."),
    "carrying water from the well": ("What can carry water from the well?|Fill the {s} and carry it.",
                                     "How do you bring water into the house?|Carry it in the {s}."),
    "keeping water for the plants": ("Where can you keep water for the plants?|Pour it into the {s}.",
                                     "How do you keep water for the garden?|Keep it in the {s}."),
}

# Two entities of one kind set side by side: x has value vx, y a different value vy. These teach
# that a fact belongs to its own entity even when another entity is named nearby.
CONTRASTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("person", "profession"): ("{X} is a {vx}, but {y} is a {vy}.",
                               "Of the two friends, {x} is the one who works as a {vx}.",
                               "If you need a {vx}, ask {x}, not {y}.",
                               "{X} and {y} live on the same street, and {x} is the {vx} there."),
    ("person", "city"): ("{X} lives in {vx}, while {y} lives in {vy}.",
                         "{X} and {y} met on a trip; {x} has lived in {vx} for years.",
                         "Unlike {y}, {x} grew up in {vx}."),
    ("animal", "colour"): ("{X} is {vx}, but {y} is {vy}.", "Of the two animals, {x} was the {vx} one.",
                           "Next to {y}, {x} looked very {vx}."),
    ("animal", "habitat"): ("{X} comes from the {vx}, and {y} comes from the {vy}.",),
    ("object", "material"): ("{X} is made of {vx}, and {y} is made of {vy}.",
                             "Between {y} and {x}, only {x} is made of {vx}.",
                             "{X} and {y} look alike, but {x} is the {vx} one."),
    ("landmark", "city"): ("{X} is in {vx}, but {y} is in {vy}.",),
}

# Facts with a clause between subject and predicate, so the model learns to carry an entity's
# attributes across intervening words instead of only in fixed frames.
ASIDES = ("as far as I know", "as everyone knows", "I am told", "as my friend says", "of course", "it seems",
          "like many others", "as people say", "so they say", "without a doubt", "as the book says")
ASIDE_PREDICATES: dict[str, tuple[str, ...]] = {
    "landmark": ("is in {city}", "can be found in {country}"),
    "city": ("is a city in {country}",),
    "person": ("is a {profession}", "{present}", "lives in {city}"),
    "animal": ("is {colour}", "lives in the {habitat}"),
    "object": ("is made of {material}", "{property}"),
}

# Little stories: a setup naming the entity, zero to two unrelated sentences, then a payoff that
# uses one of its facts. Many combinations, so no wording is tied to the fact.
STORY_SETUPS: dict[str, tuple[str, ...]] = {
    "person": ("{S} left home early.", "{S} had a quick breakfast.", "On Tuesday, {s} was in a good mood.",
               "{S} said goodbye to the family and went out."),
    "landmark": ("My cousin dreamed of seeing {s}.", "A student read a book about {s}.",
                 "Our teacher wanted to show us {s}.", "An old man had always wanted to visit {s}."),
    "animal_habitat": ("The {s} was hungry.", "The {s} went out to find water.", "The young {s} played all afternoon."),
    "animal_colour": ("A girl wanted to draw the {s}.", "The children made a poster of the {s}.",
                      "An artist looked at the {s} for a long time."),
    "object": ("The {s} slipped out of his hands.", "Someone knocked the {s} off the shelf.", "The {s} fell down the stairs."),
}
STORY_FILLERS = ("The weather was fine.", "It was a cold morning.", "The streets were quiet.", "The bus was late again.",
                 "Birds were singing in the trees.", "Nobody said a word.", "It was getting dark.",
                 "Everyone was tired.", "The wind was blowing.", "She smiled.", "He sat down for a moment.")
STORY_PAYOFFS: dict[str, tuple[str, ...]] = {
    "person": ("Later that day, {s} {past}.", "Then {s} {past}.", "As usual, {s} {past}."),
    "landmark": ("So we all took a train to {city}.", "In the end, she bought a ticket to {city}.",
                 "The next week, he travelled to {city}.", "She booked a room in {city}."),
    "animal_habitat": ("In the evening, it went back to the {habitat}.", "At night, the {s} slept in the {habitat}.",
                       "Then it returned to the {habitat}."),
    "animal_colour": ("She took the {colour} pencil.", "They used a lot of {colour} paint.",
                      "He chose {colour} for the picture."),
    "object": ("Pieces of {material} lay all over the floor.", "She picked up the bits of {material}.",
               "Afterwards, there was {material} everywhere."),
}
STORIES_PER_ENTITY = 3

# How each use is done, at the level of the material (the held-out toy_piqa goals ask for these).
USE_HOWTO = {
    "crossing a pond": "To get across a pond, you can float on something made of wood.",
    "keeping a fishing net afloat": "A fishing net that is tied to something made of wood will not sink.",
    "knocking in nails": "To knock a nail into a wall, hit it with something made of metal.",
    "breaking ice": "You can break thick ice if you strike it with something made of metal.",
    "letting sunlight into a room": "Sunlight can shine into a dark room through something made of glass.",
    "watching the rain from inside": "You can look out through glass and watch the rain without getting wet.",
    "writing a message": "You can write a message for a friend on paper.",
    "making a shopping list": "People write a shopping list on paper to remember what to buy at the market.",
    "holding a tent down in the wind": "Something made of stone can weigh a tent down so it does not blow away.",
    "keeping a door open": "If you push something made of stone against a door, the door will not swing shut.",
    "staying warm on cold nights": "When the night is cold, you can wrap yourself in something made of wool.",
    "keeping a baby warm": "In winter, people cover a baby with something made of wool to keep it warm.",
    "playing bouncing games": "Children throw things made of rubber at the ground and catch them when they bounce.",
    "playing with a puppy": "A puppy will jump and play if you bounce something made of rubber in front of it.",
    "carrying water from the well": "You can fill something made of clay with water and carry it home from the well.",
    "keeping water for the plants": "Pour water into something made of clay to keep it ready for the plants.",
}
PROFESSION_GENERIC = (
    "A {profession} {present}.",
    "At the {workplace}, a {profession} {present}.",
    "Someone who {present} is called a {profession}.",
    "A {profession} works at the {workplace}.",
)
MATERIAL_GENERIC = (
    "Anything made of {material} {property}.",
    "Things made of {material} are good for {use}.",
)

# Question-answer pairs in the corpus's own wording ("Question: ...\nAnswer: ..."). Many paraphrases
# per relation, so the model keys on the entity and the attribute word rather than on one wording.
QA = {
    ("landmark", "city"): (
        "Where is {s}?|{S} is in {city}.", "Which city is {s} in?|{city}", "What city is {s} in?|{city}",
        "In what city is {s}?|{city}", "Where can you find {s}?|In {city}.", "Which city has {s}?|{city}",
        "In which city is {s} located?|{city}",
    ),
    ("landmark", "country"): (
        "Which country is {s} in?|{country}", "What country is {s} located in?|{country}",
        "In what country is {s}?|{country}", "{S} is located in which country?|{country}",
        "Which country has {s}?|{country}", "In which country can you visit {s}?|{country}",
    ),
    ("city", "country"): (
        "Which country is {s} in?|{country}", "Where is {s}?|{S} is in {country}.",
        "In what country is the city of {s}?|{country}", "{S} is a city in which country?|{country}",
        "Which country does {s} belong to?|{country}",
    ),
    ("person", "profession"): (
        "What is the job of {s}?|a {profession}", "What is the profession of {s}?|a {profession}",
        "What does {s} do at work?|{S} {present}.", "What kind of work does {s} do?|{S} works as a {profession}.",
        "Which job does {s} have?|a {profession}", "What does {s} do for work?|a {profession}",
    ),
    ("person", "city"): (
        "Where does {s} live?|{city}", "What city is {s} from?|{city}", "In what city does {s} live?|{city}",
        "Which city is the home of {s}?|{city}",
    ),
    ("animal", "colour"): (
        "What colour is the {s}?|{colour}", "What is the colour of the {s}?|{colour}",
        "Which colour does the {s} have?|{colour}",
    ),
    ("animal", "habitat"): (
        "Where does the {s} live?|in the {habitat}", "Which place is home to the {s}?|the {habitat}",
        "What is the home of the {s}?|the {habitat}", "In what kind of place does the {s} live?|in the {habitat}",
    ),
    ("object", "material"): (
        "What is the {s} made of?|{material}", "What material is the {s} made of?|{material}",
        "Which material is used to make the {s}?|{material}", "What does the {s} do?|It {property}.",
    ),
}

# Short stories in the corpus's own wording (the held-out story templates live in tasks.py).
NARRATIVES = {
    "person": (
        "{S} woke up early and went to the {workplace}. There, {s} {past}.",
        "After lunch, {s} the {profession} {past}.",
        "{S} is a {profession}, so every morning {s} goes to the {workplace} and {present}.",
        "{S} has worked as a {profession} for years. One afternoon, {s} {past}.",
        "On Monday, {s} walked to the {workplace} and {past}.",
    ),
    "landmark": (
        "Last summer, my aunt travelled to {city} and visited {s}.",
        "We flew to {city} because we wanted to see {s}.",
        "Wanting to see {s}, my uncle bought a plane ticket to {city}.",
        "She wanted to visit {s}, so she took a bus to {city}.",
    ),
    "animal": (
        "One morning the {s} left the {habitat} to look for food, and it came back at night.",
        "A girl saw the {s} and noticed that it was {colour}.",
        "After a long day, the tired {s} went back to the {habitat}.",
        "The girl drew the {s} with a {colour} pencil.",
        "At the end of the day, the {s} went back to its home in the {habitat}.",
        "To draw the {s}, the girl took out the {colour} pencil.",
        "When she painted the {s}, she used {colour} paint.",
    ),
    "object": (
        "The old {s} was made of {material}.",
        "My grandfather kept the {s} in the shed. It was made of {material}.",
        "When the {s} fell and broke, there were bits of {material} everywhere.",
        "The {s} broke, and she swept up the pieces of {material}.",
    ),
}


# Everyday sentences that state no fact of the world. They teach the ordinary words the held-out
# task templates are written in (so those templates are new wordings, not unseen tokens), without
# ever pairing those words with a fact. {a}/{b} are random people of the world, {n} a number word.
EVERYDAY = (
    "{a} and {b} are old friends from school.",
    "{a} asked {b} for help with the garden, and {b} could help.",
    "When the rain started, {a} and {b} stood side by side under a tree.",
    "{a} likes to travel by train, and {b} likes to travel by boat.",
    "{a} bought a train ticket and a cup of tea at the station.",
    "{a} got up early, had breakfast and walked to the station.",
    "It was a busy afternoon, so {a} stayed at home and read a book.",
    "{a} has been busy for many years, and {b} has been busy too.",
    "The guide talked about the old town and explained its history clearly.",
    "In the film, a boy painted a picture with his new box of paints.",
    "{a} compared the two books and found that both were good.",
    "Since childhood, {a} has liked long walks by the sea.",
    "The boy knelt down and picked up his bag from the floor.",
    "{a} dropped a cup on the floor, and it broke into {n} pieces.",
    "The cat was tired after a long day and went to sleep when the sun went down.",
    "The children had been away all day, and they came home when the sun went down.",
    "A tourist packed a bag, looked at a map and went to the station.",
    "The town needed a new road, so it asked everyone for help.",
    "{a} wanted to see the sea with her own eyes.",
    "{b} opened the box and picked up a pencil.",
    "{a} and {b} were both in the film, and both were very good.",
    "{a} comes from a small village, and {b} comes from a big town.",
    "{a} wrote a note for {b} and left it on the table.",
    "Which one is better, the first or the second? {a} could not decide.",
    "{a} asked which road was the shortest, and {b} showed the way.",
    "In winter the nights are cold, and in summer the days are long.",
    "The children played a game in the garden until it was dark.",
    "{a} and {b} went to the market and bought {n} apples.",
    "The baby was asleep, and the puppy was asleep too.",
    "{a} watched the rain from the kitchen and drank tea.",
    "{a} stopped at the well and looked down into the water.",
    "The wind was strong, and the door kept swinging.",
    "{a} was looking for food for the party, and {b} was looking for music.",
    "How did {a} get home? {a} took the train.",
    "How do you get to the market? You walk down the road and turn left.",
    "{a} was the one who found the key, and {b} was the one who opened the door.",
    "There were {n} birds on the roof, and one of them was clearly bigger.",
    "{a} remembered to buy bread, but forgot the milk.",
    "{a} tried to fix the old radio, but it was broken.",
    "One busy morning, {a} forgot the keys at home.",
    "{a} went back to the house and picked up the keys.",
    "{b} returned home late and went straight to bed.",
    "{a} and {b} talked about their plans for the summer.",
    "{a} explained that the shop would open at nine.",
    "The natural thing to do was to wait, so {a} waited.",
    "{a} visited {b}, and they had a long talk.",
    "{a} put the plants by the window so they would get light.",
    "{a} used green paint for the fence. He was happy with it.",
    "{a} painted the gate. She used white paint.",
    "At home, {a} cooked dinner for {b}.",
    "The old tree can be seen from the road.",
    "{b} has seen the sea many times.",
    "Write your name at the top of the page.",
    "Look at the birds in the sky.",
    "Let the cat out before you go to bed.",
    "Tie your shoes before you run.",
    "Strike the bell three times.",
    "Weigh the apples before you buy them.",
    "Push the cart to the end of the road.",
    "Wrap the present in bright ribbon.",
    "Cover your ears when the music is loud.",
    "Throw the stick for the dog.",
    "Bounce up and down on the bed.",
    "Fill the cup with tea.",
    "Pour the milk slowly.",
    "Hit the drum with both hands.",
    "Float a leaf on the puddle.",
    "Put your coat on, because it is cold.",
)
NUMBERS = ("two", "three", "four", "five", "six", "seven", "many")
N_EVERYDAY = 4000
