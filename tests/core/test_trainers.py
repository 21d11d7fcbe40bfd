"""Each GRPO variant maps to TRL's own settings; the config's explicit values win."""
from __future__ import annotations

import pytest

from core.config import validate_config
from core.training.trainers import grpo_arguments

VARIANTS = [
    # variant, expected subset of GRPOConfig arguments
    ("grpo", {"loss_type": "grpo", "beta": 0.04, "epsilon": 0.2}),
    ("gspo", {"loss_type": "grpo", "importance_sampling_level": "sequence", "beta": 0.0,
              "epsilon": 3e-4, "epsilon_high": 4e-4, "steps_per_generation": 4}),
    ("dr_grpo", {"loss_type": "dr_grpo", "scale_rewards": "none", "beta": 0.0}),
    ("dapo", {"loss_type": "dapo", "epsilon_high": 0.28, "mask_truncated_completions": True,
              "beta": 0.0}),
    ("bnpo", {"loss_type": "bnpo", "beta": 0.04}),
]


def _args(**algorithm):
    return grpo_arguments(validate_config({"rewards": [{"name": "answer_correct"}],
                                           "algorithm": algorithm}, cuda=False))


@pytest.mark.parametrize("variant,expected", VARIANTS)
def test_variant_settings(variant, expected):
    args = _args(variant=variant)
    assert {k: args.get(k) for k in expected} == expected
    assert "steps_per_generation_factor" not in args


def test_explicit_values_override_the_variant():
    args = _args(variant="dapo", beta=0.1, epsilon_high=0.4)
    assert (args["beta"], args["epsilon_high"]) == (0.1, 0.4)


def test_every_variant_builds_a_valid_trl_config(tmp_path):
    from trl import GRPOConfig
    for variant, _ in VARIANTS:
        config = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4,
                            use_cpu=True, report_to="none", **_args(variant=variant))
        assert config.loss_type == _args(variant=variant)["loss_type"]
