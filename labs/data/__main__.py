"""python -m labs.data inspect FILE | convert FILE --to sft|preference|kto --out OUT.jsonl | list | real-sets"""
from __future__ import annotations

import argparse
import sys

from labs.data.clean import DEFAULT_NEAR_THRESHOLD, label_counts, validate
from labs.data.detect import FORMATS, DataError
from labs.data.formats import SFT_FORMS, convert
from labs.data.io import dataset_meta, list_datasets, read_file, write_jsonl


# --------------------------------------------------------------------------- CLI
def _inspect(args) -> int:
    data = read_file(args.file, fmt=args.format, mapping=args.map)
    report = validate(data, data.format, near_threshold=args.near)
    print(f"file:     {data.source}")
    print(f"format:   {data.format} ({data.reason})")
    print(f"columns:  {', '.join(data.columns)}")
    print(f"rows:     {len(data)}")
    counts = label_counts(data, data.format)
    if counts:
        print(f"labels:   {', '.join(f'{k}: {v}' for k, v in counts.most_common())}")
    if report.ok():
        print("problems: none")
    for p in report.problems:
        rows = ", ".join(map(str, p.rows[:10])) + (" ..." if p.count > 10 else "")
        print(f"problem:  {p.title}{' (' + p.detail + ')' if p.detail else ''}: {p.count} rows [{rows}]"
              f"{' fix: ' + p.fix if p.fix else ''}")
    return 0


def _convert(args) -> int:
    data = read_file(args.file, fmt=args.format, mapping=args.map)
    kw = {"form": args.form} if args.to == "sft" else {}
    out = convert(data, args.to, data.format, conversational=not args.standard, **kw)
    if not out:
        raise DataError(f"no rows could be converted to {args.to}"
                        + (f"; first problem: row {out.skipped[0][0]}: {out.skipped[0][1]}" if out.skipped else ""))
    n = write_jsonl(out, args.out)
    print(f"detected format: {data.format} ({data.reason})")
    print(f"wrote {n} rows to {args.out}" + (f"; skipped {len(out.skipped)}" if out.skipped else ""))
    for i, why in out.skipped[:10]:
        print(f"  skipped row {i}: {why}")
    return 0


def _list(args) -> int:
    for name in list_datasets():
        m = dataset_meta(name)
        print(f"{name}\t{m.get('format')}\t{m.get('rows')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m labs.data", description="Datasets: read, detect, validate, convert, list.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd in ("inspect", "convert"):
        s = sub.add_parser(cmd)
        s.add_argument("file")
        s.add_argument("--format", choices=list(FORMATS), help="skip detection and read the file as this format")
        s.add_argument("--map", help='column mapping, e.g. "instruction=question,output=answer"')
        if cmd == "inspect":
            s.add_argument("--near", type=float, default=DEFAULT_NEAR_THRESHOLD, help="near-duplicate Jaccard threshold")
        else:
            s.add_argument("--to", required=True, choices=["sft", "preference", "kto"])
            s.add_argument("--out", required=True)
            s.add_argument("--form", default="prompt_completion", choices=list(SFT_FORMS),
                           help="auto keeps conversations as messages (every assistant turn trained)")
            s.add_argument("--standard", action="store_true", help="plain strings instead of message lists")
    sub.add_parser("list")
    r = sub.add_parser("real-sets", help="save sentiment-real and drugs-real from the installed packages "
                       "(labs/data/real.py)")
    r.add_argument("--only", action="append", choices=["sentiment-real", "drugs-real"])
    r.add_argument("--train", type=int, default=2000, help="at most this many training rows")
    r.add_argument("--validation", type=int, default=500)
    r.add_argument("--test", type=int, default=1000)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--overwrite", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "real-sets":
            from labs.data.real import cli
            return cli(args.only, args.train, args.validation, args.test, args.seed, args.overwrite)
        return {"inspect": _inspect, "convert": _convert, "list": _list}[args.cmd](args)
    except (DataError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
