"""LoRA arithmetic: what rank, alpha and target modules cost, from a model's config alone.

A LoRA adapter on a layer with weight W (out x in) adds ΔW = scaling · B · A with A (r x in) and
B (out x r), so it trains r · (in + out) numbers per targeted layer (+ out for DoRA's magnitude
vector); scaling = lora_alpha / r, or lora_alpha / √r with rsLoRA. The counts here come from a pure
function of the module shapes (`count_trainable`), read from the model built on the meta device (no
weights are read or allocated), and equal PEFT's own `get_nb_trainable_parameters()` for the same
config (tests/test_lora_count.py checks Llama, GPT-2 with its fused Conv1D `c_attn`, and BERT).

    python -m labs.lora count --model default --rank 8 --targets q_proj,v_proj
    python -m labs.lora count --model ./dir-with-config.json --rank 16 --targets all-linear --dora
    python -m labs.lora memory --model default --rank 8 --targets all-linear --batch 8 --seq 512 --gpu-gb 24
    python -m labs.lora spectra lab_data/runs/<id>/adapter [--compare OTHER_ADAPTER_DIR]
    python -m labs.lora sweep --ranks 1,2,4,8 --steps 50            # real short SFT runs, one per rank
    python -m labs.lora sweep-status NAME --plot sweep.png          # its table (re-attaches any time)

Memory estimates live in labs/lora/memory.py, learned-update spectra in labs/lora/spectra.py,
rank sweeps in labs/lora/sweep.py, figures in labs/lora/plots.py.
"""
from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from labs.errors import LabError

ALL_LINEAR = "all-linear"

# Model types whose checkpoints are encoders: counted on the bare encoder (AutoModel) when the
# config does not name an architecture. Causal LMs use AutoModelForCausalLM.
ENCODER_TYPES = {"bert", "roberta", "xlm-roberta", "distilbert", "albert", "electra", "deberta",
                 "deberta-v2", "mpnet", "camembert", "modernbert"}

# Linear layers of Llama-family models (the default model): the targets picker before a model is read.
DEFAULT_LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Settings of the course material, shown as points on the scaling plot.
SEED_SETTINGS = (
    {"label": "hand-made LoRALayer (rank 4, scaling fixed at 0.01)", "r": 4, "alpha": 0.04, "scaling": 0.01},
    {"label": "PEFT LoraConfig(r=8, lora_alpha=32)", "r": 8, "alpha": 32, "scaling": 32 / 8},
)


class LoraError(LabError, ValueError):
    """Bad input for the LoRA calculator or analysis; the message says what and what to do."""


# --------------------------------------------------------------------------- module shapes
@dataclass
class ModuleShape:
    name: str            # full module name, e.g. model.layers.0.self_attn.q_proj
    kind: str            # "linear" | "conv1d" (GPT-2's transposed Linear) | "embedding"
    in_features: int     # for an embedding: number of embeddings
    out_features: int    # for an embedding: embedding dim
    bias: bool = False

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def weight_params(self) -> int:
        return self.in_features * self.out_features


@dataclass
class ModelShapes:
    """What the calculator needs to know about a model, read on the meta device."""
    spec: str
    description: str
    architecture: str
    model_type: str
    total_params: int                 # unique parameters (tied embeddings counted once)
    modules: list[ModuleShape]        # every Linear / Conv1D / Embedding
    output_embedding: str | None      # lm_head: excluded from "all-linear", never quantized
    config: dict = field(default_factory=dict)   # hidden size, layers, heads, vocab, ...

    def linear_names(self) -> list[str]:
        """Short names of the linear layers a user can target, in model order (+ "all-linear")."""
        seen: list[str] = []
        for m in self.modules:
            if m.kind in ("linear", "conv1d") and m.name != self.output_embedding and m.short not in seen:
                seen.append(m.short)
        return seen

    def target_choices(self) -> list[str]:
        return [ALL_LINEAR] + self.linear_names()


def _model_class(config):
    import transformers
    from transformers import AutoModel, AutoModelForCausalLM
    for arch in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, arch, None)
        if cls is not None:
            return cls
    if config.model_type in ENCODER_TYPES:
        return AutoModel
    return AutoModelForCausalLM


def shapes_from_model(model, spec: str = "", description: str = "") -> ModelShapes:
    """Read module shapes from an instantiated model (meta or real)."""
    import torch
    from transformers.pytorch_utils import Conv1D
    modules = []
    for name, mod in model.named_modules():
        if isinstance(mod, Conv1D):  # weight is (in, out): GPT-2 stores its Linear transposed
            modules.append(ModuleShape(name, "conv1d", mod.weight.shape[0], mod.weight.shape[1], mod.bias is not None))
        elif isinstance(mod, torch.nn.Linear):
            modules.append(ModuleShape(name, "linear", mod.in_features, mod.out_features, mod.bias is not None))
        elif isinstance(mod, torch.nn.Embedding):
            modules.append(ModuleShape(name, "embedding", mod.num_embeddings, mod.embedding_dim))
    out_emb = None
    get_out = getattr(model, "get_output_embeddings", None)
    emb = get_out() if get_out else None
    if emb is not None:
        out_emb = next(n for n, m in model.named_modules() if m is emb)
    cfg = model.config
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg

    def pick(*names, default=None):
        for n in names:
            v = getattr(text_cfg, n, None)
            if v is not None:
                return v
        return default

    hidden = pick("hidden_size", "n_embd", "d_model", "dim")
    heads = pick("num_attention_heads", "n_head")
    info = {
        "hidden_size": hidden,
        "num_layers": pick("num_hidden_layers", "n_layer", "num_layers"),
        "num_heads": heads,
        "num_kv_heads": pick("num_key_value_heads", default=heads),
        "head_dim": pick("head_dim", default=(hidden // heads) if hidden and heads else None),
        "intermediate_size": pick("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden if hidden else None),
        "vocab_size": pick("vocab_size"),
        "gated_mlp": any(m.short in ("gate_proj", "w1", "gate_up_proj") for m in modules),
        "attn_implementation": getattr(cfg, "_attn_implementation", None) or "sdpa",
        "attn_dropout": float(pick("attention_dropout", "attn_pdrop", "attention_probs_dropout_prob", default=0.0) or 0.0),
        "is_causal_lm": any(k in type(model).__name__ for k in ("ForCausalLM", "LMHead")),
    }
    total = sum(p.numel() for p in model.parameters())
    return ModelShapes(spec, description or spec, type(model).__name__, cfg.model_type, total, modules, out_emb, info)


def load_config(spec: str | None = None):
    """AutoConfig for a model spec (Hub id, local model dir, dir with only config.json, run, adapter)."""
    from transformers import AutoConfig

    from labs import models
    try:
        source = models.resolve(spec)
    except models.ModelError as e:
        raise LoraError(str(e)) from None
    base = source.base if source.kind == "adapter" else source
    try:
        return AutoConfig.from_pretrained(base.path, revision=base.revision if base.kind == "hub" else None), base
    except Exception as e:  # noqa: BLE001 - the reason goes into the message
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise LoraError(f"model '{spec}': its config.json could not be read ({first})") from None


SHAPE_CACHE_SIZE = 16  # specs whose shapes stay in memory (each ~a few hundred small records)
_shape_cache: OrderedDict[str, ModelShapes] = OrderedDict()
_shape_lock = threading.Lock()


def model_shapes(spec: str | None = None, config=None) -> ModelShapes:
    """Module shapes of a model spec (or of a transformers config object), built on the meta device.

    No weights are read: ~1 s for a 135M model, and a 70B config works the same way."""
    import torch
    key = spec or "default"
    if config is None:
        with _shape_lock:
            if key in _shape_cache:
                _shape_cache.move_to_end(key)
                return _shape_cache[key]
    description = ""
    if config is None:
        config, source = load_config(spec)
        description = source.describe()
    cls = _model_class(config)
    try:
        with torch.device("meta"):
            model = cls.from_config(config) if hasattr(cls, "from_config") and cls.__name__.startswith("Auto") \
                else cls(config)
    except Exception as e:  # noqa: BLE001
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise LoraError(f"model '{spec}': could not be built from its config ({first})") from None
    shapes = shapes_from_model(model, spec or "default", description or getattr(config, "model_type", ""))
    if spec is not None or config is None:
        with _shape_lock:
            _shape_cache[key] = shapes
            while len(_shape_cache) > SHAPE_CACHE_SIZE:
                _shape_cache.popitem(last=False)
    return shapes


# --------------------------------------------------------------------------- the count (pure)
def parse_targets(targets) -> list[str] | str:
    """'q_proj,v_proj' / ['q_proj', 'v_proj'] / 'all-linear' -> PEFT's target_modules value."""
    if isinstance(targets, str):
        if targets.strip().lower() == ALL_LINEAR:
            return ALL_LINEAR
        targets = [t for t in targets.replace(" ", ",").split(",") if t]
    targets = [t.strip() for t in (targets or []) if t and t.strip()]
    if ALL_LINEAR in targets:
        return ALL_LINEAR
    if not targets:
        raise LoraError("targets: choose at least one module name (e.g. q_proj,v_proj) or all-linear")
    return targets


def matched_modules(shapes: ModelShapes, targets) -> list[ModuleShape]:
    """The modules PEFT would wrap: its rule is `name == t or name.endswith('.' + t)` for a list, and
    every Linear/Conv1D except the output embedding (lm_head) for 'all-linear'."""
    targets = parse_targets(targets)
    if targets == ALL_LINEAR:
        return [m for m in shapes.modules if m.kind in ("linear", "conv1d") and m.name != shapes.output_embedding]
    hits, unknown = [], []
    for t in targets:
        found = [m for m in shapes.modules if m.name == t or m.name.endswith("." + t)]
        if not found:
            unknown.append(t)
        hits.extend(found)
    if unknown:
        raise LoraError(f"target {', '.join(repr(u) for u in unknown)} is not a layer of {shapes.architecture}; "
                        f"its linear layers are: {', '.join(shapes.target_choices())}")
    seen, out = set(), []
    for m in shapes.modules:  # model order, each module once
        if m.name in {h.name for h in hits} and m.name not in seen:
            seen.add(m.name)
            out.append(m)
    return out


def module_lora_params(m: ModuleShape, r: int, use_dora: bool = False) -> int:
    """A: r x in, B: out x r (an embedding: A r x num_embeddings, B dim x r); DoRA adds a magnitude per output."""
    n = r * (m.in_features + m.out_features)
    if use_dora:
        n += m.out_features
    return n


@dataclass
class LoraCount:
    rank: int
    targets: list[str] | str
    use_dora: bool
    rows: list[dict]          # per target module name: modules, shape, params_each, params
    trainable: int
    base_params: int

    @property
    def total_params(self) -> int:      # what PEFT reports as "all params": base + adapter
        return self.base_params + self.trainable

    @property
    def trainable_share(self) -> float:  # PEFT's "trainable%" / 100
        return self.trainable / self.total_params

    def summary(self) -> str:
        return (f"trainable params: {self.trainable:,} || all params: {self.total_params:,} || "
                f"trainable%: {100 * self.trainable_share:.4f}")


def count_trainable(shapes: ModelShapes, rank: int, targets, use_dora: bool = False) -> LoraCount:
    """Trainable LoRA parameters per target module name and in total — a pure function of the shapes."""
    check_rank(rank)
    mods = matched_modules(shapes, targets)
    groups: dict[str, dict] = {}
    for m in mods:
        g = groups.setdefault(m.short, {"module": m.short, "modules": 0, "shapes": [], "params": 0})
        g["modules"] += 1
        shape = f"{m.in_features}→{m.out_features}" + (" (Conv1D)" if m.kind == "conv1d" else "") \
            + (" (Embedding)" if m.kind == "embedding" else "")
        if shape not in g["shapes"]:
            g["shapes"].append(shape)
        g["params"] += module_lora_params(m, rank, use_dora)
    rows = [{"module": g["module"], "layers": g["modules"], "shape in→out": ", ".join(g["shapes"]),
             "params per layer": g["params"] // g["modules"] if len(g["shapes"]) == 1 else None,
             "trainable params": g["params"]} for g in groups.values()]
    return LoraCount(rank, parse_targets(targets), use_dora, rows, sum(g["params"] for g in groups.values()),
                     shapes.total_params)


def check_rank(rank) -> int:
    if isinstance(rank, bool) or not isinstance(rank, int) and not (isinstance(rank, float) and rank.is_integer()):
        raise LoraError(f"rank {rank!r}: must be a whole number ≥ 1")
    if int(rank) < 1 or int(rank) > 4096:
        raise LoraError(f"rank {rank}: must be between 1 and 4096")
    return int(rank)


def adapter_file_bytes(shapes: ModelShapes, count: LoraCount, dtype_bytes: int = 4) -> int:
    """Size of adapter_model.safetensors as PEFT writes it: an 8-byte length, a JSON header naming each
    tensor (padded to 8 bytes), then the raw numbers (fp32 by default: PEFT keeps adapters in fp32)."""
    dt = {4: "F32", 2: "BF16", 1: "U8"}.get(dtype_bytes, "F32")
    tensors = []
    for m in matched_modules(shapes, count.targets):
        pre = f"base_model.model.{m.name}"
        a_name, b_name = ("lora_embedding_A", "lora_embedding_B") if m.kind == "embedding" else ("lora_A.weight", "lora_B.weight")
        tensors += [(f"{pre}.{a_name}", [count.rank, m.in_features]), (f"{pre}.{b_name}", [m.out_features, count.rank])]
        if count.use_dora:
            tensors.append((f"{pre}.lora_magnitude_vector", [m.out_features]))
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in sorted(tensors):  # safetensors lays tensors out sorted by name (one dtype here)
        n = math.prod(shape) * dtype_bytes
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":"))
    return 8 + len(text) + (-len(text)) % 8 + offset


# --------------------------------------------------------------------------- scaling
def scaling(alpha: float, r: int, use_rslora: bool = False) -> float:
    """PEFT's LoraLayer.scaling: alpha / r, or alpha / sqrt(r) with use_rslora=True."""
    return alpha / math.sqrt(r) if use_rslora else alpha / r


def update_magnitude(r: int, alpha: float, use_rslora: bool, d: int = 256, samples: int = 4, seed: int = 0) -> float:
    """Measured ‖ΔW x‖ / ‖x‖ for random A (PEFT's init) and random B with entries of std 1/√d (what a
    trained B looks like in scale), averaged over a few draws. With alpha/r it shrinks like 1/√r as the
    rank grows; with alpha/√r it stays flat — the rsLoRA argument."""
    import torch
    g = torch.Generator().manual_seed(seed)
    s = scaling(alpha, r, use_rslora)
    tot = 0.0
    for _ in range(samples):
        bound = 1 / math.sqrt(d)  # kaiming_uniform(a=√5) on A (r x d) is U(-1/√d, 1/√d)
        A = (torch.rand(r, d, generator=g) * 2 - 1) * bound
        B = torch.randn(d, r, generator=g) / math.sqrt(d)
        x = torch.randn(d, 64, generator=g)
        tot += float((s * B @ (A @ x)).norm() / x.norm())
    return tot / samples


SCALING_EXPLAINED = """\
**What scaling does.** PEFT multiplies the update by `scaling`: ΔW = scaling · B · A, so the layer
computes W x + scaling · B (A x). B starts at zero, so training starts from the base model; scaling sets
how strongly every step on A and B moves the output — it acts like a learning-rate multiplier for
the adapter.

* **alpha / r** (PEFT's default): keeping alpha fixed and raising r *lowers* the scaling, and the
  update's size ‖ΔW x‖ shrinks about like 1/√r (B·A sums r terms, their size grows only like √r).
  Larger ranks then learn more slowly unless you raise alpha or the learning rate with them —
  one reason "larger r didn't help" is common.
* **alpha / √r** (rsLoRA, `use_rslora=True`): the update keeps the same size at every rank, so a rank
  sweep compares capacity, not an accidental change of step size.

The course material's hand-made layer fixes scaling at 0.01 whatever the rank (equivalent to alpha =
0.04 at r = 4); its PEFT config r=8, alpha=32 gives scaling 4.0 — 400× larger. With A drawn from
randn (std 1, not PEFT's 1/√in) that hand-made layer's update is also larger per unit of B.
"""


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
