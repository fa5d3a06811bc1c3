"""Write the bundled sample datasets (all but the instruction set, see make_instruct.py). Seeded: the
output is the same on every run, and committed beside this script.

    python assets/make_samples.py            # rewrites the files listed below, prints their row counts

    assets/preference/preference.jsonl   prompt / chosen / rejected       (DPO, ORPO)
    assets/prompts/prompts.jsonl         prompt / category                (labeling and rating rounds)
    assets/sentiment/reviews.csv         text / label  (positive | negative | neutral)
    assets/qa/qa.jsonl                   context / question / answers {text, answer_start}  (SQuAD style)
    assets/general/general_text.jsonl    text                             (forgetting probe)
    assets/formats/*                     one small file per format the Dataset builder reads
"""
from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 1234

# --------------------------------------------------------------------------- general knowledge passages
PASSAGES = [
    "Water boils at 100 degrees Celsius at sea level. At higher altitudes the air pressure is lower, so water boils at a lower temperature, which is why pasta takes longer to cook in the mountains.",
    "The Pacific Ocean is the largest and deepest ocean on Earth. It covers about one third of the planet's surface, more than all of the land combined.",
    "Photosynthesis is the process by which green plants turn light, water and carbon dioxide into sugar and oxygen. It takes place mainly in the leaves, inside structures called chloroplasts.",
    "The human heart has four chambers: two atria and two ventricles. It beats around 100,000 times a day and pumps blood through a network of vessels tens of thousands of kilometres long.",
    "Mount Everest, on the border between Nepal and China, is the highest mountain above sea level at 8,849 metres. It was first climbed in 1953 by Edmund Hillary and Tenzing Norgay.",
    "The Great Wall of China is a series of fortifications built over many centuries. Most of the wall that survives today was built during the Ming dynasty.",
    "Honey bees communicate the location of food through a waggle dance. The angle of the dance shows the direction of the flowers relative to the sun, and its length shows the distance.",
    "The Moon orbits the Earth roughly once every 27 days. Because the Earth also moves around the Sun, the cycle of lunar phases, from new moon to new moon, takes about 29.5 days.",
    "Penicillin was discovered by Alexander Fleming in 1928 when he noticed that mould had killed bacteria in one of his culture dishes. It became the first widely used antibiotic.",
    "The Amazon rainforest spans nine countries in South America, with the largest part in Brazil. It is home to roughly one in ten known species on Earth.",
    "Sound travels at about 343 metres per second in air at room temperature. It moves more than four times faster in water and even faster through steel.",
    "The printing press with movable metal type was developed by Johannes Gutenberg around 1440 in Mainz. It made books far cheaper and helped spread literacy across Europe.",
    "Antarctica is the coldest, windiest and driest continent. Its ice sheet holds about 70 percent of the world's fresh water.",
    "A leap year has 366 days instead of 365. An extra day, 29 February, is added every four years, except for century years that are not divisible by 400.",
    "The Nile is one of the longest rivers in the world, flowing north for about 6,650 kilometres through eleven countries before it reaches the Mediterranean Sea.",
    "Octopuses have three hearts and blue blood. Two hearts pump blood through the gills, while the third pumps it to the rest of the body.",
    "The periodic table arranges chemical elements by their atomic number. Dmitri Mendeleev published an early version in 1869 and left gaps for elements that had not yet been discovered.",
    "Light from the Sun takes about eight minutes and twenty seconds to reach the Earth. The Sun is roughly 150 million kilometres away.",
    "The Roman Colosseum in Rome could hold an estimated 50,000 spectators. It was completed in the year 80 under the emperor Titus.",
    "Bamboo is one of the fastest growing plants in the world; some species can grow almost a metre in a single day. Despite its height, bamboo is a grass, not a tree.",
    "DNA carries the genetic instructions of living things. Its shape, a double helix, was described in 1953 by James Watson and Francis Crick, using X-ray images made by Rosalind Franklin.",
    "The Sahara is the largest hot desert in the world, covering much of North Africa. Only a small part of it is sand dunes; most of it is rocky plateau and gravel.",
    "Vaccines train the immune system to recognise a germ without causing the disease. The first vaccine was developed by Edward Jenner in 1796 against smallpox.",
    "A rainbow appears when sunlight is refracted, reflected and dispersed inside raindrops. The colours always appear in the same order, with red on the outside and violet on the inside.",
    "The Internet grew out of ARPANET, a research network funded by the United States Department of Defense that sent its first message in 1969.",
    "Tea is the most widely consumed drink in the world after water. It is made from the leaves of the Camellia sinensis plant, which is native to East Asia.",
    "Earthquakes happen when rocks along a fault suddenly slip. Their size is measured on the moment magnitude scale, on which each whole number step releases about 32 times more energy.",
    "The Eiffel Tower in Paris was built for the 1889 World's Fair. At 330 metres it was the tallest man-made structure in the world until 1930.",
    "Jupiter is the largest planet in the Solar System. It is a gas giant with a storm, the Great Red Spot, that is larger than the Earth and has lasted for centuries.",
    "Coral reefs are built by colonies of tiny animals called polyps. Although they cover less than one percent of the ocean floor, they support about a quarter of all marine species.",
    "The Wright brothers made the first controlled, powered airplane flight in 1903 near Kitty Hawk, North Carolina. The first flight lasted twelve seconds.",
    "Lightning heats the air around it to about 30,000 degrees Celsius, several times hotter than the surface of the Sun. The rapid expansion of that air is what we hear as thunder.",
    "Shakespeare wrote about 37 plays and 154 sonnets. Many everyday English phrases, such as 'break the ice', first appear in his work.",
    "The metric system was introduced in France in the 1790s. Its base units, like the metre and the kilogram, are now defined by fixed constants of nature.",
    "Elephants are the largest land animals. An African elephant can weigh more than six tonnes and uses its trunk to breathe, smell, drink and grab objects.",
    "The Silk Road was a network of trade routes that linked China with the Mediterranean for more than a thousand years, carrying silk, spices, ideas and religions.",
    "Glaciers form where more snow falls in winter than melts in summer. Over many years the snow is pressed into ice that slowly flows downhill under its own weight.",
    "Chess originated in India around the sixth century, where it was called chaturanga. The modern rules, including the powerful queen, settled in Europe in the fifteenth century.",
    "A year on Mars lasts 687 Earth days. The planet looks red because iron minerals in its dust and rocks have oxidised, much like rust.",
    "The Industrial Revolution began in Britain in the late eighteenth century. Steam engines, mechanised spinning and new ways to make iron changed how and where people worked.",
    "Salt water freezes at a lower temperature than fresh water. This is why roads are salted in winter and why the sea rarely freezes along temperate coasts.",
    "Butterflies taste with their feet. Sensors on their legs tell them whether a leaf is a good place to lay eggs.",
    "The Olympic Games began in ancient Greece at Olympia, with records going back to 776 BC. The modern Games were revived in Athens in 1896.",
    "Volcanoes form where molten rock, called magma, rises to the surface. Many of them lie along the Pacific Ring of Fire, where tectonic plates meet.",
    "The speed of light in a vacuum is about 299,792 kilometres per second. Nothing that carries information can travel faster.",
    "Bread rises because yeast ferments sugars in the dough and releases carbon dioxide. The gas is trapped by a stretchy network of gluten proteins.",
    "The Mona Lisa was painted by Leonardo da Vinci in the early sixteenth century. It hangs in the Louvre in Paris behind bulletproof glass.",
    "Whales are mammals, not fish: they breathe air, are warm-blooded and feed their young with milk. The blue whale is the largest animal known to have lived.",
    "Recycling one aluminium can saves most of the energy needed to make a new one from raw ore, because melting scrap takes far less energy than refining bauxite.",
    "The human brain contains around 86 billion neurons. It uses roughly a fifth of the body's energy while making up only about two percent of its weight.",
    "Compound interest means earning interest on past interest. At 5 percent a year, a sum of money roughly doubles in about 14 years.",
    "Time zones were standardised in the nineteenth century so that railway timetables could work. The world is divided into zones measured from Greenwich in London.",
    "Maple syrup is made by boiling the sap of sugar maple trees. It takes about 40 litres of sap to make one litre of syrup.",
    "Rivers carve valleys over thousands of years. A V-shaped valley is typical of a river, while a U-shaped valley is usually the work of a glacier.",
    "Carbon dioxide traps heat in the atmosphere. Since the start of the industrial era its concentration has risen by about half, mostly from burning fossil fuels.",
    "Ada Lovelace wrote what is often called the first computer program in the 1840s, a method for computing Bernoulli numbers on Charles Babbage's proposed Analytical Engine.",
]

# (passage index, question, answer span copied from the passage)
QA = [
    (0, "At what temperature does water boil at sea level?", "100 degrees Celsius"),
    (0, "Why does pasta take longer to cook in the mountains?", "water boils at a lower temperature"),
    (1, "Which is the largest ocean on Earth?", "The Pacific Ocean"),
    (2, "Where inside the leaf does photosynthesis take place?", "chloroplasts"),
    (3, "How many chambers does the human heart have?", "four"),
    (4, "How high is Mount Everest?", "8,849 metres"),
    (4, "Who first climbed Mount Everest?", "Edmund Hillary and Tenzing Norgay"),
    (5, "During which dynasty was most of the surviving wall built?", "the Ming dynasty"),
    (6, "How do honey bees share where food is?", "a waggle dance"),
    (7, "How long does the cycle of lunar phases take?", "about 29.5 days"),
    (8, "Who discovered penicillin?", "Alexander Fleming"),
    (8, "In which year was penicillin discovered?", "1928"),
    (9, "Which country holds the largest part of the Amazon rainforest?", "Brazil"),
    (10, "How fast does sound travel in air at room temperature?", "about 343 metres per second"),
    (11, "Who developed the printing press with movable metal type?", "Johannes Gutenberg"),
    (12, "What share of the world's fresh water is in the Antarctic ice sheet?", "about 70 percent"),
    (13, "Which date is added in a leap year?", "29 February"),
    (15, "How many hearts does an octopus have?", "three hearts"),
    (16, "Who published an early version of the periodic table in 1869?", "Dmitri Mendeleev"),
    (17, "How long does sunlight take to reach the Earth?", "about eight minutes and twenty seconds"),
    (18, "Under which emperor was the Colosseum completed?", "Titus"),
    (19, "What kind of plant is bamboo?", "a grass"),
    (20, "Whose X-ray images were used to describe the shape of DNA?", "Rosalind Franklin"),
    (22, "Against which disease was the first vaccine developed?", "smallpox"),
    (24, "What was the research network the Internet grew out of?", "ARPANET"),
    (25, "Which plant is tea made from?", "Camellia sinensis"),
    (27, "For which event was the Eiffel Tower built?", "the 1889 World's Fair"),
    (28, "What is the name of Jupiter's giant storm?", "the Great Red Spot"),
    (30, "How long did the Wright brothers' first flight last?", "twelve seconds"),
    (33, "In which country was the metric system introduced?", "France"),
    (35, "Which regions did the Silk Road link?", "China with the Mediterranean"),
    (37, "What was chess called in India?", "chaturanga"),
    (38, "How many Earth days does a year on Mars last?", "687"),
    (42, "Where were the modern Olympic Games revived in 1896?", "Athens"),
    (45, "What gas makes bread rise?", "carbon dioxide"),
    (46, "Where does the Mona Lisa hang?", "the Louvre in Paris"),
    (49, "How many neurons does the human brain contain?", "around 86 billion"),
    (52, "How much sap does it take to make one litre of maple syrup?", "about 40 litres"),
    (55, "Whose proposed machine was Ada Lovelace's program written for?", "Charles Babbage's"),
]

# --------------------------------------------------------------------------- preferences
# Hand-written pairs: the rejected answer fails in a realistic way (wrong, evasive, rude, padded, unsafe).
PREFERENCE = [
    ("How do I reverse a list in Python?",
     "Use slicing, `my_list[::-1]`, to get a reversed copy, or `my_list.reverse()` to reverse it in place.",
     "Python cannot reverse lists; you have to write a loop that copies every element into a new list."),
    ("Give me one tip for sleeping better.",
     "Keep a regular schedule: going to bed and getting up at the same time every day, weekends included, steadies your body clock.",
     "Just sleep more."),
    ("What is the capital of Australia?",
     "The capital of Australia is Canberra.",
     "The capital of Australia is Sydney, its largest city."),
    ("Summarise in one sentence: The meeting moved from Tuesday to Thursday because the projector broke, and lunch will now be provided.",
     "The meeting is now on Thursday, with lunch, because the projector broke.",
     "There was a meeting and a projector and also lunch, and some days of the week were mentioned, which is important to keep in mind for planning purposes in general."),
    ("Is it safe to mix bleach and ammonia for a stronger cleaner?",
     "No. Mixing bleach and ammonia releases toxic chloramine gas. Use one product at a time and ventilate the room.",
     "Yes, combining them makes a much stronger cleaner, just use gloves."),
    ("Write a polite reply declining a meeting invitation.",
     "Thank you for the invitation. Unfortunately I can't attend on that day, but I'd be glad to catch up afterwards or read the notes.",
     "No."),
    ("Convert 5 kilometres to miles.",
     "5 kilometres is about 3.11 miles (1 km ≈ 0.621 miles).",
     "5 kilometres is 8 miles."),
    ("Why is the sky blue?",
     "Air molecules scatter short (blue) wavelengths of sunlight much more than long (red) ones, so blue light reaches our eyes from every direction of the sky.",
     "Because it reflects the colour of the oceans."),
    ("Explain what a variable is to a beginner programmer.",
     "A variable is a named box that holds a value. You put something in (`age = 30`), read it back by its name, and can replace it later.",
     "A variable is an abstraction over a memory location bound within a lexical environment subject to the language's evaluation strategy."),
    ("My code says `IndexError: list index out of range`. What does it mean?",
     "You asked for a position the list doesn't have: a list of 3 items has indices 0, 1 and 2. Check the index and the list's length (`len(my_list)`).",
     "It means your computer is broken. Reinstall Python."),
    ("Suggest a name for a bakery.",
     "\"Rise & Shine Bakery\" — friendly, easy to remember, and it hints at both bread and mornings.",
     "Bakery."),
    ("What's 15% of 80?",
     "15% of 80 is 12.",
     "15% of 80 is 15."),
    ("How can I make my password stronger?",
     "Use a long passphrase of four or more random words, a different one for each site, kept in a password manager, and turn on two-factor login.",
     "Use your birthday, it's easy to remember so you won't get locked out."),
    ("Translate 'thank you very much' into Spanish.",
     "Muchas gracias.",
     "Merci beaucoup."),
    ("Tell me a fun fact about octopuses.",
     "Octopuses have three hearts: two pump blood through the gills and one to the rest of the body.",
     "Octopuses are a kind of fish that live in rivers."),
    ("Recommend a way to learn a new language.",
     "Practise a little every day: 15 minutes of spaced-repetition vocabulary plus listening to simple podcasts, and talk with a partner once a week.",
     "Buy the thickest grammar book you can find and memorise it cover to cover before you ever try speaking."),
    ("What does HTTP status 404 mean?",
     "404 Not Found: the server is reachable but has nothing at the requested address.",
     "404 means the server crashed."),
    ("Write a haiku about rain.",
     "Soft rain on the roof\nthe gutters hum their low song\nthe street shines like glass",
     "Rain is wet and it falls down from the sky a lot."),
    ("Is a tomato a fruit or a vegetable?",
     "Botanically a tomato is a fruit, because it grows from the flower and holds seeds; in cooking it is treated as a vegetable.",
     "It is definitely a vegetable, and anyone who says otherwise is wrong."),
    ("How should I store fresh basil?",
     "Trim the stems and stand them in a glass of water at room temperature, loosely covered; the fridge turns the leaves black.",
     "Freeze it solid in a sealed bag, then thaw it in the microwave when you need it for a salad."),
    ("Give me a synonym for 'happy'.",
     "Cheerful.",
     "Sad."),
    ("What should I do if someone is choking and can't speak?",
     "Call emergency services, then give up to five firm back blows between the shoulder blades, followed by up to five abdominal thrusts if you are trained; repeat.",
     "Give them a glass of water to wash it down."),
    ("Explain recursion in one sentence.",
     "Recursion is when a function solves a problem by calling itself on a smaller version of the same problem until it reaches a simple base case.",
     "Recursion is recursion."),
    ("Which is heavier, a kilogram of feathers or a kilogram of steel?",
     "They weigh the same: one kilogram each.",
     "The steel, because steel is heavier than feathers."),
    ("Draft a one-line bio for a freelance photographer.",
     "Freelance photographer capturing weddings, portraits and city life with natural light.",
     "I am a person who takes photos and sometimes does other things too, depending on the day and the weather."),
]
FACTS = [("France", "Paris"), ("Japan", "Tokyo"), ("Canada", "Ottawa"), ("Brazil", "Brasília"),
         ("Kenya", "Nairobi"), ("Egypt", "Cairo"), ("Norway", "Oslo"), ("Peru", "Lima"),
         ("India", "New Delhi"), ("Spain", "Madrid"), ("Turkey", "Ankara"), ("Vietnam", "Hanoi")]
WRONG = {"Canada": "Toronto", "Brazil": "Rio de Janeiro", "Turkey": "Istanbul", "India": "Mumbai",
         "Vietnam": "Ho Chi Minh City", "Japan": "Osaka", "Kenya": "Mombasa", "Egypt": "Alexandria",
         "France": "Lyon", "Norway": "Bergen", "Peru": "Cusco", "Spain": "Barcelona"}
CAPITAL_Q = ["What is the capital of {c}?", "Name the capital city of {c}.", "Which city is {c}'s capital?",
             "{c}: what's its capital?"]


def make_preference(rng: random.Random) -> list[dict]:
    rows = [{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PREFERENCE]
    for country, capital in FACTS:
        style = rng.choice(["wrong", "evasive", "wrong"])
        rejected = (f"The capital of {country} is {WRONG[country]}." if style == "wrong"
                    else "I'm not able to look that up right now.")
        rows.append({"prompt": rng.choice(CAPITAL_Q).format(c=country),
                     "chosen": f"The capital of {country} is {capital}.", "rejected": rejected})
    for _ in range(10):
        a, b = rng.randint(12, 99), rng.randint(3, 19)
        op = rng.choice(["+", "-", "*"])
        val = {"+": a + b, "-": a - b, "*": a * b}[op]
        q = rng.choice(["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "{a} {op} {b} = ?"]).format(a=a, op=op, b=b)
        rows.append({"prompt": q, "chosen": f"{a} {op} {b} = {val}.",
                     "rejected": rng.choice([f"{a} {op} {b} = {val + rng.choice([-10, -1, 1, 2, 10])}.",
                                             "That's too hard to calculate without a calculator."])})
    rng.shuffle(rows)
    return rows


PROMPTS = {
    "advice": ["How can I stay focused while working from home?", "What should I pack for a three-day hiking trip?",
               "How do I start saving money on a small salary?", "How can I get better at public speaking?",
               "What is a good way to prepare for a job interview?", "How do I keep houseplants alive?",
               "How can I make new friends after moving to a new city?", "What should I check before buying a used bike?"],
    "explain": ["Explain how a vaccine works.", "Why do we have seasons?", "What is inflation, in simple terms?",
                "How does a refrigerator keep food cold?", "What is the difference between weather and climate?",
                "How do airplanes stay in the air?", "What is machine learning?", "Why does ice float on water?"],
    "creative": ["Write a four-line poem about autumn.", "Invent a name and a slogan for a bicycle repair shop.",
                 "Write the opening sentence of a mystery story.", "Describe a sunrise to someone who has never seen one.",
                 "Write a short birthday message for a coworker.", "Make up a riddle whose answer is 'a shadow'.",
                 "Write a two-sentence story about a lost umbrella.", "Describe the taste of lemon without saying 'sour'."],
    "factual": ["Who painted the Mona Lisa?", "How many continents are there?", "What is the boiling point of water?",
                "What is the largest planet in the Solar System?", "When did the first airplane flight happen?",
                "What language is spoken in Brazil?", "How many legs does a spider have?", "What is the chemical symbol for gold?"],
    "coding": ["How do I read a file line by line in Python?", "What does `git commit` do?",
               "Write a Python function that checks whether a number is even.", "What is the difference between a list and a tuple in Python?",
               "How do I remove duplicates from a list in Python?", "What is a SQL JOIN?",
               "Explain what an API is.", "How do I format a date as YYYY-MM-DD in Python?"],
    "rewrite": ["Rewrite more politely: 'Send me the report now.'", "Make this shorter: 'At this point in time we are currently unable to proceed.'",
                "Turn into a bullet list: eggs, flour, milk and sugar.", "Rewrite for a child: 'Photosynthesis converts light energy into chemical energy.'",
                "Fix the grammar: 'Me and him goes to the store yesterday.'", "Make this sound more confident: 'I think maybe I could possibly help.'"],
}

# --------------------------------------------------------------------------- product reviews
PRODUCTS = ["headphones", "coffee maker", "running shoes", "phone case", "backpack", "desk lamp", "blender",
            "keyboard", "water bottle", "rain jacket", "electric kettle", "yoga mat", "office chair", "power bank",
            "air fryer", "novel", "toaster", "webcam", "sleeping bag", "frying pan"]
POS = ["works perfectly", "exceeded my expectations", "is worth every penny", "feels really well made",
       "does exactly what it promises", "has held up great after months of use", "is a joy to use every day",
       "arrived early and works like a charm", "is the best purchase I've made this year", "is sturdy and looks great"]
NEG = ["stopped working after a week", "feels cheap and flimsy", "is a waste of money", "broke the second time I used it",
       "does not match the description at all", "arrived damaged and support never replied", "is far too loud",
       "was a big disappointment", "leaks every single time", "overheats and smells like burning plastic"]
NEU = ["is okay, nothing special", "does the job but is unremarkable", "is fine for the price", "is average in every way",
       "works as expected, neither good nor bad", "has some good points and some bad ones", "is decent but I've seen better",
       "is acceptable for occasional use", "met my expectations, no more and no less", "is alright once you get used to it"]
OPEN = {"positive": ["Love it!", "Five stars.", "Really happy with this.", "Highly recommend.", "Wow.", ""],
        "negative": ["Avoid.", "One star.", "Very disappointed.", "Do not buy.", "Ugh.", ""],
        "neutral": ["Mixed feelings.", "Three stars.", "It's fine.", "Meh.", "Hmm.", ""]}
CLOSE = {"positive": ["Would buy again.", "My whole family uses it now.", "Great value.", "", "Shipping was quick too."],
         "negative": ["Returning it.", "Never again.", "I want a refund.", "", "Save your money."],
         "neutral": ["Might keep it.", "Probably wouldn't buy again, but it's usable.", "", "Does what it says.",
                     "Hard to say more."]}
# phrasings with a twist (negation, contrast) so a keyword match is not enough
TWISTS = {"positive": ["I expected to be disappointed by the {p}, but it {x}.", "Not cheap, but the {p} {x}.",
                       "Can't complain at all: this {p} {x}."],
          "negative": ["I wanted to love this {p}, but it {x}.", "Looks nice, yet the {p} {x}.",
                       "Not happy: the {p} {x}."],
          "neutral": ["Not bad, not great: the {p} {x}.", "Honestly the {p} {x}.", "For what it is, the {p} {x}."]}


def make_reviews(rng: random.Random, n_per_label: int = 100) -> list[dict]:
    rows, seen = [], set()
    for label, phrases in (("positive", POS), ("negative", NEG), ("neutral", NEU)):
        k = 0
        while k < n_per_label:
            p, x = rng.choice(PRODUCTS), rng.choice(phrases)
            if rng.random() < 0.35:
                text = rng.choice(TWISTS[label]).format(p=p, x=x)
            else:
                text = " ".join(s for s in (rng.choice(OPEN[label]), f"The {p} {x}.", rng.choice(CLOSE[label])) if s)
            if text in seen:
                continue
            seen.add(text)
            rows.append({"text": text, "label": label})
            k += 1
    rng.shuffle(rows)
    return rows


def make_qa() -> list[dict]:
    rows = []
    for k, (i, q, a) in enumerate(QA):
        ctx = PASSAGES[i]
        start = ctx.index(a)  # fails loudly if an answer is not a span of its context
        rows.append({"id": f"qa-{k:03d}", "context": ctx, "question": q, "answers": {"text": [a], "answer_start": [start]}})
    return rows


# --------------------------------------------------------------------------- one small file per format
def make_formats(pref: list[dict], reviews: list[dict], qa: list[dict]) -> dict[str, list[dict]]:
    p = pref[:6]
    f = {
        "text.jsonl": [{"text": t} for t in PASSAGES[:6]],
        "instruction.jsonl": [
            {"instruction": "Summarize the following text:", "input": PASSAGES[2], "output": "Plants use light, water and CO2 to make sugar and oxygen, mostly in their leaves."},
            {"instruction": "Translate the following English text to French:", "input": "Good morning, friends.", "output": "Bonjour, les amis."},
            {"instruction": "Give one word that rhymes with 'cat'.", "input": "", "output": "Hat."},
            {"instruction": "Extract the year as JSON.", "input": "Penicillin was discovered in 1928.", "output": "{\"year\": 1928}"},
            {"instruction": "Classify the sentiment (positive, negative or neutral).", "input": "The lamp broke after a week.", "output": "negative"},
        ],
        "prompt_completion.jsonl": [{"prompt": r["prompt"], "completion": r["chosen"]} for r in p],
        "messages.jsonl": [{"messages": [{"role": "system", "content": "You answer briefly."},
                                         {"role": "user", "content": r["prompt"]},
                                         {"role": "assistant", "content": r["chosen"]}]} for r in p[:3]] + [
            {"messages": [{"role": "user", "content": "Hi! Can you help me plan dinner?"},
                          {"role": "assistant", "content": "Of course. What do you have in the fridge?"},
                          {"role": "user", "content": "Eggs, spinach and cheese."},
                          {"role": "assistant", "content": "Make a spinach and cheese omelette: whisk the eggs, wilt the spinach, fold in the cheese."}]}],
        "sharegpt.json": [{"conversations": [{"from": "human", "value": r["prompt"]}, {"from": "gpt", "value": r["chosen"]}]}
                          for r in p[:4]],
        "preference.jsonl": p,
        "preference_messages.jsonl": [{"prompt": [{"role": "user", "content": r["prompt"]}],
                                       "chosen": [{"role": "assistant", "content": r["chosen"]}],
                                       "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in p],
        "preference_implicit.jsonl": [{"chosen": f"\n\nHuman: {r['prompt']}\n\nAssistant: {r['chosen']}",
                                       "rejected": f"\n\nHuman: {r['prompt']}\n\nAssistant: {r['rejected']}"} for r in p],
        "preference_ab.csv": [{"prompt": r["prompt"], "response_A": a, "response_B": b, "preference": w}
                              for k, r in enumerate(p)
                              for a, b, w in [((r["chosen"], r["rejected"], "A") if k % 2 == 0 else (r["rejected"], r["chosen"], "B"))]],
        "unpaired.jsonl": [x for r in p for x in ({"prompt": r["prompt"], "completion": r["chosen"], "label": True},
                                                   {"prompt": r["prompt"], "completion": r["rejected"], "label": False})],
        "classification.tsv": reviews[:12],
        "extractive_qa.jsonl": qa[:6],
    }
    return f


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".csv", ".tsv"):
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t" if path.suffix == ".tsv" else ",")
            w.writeheader()
            w.writerows(rows)
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows):5d} rows  {path.relative_to(HERE)}")


def main() -> None:
    rng = random.Random(SEED)
    pref = make_preference(rng)
    reviews = make_reviews(rng)
    qa = make_qa()
    write(HERE / "preference" / "preference.jsonl", pref)
    write(HERE / "prompts" / "prompts.jsonl", [{"prompt": q, "category": c} for c, qs in PROMPTS.items() for q in qs])
    write(HERE / "sentiment" / "reviews.csv", reviews)
    write(HERE / "qa" / "qa.jsonl", qa)
    write(HERE / "general" / "general_text.jsonl", [{"text": t} for t in PASSAGES])
    for name, rows in make_formats(pref, reviews, qa).items():
        write(HERE / "formats" / name, rows)
    import pyarrow as pa
    import pyarrow.parquet as pq
    out = HERE / "formats" / "prompt_completion.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": r["prompt"], "completion": r["chosen"]} for r in pref[6:12]]), out)
    print(f"{6:5d} rows  {out.relative_to(HERE)}")


if __name__ == "__main__":
    main()
