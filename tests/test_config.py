"""The config base (labs/config.py), the one entry point (labs/recipe.py) and the form generator
(components/form.py): every recipe and the evaluation job refuse the same bad files the same way."""
from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labs.config import ConfigError, setting
from labs.encoder.config import EncoderRunConfig
from labs.evaluation.evaluate import EvalConfig
from labs.feedback.config import UpdateConfig
from labs.preference.config import PreferenceRunConfig
from labs.sft.config import SFTRunConfig

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [SFTRunConfig, PreferenceRunConfig, UpdateConfig, EncoderRunConfig, EvalConfig]
# each recipe's minimal valid settings (the feedback update needs its loop's name)
VALID = {"sft": {}, "preference": {}, "feedback": {"loop": "l1"}, "encoder": {}, "evaluation": {}}


def _main(recipe: str):
    if recipe == "feedback":
        from labs.feedback.cli import main
    elif recipe == "evaluation":
        from labs.evaluation.__main__ import main
    else:
        main = importlib.import_module(f"labs.{recipe}.recipe").main
    return main


# --------------------------------------------------------------------------- coercion
@pytest.mark.parametrize("given,expected", [("false", False), ("no", False), ("0", False), (0, False), ("off", False),
                                            ("true", True), ("Yes", True), (1, True), (True, True), (" on ", True)])
def test_bools_from_text_and_numbers(given, expected):
    assert EvalConfig(loss=given).loss is expected
    assert SFTRunConfig(completion_only=given).completion_only is expected
    assert PreferenceRunConfig(precompute_ref=given).precompute_ref is expected


@pytest.mark.parametrize("given", ["maybe", 2, "", [True], 0.5])
def test_a_bool_that_is_neither_is_refused(given):
    with pytest.raises(ConfigError, match=r"^loss: expected true or false, got "):
        EvalConfig(loss=given)


def test_numbers_are_coerced_or_refused_by_the_field():
    cfg = SFTRunConfig(lora_r="8", max_steps=20.0, learning_rate="1e-3", warmup=" 0.1 ")
    assert (cfg.lora_r, cfg.max_steps, cfg.learning_rate, cfg.warmup) == (8, 20, 0.001, 0.1)
    assert type(cfg.lora_r) is int and type(cfg.max_steps) is int and type(cfg.learning_rate) is float
    for kw, msg in [({"lora_r": "8.5"}, "lora_r: expected a whole number, got '8.5'"),
                    ({"lora_r": True}, "lora_r: expected a whole number, got True"),
                    ({"learning_rate": "nan"}, "learning_rate: expected a finite number, got 'nan'"),
                    ({"max_steps": float("inf")}, "max_steps: expected a finite number, got inf"),
                    ({"max_steps": 1e15}, "max_steps: between 0 and 1000000, got 1e+15"),
                    ({"lora_r": 2000}, "lora_r: between 1 and 1024, got 2000"),
                    ({"learning_rate": 0}, "learning_rate: above 0 and at most 0.01, got 0"),
                    ({"dataset": ["a"]}, "dataset: expected text, got ['a']"),
                    ({"method": "qlora"}, "method: one of lora, full, freeze, got 'qlora'")]:
        with pytest.raises(ConfigError) as e:
            SFTRunConfig(**kw)
        assert str(e.value) == msg
        assert e.value.field == msg.split(":")[0]


def test_lists_from_text():
    cfg = EvalConfig(models="a, b,,c", bias_templates="one {group}\n\ntwo {group}\n", bias_groups="x,y")
    assert cfg.models == ["a", "b", "c"] and cfg.bias_templates == ["one {group}", "two {group}"]
    assert cfg.bias_groups == ["x", "y"]
    with pytest.raises(ConfigError, match="^models: give at least one model spec"):
        EvalConfig(models="")


def test_the_lora_fields_are_declared_once_with_one_set_of_limits():
    fields = ("lora_r", "lora_alpha", "lora_dropout")
    limits = {cls.__name__: [(s.min, s.max, s.min_open, s.max_open) for s in cls.specs() if s.name in fields]
              for cls in (SFTRunConfig, PreferenceRunConfig, UpdateConfig, EncoderRunConfig)}
    assert len({tuple(v) for v in limits.values()}) == 1 and len(limits["SFTRunConfig"]) == 3
    for cls in (SFTRunConfig, PreferenceRunConfig, UpdateConfig, EncoderRunConfig):
        with pytest.raises(ConfigError, match="^lora_r: between 1 and 1024, got 1025$"):
            cls.from_dict({**VALID[cls.recipe], "lora_r": 1025})
    # the recipes that had no lora_dropout / lora_targets now pass them to PEFT
    kw = UpdateConfig(loop="l", lora_dropout=0.1, lora_targets="q_proj,v_proj").lora_config_kwargs()
    assert kw == {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}
    assert UpdateConfig(loop="l").target_modules() == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                       "up_proj", "down_proj"]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.recipe)
def test_yaml_round_trip_and_command(cls, tmp_path):
    cfg = cls.from_dict(VALID[cls.recipe])
    p = tmp_path / "run.yaml"
    p.write_text(cfg.to_yaml())
    assert cls.load(p) == cfg
    assert cfg.command("x.yaml") == f"python -m labs.{cls.recipe} --config x.yaml"
    assert all(s.help for s in cls.specs()), [s.name for s in cls.specs() if not s.help]


@pytest.mark.parametrize("cls", [SFTRunConfig, PreferenceRunConfig, EncoderRunConfig], ids=lambda c: c.recipe)
def test_presets_are_yaml_files_that_validate(cls):
    names = cls.preset_names()
    assert names and names == [n for n in (ROOT / "assets/presets" / cls.recipe / "ORDER").read_text().split()]
    for name in names:
        raw = yaml.safe_load((ROOT / "assets/presets" / cls.recipe / f"{name}.yaml").read_text())
        cfg = cls.preset(name)
        assert cls.preset_about(name) == raw.pop("about")
        assert {k: getattr(cfg, k) for k in raw} == {k: cls.from_dict(raw).to_dict()[k] for k in raw}
    assert cls.preset(names[0], seed=7).seed == 7
    with pytest.raises(ConfigError, match=f"^preset: no preset 'nope' for {cls.recipe} "):
        cls.preset("nope")


# --------------------------------------------------------------------------- the entry point
BAD = {  # file name -> (text or None for a missing file, the error line after 'error: ')
    "missing": (None, "--config: {path} not found"),
    "not_yaml": ("lora_r: [1\n", "--config: {path}: not valid YAML (line 2, column 1): expected ',' or ']', "
                                 "but got '<stream end>'"),
    "a_list": ("- lora_r\n- 8\n", "--config: {path}: should hold 'setting: value' lines, not a list"),
    "unknown_key": ("lora_rr: 8\n", "lora_rr: unknown setting for {recipe} (did you mean lora_r? python -m "
                                    "labs.{recipe} --help lists them)"),
    "ill_typed": ("seed: many\n", "seed: expected a whole number, got 'many'"),
    "out_of_range": ("seed: -1\n", "seed: between 0 and 4294967295, got -1"),
}
BAD_EVAL = {"unknown_key": ("max_row: 8\n", "max_row: unknown setting for evaluation (did you mean max_rows? "
                                            "python -m labs.evaluation --help lists them)"),
            "ill_typed": ("max_rows: many\n", "max_rows: expected a whole number, got 'many'"),
            "out_of_range": ("max_new_tokens: 99999\n", "max_new_tokens: between 1 and 2048, got 99999")}


def _bad_file(tmp_path, recipe, case):
    text, msg = {**BAD, **(BAD_EVAL if recipe == "evaluation" else {})}[case]
    path = tmp_path / f"{case}.yaml"
    if text is not None:
        path.write_text(text)
    return path, "error: " + msg.format(path=path, recipe=recipe)


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("recipe", list(VALID))
def test_every_recipe_refuses_a_bad_config_file_in_one_line_with_exit_2(recipe, case, tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.setenv("LAB_DATA_DIR", str(tmp_path / "data"))
    path, expected = _bad_file(tmp_path, recipe, case)
    assert _main(recipe)(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [expected]
    assert not (tmp_path / "data" / "runs").exists() or not any((tmp_path / "data" / "runs").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(VALID))
def test_python_m_each_recipe_gives_the_same_line_for_a_list(recipe, tmp_path):
    """The file that once crashed the SFT entry point with a TypeError, through the real `python -m`."""
    path, expected = _bad_file(tmp_path, recipe, "a_list")
    p = subprocess.run([sys.executable, "-m", f"labs.{recipe}", "--config", str(path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env={**_env(), "LAB_DATA_DIR": str(tmp_path)})
    assert (p.returncode, p.stderr.strip().splitlines()) == (2, [expected])


def _env():
    import os
    return dict(os.environ)


def test_preset_overrides_and_out_write_a_config_that_runs_as_written(tmp_path, capsys):
    from labs.sft.recipe import main
    out = tmp_path / "r8.yaml"
    assert main(["--preset", "instruction", "--lora-r", "8", "--max_steps", "5", "--out", str(out)]) == 0
    cfg = SFTRunConfig.load(out)
    assert cfg == SFTRunConfig.preset("instruction", lora_r=8, max_steps=5)
    assert capsys.readouterr().out.strip() == f"wrote {out}; run it with: python -m labs.sft --config {out}"
    # a file plus flags, written again: the flags win
    out2 = tmp_path / "r4.yaml"
    assert main(["--config", str(out), "--lora_r", "4", "--completion-only", "no", "--out", str(out2)]) == 0
    assert SFTRunConfig.load(out2) == cfg.replace(lora_r=4, completion_only=False)
    capsys.readouterr()
    for argv, line in [(["--config", str(out), "--preset", "qa"], "error: --preset: give --config or --preset, not both"),
                       ([], "error: --config: give a run.yaml (or --preset NAME to write one)"),
                       (["--config", str(out), "--lora_r", "0"], "error: lora_r: between 1 and 1024, got 0"),
                       (["--config", str(out), "--lora_r"], "error: argument --lora_r/--lora-r: expected one argument")]:
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's own refusals end here, in the same one line
            rc = e.code
        assert (rc, capsys.readouterr().err.strip()) == (2, line)


def test_a_run_directorys_config_cannot_be_changed_by_flags(tmp_path, capsys, monkeypatch):
    from labs import paths, runs
    from labs.sft.recipe import main
    paths.set_data_dir(tmp_path)
    run = runs.create("sft", SFTRunConfig(model="x").to_dict())
    assert main(["--config", str(run.dir / "config.yaml"), "--lora_r", "4"]) == 2
    assert "belongs to a run; settings cannot be changed there" in capsys.readouterr().err
    assert SFTRunConfig.load(run.dir / "config.yaml").lora_r == 16


# --------------------------------------------------------------------------- the form generator
def test_form_round_trips_every_preset_of_every_panel():
    from components import preference_train_panel, sft_encoder_panel, sft_tab
    for module, cls, extra in ((sft_tab, SFTRunConfig, {"model": SFTRunConfig.model}),
                               (preference_train_panel, PreferenceRunConfig, {"model": PreferenceRunConfig.model}),
                               (sft_encoder_panel, EncoderRunConfig, {})):
        assert module.FIELDS == [s.name for s in cls.specs() if s.name not in extra]
        for name in cls.preset_names():
            cfg = cls.preset(name)
            assert module.FORM.config(module.FORM.values(cfg), **extra) == cfg


def test_a_new_config_field_appears_in_the_form_and_the_cli_with_no_other_edit(tmp_path, monkeypatch, capsys):
    """A field added to the SFT config's dataclass: the SFT tab's form and `python -m labs.sft` offer it."""
    import gradio as gr

    import labs.sft.config
    import labs.sft.recipe
    knob = setting(3, "A new knob: how many widgets to twiddle.", min=1, max=9, group="Optimization")
    plus = dataclasses.make_dataclass("SFTRunConfig", [("twiddles", int, knob)], bases=(SFTRunConfig,))
    monkeypatch.setattr(labs.sft.config, "SFTRunConfig", plus)
    monkeypatch.setattr(labs.sft.recipe, "SFTRunConfig", plus)
    import components.sft_tab as tab
    tab = importlib.reload(tab)  # the tab as it would import with the field in the dataclass
    try:
        assert "twiddles" in tab.FIELDS
        with gr.Blocks():
            widgets = tab.FORM.render(plus())
        w = tab.FORM.widgets["twiddles"]
        assert isinstance(w, gr.Number) and w.value == 3 and w.label == "twiddles"
        assert w.info == "A new knob: how many widgets to twiddle. (between 1 and 9)"
        values = tab.FORM.values(plus())
        values[tab.FIELDS.index("twiddles")] = 7
        assert tab.FORM.config(values, model="m").twiddles == 7
        assert len(widgets) == len(tab.FIELDS)
        out = tmp_path / "run.yaml"
        assert labs.sft.recipe.main(["--preset", "instruction", "--twiddles", "5", "--out", str(out)]) == 0
        assert yaml.safe_load(out.read_text())["twiddles"] == 5
        assert labs.sft.recipe.main(["--config", str(out), "--twiddles", "10", "--out", str(out)]) == 2
        assert capsys.readouterr().err.strip() == "error: twiddles: between 1 and 9, got 10"
    finally:
        monkeypatch.undo()
        importlib.reload(tab)
    assert "twiddles" not in importlib.import_module("components.sft_tab").FIELDS


def test_form_widgets_follow_the_metadata():
    import gradio as gr

    from components.form import Form
    form = Form(SFTRunConfig, exclude=("model",), dynamic={"dataset": lambda: ["instruct", "mine"]})
    with gr.Blocks():
        form.render(SFTRunConfig())
    w = form.widgets
    assert isinstance(w["method"], gr.Dropdown) and [c[1] for c in w["method"].choices] == ["lora", "full", "freeze"]
    assert isinstance(w["packing"], gr.Checkbox) and w["packing"].value is False
    assert w["lora_targets"].multiselect and w["lora_targets"].value == ["all-linear"]
    assert [c[1] for c in w["dataset"].choices] == ["instruct", "mine"]
    # the up-front fields are the ones not marked advanced; the others sit in the accordion
    assert [s.name for s in form.specs if not s.advanced] == ["dataset", "method", "learning_rate", "max_steps"]
    with pytest.raises(ConfigError, match="^form: expected 40 values"):
        form.config([1, 2])
