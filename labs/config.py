"""The config base every run config derives from (SFT, preference, feedback, encoder, evaluation).

A run config is a dataclass whose fields are declared with `setting(...)`: the field's metadata carries its
help text (the `metadata["help"]` convention of transformers' and TRL's argument dataclasses), its choices and
its limits, in one place that the form (components/form.py), the CLI (`recipe_main`) and the checks read.

    @dataclass
    class MyConfig(RunConfig):
        recipe: ClassVar[str] = "my"
        steps: int = setting(10, "Optimizer steps.", min=1, max=100_000)

    cfg = MyConfig.from_dict({"steps": "20"})   # coerced to 20; ConfigError("steps: ...") names the field
    cfg.to_yaml(); cfg.command("run.yaml")       # python -m labs.my --config run.yaml
    MyConfig.preset("fast")                      # assets/presets/my/fast.yaml, validated

Why not `transformers.HfArgumentParser` / TRL's `TrlParser`: they pass every metadata key to argparse
(so limits and form groups cannot live there), their `parse_dict`/YAML path does no type coercion
("false" stays a truthy string), and a bad value ends in argparse's usage text. The lab keeps their
`metadata["help"]` convention and adds the checks they cannot express.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from labs.errors import LabError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "assets" / "presets"
TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE = frozenset({"0", "false", "no", "off", "n", "f"})
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class ConfigError(LabError, ValueError):
    """A config value is invalid; the message starts with the field's name ("lora_r: between 1 and 1024")."""

    @property
    def field(self) -> str:
        return str(self).split(":", 1)[0]


def setting(default: Any = MISSING, help: str = "", *, choices=None, min=None, max=None,  # noqa: A002
            min_open: bool = False, max_open: bool = False, group: str = "", advanced: bool = False,
            form: bool = True, widget: str | None = None, default_factory=MISSING, **extra) -> Any:
    """A config field with its help, choices, limits and form hints.

    min/max: inclusive limits (min_open/max_open make them exclusive). group: the form section;
    advanced: shown under "Advanced" rather than up front; form=False: set by the lab, not typed in a form
    (still in the YAML and the CLI). widget: 'slider', 'radio', 'multiselect', 'textarea' or None (chosen by
    type); extra form hints: label=, choice_labels={value: words}, step= (a slider's), options= (suggestions).
    """
    md = {"help": help, "group": group, "advanced": advanced, "form": form, "widget": widget,
          "min": min, "max": max, "min_open": min_open, "max_open": max_open, **extra}
    if choices is not None:
        md["choices"] = tuple(choices)
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=md)
    return field(default=default, metadata=md)


@dataclass(frozen=True)
class Spec:
    """What the form and the CLI need to know of one field."""
    name: str
    type: str  # bool | int | float | str | list
    default: Any
    help: str
    choices: tuple | None
    min: float | None
    max: float | None
    min_open: bool
    max_open: bool
    group: str
    advanced: bool
    form: bool
    widget: str | None
    options: tuple | None = None  # suggestions the form offers (not enforced, unlike choices)
    notes: dict | None = None     # refused value -> what to do instead ("sft" -> "use sft_weight")
    title: str | None = None      # the form's label, where the field's name says too little
    choice_labels: dict | None = None  # value -> the words the form shows for it
    step: float | None = None     # a slider's step

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ")

    def limits_text(self) -> str:
        lo, hi = self.min, self.max
        low = None if lo is None else f"{'above' if self.min_open else 'at least'} {num(lo)}"
        high = None if hi is None else f"{'below' if self.max_open else 'at most'} {num(hi)}"
        if low and high and not (self.min_open or self.max_open):
            return f"between {num(lo)} and {num(hi)}"
        return " and ".join(x for x in (low, high) if x)


def num(x) -> str:
    """A number as a person writes it: 1000000, 0.01, 1e-05."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def _type_name(tp) -> str:
    if tp in _TYPES:
        return _TYPES[tp]
    if typing.get_origin(tp) is list:
        return "list"
    raise TypeError(f"unsupported config field type {tp!r}")


def coerce(spec: Spec, v: Any) -> Any:
    """A value as YAML, a form or a command line may give it, turned into the field's type, or ConfigError."""
    name, kind = spec.name, spec.type
    bad = ConfigError(f"{name}: expected {_EXPECTED[kind]}, got {v!r}")
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float)) and v in (0, 1):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in TRUE | FALSE:
            return v.strip().lower() in TRUE
        raise bad
    if kind in ("int", "float"):
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise bad
        try:
            x = float(v.strip()) if isinstance(v, str) else v
            x = float(x) if kind == "float" or not isinstance(x, int) else x
        except (ValueError, OverflowError):
            raise bad from None
        if isinstance(x, float) and not math.isfinite(x):
            raise ConfigError(f"{name}: expected a finite number, got {v!r}")
        if kind == "int":
            if isinstance(x, float):
                if x != int(x):
                    raise bad
                x = int(x)
        return x
    if kind == "str":
        if v is None:
            return ""
        if isinstance(v, (list, dict, tuple, set)):
            raise bad
        return str(v).strip()
    # list of strings: a list, or text separated by commas (or new lines where the field says so)
    if v is None:
        return []
    if isinstance(v, str):
        sep = "\n" if spec.widget == "textarea" else ","
        return [x.strip() for x in v.split(sep) if x.strip()]
    if isinstance(v, (list, tuple)):
        return [str(x).strip() for x in v if str(x).strip()]
    raise bad


_EXPECTED = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "text",
             "list": "a list (or comma-separated text)"}


def check_limits(spec: Spec, v: Any) -> None:
    if spec.choices is not None and spec.type != "list" and v not in spec.choices:
        note = (spec.notes or {}).get(v)
        raise ConfigError(f"{spec.name}: one of {', '.join(map(str, spec.choices))}, got {v!r}"
                          + (f" ({note})" if note else ""))
    if spec.type in ("int", "float") and (spec.min is not None or spec.max is not None):
        lo_ok = spec.min is None or (v > spec.min if spec.min_open else v >= spec.min)
        hi_ok = spec.max is None or (v < spec.max if spec.max_open else v <= spec.max)
        if not (lo_ok and hi_ok):
            raise ConfigError(f"{spec.name}: {spec.limits_text()}, got {num(v)}")


@lru_cache(maxsize=None)
def specs_of(cls) -> tuple[Spec, ...]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        md = f.metadata
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else None)
        out.append(Spec(f.name, _type_name(hints[f.name]), default, md.get("help", ""), md.get("choices"),
                        md.get("min"), md.get("max"), md.get("min_open", False), md.get("max_open", False),
                        md.get("group", ""), md.get("advanced", False), md.get("form", True), md.get("widget"),
                        tuple(md["options"]) if md.get("options") else None, md.get("notes"), md.get("label"),
                        md.get("choice_labels"), md.get("step")))
    return tuple(out)


@dataclass
class RunConfig:
    """Base of every run config: coercion, limits, cross-field checks, YAML, command and presets.

    A subclass declares `recipe` (its `python -m labs.<recipe>`) and its fields with `setting(...)`, and
    puts checks that involve several fields in `check()` using `self.need(ok, field, message)`.
    """
    recipe: ClassVar[str] = ""

    def __post_init__(self):
        for spec in self.specs():
            v = coerce(spec, getattr(self, spec.name))
            check_limits(spec, v)
            setattr(self, spec.name, v)
        self.check()

    def check(self) -> None:
        """Checks across fields; raise through `need`."""

    @staticmethod
    def need(ok, field_name: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{field_name}: {message}")

    # ------------------------------------------------------------------ fields
    @classmethod
    def specs(cls) -> tuple[Spec, ...]:
        return specs_of(cls)

    @classmethod
    def spec(cls, name: str) -> Spec:
        return next(s for s in cls.specs() if s.name == name)

    @classmethod
    def help(cls) -> dict[str, str]:
        return {s.name: s.help for s in cls.specs()}

    # ------------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, d: Any, where: str = "config"):
        """Validate a mapping of settings (YAML's, a form's): unknown keys and bad values name the field."""
        if not isinstance(d, dict):
            kind = "nothing" if d is None else f"a {type(d).__name__}"
            raise ConfigError(f"{where}: should hold 'setting: value' lines, not {kind}")
        d = {str(k): v for k, v in d.items() if k != "recipe"}
        known = [s.name for s in cls.specs()]
        for k in d:
            if k not in known:
                near = difflib.get_close_matches(k, known, n=1)
                hint = f"did you mean {near[0]}? " if near else ""
                listed = f"python -m labs.{cls.recipe} --help lists them" if cls.recipe else \
                    f"known: {', '.join(known)}"
                raise ConfigError(f"{k}: unknown setting for {where if not cls.recipe else cls.recipe} "
                                  f"({hint}{listed})")
        return cls(**d)

    @classmethod
    def from_yaml(cls, text: str, where: str = "config"):
        import yaml
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError(f"{where}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from None
        return cls.from_dict({} if raw is None else raw, where)

    @classmethod
    def load(cls, path: str | Path):
        """A config file: missing, unreadable, not YAML, not a mapping, unknown or bad keys → ConfigError."""
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"--config: {p} not found" if not p.exists() else f"--config: {p} is not a file")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--config: {p} cannot be read ({e})") from None
        return cls.from_yaml(text, where=f"--config: {p}")

    def replace(self, **changes):
        """A copy with some settings changed (validated again)."""
        return type(self).from_dict({**self.to_dict(), **changes})

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        return asdict(self)

    def to_yaml(self) -> str:
        import yaml
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def command(self, config_path: str = "run.yaml") -> str:
        return f"python -m labs.{self.recipe} --config {config_path}"

    # ------------------------------------------------------------------ presets (assets/presets/<recipe>/)
    @classmethod
    def preset_names(cls) -> list[str]:
        d = PRESETS_DIR / cls.recipe
        order = _preset_order(d)
        names = sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []
        return [n for n in order if n in names] + [n for n in names if n not in order]

    @classmethod
    def preset_raw(cls, name: str) -> dict:
        """A preset's settings as the file holds them (a partial config) and its `about` line."""
        import yaml
        names = cls.preset_names()
        if name not in names:
            raise ConfigError(f"preset: no preset '{name}' for {cls.recipe} (presets: {', '.join(names) or 'none'})")
        raw = yaml.safe_load((PRESETS_DIR / cls.recipe / f"{name}.yaml").read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"preset: {name}.yaml should hold 'setting: value' lines")
        return raw

    @classmethod
    def preset(cls, name: str, **overrides):
        raw = dict(cls.preset_raw(name))
        raw.pop("about", None)
        return cls.from_dict({**raw, **overrides}, where=f"preset {name}")

    @classmethod
    def preset_about(cls, name: str) -> str:
        return str(cls.preset_raw(name).get("about", "")).strip()


def _preset_order(d: Path) -> list[str]:
    """assets/presets/<recipe>/ORDER lists the presets in the order the form offers them (first = default)."""
    try:
        return [ln.strip() for ln in (d / "ORDER").read_text().splitlines() if ln.strip()]
    except OSError:
        return []


# ---------------------------------------------------------------------- LoRA, declared once
LORA_HELP = {
    "lora_r": "Adapter rank: capacity of the update. 8-32 is typical; higher = more parameters, rarely better "
              "on small data.",
    "lora_alpha": "Scale of the update (alpha/r, or alpha/sqrt(r) with rsLoRA). Commonly 2x the rank.",
    "lora_dropout": "Dropout on the adapter input. 0 is fastest; 0.05-0.1 regularizes many epochs on small data.",
    "lora_targets": "Linear layers that get adapters: 'all-linear' or a comma list such as q_proj,v_proj.",
}


def lora_setting(name: str, default: Any, help: str | None = None) -> Any:  # noqa: A002
    """One of the LoRA fields with another default (and help) for a recipe; the limits stay the same."""
    limits = {"lora_r": dict(min=1, max=1024), "lora_alpha": dict(min=0, max=4096, min_open=True),
              "lora_dropout": dict(min=0, max=1, max_open=True),
              "lora_targets": dict(widget="multiselect", options=("all-linear", *LINEAR_NAMES))}[name]
    return setting(default, help or LORA_HELP[name], group="LoRA", advanced=True, **limits)


@dataclass
class LoraSettings:
    """The LoRA fields every recipe with adapters shares (like TRL's ModelConfig), with one set of limits."""
    lora_r: int = lora_setting("lora_r", 16)
    lora_alpha: int = lora_setting("lora_alpha", 32)
    lora_dropout: float = lora_setting("lora_dropout", 0.0)
    lora_targets: str = lora_setting("lora_targets", "all-linear")

    def target_modules(self) -> str | list[str]:
        t = self.lora_targets.strip()
        if t in ("", "all-linear", "all"):
            return "all-linear"
        return [x.strip() for x in t.split(",") if x.strip()]

    def check_lora(self, allow_all_linear: bool = True) -> None:
        targets = self.target_modules()
        if targets == "all-linear":
            if not allow_all_linear:
                raise ConfigError("lora_targets: name the layers, comma separated (such as query,value)")
            return
        if not targets or not all(t.replace("_", "").replace(".", "").isalnum() for t in targets):
            raise ConfigError("lora_targets: 'all-linear' or a comma list of layer names such as q_proj,v_proj")
        if "lm_head" in targets:
            raise ConfigError("lora_targets: do not target lm_head (it is tied to the embeddings, and TRL's "
                              "DPO reads its weight directly)")

    def lora_config_kwargs(self) -> dict:
        """What peft.LoraConfig takes from these fields."""
        return dict(r=self.lora_r, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                    target_modules=self.target_modules())


def is_config_class(cls) -> bool:
    return isinstance(cls, type) and dataclasses.is_dataclass(cls) and issubclass(cls, RunConfig)
