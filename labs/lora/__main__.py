"""The LoRA explorer's command line (`python -m labs.lora ...`; commands in labs/lora/arithmetic.py's docstring).

Bad input exits with code 2 and one line on stderr."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict

from labs.lora import arithmetic as lora
from labs.lora.arithmetic import LoraError, adapter_file_bytes, count_trainable, model_shapes


def _table(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    cells = [[("" if r.get(c) is None else f"{r[c]:,}" if isinstance(r[c], int) else str(r[c])) for c in cols] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = lambda vals: "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths)))  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths])] + [line(c) for c in cells])


def _numbers(text: str, flag: str, kind):
    """'1,2,4' -> [1, 2, 4]; a word that is not a number is named in the error."""
    out = []
    for x in (t.strip() for t in text.split(",")):
        if not x:
            continue
        try:
            out.append(kind(x))
        except ValueError:
            what = "whole numbers" if kind is int else "numbers"
            raise LoraError(f"{flag}: '{x}' is not a number; give {what} separated by commas, e.g. 1,2,4,8") from None
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m labs.lora", description=lora.__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="action", required=True)
    for name in ("count", "memory"):
        p = sub.add_parser(name)
        p.add_argument("--model", default=None, help="Hub id, local model dir, dir with only config.json (default: SmolLM2)")
        p.add_argument("--rank", "-r", default="8")
        p.add_argument("--targets", default="q_proj,v_proj", help="comma-separated module names or all-linear")
        p.add_argument("--dora", action="store_true", help="count DoRA's magnitude vectors too")
        p.add_argument("--json", action="store_true")
        if name == "memory":
            p.add_argument("--dtype", default="bf16", choices=["fp32", "bf16", "fp16"])
            p.add_argument("--batch", type=int, default=8)
            p.add_argument("--seq", type=int, default=512)
            p.add_argument("--gpu-gb", type=float, default=24.0)
    p = sub.add_parser("spectra")
    p.add_argument("adapter", help="adapter dir (adapter_config.json + adapter_model.safetensors) or run dir")
    p.add_argument("--compare", default=None, help="a second adapter: subspace similarity of the two")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("sweep")
    p.add_argument("--name", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--ranks", default="1,2,4,8")
    p.add_argument("--alphas", default=None, help="comma-separated; default alpha = 2 x rank")
    p.add_argument("--targets", default="all-linear")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    p.add_argument("--eval-rows", type=int, default=20, help="held-out rows answered for the task metric")
    p.add_argument("--dataset", default=None)
    p.add_argument("--wait", action="store_true", help="wait and print the results table")
    p = sub.add_parser("sweep-status", help="the results table of a sweep (and its plot with --plot)")
    p.add_argument("name")
    p.add_argument("--plot", default=None, help="write the sweep figure to this PNG")
    a = ap.parse_args(argv)
    try:
        if a.action in ("count", "memory"):
            try:
                rank = int(a.rank)
            except ValueError:
                raise LoraError(f"rank {a.rank!r}: must be a whole number ≥ 1") from None
            shapes = model_shapes(a.model)
            c = count_trainable(shapes, rank, a.targets, use_dora=a.dora)
            if a.action == "count":
                if a.json:
                    print(json.dumps({"model": shapes.description, "rank": rank, "rows": c.rows,
                                      "trainable": c.trainable, "all_params": c.total_params,
                                      "adapter_bytes": adapter_file_bytes(shapes, c)}, indent=1))
                else:
                    print(f"{shapes.description}: {shapes.architecture}, {shapes.total_params:,} parameters")
                    print(_table(c.rows))
                    print(c.summary())
                    print(f"adapter file ≈ {lora.fmt_bytes(adapter_file_bytes(shapes, c))} (fp32 safetensors)")
            else:
                from labs.lora import memory as lora_memory
                est = lora_memory.estimate(shapes, c, dtype=a.dtype, batch_size=a.batch, seq_len=a.seq, gpu_gb=a.gpu_gb)
                rows = lora_memory.table_rows(est)
                print(json.dumps(rows, indent=1) if a.json else _table(rows))
        elif a.action == "spectra":
            from labs.lora import spectra as lora_spectra
            res = lora_spectra.adapter_spectra(a.adapter)
            rows = lora_spectra.spectra_rows(res)
            print(json.dumps([asdict(x) for x in res.layers], indent=1) if a.json else _table(rows))
            print(res.summary())
            if a.compare:
                sim = lora_spectra.subspace_similarity(a.adapter, a.compare)
                print(sim.summary())
        elif a.action == "sweep":
            from labs.lora import sweep as lora_sweep
            ranks = _numbers(a.ranks, "--ranks", int)
            alphas = _numbers(a.alphas, "--alphas", float) if a.alphas else None
            sw = lora_sweep.start_sweep(a.name, ranks=ranks, alphas=alphas, model=a.model, targets=a.targets,
                                        max_steps=a.steps, dataset=a.dataset, batch_size=a.batch_size,
                                        learning_rate=a.lr, eval_rows=a.eval_rows)
            print(f"sweep {sw['name']}: runs {', '.join(sw['run_ids'])}")
            if a.wait:
                lora_sweep.wait_sweep(sw["name"])
                print(_table(lora_sweep.sweep_rows(sw["name"])))
        elif a.action == "sweep-status":
            from labs.lora import plots as lora_plots, sweep as lora_sweep
            print(_table(lora_sweep.sweep_rows(a.name)))
            if a.plot:
                lora_plots.sweep_figure(lora_sweep.sweep_results(a.name), title=f"sweep {a.name}").savefig(a.plot)
                print(f"wrote {a.plot}")
    except LoraError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # e.g. int() of a bad list entry
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
