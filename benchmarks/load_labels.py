"""Many people labeling and rating one shared lab at once, through the same endpoints a page uses.

    python benchmarks/load_labels.py                      # 20 annotators x 50 pairs, 20 raters x 50 answers
    python benchmarks/load_labels.py --people 5 --items 10

The app runs on loopback with --auth (one account per person); each person is a gradio_client signed in as
themselves, in a thread of their own, calling pref_next/pref_label (labels) or rlhf_next/rlhf_rate (ratings)
until nothing is left. Then the store is read back: labels stored / sent, duplicates (a pair labeled twice by
one person), labels recorded under a name other than their sender's; and latency per call, p50 / p95.
Only loopback is used. `run()` is what tests/test_load_sharing.py calls to check correctness (not time).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prepare(data: Path, items: int, model_dir: Path) -> str:
    """`items` pairs to label and a loop whose first round has `items` answers to rate (made with `model_dir`)."""
    from labs import models, paths, store
    from labs.feedback import loop
    paths.set_data_dir(data)
    store.add_pairs([{"prompt": f"Question {i}?", "a": f"first answer {i}", "b": f"second answer {i}"}
                     for i in range(items)], batch="load")
    typed = "\n".join(f"Prompt number {i}" for i in range(items // 2))
    loop.start("load", typed=typed, model=str(model_dir), pool="typed", prompts=items // 2, k=2,
               max_new_tokens=4, temperature=0.9)
    loop.generate_round("load", loader=lambda spec: models.load(spec, device="cpu"))
    return "load"


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def run(url: str, people: list[tuple[str, str]], kind: str, loop_name: str = "load") -> dict:
    """Each (name, password) in a thread: label (kind 'labels') or rate (kind 'ratings') until none is left."""
    from gradio_client import Client
    sent: dict[str, list[int]] = {}
    latency: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def person(name: str, password: str):
        try:
            c = Client(url, auth=(name, password), verbose=False)
            mine = []
            if kind == "labels":
                item = c.predict(name, api_name="/pref_next")[0]
                while item is not None:
                    t0 = time.perf_counter()
                    nxt = c.predict(item, "A", name, api_name="/pref_label")[0]
                    lat = time.perf_counter() - t0
                    mine.append(item)
                    item = nxt
                    with lock:
                        latency.append(lat)
            else:
                item = c.predict(name, loop_name, api_name="/rlhf_next")[0]
                while item is not None:
                    t0 = time.perf_counter()
                    nxt = c.predict(item, 4, name, api_name="/rlhf_rate")[0]
                    lat = time.perf_counter() - t0
                    mine.append(item)
                    item = nxt
                    with lock:
                        latency.append(lat)
            with lock:
                sent[name] = mine
        except Exception as e:  # noqa: BLE001 - counted and shown, the others go on
            with lock:
                errors.append(f"{name}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=person, args=p) for p in people]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"sent": sent, "errors": errors, "seconds": time.perf_counter() - t0,
            "p50_ms": 1000 * _percentile(latency, 0.5), "p95_ms": 1000 * _percentile(latency, 0.95),
            "calls": len(latency)}


def stored(data: Path, kind: str, loop_name: str = "load") -> list[tuple[int, str]]:
    """(item id, person) of every label or rating in the store."""
    from labs import paths, store
    paths.set_data_dir(data)
    if kind == "labels":
        return [(lab["pair_id"], lab["annotator"]) for lab in store.labels()]
    return [(r["sample_id"], r["rater"]) for r in store.ratings(loop_name)]


def check(data: Path, result: dict, kind: str) -> dict:
    rows = stored(data, kind)
    sent = {(item, name) for name, items in result["sent"].items() for item in items}
    return {"sent": sum(len(v) for v in result["sent"].values()), "stored": len(rows),
            "duplicates": len(rows) - len(set(rows)), "lost": len(sent - set(rows)),
            "not_their_sender": len(set(rows) - sent), "errors": len(result["errors"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=20)
    ap.add_argument("--items", type=int, default=50)
    a = ap.parse_args()
    from tests.helpers import make_tiny_model, start_app, stop_app
    from transformers import AutoTokenizer

    from labs import models
    work = Path(tempfile.mkdtemp(prefix="lab-load-"))
    tok = AutoTokenizer.from_pretrained(models.offline_bundle().path)
    model_dir = make_tiny_model(work / "tiny", tok)
    data = work / "lab_data"
    prepare(data, a.items, model_dir)
    annotators = [(f"ann{i:02d}", f"pw-ann-{i:02d}") for i in range(a.people)]
    raters = [(f"rat{i:02d}", f"pw-rat-{i:02d}") for i in range(a.people)]
    auth = [x for n, p in annotators + raters for x in ("--auth", f"{n}:{p}")]
    proc, url = start_app(data, "--model", str(model_dir), "--no-preload", *auth)
    try:
        out = {}
        for kind, people in (("labels", annotators), ("ratings", raters)):
            res = run(url, people, kind)
            out[kind] = {**check(data, res, kind), "seconds": round(res["seconds"], 1),
                         "p50_ms": round(res["p50_ms"], 1), "p95_ms": round(res["p95_ms"], 1)}
            for e in res["errors"][:5]:
                print(f"error: {e}", file=sys.stderr)
    finally:
        stop_app(proc)
    print(json.dumps(out, indent=1))
    for kind, r in out.items():
        print(f"{kind}: stored/sent={r['stored']}/{r['sent']} duplicates={r['duplicates']} lost={r['lost']} "
              f"p50={r['p50_ms']} ms p95={r['p95_ms']} ms ({a.people} people x {a.items}, {r['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
