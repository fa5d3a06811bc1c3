"""Task metrics (pure functions) and the config's validation."""
from __future__ import annotations

import pytest
import yaml

from labs.sft.config import HELP, PRESETS, ConfigError, SFTRunConfig, preset
from labs.evaluation.metrics import classification_scores, exact_match, exact_match_rate, qa_scores, token_f1


def test_exact_match_normalizes_only_case_and_surrounding_space():
    assert exact_match('  {"Name": "Ana"} \n', '{"name": "ana"}')
    assert not exact_match('{"name":"ana"}', '{"name": "ana"}')  # inner spacing counts
    assert not exact_match("Ana.", "Ana")
    assert exact_match_rate(["a", "B ", "c"], ["a", "b", "x"]) == pytest.approx(2 / 3)


def test_classification_scores_macro():
    refs = ["positive", "negative", "neutral", "positive"]
    preds = ["positive", "positive", "neutral", "Positive"]
    s = classification_scores(preds, refs)
    assert s["accuracy"] == pytest.approx(0.75)
    # positive: P=2/3 R=1; negative: P=0 R=0; neutral: P=1 R=1
    assert s["precision"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert s["recall"] == pytest.approx((1 + 0 + 1) / 3)
    assert s["f1"] == pytest.approx((0.8 + 0 + 1) / 3)


def test_qa_scores():
    assert token_f1("Edith Crane", "edith crane") == 1.0
    assert token_f1("architect Edith Crane", "Edith Crane") == pytest.approx(0.8)
    assert token_f1("1932", "1931") == 0.0
    s = qa_scores(["1932", "Paulo"], ["1932", "Paulo Neves"])
    assert s["exact_match"] == 0.5 and s["f1"] == pytest.approx((1 + 2 / 3) / 2)


@pytest.mark.parametrize("field,value", [
    ("method", "qlora"), ("lora_r", 0), ("lora_dropout", 1.0), ("learning_rate", 0), ("learning_rate", 0.5),
    ("lr_scheduler", "step"), ("warmup", 2.5), ("batch_size", 0), ("grad_accum", 0), ("max_length", 4),
    ("precision", "int8"), ("lora_targets", "lm_head"), ("lora_targets", "q proj;"), ("eval_steps", -1),
    ("num_epochs", 0), ("seed", -3), ("push_to_hub", "noslash"), ("lora_r", "abc"), ("batch_size", 2.5),
])
def test_invalid_values_are_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError) as e:
        SFTRunConfig(**{field: value})
    assert str(e.value).startswith(f"{field}:")


def test_dora_only_with_lora_and_unknown_keys():
    with pytest.raises(ConfigError, match="^use_dora:"):
        SFTRunConfig(method="full", use_dora=True)
    with pytest.raises(ConfigError, match="^lerning_rate:"):
        SFTRunConfig.from_dict({"lerning_rate": 1e-4})


def test_form_strings_are_coerced_and_yaml_round_trips():
    cfg = SFTRunConfig(lora_r="8", learning_rate="1e-4", packing="true", warmup="10", max_steps=5.0)
    assert (cfg.lora_r, cfg.learning_rate, cfg.packing, cfg.warmup, cfg.max_steps) == (8, 1e-4, True, 10.0, 5)
    again = SFTRunConfig.from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg
    assert cfg.command("run.yaml") == "python -m labs.sft --config run.yaml"
    assert SFTRunConfig(batch_size=4, grad_accum=8).effective_batch(2) == 64
    assert SFTRunConfig(lora_targets="q_proj, v_proj").target_modules() == ["q_proj", "v_proj"]


def test_presets_and_help_cover_every_field():
    defaults = SFTRunConfig().to_dict()
    for name, values in PRESETS.items():
        got = preset(name).to_dict()
        assert {k: got[k] for k in values} == values, name                 # the preset's own values
        assert {k: v for k, v in got.items() if k not in values} == {k: v for k, v in defaults.items()
                                                                      if k not in values}, name  # the rest default
    assert preset("instruction", max_steps=3).max_steps == 3                # an override wins over the preset
    with pytest.raises(ConfigError, match="no preset 'nope'"):
        preset("nope")
    assert preset("sentiment").metric() == "classification" and preset("qa").metric() == "qa"
    assert preset("instruction").metric() == "exact_match"
    missing = set(SFTRunConfig().to_dict()) - set(HELP)
    assert not missing, missing
