"""A real rank sweep through the run engine on the tiny model (2 ranks, 3 steps each), then the tab
driven through gradio_client: calculator, scaling, sweep status (re-attached from its record),
spectra and subspace similarity of the sweep's two adapters."""
from __future__ import annotations

import json
import math

import pytest

from labs import lora
from labs.lora import plots as lora_plots, sweep as lora_sweep
from labs.lora.__main__ import main as lora_cli


@pytest.fixture(scope="module")
def swept(tiny_model_dir, tmp_path_factory):
    """A finished 2-point sweep in its own data directory."""
    d = tmp_path_factory.mktemp("lora_data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAB_DATA_DIR", str(d))
        rec = lora_sweep.start_sweep("tiny", ranks=[1, 4], model=str(tiny_model_dir), max_steps=3, warmup=0,
                                     batch_size=2, max_length=160, eval_rows=1, eval_steps=3, logging_steps=1,
                                     learning_rate=1e-3, device="cpu")
        results = lora_sweep.wait_sweep("tiny", timeout_s=420)
        yield d, rec, results


@pytest.mark.slow
def test_sweep_trains_every_rank_with_the_same_budget(swept, tiny_model_dir):
    d, rec, results = swept
    on_disk = json.loads((d / "sweeps" / "tiny.json").read_text())
    assert on_disk["run_ids"] == rec["run_ids"] and len(rec["run_ids"]) == 2
    assert [r["state"] for r in results] == ["finished", "finished"], [r.get("error") for r in results]
    assert [r["rank"] for r in results] == [1, 4] and {r["step"] for r in results} == {3}
    assert all(math.isfinite(r["eval_loss"]) and r["eval_loss"] > 0 for r in results)  # answers kept in 160 tokens
    shapes = lora.model_shapes(str(tiny_model_dir))
    for r in results:  # the run's own count (PEFT, in the recipe) equals the calculator's
        assert r["trainable_params"] == lora.count_trainable(shapes, r["rank"], "all-linear").trainable
    assert results[1]["trainable_params"] == 4 * results[0]["trainable_params"]
    assert results[0]["metric"] == "exact_match" and results[0]["train_seconds"] > 0
    # the base model answers the held-out rows once per sweep; every finished row shows that number
    from labs import runs
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAB_DATA_DIR", str(d))
        has_base = ["base/exact_match" in json.loads((runs.get(r["run_id"]).dir / "eval_metrics.json").read_text())
                    for r in results]
    assert has_base == [True, False]
    assert results[1]["base_metric_value"] == results[0]["base_metric_value"] is not None
    fig = lora_plots.sweep_figure(results)
    assert fig.get_suptitle() == "rank sweep: 2/2 runs finished"
    for ax, key in zip(fig.axes, ("eval_loss", "metric_value", "train_seconds", "trainable_params")):
        (line, *base) = ax.lines  # one line over rank (+ the base model's level on the metric panel)
        assert list(line.get_xdata()) == [1, 4], key
        assert list(line.get_ydata()) == pytest.approx([r[key] for r in results]), key
    assert list(fig.axes[1].lines[1].get_ydata()) == [results[0]["base_metric_value"]] * 2
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LAB_DATA_DIR", str(d))
        rows = lora_sweep.sweep_rows("tiny")
        assert lora_sweep.list_sweeps() == ["tiny"] and lora_sweep.sweep_done("tiny")
    assert [r["rank"] for r in rows] == [1, 4] and rows[0]["step"] == "3/3"


@pytest.mark.slow
def test_tab_through_gradio_client(swept, tiny_model_dir, monkeypatch, serve_tab):
    from components import lora_tab
    d, rec, _ = swept
    monkeypatch.setenv("LAB_DATA_DIR", str(d))
    with serve_tab(lora_tab, d, str(tiny_model_dir)) as c:
        targets, info = c.predict("", str(tiny_model_dir), api_name="/lora_layers")
        assert "q_proj" in info and "LlamaForCausalLM" in info

        out = c.predict("", str(tiny_model_dir), 8, 16, ["q_proj", "v_proj"], False, False, "fp32", 4, 128, 24, 0.0,
                        api_name="/lora_count")
        want = lora.count_trainable(lora.model_shapes(str(tiny_model_dir)), 8, ["q_proj", "v_proj"]).trainable
        assert f"{want:,} trainable parameters" in out[0]
        assert [r[0] for r in out[1]["data"]] == ["q_proj", "v_proj"]
        assert [r[0] for r in out[3]["data"]] == ["full fine-tuning", "LoRA", "LoRA on 4-bit base"]
        from transformers import GPT2Config
        gpt2_dir = d / "gpt2-config-only"
        GPT2Config(n_layer=2, n_embd=64, n_head=4).save_pretrained(gpt2_dir)   # config.json alone
        bad = c.predict(str(gpt2_dir), str(tiny_model_dir), 8, 16, ["q_proj"], False, False, "fp32", 4, 128, 24, 0.05,
                        api_name="/lora_count")
        assert "'q_proj' is not a layer of GPT2LMHeadModel" in bad[0] and "c_attn" in bad[0]
        targets, info = c.predict(str(gpt2_dir), str(tiny_model_dir), api_name="/lora_layers")
        assert "c_attn" in info

        plot, table = c.predict(16, api_name="/lora_scaling")
        assert table["data"][0][:3] == [1, 16.0, 16.0]

        st_table, _, st_md = c.predict("tiny", api_name="/lora_sweep_status")
        assert "2/2 finished" in st_md and len(st_table["data"]) == 2

        run1, run4 = rec["run_ids"]
        md, table, _, layer = c.predict(run4, api_name="/lora_spectra")
        assert "effective rank" in md and "rank 4" in md and len(table["data"]) == 2 * 7
        assert table["headers"][3] == "effective rank (90%)"
        # each layer's effective rank, by hand from the run's saved factors: σ of (alpha / r) B A, the fewest that
        # hold 90% of Σσ²; the trained update is not zero, so at least 1
        import torch
        from labs import runs
        from labs.lora.spectra import load_lora_factors
        cfg, factors = load_lora_factors(runs.get(run4).dir / "adapter")
        assert (cfg["r"], cfg["lora_alpha"], cfg.get("use_rslora", False)) == (4, 8, False)
        for row in table["data"]:
            a, b = (t.double() for t in factors[f"model.{row[0]}"])
            sv = torch.linalg.svdvals(8 / 4 * b @ a)[:4]
            energy = (sv ** 2).cumsum(0) / (sv ** 2).sum()
            assert row[3] == 1 + int((energy < 0.9).sum()) >= 1, row
        sim_md, _ = c.predict(run1, run4, "", api_name="/lora_similarity")
        assert "φ(1,1)" in sim_md
        err_md, _ = c.predict(run1, "no-such-run", "", api_name="/lora_similarity")
        assert "no such directory" in err_md

        _, msg = c.predict("", str(tiny_model_dir), [], "alpha = 2 × rank", [16], "all-linear", 50, 3e-4, 0, False,
                           4, api_name="/lora_sweep_start")
        assert "at least one rank" in msg


def test_sweep_configs_pair_ranks_and_alphas(data_dir):
    from labs.lora import LoraError
    two_r = lora_sweep.sweep_configs([1, 4], max_steps=50)
    assert [(c["lora_r"], c["lora_alpha"]) for c in two_r] == [(1, 2), (4, 8)]
    from labs.sft.config import PRESETS
    lr = PRESETS["instruction"]["learning_rate"]
    assert {(c["max_steps"], c["seed"], c["learning_rate"], c["batch_size"]) for c in two_r} == {(50, 42, lr, 4)}
    assert [c["eval_base"] for c in two_r] == [True, False] and {c["eval_steps"] for c in two_r} == {25}
    grid = lora_sweep.sweep_configs([2, 8], [4, 16, 64], max_steps=50)
    assert len(grid) == 6 and {c["method"] for c in grid} == {"lora"}
    assert [(c["lora_r"], c["lora_alpha"]) for c in lora_sweep.sweep_configs([8], [4, 32])] == [(8, 4), (8, 32)]
    with pytest.raises(LoraError, match="at least one rank"):
        lora_sweep.sweep_configs([])
    with pytest.raises(LoraError, match="learning_rate"):
        lora_sweep.sweep_configs([1], learning_rate=0.5)
    with pytest.raises(LoraError, match="sweep name"):
        lora_sweep.start_sweep("../evil", ranks=[1])
    with pytest.raises(LoraError, match="no sweep 'nope'"):
        lora_sweep.load_sweep("nope")
    # an alpha sweep at one rank is drawn against alpha
    res = [{"rank": 8, "alpha": a, "eval_loss": 1 / a, "state": "finished"} for a in (4, 16, 64)]
    assert lora_plots.sweep_figure(res).axes[0].get_xlabel() == "lora_alpha"
    # a sweep whose runs are all still queued draws empty panels instead of failing
    fig = lora_plots.sweep_figure([{"rank": 1, "alpha": 2, "state": "queued"}, {"rank": 2, "alpha": 4, "state": "queued"}])
    assert fig.get_suptitle() == "rank sweep: 0/2 runs finished" and len(fig.axes) == 4
    for ax in fig.axes:
        assert all(len(line.get_xdata()) == 0 for line in ax.lines) and ax.get_xscale() == "linear"
        assert [t.get_text() for t in ax.texts] == ["waiting for results"]


def test_sweep_cli_bad_input(data_dir, capsys):
    for args, needle in ((["sweep", "--ranks", "0,4", "--steps", "50"], "between 1 and 1024"),
                         (["sweep", "--ranks", "two"], "'two'"),
                         (["sweep-status", "nope"], "no sweep 'nope'")):
        assert lora_cli(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and needle in err, err
    # nothing was submitted or recorded
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_sweep_rows_share_columns_while_running(monkeypatch):
    mixed = [{"rank": 1, "alpha": 2, "run_id": "a", "state": "finished", "metric": "exact_match", "metric_value": 0.5,
              "step": 50, "max_steps": 50, "eval_loss": 1.0},
             {"rank": 2, "alpha": 4, "run_id": "b", "state": "queued"}]
    monkeypatch.setattr(lora_sweep, "sweep_results", lambda name: mixed)
    rows = lora_sweep.sweep_rows("any")
    assert list(rows[0]) == list(rows[1]) and rows[0]["exact_match"] == 0.5 and rows[1]["exact_match"] is None
