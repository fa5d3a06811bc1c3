"""Build the bundled instruction set: assets/instruct/{train,validation,test}.jsonl.

    python assets/make_instruct.py          # rewrites the three files (seeded: same output every time)

Four tasks with answers a program can check:
  extraction  a sentence about a person -> "name: ...\ncity: ...\nage: ..." (YAML)   (exact match)
  sentiment   a product review -> positive | negative | neutral                    (accuracy, P/R/F1)
  qa          a short context and a question -> a span of the context             (exact match, F1)
  transform   sort words / reformat a date / upper-case a phrase                   (exact match)

Rows are conversational prompt/completion (TRL's format), plus three fields the trainer ignores:
  {"prompt": [{"role": "user", "content": ...}], "completion": [{"role": "assistant", "content": ...}],
   "task": "extraction", "template": "extraction/s3/i1", "entities": ["Ana Ruiz", "Lisbon"]}

Honest held-out splits: every pool below is cut in two — training rows draw from the first part,
validation and test rows from the second — for the instruction phrasings, the sentence templates
and the entities (names, cities, products, places, words). The extraction task's test split has a
third part of its own (TEST_* pools: sentence shapes, instruction phrasings, names and cities used
in neither training nor validation) and its own seed (TEST_SEED). It was written after the presets'
settings were fixed, which were chosen by looking at validation rows and at the earlier test rows; so
no setting was chosen on these test rows (benchmarks/presets.py scores them). tests/test_sft_data.py
asserts that no held-out template id is used in training, no held-out entity appears in any training
row, and the extraction test split shares no template or entity with validation either.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 1234
TEST_SEED = 20261202  # the extraction test rows' own generator (the fresh split, see the docstring)
FRESH_TEST = {"extraction"}  # tasks whose test split draws from TEST_* pools, not from the held-out ones
OUT = Path(__file__).resolve().parent / "instruct"
SIZES = {  # rows per task: train, validation, test
    "extraction": (360, 20, 60),
    "sentiment": (90, 15, 45),
    "qa": (70, 15, 30),
    "transform": (80, 15, 30),
}

# --------------------------------------------------------------------------- extraction
# Entity pools: TRAIN_* for training rows, HELD_* for validation and test rows (disjoint).
TRAIN_FIRST = ["Ana", "Marco", "Lena", "Tomas", "Priya", "Jonas", "Sofia", "Kenji", "Amara", "Lucas", "Ingrid",
               "Omar", "Clara", "Mateo", "Yara", "Felix", "Nadia", "Victor", "Elena", "Rafael", "Hana", "Oskar",
               "Leila", "Bruno", "Mira", "Dmitri", "Carmen", "Ravi", "Greta", "Samuel", "Alba", "Bjorn", "Chiara",
               "Dev", "Esme", "Farid", "Gael", "Hiro", "Isla", "Joao", "Kira", "Luca", "Maya", "Nils", "Orla",
               "Paz", "Quentin", "Rhea", "Sven", "Talia", "Uma", "Vera", "Wim", "Ximena", "Yusuf", "Zoe", "Arvid",
               "Bea", "Cyrus", "Dalia", "Eero", "Fatima", "Goran", "Hedda", "Ivo", "Juno", "Karim", "Lotte",
               "Malik", "Nina",
              "Aiko", "Bram", "Celeste", "Dina", "Enzo", "Flora", "Gideon", "Helga", "Imre", "Jasmin", "Kofi",
              "Liesel", "Marta", "Nuno", "Ottilie", "Pedro", "Renata", "Stellan", "Tove", "Ugo", "Valentina",
              "Wendell", "Yannick", "Zora", "Adele", "Boris", "Camille", "Diego", "Elif", "Florin", "Gwen",
              "Hamid", "Ilse", "Jorge", "Katya", "Lars", "Magnus", "Nadine", "Otto", "Petra", "Rune",
              "Saskia", "Theo", "Ulla", "Vito", "Wanda", "Yves", "Zeno", "Aziz", "Bianca", "Cosmin", "Daria",
              "Emre", "Fiona", "Gustav", "Hector", "Iris", "Jana", "Kasper", "Livia"]
HELD_FIRST = ["Ines", "Tariq", "Freya", "Emil", "Zainab", "Hugo", "Noor", "Anton", "Lucia", "Kwame", "Astrid",
              "Pablo", "Selin", "Jakob", "Mei", "Dario", "Olga", "Idris", "Rosa", "Viktor"]
TRAIN_LAST = ["Ruiz", "Bianchi", "Novak", "Silva", "Sharma", "Berg", "Costa", "Tanaka", "Okafor", "Moreau",
              "Larsen", "Haddad", "Fischer", "Vargas", "Nilsson", "Kowalski", "Petrov", "Duarte", "Rossi",
              "Mendes", "Sato", "Keller", "Farouk", "Lindqvist", "Romero", "Ivanova", "Quinn", "Patel", "Schmidt",
              "Alves", "Abbott", "Barros", "Cruz", "Dahl", "Ekstrom", "Fontaine", "Galvez", "Hoffman", "Iqbal",
              "Jovanovic", "Kim", "Lopes", "Mazur", "Nakamura", "Oyelaran", "Pires", "Reyes", "Salo", "Toth",
              "Uddin", "Varga", "Wolff", "Xu", "Yilmaz", "Zeller", "Aguilar", "Bauer", "Conti", "Diallo", "Engel",
              "Fonseca", "Grant", "Ikeda", "Juarez", "Koch", "Laine", "Marin", "Ng", "Owusu",
              "Albers", "Bergstrom", "Carvalho", "Delgado", "Esposito", "Falk", "Gallo", "Hartmann",
              "Ibrahim", "Jensen", "Kovac", "Lambert", "Meyer", "Nowak", "Olsen", "Pereira", "Ramos",
              "Santos", "Tamura", "Ulrich", "Vidal", "Wagner", "Yoshida", "Zamora", "Amato", "Brooks",
              "Castro", "Dimitrov", "Evans", "Ferrari", "Gomez", "Hughes", "Ionescu", "Jaramillo", "Kraus",
              "Lombardi", "Molina", "Nieminen", "Ozturk", "Popescu", "Richter", "Serrano", "Thorsen",
              "Urquhart", "Vogel", "Walsh", "Yamada", "Zielinski", "Arslan", "Becker", "Cardoso", "Dumas",
              "Eklund", "Fuchs", "Greco", "Hale", "Ito", "Jung", "Kuznetsov", "Leclerc"]
HELD_LAST = ["Moretti", "Achebe", "Horvath", "Eriksen", "Castillo", "Yamamoto", "Dubois", "Mensah", "Kaur",
             "Brandt", "Navarro", "Sokolov", "Lund", "Ferreira", "Adeyemi", "Weber", "Takahashi", "Ortiz",
             "Jansen", "Hakimi"]
TRAIN_CITY = ["Lisbon", "Turin", "Prague", "Porto", "Pune", "Bergen", "Valencia", "Osaka", "Lagos", "Lyon",
              "Aarhus", "Beirut", "Munich", "Bogota", "Uppsala", "Krakow", "Sofia", "Seville", "Naples", "Recife",
              "Kyoto", "Zurich", "Cairo", "Tampere", "Antwerp", "Basel", "Cadiz", "Dresden", "Espoo", "Faro",
              "Gdansk", "Haifa", "Izmir", "Jena", "Kobe", "Leipzig", "Malaga", "Nantes", "Odense", "Padua",
              "Quebec", "Rennes", "Salzburg", "Toulouse", "Utrecht", "Verona", "Wroclaw", "Xalapa", "York",
              "Zagreb", "Arles", "Bremen", "Cusco", "Durban", "Eindhoven", "Fukuoka", "Geneva", "Hobart",
              "Jaipur", "Kazan", "Lucerne", "Mombasa", "Nimes",
              "Aachen", "Bordeaux", "Coimbra", "Dijon", "Essen", "Florence", "Granada", "Hamburg",
              "Innsbruck", "Jerez", "Kassel", "Linz", "Marseille", "Nuremberg", "Oviedo", "Palermo",
              "Regensburg", "Stuttgart", "Trieste", "Uppland", "Vigo", "Weimar", "Bari", "Brno", "Bruges",
              "Cologne", "Dortmund", "Genoa", "Gothenburg", "Hanover", "Heidelberg", "Lausanne", "Liverpool",
              "Lodz", "Lublin", "Luxor", "Madras", "Manila", "Medellin", "Montreal", "Mumbai", "Nairobi",
              "Ottawa", "Oxford", "Pisa", "Poznan", "Rabat", "Rotterdam", "Santiago", "Seattle", "Sendai",
              "Sevastopol", "Tangier", "Tartu", "Tbilisi", "Toledo", "Tucson", "Turku", "Vilnius", "Winnipeg"]
HELD_CITY = ["Dublin", "Ghent", "Tallinn", "Accra", "Leeds", "Nagoya", "Quito", "Riga", "Malmo", "Bilbao",
             "Graz", "Kumasi", "Hanoi", "Lille", "Perth", "Split", "Oslo", "Cork"]
# Test-only pools of the extraction task (the fresh test split): none appears in training or validation.
TEST_FIRST = ["Aurelio", "Brigitte", "Cosima", "Dorian", "Esther", "Fabian", "Gloria", "Henrike", "Ismael",
              "Jolanda", "Konrad", "Ludmila", "Marius", "Nkechi", "Oriana", "Pieter", "Rosalind", "Soren",
              "Thandiwe", "Ulrike"]
TEST_LAST = ["Abernathy", "Bellini", "Chaudhry", "Domingo", "Engstrom", "Fairweather", "Grimaldi", "Holloway",
             "Ishikawa", "Jablonski", "Kovalenko", "Lindgren", "Mwangi", "Nordin", "Okonkwo", "Pellegrini",
             "Quiroga", "Rasmussen", "Szabo", "Tremblay"]
TEST_CITY = ["Aberdeen", "Bergamo", "Cordoba", "Debrecen", "Erfurt", "Freiburg", "Galway", "Halifax", "Iquitos",
             "Kaunas", "Limerick", "Mannheim", "Nicosia", "Plovdiv", "Rouen", "Sapporo", "Tromso", "Valparaiso"]
# Sentence shapes vary on purpose (name first or last, city first, labelled records, first person):
# the model has to learn what a name, a city and an age are, not where they sit.
TRAIN_SENT = [  # {n} name, {c} city, {a} age
    "{n} is {a} years old and lives in {c}.",
    "{n}, {a}, moved to {c} last spring.",
    "Meet {n}: a {a}-year-old engineer based in {c}.",
    "Our new tenant, {n}, is {a} and comes from {c}.",
    "{n} ({a}) works at a bakery in {c}.",
    "Last week {n}, aged {a}, ran a marathon in {c}.",
    "At {a}, {n} opened a small bookshop in {c}.",
    "{n} from {c} just turned {a}.",
    "Born in {c}, {n} is now {a}.",
    "In {c}, {n} ({a}) teaches piano to children.",
    "{c} is home to {n}, who is {a}.",
    "The {c} choir welcomed {n}, {a}, this morning.",
    "Today's guest is {n}, {a}, who grew up in {c}.",
    "A {a}-year-old from {c}, {n}, won the chess cup.",
    "Travelling from {c}, {n} ({a}) arrived late.",
    "Hello, I'm {n}. I am {a} and I live in {c}.",
    "My neighbour {n} ({a}) just moved here from {c}.",
    "ID 4471 -> {n}, {c}, {a}",
    "Full name - {n}; based in {c}; {a} yrs",
    "{n}? Oh, the {a}-year-old painter from {c}.",
    "According to the registry, {n} is {a} and is registered in {c}.",
    "Photo: {n} ({a}) on a street in {c}.",
    "From {c} comes {n}, a {a}-year-old chef.",
    "It was in {c} that {n}, then {a}, wrote a first song.",
    "Customer {n} | {c} | age {a}",
    "{c} council member {n} turned {a} this year.",
    "Please welcome {n} ({c}, {a}) to the team!",
    "Runner-up: {n}, {a}, representing {c}.",
    "{c}'s own {n} ({a}) signed the petition.",
    "{c} taxi driver {n}, {a}, found a lost wallet.",
    "Report from {c}: {n}, {a}, rescued a cat.",
    "Congratulations, {n}! {a} today, and still in {c}.",
    "{c} firefighter {n} ({a}) was honoured at a ceremony.",
    "{c} schoolteacher {n}, {a}, retired in June.",
    "{c} startup founder {n} turned {a} during the launch.",
    "{c} mayor {n} will be {a} next week.",
]
HELD_SENT = [
    "Resident of {c}: {n}, age {a}.",
    "The winner, {n} of {c}, is {a} years young.",
    "{c} local {n} celebrated turning {a} on Sunday.",
    "Name: {n}. Home town: {c}. Age: {a}.",
    "We spoke with {n}, a {a} year old nurse living in {c}.",
]
TEST_SENT = [
    "Records show that {n} settled in {c} and is {a} now.",
    "Among the volunteers in {c} was {n}, aged {a}.",
    "Visitor log - {c} - {n} - age {a}",
    "Having grown up in {c}, {n} (now {a}) studies law.",
    "A letter arrived from {c}: {n}, who is {a}, asks about the timetable.",
    "The {a}-year-old {n} has lived in {c} for a decade.",
    "Spotted in {c} yesterday: {n}, {a}, repairing a bicycle.",
    "Passenger {n}, age {a}, boarded the night train to {c}.",
]
# WHY_YAML: the answer format decides how hard copying is. After a YAML key (`city: Kumasi`) a value is
# tokenized as in the sentence (" Kum" "asi"); inside JSON quotes (`"Kumasi"`) it becomes other tokens
# ("K" "um" "asi"), so the model must learn to respell every unseen name. With JSON answers the instruction
# preset's held-out misses were mostly misspelt names ("Lees" for Leeds, "Pretoria" for Perth), and YAML
# answers removed most of them; the base model gets none right either way. (Single runs on the earlier
# test rows, no script kept: a lesson, not a measurement; benchmarks/presets.py measures the preset.)
TRAIN_ASK = [
    "Extract the person's name, city and age as YAML with the keys name, city, age.\n\n{s}",
    "Return YAML with keys name, city and age for the person in this text:\n{s}",
    "Text: {s}\nGive the name, city and age as a YAML mapping (keys: name, city, age).",
    "Read the sentence and output a YAML mapping with name, city, age.\nSentence: {s}",
    "{s}\n\nExtract name, city and age. Output YAML only.",
    "Sentence: {s}\n\nYAML with name, city, age:",
    "Please turn the following into YAML (name, city, age).\n{s}",
    "{s}\nReturn a YAML mapping with the keys name, city and age.",
    "Find the person in the text below and give their name, city and age as YAML.\n\nText: {s}",
]
HELD_ASK = [
    "From the passage below, pull out name, city and age into YAML (keys name, city, age).\n\n{s}",
    "{s}\n\nWhich person is this? Answer only with YAML: name, city, age.",
    "Convert this sentence into a YAML record with fields name, city, age: {s}",
]
TEST_ASK = [
    "Give me a YAML block with the name, city and age of the person mentioned here:\n{s}",
    "{s}\n\nFill in name, city and age for the person above, formatted as YAML.",
    "Input: {s}\nOutput the person's details in YAML using exactly the keys name, city and age.",
    "Who is described here? Write their name, city and age as YAML.\n\n\"{s}\"",
]

# --------------------------------------------------------------------------- sentiment
PRODUCT = ["blender", "backpack", "phone case", "desk lamp", "kettle", "running shoes", "headphones",
           "coffee grinder", "umbrella", "office chair", "water bottle", "keyboard", "toaster", "jacket",
           # held-out from here
           "air fryer", "yoga mat", "suitcase", "smartwatch", "rice cooker", "sleeping bag", "monitor", "scarf"]
SENT_TEXT = {
    "positive": ["The {p} is fantastic, I use it every day.", "Really happy with this {p}, worth every cent.",
                 "This {p} exceeded my expectations.", "Great {p}, sturdy and well made.",
                 "I love my new {p}, five stars.",
                 # held-out from here (index 5 on)
                 "Honestly the best {p} I have owned.", "Would buy this {p} again in a heartbeat.",
                 "Superb {p}; my whole family adores it."],
    "negative": ["The {p} broke after two days.", "Terrible {p}, a complete waste of money.",
                 "This {p} stopped working within a week.", "Very disappointed with the {p}, returning it.",
                 "The {p} is flimsy and cheaply made.",
                 "Awful {p}; support never answered my emails.", "Do not buy this {p}, it fell apart.",
                 "The {p} arrived scratched and did not work."],
    "neutral": ["The {p} arrived on Tuesday.", "It is a {p}; it does what a {p} does.",
                "The {p} comes in a cardboard box.", "I bought the {p} for my brother.",
                "The {p} is available in three colours.",
                "The {p} was delivered by courier.", "This {p} weighs about what I expected.",
                "I have had the {p} for a month now."],
}
SENT_ASK = [
    "Classify the sentiment of this review as positive, negative or neutral. Answer with one word.\n\n{t}",
    "Review: {t}\nSentiment (positive, negative or neutral)?",
    "Is the following review positive, negative or neutral? Reply with the label only.\n{t}",
    # held-out from here (index 3 on)
    "Label the customer's opinion (positive / negative / neutral): {t}",
    "{t}\n\nWhat is the sentiment? One of: positive, negative, neutral.",
]

# --------------------------------------------------------------------------- qa
PLACE = ["Harlow Bridge", "Vell Museum", "Castor Library", "Orin Tower", "Pella Theatre", "Duna Station",
         "Marsh Hall", "Kestrel Dam", "Amber Gate", "Lorne Observatory", "Fenwick Market", "Tarn Lighthouse",
         # held-out from here
         "Quill Abbey", "Brisa Stadium", "Corvo Fort", "Elm Arcade", "Sable Chapel", "Wren Harbour"]
BUILDER = ["Edith Crane", "Paulo Neves", "Greta Holm", "Arjun Rao", "Lidia Marsh", "Henrik Dahl",
           "Yusuf Kaya", "Irene Falk",
           # held-out from here
           "Celia Brook", "Matteo Galli", "Anouk Vries", "Desmond Obi"]
QA_CTX = [
    "The {p} was completed in {y} and was designed by {b}. It stands {h} metres tall.",
    "Designed by {b}, the {p} opened to the public in {y}. Its highest point is {h} metres.",
    "Work on the {p} finished in {y}. The architect was {b}, and the structure is {h} metres high.",
    # held-out from here (index 3 on)
    "{b} drew the plans for the {p}, which reached {h} metres when it was finished in {y}.",
    "Finished in {y}, the {p} ({h} metres) is the best known work of {b}.",
]
QA_Q = [  # (question, answer key)
    ("When was the {p} completed?", "y"), ("Who designed the {p}?", "b"), ("How tall is the {p} in metres?", "h"),
    ("In which year did the {p} open?", "y"), ("Who was the architect of the {p}?", "b"),
    # held-out from here (index 5 on)
    ("What year was the {p} finished?", "y"), ("Name the designer of the {p}.", "b"),
    ("What is the height of the {p}, in metres?", "h"),
]
QA_ASK = ["Answer the question using only the context. Give just the answer.\n\nContext: {c}\nQuestion: {q}",
          "Context: {c}\n\nQuestion: {q}\nShort answer:",
          # held-out from here (index 2 on)
          "Read the text and answer briefly.\nText: {c}\nQ: {q}"]

# --------------------------------------------------------------------------- transform
WORDS = ["apple", "river", "candle", "mountain", "violet", "engine", "pepper", "harbor", "silver", "meadow",
         "tunnel", "garden", "pencil", "copper", "lantern", "orchard", "saddle", "basket",
         # held-out from here
         "walnut", "glacier", "thimble", "canyon", "quartz", "falcon", "ribbon", "dune", "marble", "nectar"]
TRANSFORM_ASK = {
    "sort": ["Sort these words alphabetically and list them separated by commas: {x}",
             "Put the following words in alphabetical order (comma separated): {x}",
             # held-out from here (index 2 on)
             "Alphabetize: {x}\nReturn the words joined by commas."],
    "date": ["Rewrite the date {x} in the format DD/MM/YYYY.", "Convert {x} to day/month/year (DD/MM/YYYY).",
             "Change the ISO date {x} into DD/MM/YYYY."],
    "upper": ["Write this phrase in capital letters: {x}", "Convert to uppercase: {x}",
              "Make every letter of this phrase upper case: {x}"],
}
ORDER = ("train", "held-out")


def _cut(pool: list, n_train: int, part: str) -> list:
    return pool[:n_train] if part == "train" else pool[n_train:]


def _row(task, kind, si, ai, prompt, answer, entities):
    return {"prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": answer}],
            "task": task, "template": f"{task}/{kind}{si}/i{ai}", "entities": entities}


EXTRACTION_POOLS = {  # part -> first names, last names, cities, sentence shapes, instruction phrasings
    "train": (TRAIN_FIRST, TRAIN_LAST, TRAIN_CITY, TRAIN_SENT, TRAIN_ASK),
    "held-out": (HELD_FIRST, HELD_LAST, HELD_CITY, HELD_SENT, HELD_ASK),
    "test": (TEST_FIRST, TEST_LAST, TEST_CITY, TEST_SENT, TEST_ASK),
}


def extraction(rng: random.Random, part: str) -> dict:
    first, last, city, sents, asks = EXTRACTION_POOLS[part]
    n, c, a = f"{rng.choice(first)} {rng.choice(last)}", rng.choice(city), rng.randint(19, 78)
    si, ai = rng.randrange(len(sents)), rng.randrange(len(asks))
    s = sents[si].format(n=n, c=c, a=a)
    s = s[0].upper() + s[1:]
    answer = f"name: {n}\ncity: {c}\nage: {a}"  # YAML, not JSON: see WHY_YAML
    # template ids number the shapes and phrasings across the parts: train, then held-out, then test
    parts = list(EXTRACTION_POOLS)[:list(EXTRACTION_POOLS).index(part)]
    off_s = sum(len(EXTRACTION_POOLS[p][3]) for p in parts)
    off_a = sum(len(EXTRACTION_POOLS[p][4]) for p in parts)
    return _row("extraction", "s", si + off_s, ai + off_a, asks[ai].format(s=s), answer, [n, c])


def sentiment(rng: random.Random, part: str) -> dict:
    label = rng.choice(sorted(SENT_TEXT))
    prods, texts, asks = _cut(PRODUCT, 14, part), _cut(SENT_TEXT[label], 5, part), _cut(SENT_ASK, 3, part)
    p, si, ai = rng.choice(prods), rng.randrange(len(texts)), rng.randrange(len(asks))
    off_s, off_a = (0, 0) if part == "train" else (5, 3)
    return _row("sentiment", f"{label[:3]}", si + off_s, ai + off_a,
                asks[ai].format(t=texts[si].format(p=p)), label, [p])


def qa(rng: random.Random, part: str) -> dict:
    places, builders = _cut(PLACE, 12, part), _cut(BUILDER, 8, part)
    ctxs, qs, asks = _cut(QA_CTX, 3, part), _cut(QA_Q, 5, part), _cut(QA_ASK, 2, part)
    p, b = rng.choice(places), rng.choice(builders)
    vals = {"p": p, "b": b, "y": str(rng.randint(1820, 1995)), "h": str(rng.randint(12, 240))}
    ci, qi, ai = rng.randrange(len(ctxs)), rng.randrange(len(qs)), rng.randrange(len(asks))
    q, key = qs[qi]
    prompt = asks[ai].format(c=ctxs[ci].format(**vals), q=q.format(p=p))
    off = (0, 0, 0) if part == "train" else (3, 5, 2)
    return _row("qa", f"c{ci + off[0]}q", qi + off[1], ai + off[2], prompt, vals[key], [p, b])


def transform(rng: random.Random, part: str) -> dict:
    kind = rng.choice(sorted(TRANSFORM_ASK))
    words = _cut(WORDS, 18, part)
    if kind == "date":
        # train: years 1950-1999, held-out: 2000-2039 (the dates themselves are the entities)
        y = rng.randint(1950, 1999) if part == "train" else rng.randint(2000, 2039)
        m, d = rng.randint(1, 12), rng.randint(1, 28)
        x, answer, ents = f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", [f"{y}-{m:02d}-{d:02d}"]
        asks = _cut(TRANSFORM_ASK[kind], 2, part)
    else:
        ws = rng.sample(words, rng.randint(3, 5))
        if kind == "sort":
            x, answer = ", ".join(ws), ", ".join(sorted(ws))
        else:
            x = " ".join(ws)
            answer = x.upper()
        ents = ws
        asks = _cut(TRANSFORM_ASK[kind], 2, part)
    ai = rng.randrange(len(asks))
    return _row("transform", kind, 0, ai + (0 if part == "train" else 2), asks[ai].format(x=x), answer, ents)


MAKERS = {"extraction": extraction, "sentiment": sentiment, "qa": qa, "transform": transform}


def build(seed: int = SEED) -> dict[str, list[dict]]:
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for task, (n_tr, n_va, n_te) in SIZES.items():
        seen: set[str] = set()  # no prompt twice, within or across splits
        # one generator for the training rows and one for the held-out rows: adding training templates or
        # entities leaves the validation and test rows exactly as they were
        rngs = {part: random.Random(f"{seed}/{task}/{part}") for part in ORDER}
        if task in FRESH_TEST:  # its own pools and seed: the validation rows stay exactly as they were
            rngs["test"] = random.Random(f"{TEST_SEED}/{task}/test")
        for split, n in (("train", n_tr), ("validation", n_va), ("test", n_te)):
            part = "train" if split == "train" else "test" if split == "test" and task in FRESH_TEST else "held-out"
            rng = rngs[part]
            while len([r for r in splits[split] if r["task"] == task]) < n:
                row = MAKERS[task](rng, part)
                key = row["prompt"][0]["content"]
                if key not in seen:
                    seen.add(key)
                    splits[split].append(row)
    rng = random.Random(seed)
    for rows in splits.values():
        rng.shuffle(rows)
    return splits


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for split, rows in build().items():
        with open(OUT / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{split}: {len(rows)} rows -> {OUT / (split + '.jsonl')}")


if __name__ == "__main__":
    main()
