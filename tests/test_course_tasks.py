"""benchmarks/course_tasks.py --from: the table and chart read back from kept runs, nothing trained again."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import course_tasks  # noqa: E402


def _kept(work: Path, task: str, way: str, seed: int, score: float, seconds: float, split: str = "test"):
    """The files a finished run leaves in a work directory (as run_one writes them)."""
    name = f"{task}-{way}-seed{seed}"
    run_dir = work / "lab_data" / "runs" / f"2026-{name}"
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(json.dumps({"trainable_params": 10, "total_params": 100}))
    summary = {"step": 8, "train_seconds": seconds, "train_cpu_seconds": 2 * seconds}
    (work / f"{name}.log").write_text(f"run directory: {run_dir}\n{{'loss': '0.5'}}\n{json.dumps(summary)}\n"
                                      "some stderr line\n")
    data = "assets/qa_varied" if task == "qa" else task
    keys = ("exact_match", "f1") if task == "qa" else ("accuracy", "f1_macro")
    (work / f"{name}.eval.log").write_text(f"{keys[0]}={score}\n{keys[1]}={score - 0.1}\nn=200\nms_per_row=5.0\n"
                                           f"200 rows of {data}/{split}, task x, 1.0 s; report: r.html\n")


def test_from_kept_directories_later_runs_replace_earlier_ones(tmp_path, capsys):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir(), new.mkdir()
    for seed, sc in ((42, 0.8), (43, 0.9)):
        _kept(old, "qa", "llm", seed, sc, 180.0)
        _kept(old, "sentiment-real", "encoder", seed, 0.7, 100.0)
    _kept(new, "qa", "llm", 42, 0.6, 160.0)
    rows = course_tasks.collect([str(old), str(new)])
    qa = sorted((r["seed"], r["exact_match"], r["train_seconds"], r["split"]) for r in rows if r["task"] == "qa")
    assert qa == [(42, 0.6, 160.0, "test"), (43, 0.9, 180.0, "test")]  # seed 42 from the later directory
    assert course_tasks.main(["--from", str(old), str(new), "--chart", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "| qa (test, 200 rows) | llm | exact_match 75.0 ± 21.2 % |" in out  # mean ± sd of 60 and 90
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a PNG image, not just some bytes
    assert len(json.loads(out.strip().splitlines()[-1])["runs"]) == 4
    assert course_tasks.main(["qa", "--from", str(old), str(new)]) == 0  # tasks given: only those
    assert {r["task"] for r in json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"]} == {"qa"}


def test_from_refuses_a_directory_without_runs_in_one_line(tmp_path, capsys):
    assert course_tasks.main(["--from", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --from: no finished run") and "\n" not in err
    assert course_tasks.main([]) == 2
    assert "give one or more tasks" in capsys.readouterr().err


def test_chart_leaves_out_a_way_that_was_not_measured(tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    _kept(work, "qa", "llm", 42, 0.8, 100.0)
    _kept(work, "drugs-real", "encoder", 42, 0.7, 50.0)
    import matplotlib.pyplot as plt
    saved = {}
    real_savefig = plt.Figure.savefig

    def keep(fig, path, **kw):
        saved["heights"] = sorted(round(p.get_height(), 3) for p in fig.axes[0].patches
                                  if p.get_height() == p.get_height())  # NaN bars are not drawn
        return real_savefig(fig, path, **kw)
    plt.Figure.savefig = keep
    try:
        course_tasks.chart(course_tasks.collect([str(work)]), str(tmp_path / "c.png"))
    finally:
        plt.Figure.savefig = real_savefig
    assert saved["heights"] == [60.0, 70.0]  # drugs encoder F1 macro, qa llm F1: nothing at 0 for the missing ways
