"""Inside a trained adapter: singular values of each learned update ΔW = scaling·B·A, its effective
rank, its size next to the frozen weight, and how two adapters' subspaces overlap (LoRA paper, §7).

    python -m labs.lora spectra lab_data/runs/<id>/adapter
    python -m labs.lora spectra RUN_A --compare RUN_B          # subspace similarity φ(i, j)
    from labs.lora import spectra as lora_spectra
    res = lora_spectra.adapter_spectra(adapter_dir)             # per layer: σ, effective rank, ‖ΔW‖/‖W‖
    sim = lora_spectra.subspace_similarity(dir_r8, dir_r64, module="layers.0.self_attn.v_proj")

ΔW has rank ≤ r, so its singular values come from an r×r problem: with B = Q_B·R_B and Aᵀ = Q_A·R_A
(thin QR), ΔW = s·Q_B·(R_B·R_Aᵀ)·Q_Aᵀ and Q_B, Q_A have orthonormal columns, so σ(ΔW) = σ(s·R_B·R_Aᵀ).
Cost O((in + out)·r²) instead of an SVD of the out×in matrix (tests compare with torch.linalg.svdvals).
`scaling` is PEFT's own: lora_alpha / r, or lora_alpha / √r with use_rslora (rank_pattern /
alpha_pattern honoured). For DoRA adapters this is the direction update before the magnitude rescale.

Effective rank here = the number of singular values that hold 90% of the energy Σσ² (so a rank-8
adapter whose update is dominated by one direction has effective rank 1). The stable rank
Σσ²/σ₁² is reported too.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from labs.lora.arithmetic import LoraError

ENERGY = 0.90


@dataclass
class LayerSpectrum:
    module: str              # e.g. model.layers.3.self_attn.q_proj
    shape: tuple             # (out, in)
    rank: int
    scaling: float
    singular_values: list[float]
    effective_rank: int      # singular values holding 90% of Σσ²
    stable_rank: float       # Σσ² / σ₁²
    delta_norm: float        # ‖ΔW‖_F
    weight_norm: float | None = None   # ‖W‖_F of the frozen base weight (None when the base is unavailable)

    @property
    def relative_norm(self) -> float | None:
        return self.delta_norm / self.weight_norm if self.weight_norm else None


@dataclass
class AdapterSpectra:
    adapter_dir: str
    config: dict
    layers: list[LayerSpectrum] = field(default_factory=list)
    base_note: str = ""

    def summary(self) -> str:
        if not self.layers:
            return f"{self.adapter_dir}: no LoRA layers"
        eff = [lay.effective_rank for lay in self.layers]
        rel = [lay.relative_norm for lay in self.layers if lay.relative_norm is not None]
        r = self.layers[0].rank
        txt = (f"{len(self.layers)} adapted layers, rank {r}, scaling {self.layers[0].scaling:.4g}: "
               f"effective rank (σ for {ENERGY:.0%} of energy) median {sorted(eff)[len(eff) // 2]}, "
               f"max {max(eff)} of {r}")
        if rel:
            txt += f"; ‖ΔW‖/‖W‖ median {sorted(rel)[len(rel) // 2]:.2e}, max {max(rel):.2e}"
        return txt + (f" ({self.base_note})" if self.base_note else "")


# --------------------------------------------------------------------------- maths (pure)
def lowrank_singular_values(B, A, scaling: float = 1.0):
    """σ(scaling·B·A) for B (out×r), A (r×in) from the r×r core; descending, length r."""
    import torch
    B, A = B.double(), A.double()
    _, rb = torch.linalg.qr(B)          # B = Q_B R_B, R_B r×r
    _, ra = torch.linalg.qr(A.T)        # Aᵀ = Q_A R_A
    return torch.linalg.svdvals(scaling * rb @ ra.T)


def effective_rank(sv, energy: float = ENERGY) -> int:
    """Singular values needed to hold `energy` of Σσ² (0 for an all-zero update)."""
    import torch
    e = torch.as_tensor(sv, dtype=torch.float64) ** 2
    tot = float(e.sum())
    if tot == 0:
        return 0
    cum = torch.cumsum(e, 0) / tot
    return int((cum < energy - 1e-12).sum()) + 1


def stable_rank(sv) -> float:
    import torch
    e = torch.as_tensor(sv, dtype=torch.float64) ** 2
    return float(e.sum() / e[0]) if float(e[0]) > 0 else 0.0


def right_singular_vectors(A):
    """Columns: right-singular vectors of A (r×in) as in the LoRA paper's §7, shape in×r, by σ descending."""
    import torch
    _, _, vh = torch.linalg.svd(A.double(), full_matrices=False)
    return vh.T


def subspace_phi(A1, A2):
    """φ(i, j) = ‖U_iᵀ U_j‖²_F / min(i, j) for i ≤ r1, j ≤ r2 (LoRA paper eq. 4); values in [0, 1]."""
    import torch
    u1, u2 = right_singular_vectors(A1), right_singular_vectors(A2)
    g = (u1.T @ u2) ** 2                       # r1×r2 squared overlaps
    cum = torch.cumsum(torch.cumsum(g, 0), 1)  # cum[i-1, j-1] = ‖U_iᵀ U_j‖²_F
    i = torch.arange(1, g.shape[0] + 1, dtype=torch.float64)[:, None]
    j = torch.arange(1, g.shape[1] + 1, dtype=torch.float64)[None, :]
    return cum / torch.minimum(i, j)


# --------------------------------------------------------------------------- adapter files
def find_adapter(path: str | Path) -> Path:
    """An adapter dir, or a run dir (its adapter/, else its latest checkpoint)."""
    p = Path(path).expanduser()
    if (p / "adapter_config.json").exists():
        return p
    if (p / "adapter" / "adapter_config.json").exists():
        return p / "adapter"
    ckpts = sorted(p.glob("checkpoints/checkpoint-*"), key=lambda c: int(c.name.split("-")[-1])
                   if c.name.split("-")[-1].isdigit() else -1)
    for c in reversed(ckpts):
        if (c / "adapter_config.json").exists():
            return c
    if not p.exists():
        raise LoraError(f"adapter '{path}': no such directory")
    raise LoraError(f"adapter '{path}': no adapter_config.json here (is it a LoRA run that has saved an adapter?)")


def _module_scaling(cfg: dict, module: str) -> tuple[int, float]:
    """rank and PEFT's scaling for one module, honouring rank_pattern / alpha_pattern."""
    r, alpha = cfg.get("r", 8), cfg.get("lora_alpha", 8)
    for pat, val in (cfg.get("rank_pattern") or {}).items():
        if re.fullmatch(rf"(.*\.)?{pat}", module):
            r = val
    for pat, val in (cfg.get("alpha_pattern") or {}).items():
        if re.fullmatch(rf"(.*\.)?{pat}", module):
            alpha = val
    return r, (alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r)


def load_lora_factors(adapter_dir: str | Path) -> tuple[dict, dict[str, tuple]]:
    """(adapter_config, {module: (A, B)}) read from adapter_model.safetensors (or .bin)."""
    import torch
    d = find_adapter(adapter_dir)
    cfg = json.loads((d / "adapter_config.json").read_text())
    if cfg.get("peft_type", "LORA") != "LORA":
        raise LoraError(f"adapter '{adapter_dir}': a {cfg.get('peft_type')} adapter, not LoRA")
    if (d / "adapter_model.safetensors").exists():
        from safetensors.torch import load_file
        sd = load_file(str(d / "adapter_model.safetensors"))
    elif (d / "adapter_model.bin").exists():
        sd = torch.load(d / "adapter_model.bin", map_location="cpu", weights_only=True)
    else:
        raise LoraError(f"adapter '{adapter_dir}': no adapter_model.safetensors")
    factors: dict[str, dict] = {}
    for k, v in sd.items():
        m = re.match(r"(?:base_model\.model\.)?(.+)\.lora_(A|B)(?:\.[^.]+)?\.weight$", k) \
            or re.match(r"(?:base_model\.model\.)?(.+)\.lora_embedding_(A|B)(?:\.[^.]+)?$", k)
        if m:
            factors.setdefault(m.group(1), {})[m.group(2)] = v.float()
    # an embedding's A is r×num_embeddings and B dim×r: ΔWᵀ = B·A, the same singular values
    return cfg, {mod: (f["A"], f["B"]) for mod, f in factors.items() if "A" in f and "B" in f}


def _base_weights(cfg: dict, modules: list[str], adapter_dir: Path) -> tuple[dict, str]:
    """Frozen W of each module, read tensor by tensor from the base model's safetensors (no model built)."""
    from labs import models
    base = cfg.get("base_model_name_or_path")
    try:
        src = models.resolve(base)
    except models.ModelError as e:
        return {}, f"‖W‖ unavailable: {e}"
    path = Path(src.path)
    if not path.is_dir():
        return {}, f"‖W‖ unavailable: base '{base}' is not on this machine"
    files = sorted(path.glob("*.safetensors"))
    if not files:
        return {}, f"‖W‖ unavailable: no safetensors in {path}"
    from safetensors import safe_open
    want = {f"{m}.weight": m for m in modules}
    out = {}
    for f in files:
        with safe_open(str(f), framework="pt") as fh:
            for key in fh.keys():
                if key in want:
                    out[want[key]] = fh.get_tensor(key).float()
    return out, ""


def adapter_spectra(adapter_dir: str | Path, with_base: bool = True) -> AdapterSpectra:
    """Per adapted layer: σ(ΔW) with PEFT's scaling, effective rank, ‖ΔW‖_F and ‖ΔW‖_F/‖W‖_F."""
    d = find_adapter(adapter_dir)
    cfg, factors = load_lora_factors(d)
    if not factors:
        raise LoraError(f"adapter '{adapter_dir}': holds no lora_A/lora_B tensors")
    weights, note = _base_weights(cfg, list(factors), d) if with_base else ({}, "")
    res = AdapterSpectra(str(d), cfg, base_note=note)
    for mod in sorted(factors, key=_natural_key):
        A, B = factors[mod]
        r, s = _module_scaling(cfg, mod)
        sv = lowrank_singular_values(B, A, s)
        w = weights.get(mod)
        res.layers.append(LayerSpectrum(
            module=mod, shape=(B.shape[0], A.shape[1]), rank=A.shape[0], scaling=s,
            singular_values=[float(x) for x in sv], effective_rank=effective_rank(sv), stable_rank=stable_rank(sv),
            delta_norm=float(sv.pow(2).sum().sqrt()),  # ‖ΔW‖_F² = Σσ²
            weight_norm=float(w.norm()) if w is not None else None))
    return res


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def spectra_rows(res: AdapterSpectra, top: int = 4) -> list[dict]:
    rows = []
    for lay in res.layers:
        rows.append({"layer": lay.module.removeprefix("model."), "shape out×in": f"{lay.shape[0]}×{lay.shape[1]}",
                     "rank": lay.rank, "effective rank (90%)": lay.effective_rank,
                     "stable rank": round(lay.stable_rank, 2),
                     "σ top": ", ".join(f"{x:.3g}" for x in lay.singular_values[:top]),
                     "‖ΔW‖": f"{lay.delta_norm:.3g}",
                     "‖ΔW‖/‖W‖": None if lay.relative_norm is None else f"{lay.relative_norm:.2e}"})
    return rows


@dataclass
class Similarity:
    module: str
    rank_a: int
    rank_b: int
    phi: object              # torch tensor r_a × r_b
    per_module_phi11: dict   # φ(1, 1) for every shared module: does the top direction agree?

    def summary(self) -> str:
        import statistics
        top = self.per_module_phi11
        return (f"{self.module}: φ(1,1) = {float(self.phi[0, 0]):.3f}; φ(i, j) over i ≤ {self.rank_a}, j ≤ {self.rank_b}; "
                f"top-direction overlap φ(1,1) across {len(top)} shared layers: median {statistics.median(top.values()):.3f}")


def subspace_similarity(adapter_a, adapter_b, module: str | None = None) -> Similarity:
    """φ(i, j) between the A matrices of two adapters on the same layer (default: a middle layer's
    first shared module, as in the paper's figures), plus φ(1,1) for every shared layer."""
    _, fa = load_lora_factors(adapter_a)
    _, fb = load_lora_factors(adapter_b)
    shared = sorted(set(fa) & set(fb), key=_natural_key)
    if not shared:
        raise LoraError("the two adapters share no adapted layer (different targets or models?)")
    for m in shared:
        if fa[m][0].shape[1] != fb[m][0].shape[1]:
            raise LoraError(f"layer {m}: input sizes differ ({fa[m][0].shape[1]} vs {fb[m][0].shape[1]}); "
                            "the adapters belong to different models")
    if module:
        hits = [m for m in shared if m == module or m.endswith("." + module) or m.endswith(module)]
        if not hits:
            raise LoraError(f"layer '{module}' is not adapted in both; shared layers: {', '.join(shared[:6])} …")
        chosen = hits[0]
    else:
        chosen = shared[len(shared) // 2]
    phi = subspace_phi(fa[chosen][0], fb[chosen][0])
    per = {m: float(subspace_phi(fa[m][0], fb[m][0])[0, 0]) for m in shared}
    return Similarity(chosen, fa[chosen][0].shape[0], fb[chosen][0].shape[0], phi, per)
