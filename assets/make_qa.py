"""Build the varied extractive QA set: assets/qa_varied/{train,validation,test}.jsonl (SQuAD format).

    python assets/make_qa.py          # rewrites the three files (seeded: same output every time)

Rows: {"id", "context", "question", "answers": {"text": [answer], "answer_start": [offset]}, "style",
"answer_type", "template", "question_form"}. Four paragraph styles (news, encyclopedia, instructions,
dialogue), answers of five types (a number with its unit, a person's name, a place or organisation, a date,
a phrase), each paragraph holding look-alikes of its answers (two people, two quantities) so that the type
alone does not give the span away.

Held out, so a score on validation/test says something about text not seen in training:
  * paragraphs: each style has templates used only for validation and test (HELD_TEMPLATES), and every
    name, city, organisation and product comes from a pool cut in two (training draws from the first part);
  * question forms: every slot's phrasings are cut in two, the last ones (held) asked only in validation
    and test; a held-out template's phrasings are all held.
tests/test_encoder.py asserts that no held-out context, question string, question form or entity appears
in training and that every answer_start points at its answer text.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 4242
OUT = Path(__file__).resolve().parent / "qa_varied"
SIZES = {"train": 800, "validation": 100, "test": 200}
HELD_FORMS = 1  # per slot, the last phrasing(s) are asked only in validation and test

FIRST = ["Ana", "Marco", "Lena", "Tomas", "Priya", "Jonas", "Sofia", "Kenji", "Amara", "Lucas", "Ingrid", "Omar",
         "Clara", "Mateo", "Yara", "Felix", "Nadia", "Victor", "Elena", "Rafael", "Hana", "Oskar", "Leila", "Bruno",
         "Mira", "Dmitri", "Carmen", "Ravi", "Greta", "Samuel", "Aiko", "Bram", "Celine", "Dario", "Elif", "Florin",
         "Gwen", "Hugo", "Ines", "Jakob", "Katya", "Lorenzo", "Maren", "Nikhil", "Odile", "Pavel", "Rosa", "Stefan"]
LAST = ["Ruiz", "Okafor", "Lindqvist", "Novak", "Sharma", "Weber", "Moreau", "Tanaka", "Haddad", "Costa", "Berg",
        "Mensah", "Kowalski", "Duarte", "Rahman", "Fischer", "Ivanova", "Laurent", "Nakamura", "Ortega", "Petrov",
        "Quinn", "Rossi", "Sato", "Varga", "Walsh", "Yilmaz", "Zhou", "Achebe", "Brandt", "Castillo", "Dubois"]
CITIES = ["Lisbon", "Krakow", "Porto", "Graz", "Tampere", "Ghent", "Bergen", "Utrecht", "Malmo", "Brno", "Leipzig",
          "Aarhus", "Bilbao", "Turin", "Cork", "Lyon", "Gdansk", "Seville", "Basel", "Riga", "Tartu", "Split"]
ORGS = ["Norvik Labs", "Aster Mobility", "Bluefield Foods", "Kestrel Energy", "Orrin Robotics", "Palisade Health",
        "Quill Systems", "Tidewater Rail", "Vantor Audio", "Halden Water", "Corvo Textiles", "Meridian Glass",
        "Solent Bikes", "Lumen Optics", "Brightwell Farms", "Ardent Aero"]
PRODUCTS = ["e-bike", "air purifier", "hearing aid", "solar lantern", "coffee grinder", "drone", "smart thermostat",
            "water filter", "electric kettle", "reading tablet", "heat pump", "rowing machine"]
RIVERS = ["Varna", "Oskel", "Tirra", "Belune", "Marrow", "Kesh", "Alden", "Soria", "Quenta", "Dravik", "Lowen",
          "Ember", "Talis", "Rhune", "Corra", "Istel"]
PLANTS = ["fern", "fig tree", "orchid", "snake plant", "basil", "lemon tree", "peace lily", "cactus"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
REASONS = ["because a supplier missed its deadline", "after a fault was found in the battery",
           "due to a shortage of chips", "because the factory flooded in spring", "after tests in cold weather failed",
           "because the design had to pass new safety rules", "due to a strike at the port",
           "after customers asked for a larger screen"]
MATERIALS = ["a layer of gravel", "broken clay shards", "coarse sand", "a handful of pebbles", "perlite",
             "a sheet of mesh"]
ROOMS = ["garden room", "main hall", "library bar", "rooftop terrace", "winter lounge", "courtyard cafe"]


def _half(pool, held):
    cut = len(pool) * 2 // 3  # two thirds for training, the rest held out
    return pool[cut:] if held else pool[:cut]


class Values:
    """Random values of each answer type; `held` draws entities from the held-out part of every pool."""

    def __init__(self, rng: random.Random, held: bool):
        self.rng, self.held = rng, held

    def person(self):
        return f"{self.rng.choice(_half(FIRST, self.held))} {self.rng.choice(_half(LAST, self.held))}"

    def pick(self, pool):
        return self.rng.choice(_half(pool, self.held))

    def date(self):
        d, m, y = self.rng.randint(1, 28), self.rng.choice(MONTHS), self.rng.randint(1890, 2024)
        return self.rng.choice([f"{d} {m} {y}", f"{m} {d}, {y}"])

    def year(self):
        return str(self.rng.randint(1700, 1990))

    def qty(self, lo, hi, unit, step=1):
        n = self.rng.randrange(lo, hi, step)
        return f"{n:,} {unit}" if n >= 10000 else f"{n} {unit}"

    def decimal(self, lo, hi, unit):
        return f"{self.rng.randint(lo * 10, hi * 10) / 10:g} {unit}"

    def price(self):
        n = self.rng.randrange(19, 990, 10)
        return self.rng.choice([f"{n} euros", f"${n}", f"{n} pounds"])

    def clock(self):
        return self.rng.choice([f"{self.rng.randint(6, 11)}:{self.rng.choice(['00', '15', '30', '45'])} am",
                                f"{self.rng.randint(1, 5)} pm", "noon"])


# Templates: text with {slots}; `make` fills the slots; `ask` maps an answer slot to its question phrasings
# (answer type first). Phrasings may name other slots. `held` templates appear only in validation and test.
TEMPLATES = [
    {"id": "news/launch", "style": "news", "held": False,
     "text": "{city}, {date} - {org} said on Tuesday that its new {product} will reach shops next spring. The "
             "device weighs {weight} and was designed by a team led by {lead}. The launch was delayed {reason}, "
             "according to {spokes}, who speaks for the company. Analysts expect a price of about {price}.",
     "make": lambda v: dict(city=v.pick(CITIES), date=v.date(), org=v.pick(ORGS), product=v.pick(PRODUCTS),
                            weight=v.decimal(1, 30, "kilograms"), lead=v.person(), reason=v.pick(REASONS),
                            spokes=v.person(), price=v.price()),
     "ask": {"lead": ("name", ["Who led the team that designed the {product}?",
                               "Which person headed the design of the new {product}?",
                               "Name the designer in charge of the {product}.",
                               "The {product} was designed under whose leadership?"]),
             "weight": ("number", ["How much does the new {product} weigh?", "What is the weight of the device?",
                                   "How heavy is the {product} from {org}?"]),
             "reason": ("phrase", ["Why was the launch delayed?", "For what reason did the {product} come late?",
                                   "What held up the launch of the {product}?"]),
             "date": ("date", ["On what date did {org} make the announcement?", "When was this reported?",
                               "What is the date of the report from {city}?"]),
             "price": ("number", ["What price do analysts expect?", "How much is the {product} expected to cost?",
                                  "Around what price should the {product} sell?"])}},
    {"id": "news/bridge", "style": "news", "held": False,
     "text": "The new footbridge over the harbour in {city} opened on {date}, two years later than planned. "
             "It is {length} long and cost {cost}, paid mostly by {org}. Mayor {mayor} cut the ribbon while the "
             "engineer, {engineer}, watched from a boat. About {crowd} crossed it on the first day.",
     "make": lambda v: dict(city=v.pick(CITIES), date=v.date(), length=v.qty(120, 900, "metres", 5),
                            cost=v.qty(3, 90, "million euros"), org=v.pick(ORGS), mayor=v.person(),
                            engineer=v.person(), crowd=v.qty(2000, 40000, "people", 100)),
     "ask": {"length": ("number", ["How long is the footbridge?", "What is the length of the new bridge?",
                                   "How many metres does the bridge span?"]),
             "engineer": ("name", ["Who was the engineer of the bridge?", "Which engineer watched from a boat?",
                                   "Name the engineer mentioned in the story."]),
             "mayor": ("name", ["Who cut the ribbon?", "Which official opened the bridge by cutting the ribbon?",
                                "What is the mayor's name?"]),
             "date": ("date", ["When did the footbridge open?", "On which date was the bridge opened?",
                               "What day did people first cross the bridge?"]),
             "org": ("place", ["Which organisation paid most of the cost?", "Who mostly paid for the bridge?",
                               "Which company funded the bridge for the most part?"])}},
    {"id": "news/rescue", "style": "news", "held": True,
     "text": "Rescuers reached a group of hikers stranded near {city} late on {date}. The climbers had spent "
             "{hours} on a ledge at {altitude} after a rockfall blocked the path. {leader}, who led the rescue, said "
             "the group survived {reason}. One hiker, {hiker}, was taken to hospital with a broken wrist.",
     "make": lambda v: dict(city=v.pick(CITIES), date=v.date(), hours=v.qty(5, 40, "hours"),
                            altitude=v.qty(1200, 3400, "metres", 10), leader=v.person(),
                            reason=v.pick(["because they carried spare blankets", "because one of them had a radio",
                                           "thanks to a thermal tent they had packed",
                                           "because a shepherd saw their torch"]), hiker=v.person()),
     "ask": {"hours": ("number", ["For how long were the hikers stuck on the ledge?"]),
             "altitude": ("number", ["At what height was the ledge?"]),
             "leader": ("name", ["Who was in charge of the rescue operation?"]),
             "hiker": ("name", ["Which hiker needed hospital care?"]),
             "reason": ("phrase", ["How did the group manage to survive?"]),
             "date": ("date", ["On what date did the rescuers reach the group?"])}},
    {"id": "encyclopedia/river", "style": "encyclopedia", "held": False,
     "text": "The {river} is a river in the north of the country. It is {length} long and flows into the sea "
             "near {city}. The river was first mapped in {year} by the explorer {explorer}, who named it after "
             "{namesake}. Its basin is home to about {population}, and its largest tributary is the {tributary}.",
     "make": lambda v: dict(river=v.pick(RIVERS), length=v.qty(80, 1400, "kilometres", 5), city=v.pick(CITIES),
                            year=v.year(), explorer=v.person(), namesake=v.person(),
                            population=v.qty(20000, 900000, "people", 1000), tributary=v.pick(RIVERS)),
     "ask": {"length": ("number", ["How long is the {river}?", "What is the length of the {river}?",
                                   "How many kilometres long is the river?"]),
             "explorer": ("name", ["Who first mapped the {river}?", "Which explorer mapped the river first?",
                                   "Name the explorer who charted the {river}."]),
             "year": ("date", ["In what year was the {river} first mapped?", "When was the river first charted?",
                               "What year did the first map of the {river} appear?"]),
             "city": ("place", ["Near which city does the {river} reach the sea?",
                                "Where does the river flow into the sea?",
                                "Which town lies at the mouth of the {river}?"]),
             "population": ("number", ["How many people live in the basin?",
                                       "What is the population of the {river} basin?",
                                       "About how many inhabitants does the basin have?"])}},
    {"id": "encyclopedia/company", "style": "encyclopedia", "held": False,
     "text": "{org} is a manufacturer based in {city}. It was founded on {date} by {founder} and {cofounder}, and "
             "began by making parts for the {product}. Today it employs {staff} and reports yearly sales of "
             "{sales}. Its best-known product was developed {reason}.",
     "make": lambda v: dict(org=v.pick(ORGS), city=v.pick(CITIES), date=v.date(), founder=v.person(),
                            cofounder=v.person(), product=v.pick(PRODUCTS), staff=v.qty(40, 9000, "people", 10),
                            sales=v.qty(2, 800, "million euros"), reason=v.pick(REASONS)),
     "ask": {"city": ("place", ["Where is {org} based?", "In which city does {org} have its base?",
                                "What city is the manufacturer located in?"]),
             "date": ("date", ["When was {org} founded?", "On what date was the company established?",
                               "What is the founding date of {org}?"]),
             "founder": ("name", ["Who founded {org} together with {cofounder}?",
                                  "Besides {cofounder}, who started the company?",
                                  "Name the other founder of {org}, apart from {cofounder}."]),
             "staff": ("number", ["How many people work for {org}?", "How large is the company's workforce?",
                                  "What is the number of employees?"]),
             "sales": ("number", ["What are the company's yearly sales?", "How much does {org} sell per year?",
                                  "What annual sales does the company report?"])}},
    {"id": "encyclopedia/lake", "style": "encyclopedia", "held": True,
     "text": "Lake {river} lies at {altitude} above sea level, about {distance} from {city}. It reaches a depth "
             "of {depth} and freezes over most winters. The first scientific survey of the lake was led by "
             "{scientist} in {year}; the stone chapel on its island was built by {builder}.",
     "make": lambda v: dict(river=v.pick(RIVERS), altitude=v.qty(300, 2600, "metres", 10),
                            distance=v.qty(8, 90, "kilometres"), city=v.pick(CITIES), depth=v.qty(20, 310, "metres"),
                            scientist=v.person(), year=v.year(), builder=v.person()),
     "ask": {"depth": ("number", ["What is the greatest depth of the lake?"]),
             "altitude": ("number", ["How high above sea level is the lake?"]),
             "scientist": ("name", ["Under whose leadership was the lake first surveyed?"]),
             "year": ("date", ["When did the first scientific survey take place?"]),
             "city": ("place", ["Which city is the lake close to?"]),
             "builder": ("name", ["Who built the chapel on the island?"])}},
    {"id": "instructions/repot", "style": "instructions", "held": False,
     "text": "How to repot a {plant}: water it {interval} before you start. Choose a pot that is {size} wider "
             "than the old one and cover the bottom with {material}. Loosen the roots gently, set the plant at "
             "the same depth, and keep it out of direct sun for {days}. Feed it again after {weeks}.",
     "make": lambda v: dict(plant=v.rng.choice(PLANTS), interval=v.rng.choice(["a day", "two days", "an hour",
                                                                               "the evening"]),
                            size=v.qty(2, 8, "centimetres"), material=v.rng.choice(MATERIALS),
                            days=v.qty(3, 14, "days"), weeks=v.qty(3, 8, "weeks")),
     "ask": {"size": ("number", ["How much wider should the new pot be?",
                                 "By how much should the new pot exceed the old one in width?",
                                 "How many centimetres wider is the right pot?"]),
             "material": ("phrase", ["What goes in the bottom of the pot?", "What should cover the bottom of the pot?",
                                     "With what do you line the base of the new pot?"]),
             "days": ("number", ["How long should the {plant} stay out of direct sun?",
                                 "For how many days do you keep the plant out of the sun?",
                                 "How long must the repotted plant avoid direct sunlight?"]),
             "weeks": ("number", ["When can you feed the {plant} again?", "How long should you wait before feeding it?",
                                  "After how many weeks may the plant be fed?"])}},
    {"id": "instructions/bike", "style": "instructions", "held": False,
     "text": "Before a long ride on your {product}, pump the tyres to {pressure} and check that the chain is "
             "clean. Charge the battery for {hours}; a full charge gives a range of about {range}. If the motor "
             "cuts out, hold the power button for {seconds} and call {org} support on the number on the frame.",
     "make": lambda v: dict(product=v.rng.choice(["e-bike", "cargo bike", "electric scooter", "tandem"]),
                            pressure=v.decimal(2, 6, "bar"), hours=v.qty(2, 9, "hours"),
                            range=v.qty(30, 140, "kilometres", 5), seconds=v.qty(5, 30, "seconds"),
                            org=v.pick(ORGS)),
     "ask": {"pressure": ("number", ["What pressure should the tyres have?", "To what pressure do you pump the tyres?",
                                     "How hard should the tyres be inflated?"]),
             "hours": ("number", ["How long should the battery be charged?", "For how many hours do you charge it?",
                                  "How long does charging take?"]),
             "range": ("number", ["What range does a full charge give?", "How far can you ride on a full battery?",
                                  "What distance does one charge cover?"]),
             "seconds": ("number", ["How long do you hold the power button if the motor cuts out?",
                                    "For how many seconds must the button be held?",
                                    "What is the reset time for the power button?"]),
             "org": ("place", ["Whose support line should you call?", "Which company gives support for the {product}?",
                               "Who do you call if the motor fails?"])}},
    {"id": "instructions/bread", "style": "instructions", "held": True,
     "text": "Mix {flour} of flour with {water} of warm water and a pinch of salt. Knead for {minutes}, then "
             "leave the dough covered {place_rest} until it doubles. Bake at {temp} for {bake}. The recipe comes "
             "from {baker}, who ran a bakery in {city}.",
     "make": lambda v: dict(flour=v.qty(300, 900, "grams", 50), water=v.qty(180, 650, "millilitres", 10),
                            minutes=v.qty(6, 15, "minutes"),
                            place_rest=v.rng.choice(["in a warm corner", "near the oven", "in the fridge overnight",
                                                     "on a sunny windowsill"]),
                            temp=v.qty(190, 250, "degrees Celsius", 5), bake=v.qty(25, 55, "minutes"),
                            baker=v.person(), city=v.pick(CITIES)),
     "ask": {"temp": ("number", ["At what oven temperature is the bread baked?"]),
             "flour": ("number", ["What amount of flour does the recipe use?"]),
             "place_rest": ("phrase", ["Where should the dough rest?"]),
             "baker": ("name", ["Whose recipe is this?"]),
             "city": ("place", ["In what town was the bakery?"])}},
    {"id": "dialogue/hotel", "style": "dialogue", "held": False,
     "text": "Receptionist: Good morning, Hotel {org_short}. How can I help?\nGuest: Hi, this is {guest}. I booked "
             "a room for {nights}, arriving on {date}.\nReceptionist: I have it here. Check-out is at {checkout}, "
             "and breakfast is served in the {room}.\nGuest: Is parking included?\nReceptionist: No, it costs "
             "{price} per night. My colleague {colleague} can reserve a space for you.",
     "make": lambda v: dict(org_short=v.pick(RIVERS), guest=v.person(),
                            nights=v.qty(2, 9, "nights"), date=v.date(), checkout=v.clock(),
                            room=v.rng.choice(ROOMS), price=v.price(), colleague=v.person()),
     "ask": {"guest": ("name", ["Who is calling the hotel?", "What is the guest's name?",
                                "Which name is the booking under?"]),
             "checkout": ("number", ["What time is check-out?", "When must the guest check out?",
                                     "By what time should the room be left?"]),
             "room": ("phrase", ["Where is breakfast served?", "In which room can guests have breakfast?",
                                 "Where does the hotel serve breakfast?"]),
             "price": ("number", ["How much does parking cost?", "What is the nightly parking fee?",
                                  "What does a parking space cost per night?"]),
             "date": ("date", ["When does the guest arrive?", "What is the arrival date?",
                               "On which day does the stay begin?"])}},
    {"id": "dialogue/clinic", "style": "dialogue", "held": False,
     "text": "Nurse: {clinic} clinic, this is {nurse} speaking.\nCaller: Hello, I'd like to move my appointment "
             "with Dr {doctor}.\nNurse: Of course. The next free slot is on {date} at {time}.\nCaller: That works. "
             "Do I need to bring anything?\nNurse: Please bring {item} and arrive {early} early.",
     "make": lambda v: dict(clinic=v.pick(CITIES), nurse=v.person(), doctor=v.person(), date=v.date(),
                            time=v.clock(), item=v.rng.choice(["your insurance card", "a list of your medicines",
                                                               "your last blood test", "the referral letter",
                                                               "your vaccination record"]),
                            early=v.qty(10, 30, "minutes", 5)),
     "ask": {"nurse": ("name", ["Who answers the phone?", "What is the nurse's name?",
                                "Which nurse takes the call?"]),
             "doctor": ("name", ["Which doctor is the appointment with?", "Who is the caller's doctor?",
                                 "The appointment is with which doctor?"]),
             "item": ("phrase", ["What should the caller bring?", "What must the patient take along?",
                                 "What does the nurse ask the caller to bring?"]),
             "early": ("number", ["How early should the caller arrive?", "How many minutes early is the caller asked to come?",
                                  "By how much ahead of time should the patient arrive?"]),
             "date": ("date", ["On what date is the new appointment?", "When is the next free slot?",
                               "What day was the appointment moved to?"])}},
    {"id": "dialogue/interview", "style": "dialogue", "held": True,
     "text": "Host: Welcome back. My guest today is {guest}, who just sailed alone from {city} to {city2}.\n"
             "Guest: Thanks for having me. The crossing took {days}, and the worst storm came on {date}.\n"
             "Host: How did you keep going?\nGuest: Honestly, {reason}. My boat, built by {builder}, is only "
             "{length} long.",
     "make": lambda v: dict(guest=v.person(), city=v.pick(CITIES), city2=v.pick(CITIES), days=v.qty(9, 80, "days"),
                            date=v.date(), reason=v.rng.choice(["I talked to my daughter on the radio every night",
                                                                "I kept a strict routine of sleep and meals",
                                                                "I counted the dolphins I saw each morning"]),
                            builder=v.person(), length=v.decimal(6, 14, "metres")),
     "ask": {"days": ("number", ["What was the duration of the crossing?"]),
             "date": ("date", ["When did the worst storm hit?"]),
             "builder": ("name", ["Who was the boat's builder?"]),
             "reason": ("phrase", ["What helped the sailor carry on?"]),
             "length": ("number", ["What is the length of the sailor's boat?"])}},
]


def forms(template: dict, slot: str, held: bool) -> list[tuple[int, str]]:
    """(form index, phrasing) of a slot: training gets the first ones, held-out rows the last HELD_FORMS."""
    phr = list(enumerate(template["ask"][slot][1]))
    if template["held"]:
        return phr
    return phr[-HELD_FORMS:] if held else phr[:-HELD_FORMS]


def make_row(rng: random.Random, template: dict, held: bool, k: int) -> dict | None:
    values = template["make"](Values(rng, held))
    context = template["text"].format(**values)
    slot = rng.choice(sorted(template["ask"]))
    answer = values[slot]
    if context.count(answer) != 1:  # an answer that appears twice would make the span ambiguous: draw again
        return None
    form, phrasing = rng.choice(forms(template, slot, held))
    return {"id": f"{template['id'].replace('/', '-')}-{k:04d}", "context": context,
            "question": phrasing.format(**values),
            "answers": {"text": [answer], "answer_start": [context.index(answer)]},
            "style": template["style"], "answer_type": template["ask"][slot][0], "template": template["id"],
            "question_form": f"{template['id']}/{slot}/q{form}"}


def build(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    out, seen = {}, set()
    for split, n in SIZES.items():
        held = split != "train"
        # training: the training templates; held-out splits: half held-out templates, half held forms of the others
        pool = [t for t in TEMPLATES if not t["held"]] if not held else TEMPLATES
        rows, k = [], 0
        while len(rows) < n:
            t = pool[k % len(pool)] if not held else rng.choice(pool)
            k += 1
            r = make_row(rng, t, held, k)
            if r is None or (r["context"], r["question"]) in seen:
                continue
            seen.add((r["context"], r["question"]))
            r["id"] = f"{split}-{r['id']}"
            rows.append(r)
        out[split] = rows
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for split, rows in build().items():
        with open(OUT / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{split}: {len(rows)} rows -> {OUT / (split + '.jsonl')}")


if __name__ == "__main__":
    main()
