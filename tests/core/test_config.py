"""Config schema: defaults, every example valid, bad configs rejected with field + reason."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import (OPTIMIZERS, SCHEDULERS, ConfigError, RunConfig, load_config, save_config,
                         validate_config)

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "configs" / "examples").glob("*.json"))
REWARDS = [{"name": "answer_correct"}]


def test_defaults_form_a_valid_grpo_config():
    cfg = validate_config({"rewards": REWARDS}, cuda=False)
    assert cfg.model.name == "default" and cfg.algorithm.name == "grpo"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_shipped_example_is_valid(path):
    load_config(path, cuda=False)


def test_examples_cover_every_variant_and_the_quickstart():
    variants = {json.loads(p.read_text()).get("algorithm", {}).get("variant", "grpo")
                for p in EXAMPLES if json.loads(p.read_text())["algorithm"].get("name") != "sft"}
    assert variants == {"grpo", "gspo", "dr_grpo", "dapo", "bnpo"}
    assert "quickstart" in {p.stem for p in EXAMPLES}


BAD_CONFIGS = [
    # a field that does not exist (a typo) is named, not ignored
    ({"training": {"learning_rte": 1e-5}}, "training.learning_rte", "unknown field"),
    # wrong type
    ({"training": {"batch_size": "four"}}, "training.batch_size", "integer"),
    # out of range
    ({"training": {"learning_rate": -1}}, "training.learning_rate", "greater than 0"),
    ({"model": {"lora_dropout": 1.5}}, "model.lora_dropout", "less than 1"),
    # unknown choices list the allowed values
    ({"algorithm": {"variant": "ppo"}}, "algorithm.variant", "gspo, dr_grpo, dapo, bnpo"),
    ({"training": {"optimizer": "adam_magic"}}, "training.optimizer", "adamw_torch"),
    ({"training": {"scheduler": "zigzag"}}, "training.scheduler", "cosine"),
    ({"model": {"method": "lorax"}}, "model.method", "'lora', 'qlora' or 'full'"),
    # generation batch must divide by num_generations
    ({"training": {"batch_size": 6}, "algorithm": {"num_generations": 4}},
     "algorithm.num_generations", "divisible by num_generations 4"),
    # one generation per prompt gives no group to compare
    ({"algorithm": {"num_generations": 1}}, "algorithm.num_generations", "greater than or equal to 2"),
    # qlora, fp16 and 8-bit optimizers need CUDA (this check runs with cuda=False)
    ({"model": {"method": "qlora"}}, "model.method", "NVIDIA GPU"),
    ({"training": {"precision": "fp16"}}, "training.precision", "NVIDIA GPU"),
    ({"training": {"optimizer": "paged_adamw_8bit"}}, "training.optimizer", "NVIDIA GPU"),
    # GRPO without rewards cannot learn anything
    ({"rewards": []}, "rewards", "at least one reward"),
    # pre-training only makes sense before GRPO
    ({"algorithm": {"name": "sft"}, "pre_training": {"enabled": True}}, "pre_training.enabled",
     "before GRPO"),
    ({"algorithm": {"epsilon": 0.3, "epsilon_high": 0.2}}, "algorithm.epsilon_high", "below"),
    # nested: a reward entry's missing name points into the list
    ({"rewards": [{"weight": 1.0}]}, "rewards.0.name", "required"),
    # rewards are checked against the registry before any model loads
    ({"rewards": [{"name": "answer_correct"}, {"name": "nope"}]}, "rewards.1.name",
     "available: answer_correct"),
    ({"rewards": [{"name": "length_band", "params": {"unit": "pages"}}]}, "rewards.0.params",
     "not one of"),
    # a variant's default clip range counts: dapo's upper epsilon 0.28 is below 0.3
    ({"algorithm": {"variant": "dapo", "epsilon": 0.3}}, "algorithm.epsilon_high", "below"),
    # gspo reuses each generation batch for 4 steps: 4 x 1 x 4 = 16 is not divisible by 32
    ({"algorithm": {"variant": "gspo", "num_generations": 32}}, "algorithm.num_generations",
     "x 4 for gspo"),
    # one way to hold out validation rows at a time
    ({"dataset": {"validation_split": 0.1, "validation_path": "valid.jsonl"}},
     "dataset.validation_path", "set validation_split to 0 to use the file"),
    # several GPUs: multi_gpu and the ids agree, each id once, only with CUDA
    ({"compute": {"multi_gpu": True, "gpu_ids": [0]}}, "compute.multi_gpu", "at least two"),
    ({"compute": {"gpu_ids": [0, 1]}}, "compute.gpu_ids", "2 GPUs are chosen: turn"),
    ({"compute": {"gpu_ids": [-1]}}, "compute.gpu_ids.0", "greater than or equal to 0"),
]


@pytest.mark.parametrize("patch,field,message", BAD_CONFIGS, ids=[b[1] for b in BAD_CONFIGS])
def test_bad_config_names_field_and_reason(patch, field, message):
    data = {"rewards": REWARDS, **patch}
    with pytest.raises(ConfigError) as info:
        validate_config(data, cuda=False)
    problems = {p["field"]: p["message"] for p in info.value.problems}
    assert field in problems, problems
    assert message in problems[field]


def test_several_gpus_are_valid_with_cuda_and_named_without():
    several = {"rewards": REWARDS, "compute": {"gpu_ids": [0, 1], "multi_gpu": True}}
    assert validate_config(several, cuda=True).compute.gpu_ids == [0, 1]
    with pytest.raises(ConfigError) as info:
        validate_config(several, cuda=False)
    assert {p["field"] for p in info.value.problems} == {"compute.gpu_ids"}
    with pytest.raises(ConfigError) as info:
        validate_config({**several, "compute": {"gpu_ids": [1, 1], "multi_gpu": True}},
                        cuda=True)
    assert "each GPU may be chosen once (1, 1)" in info.value.problems[0]["message"]


def test_cuda_lifts_the_gpu_only_checks():
    cfg = validate_config({"rewards": REWARDS, "model": {"method": "qlora"},
                           "training": {"precision": "fp16"}}, cuda=True)
    assert cfg.model.method == "qlora"


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        validate_config({"training": {"batch_size": 0, "epochs": 0, "scheduler": "zig",
                                      "optimizer": "nope"}, "algorithm": {"variant": "ppo"}},
                        cuda=False)
    assert {p["field"] for p in info.value.problems} == {
        "training.batch_size", "training.epochs", "training.scheduler", "training.optimizer",
        "algorithm.variant"}


def test_not_an_object_is_rejected():
    with pytest.raises(ConfigError, match="JSON object"):
        validate_config([1, 2], cuda=False)


def test_invalid_json_file_names_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"model": {"name": "default",}}')
    with pytest.raises(ConfigError, match="line 1"):
        load_config(path, cuda=False)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.json", cuda=False)


def test_save_then_load_round_trips(tmp_path):
    cfg = validate_config({"rewards": REWARDS, "training": {"learning_rate": 3e-5}}, cuda=False)
    save_config(cfg, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json", cuda=False) == cfg


def test_allowed_names_are_valid_for_installed_transformers():
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames
    assert set(SCHEDULERS) <= {s.value for s in SchedulerType}
    assert set(OPTIMIZERS) <= {o.value for o in OptimizerNames}


def test_every_field_has_help_text():
    def walk(model):
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, RunConfig.__mro__[1]):
                yield from walk(annotation)
            elif name not in ("model", "rewards", "params", "mapping"):
                yield f"{model.__name__}.{name}", info.description
    missing = [name for name, text in walk(RunConfig) if not text]
    assert not missing
