"""One entry point behind every `python -m labs.<recipe>`: config file, preset, overrides, one-line errors.

    python -m labs.sft --preset instruction --out run.yaml      # write a preset's config to edit
    python -m labs.sft --config run.yaml                        # run it (a run directory under lab_data/runs)
    python -m labs.sft --config run.yaml --lora_r 8 --max-steps 20   # any setting overridden on the line
    python -m labs.sft --config run.yaml --lora_r 8 --out r8.yaml    # write the result instead of running

Every field of the recipe's config is a flag (`--name` and `--name-with-dashes`), with its help and limits
from the field's metadata (labs/config.py): a field added to a config is on the command line with no edit
here. A bad config — a missing file, not YAML, not a mapping, an unknown or ill-typed key, a value out of
range — and any LabError the run raises end in one `error: ...` line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

from labs.config import ConfigError, RunConfig
from labs.errors import LabError


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one `error:` line and exit 2, not argparse's usage text
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def add_setting_flags(ap: argparse.ArgumentParser, config_cls: type[RunConfig]) -> None:
    """One flag per config field; a flag not given leaves the config's value (argparse.SUPPRESS)."""
    group = ap.add_argument_group("settings (each overrides the config's value)")
    for s in config_cls.specs():
        names = [f"--{s.name}"] + ([f"--{s.name.replace('_', '-')}"] if "_" in s.name else [])
        extra = [x for x in (s.limits_text(), f"one of {', '.join(map(str, s.choices))}" if s.choices else "",
                             f"default {s.default!r}") if x]
        group.add_argument(*names, dest=s.name, default=argparse.SUPPRESS, metavar=s.type.upper(),
                           help=f"{s.help} ({'; '.join(extra)})".replace("%", "%%"))


def parser(config_cls: type[RunConfig], description: str = "", resume: bool = True) -> Parser:
    names = config_cls.preset_names()
    ap = Parser(prog=f"python -m labs.{config_cls.recipe}", description=description,
                epilog=f"Presets: {', '.join(names)}." if names else None)
    ap.add_argument("--config", metavar="RUN.yaml", help="the run's config (YAML: 'setting: value' lines)")
    ap.add_argument("--preset", metavar="NAME", help="start from a preset instead of a file; without --out it is "
                    "written to run.yaml")
    ap.add_argument("--out", metavar="FILE.yaml", help="write the resulting config here and exit (no run)")
    if resume:
        ap.add_argument("--resume", action="store_true", help="continue the run from its latest checkpoint")
    add_setting_flags(ap, config_cls)
    return ap


def resolve(config_cls: type[RunConfig], a: argparse.Namespace) -> RunConfig:
    """The config the command line describes: a preset or a file, then the flags over it."""
    keys = {s.name for s in config_cls.specs()}
    overrides = {k: v for k, v in vars(a).items() if k in keys}
    if a.config and a.preset:
        raise ConfigError("--preset: give --config or --preset, not both")
    if a.preset:
        return config_cls.preset(a.preset, **overrides)
    if not a.config:
        raise ConfigError("--config: give a run.yaml (or --preset NAME to write one)")
    base = config_cls.load(a.config)
    return base.replace(**overrides) if overrides else base


def recipe_main(config_cls: type[RunConfig], run: Callable, argv: list[str] | None = None, *,
                description: str = "", resume: bool = True, before: Callable | None = None) -> int:
    """Parse, validate, then `run(cfg, session) -> summary` inside the run's session; print the summary.

    before(cfg): checks that need more than the config (a dataset exists), made before a run directory
    is created. Under torchrun only rank 0 prints the summary.
    """
    a = parser(config_cls, description, resume).parse_args(argv)
    try:
        cfg = resolve(config_cls, a)
        if a.out or (a.preset and not a.config):
            out = Path(a.out or "run.yaml")
            out.write_text(cfg.to_yaml())
            print(f"wrote {out}; run it with: {cfg.command(str(out))}")
            return 0
        overridden = any(s.name in vars(a) for s in config_cls.specs())
        path = Path(a.config)
        if overridden and (path.resolve().parent / "status.json").exists():
            raise ConfigError(f"--config: {path} belongs to a run; settings cannot be changed there (write a "
                              f"new config with --out and run that)")
        if before is not None:
            before(cfg)
    except (LabError, OSError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    from labs.runs.session import recipe_session
    try:
        with recipe_session(path, resume=getattr(a, "resume", False) or None, recipe=config_cls.recipe,
                            config=cfg.to_dict()) as session:
            summary = run(cfg, session)
    except LabError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0 and summary is not None:
        print(json.dumps(summary, default=str))
    return 0
