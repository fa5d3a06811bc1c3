"""Learned-update spectra on a tiny model: the r×r shortcut equals a full SVD of ΔW, PEFT's own
scaling (rsLoRA included) is used, norms are relative to the real frozen W, and φ(i, j) behaves."""
from __future__ import annotations

import json

import pytest
import torch

from labs.lora import plots as lora_plots, spectra as lora_spectra
from labs.lora import LoraError


def make_adapter(base_dir, out, r, *, rslora=False, train_steps=0, seed=0, targets=("q_proj", "v_proj")):
    """A PEFT adapter on the tiny model: random B (init_lora_weights=False), optionally trained a few steps."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    pm = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r + 3, target_modules=list(targets), use_rslora=rslora,
                                          init_lora_weights=train_steps > 0))  # untrained: random B
    losses = []
    if train_steps:
        before = {n: p.detach().clone() for n, p in pm.named_parameters() if p.requires_grad}
        opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=5e-2)
        ids = torch.randint(0, 500, (4, 16), generator=torch.Generator().manual_seed(1))
        for _ in range(train_steps):
            loss = pm(input_ids=ids, labels=ids).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(loss.item())
        assert all(torch.isfinite(torch.tensor(losses)))
        assert any(not torch.equal(before[n], p) for n, p in pm.named_parameters() if p.requires_grad)
    pm.save_pretrained(out)
    return pm


def test_lowrank_singular_values_equal_full_svd():
    g = torch.Generator().manual_seed(0)
    for out_f, in_f, r in ((48, 32, 4), (16, 64, 8), (96, 96, 1)):
        B, A = torch.randn(out_f, r, generator=g), torch.randn(r, in_f, generator=g)
        fast = lora_spectra.lowrank_singular_values(B, A, 0.37)
        full = torch.linalg.svdvals((0.37 * B.double() @ A.double()))[:r]
        torch.testing.assert_close(fast, full, rtol=1e-9, atol=1e-12)


def test_effective_and_stable_rank():
    assert lora_spectra.effective_rank([3.0, 0.1, 0.1, 0.1]) == 1
    assert lora_spectra.effective_rank([1.0, 1.0, 1.0, 1.0]) == 4       # 90% of 4 equal parts needs all 4
    assert lora_spectra.effective_rank([2.0, 1.0, 0.0]) == 2             # 4/5 = 80% < 90%
    assert lora_spectra.effective_rank([0.0, 0.0]) == 0
    assert lora_spectra.stable_rank([2.0, 2.0, 0.0]) == pytest.approx(2.0)


@pytest.mark.parametrize("rslora", [False, True])
def test_adapter_spectra_match_peft_delta_weight(tiny_model_dir, tmp_path, rslora):
    pm = make_adapter(tiny_model_dir, tmp_path / "ad", r=4, rslora=rslora)
    res = lora_spectra.adapter_spectra(tmp_path / "ad")
    assert len(res.layers) == 2 * 2  # 2 layers x (q_proj, v_proj)
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    peft_modules = dict(pm.base_model.model.named_modules())
    for lay in res.layers:
        mod = peft_modules[lay.module]
        assert lay.scaling == pytest.approx(mod.scaling["default"])          # 11/4 or 11/2
        delta = mod.get_delta_weight("default").detach()                             # PEFT's own ΔW
        full = torch.linalg.svdvals(delta.double())[:4]
        torch.testing.assert_close(torch.tensor(lay.singular_values, dtype=torch.float64), full, rtol=1e-4, atol=1e-6)
        w = base[f"{lay.module}.weight"]
        assert lay.relative_norm == pytest.approx(float(delta.norm() / w.norm()), rel=1e-4)
        energy = (full ** 2).cumsum(0) / (full ** 2).sum()  # the share of Σσ² held by the top k
        assert lay.effective_rank == 1 + int((energy < 0.9).sum())  # the fewest σ that hold 90% of it
    rows = lora_spectra.spectra_rows(res)
    assert [r["effective rank (90%)"] for r in rows] == [lay.effective_rank for lay in res.layers]
    # the figure: σ_k per module type = the median over its 2 layers; one bar of effective rank per layer
    import statistics
    ax, ax2, *_ = lora_plots.spectra_figure(res).axes
    for line, kind in zip(ax.lines, ("q_proj", "v_proj")):
        svs = [lay.singular_values for lay in res.layers if lay.module.endswith(kind)]
        assert line.get_label() == f"{kind} (2)"
        assert list(line.get_xdata()) == [1, 2, 3, 4]
        assert list(line.get_ydata()) == pytest.approx([statistics.median(c) for c in zip(*svs)])
    assert [b.get_height() for b in ax2.patches] == [lay.effective_rank for lay in res.layers]


def test_trained_adapter_and_subspace_similarity(tiny_model_dir, tmp_path):
    make_adapter(tiny_model_dir, tmp_path / "r2", r=2, train_steps=3, seed=0)
    make_adapter(tiny_model_dir, tmp_path / "r8", r=8, train_steps=3, seed=1)
    res = lora_spectra.adapter_spectra(tmp_path / "r8")
    # ‖ΔW‖ of each layer by hand from its saved factors: ΔW = (alpha / r) B A, alpha = 19, r = 8
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    _, factors = lora_spectra.load_lora_factors(tmp_path / "r8")
    for lay in res.layers:
        a, b = (t.double() for t in factors[lay.module])
        delta = torch.linalg.matrix_norm(19 / 8 * b @ a)
        assert lay.delta_norm == pytest.approx(float(delta), rel=1e-6) and lay.delta_norm > 0  # B moved off zero
        assert lay.relative_norm == pytest.approx(float(delta / base[f"{lay.module}.weight"].double().norm()), rel=1e-6)
    eff = sorted(lay.effective_rank for lay in res.layers)
    assert res.summary().startswith(f"4 adapted layers, rank 8, scaling {19 / 8:.4g}: effective rank "
                                    f"(σ for 90% of energy) median {eff[2]}, max {eff[-1]} of 8; ‖ΔW‖/‖W‖ median ")

    sim = lora_spectra.subspace_similarity(tmp_path / "r2", tmp_path / "r8", "layers.1.self_attn.v_proj")
    assert sim.phi.shape == (2, 8) and sim.module == "model.layers.1.self_attn.v_proj"
    assert float(sim.phi.min()) >= -1e-12 and float(sim.phi.max()) <= 1 + 1e-9
    # φ by the definition, with explicit SVDs
    _, fa = lora_spectra.load_lora_factors(tmp_path / "r2")
    _, fb = lora_spectra.load_lora_factors(tmp_path / "r8")
    ua = torch.linalg.svd(fa[sim.module][0].double(), full_matrices=False)[2].T
    ub = torch.linalg.svd(fb[sim.module][0].double(), full_matrices=False)[2].T
    for i in (1, 2):
        for j in (1, 4, 8):
            want = torch.linalg.matrix_norm(ua[:, :i].T @ ub[:, :j]) ** 2 / min(i, j)
            assert float(sim.phi[i - 1, j - 1]) == pytest.approx(float(want), rel=1e-9)
    same = lora_spectra.subspace_similarity(tmp_path / "r8", tmp_path / "r8")
    torch.testing.assert_close(torch.diagonal(same.phi), torch.ones(8, dtype=torch.float64))  # a space vs itself
    assert len(sim.per_module_phi11) == 4
    ax, colorbar = lora_plots.similarity_figure(sim, "r2", "r8").axes
    import numpy as np
    np.testing.assert_array_equal(ax.images[0].get_array(), sim.phi.numpy())  # the heatmap is φ itself
    assert ax.get_title() == "subspace similarity, layers.1.self_attn.v_proj"
    assert ax.get_ylabel() == "i (top-i directions of r2, r=2)" and ax.get_xlabel() == "j (top-j directions of r8, r=8)"


def test_run_dir_and_bad_inputs(tiny_model_dir, tmp_path):
    make_adapter(tiny_model_dir, tmp_path / "run" / "adapter", r=2)
    (tmp_path / "run" / "status.json").write_text("{}")
    assert lora_spectra.find_adapter(tmp_path / "run") == tmp_path / "run" / "adapter"
    with pytest.raises(LoraError, match="no such directory"):
        lora_spectra.adapter_spectra(tmp_path / "nope")
    with pytest.raises(LoraError, match="no adapter_config.json"):
        lora_spectra.adapter_spectra(tmp_path)
    make_adapter(tiny_model_dir, tmp_path / "k", r=2, targets=("k_proj",))
    with pytest.raises(LoraError, match="share no adapted layer"):
        lora_spectra.subspace_similarity(tmp_path / "run", tmp_path / "k")
    cfg = json.loads((tmp_path / "k" / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(tmp_path / "gone")
    (tmp_path / "k" / "adapter_config.json").write_text(json.dumps(cfg))
    res = lora_spectra.adapter_spectra(tmp_path / "k")   # spectra still work; the norm ratio says why it is missing
    assert res.layers[0].relative_norm is None and "unavailable" in res.base_note
