"""core.estimate: the parts of the peak move the way the settings move them, a calibration's
measurements replace the defaults, and time splits GRPO into generation and update."""
from __future__ import annotations

import pytest

from core.config import validate_config
from core.estimate import (GIB, Lengths, ModelShape, estimate_memory, estimate_time,
                           generation_batch, phase_steps)

# SmolLM2-135M-Instruct's config.json (the default model)
SMOLLM2 = {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
           "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
           "head_dim": 64, "tie_word_embeddings": True}
SHAPE = ModelShape.from_config(SMOLLM2)
LENGTHS = Lengths(prompt=67, response=29)   # the quickstart's arithmetic rows (95th percentile)
REWARDS = [{"name": "answer_correct"}]


def config(**sections):
    return validate_config({"rewards": REWARDS, **sections}, cuda=True)


def memory(cfg, precision="bf16", device="cpu", calibration=None):
    return estimate_memory(cfg, SHAPE, LENGTHS, precision, device, calibration)


def test_the_shape_counts_the_default_models_parameters():
    assert SHAPE.parameters() == 134_515_008          # what transformers counts for it
    assert SHAPE.lora_parameters(16, None) == 4_884_480  # every projection of 30 layers
    assert SHAPE.lora_parameters(16, ["q_proj", "v_proj"]) == 30 * 16 * (576 + 576 + 576 + 192)


def test_a_nested_text_config_is_read():
    assert ModelShape.from_config({"text_config": SMOLLM2, "vision_config": {}}) == SHAPE


def test_parts_add_up_to_the_peak_and_name_the_phase():
    found = memory(config())
    assert found["peak"] == sum(found["parts"].values()) and found["phase"] == "grpo"
    assert set(found["parts"]) == {"runtime", "weights", "adapter_optimizer", "activations"}


def test_the_quickstart_estimate_is_near_its_measured_peak():
    """3,593 MiB measured (bench/results/quickstart-vm.json, ru_maxrss on this CPU)."""
    import json
    from pathlib import Path
    quickstart = json.loads(Path("configs/examples/quickstart.json").read_text())
    found = memory(validate_config(quickstart, cuda=False))
    assert abs(found["peak"] / 2**20 - 3593) / 3593 < 0.30, found


def test_activations_grow_with_batch_and_shrink_with_checkpointing():
    small = memory(config(training={"batch_size": 4}))["parts"]
    large = memory(config(training={"batch_size": 8}))["parts"]
    assert large["activations"] == 2 * small["activations"]
    saved = memory(config(training={"batch_size": 8, "gradient_checkpointing": True}))["parts"]
    assert saved["activations"] < large["activations"] / 4


def test_methods_and_precisions_change_the_weights_and_their_state():
    lora = memory(config())["parts"]
    qlora = memory(config(model={"method": "qlora"}))["parts"]
    full = memory(config(model={"method": "full"}))["parts"]
    fp32 = memory(config(), precision="fp32")["parts"]
    assert qlora["weights"] < lora["weights"] < fp32["weights"] == 2 * lora["weights"]
    assert "gradients_optimizer" in full and "adapter_optimizer" not in full
    assert full["gradients_optimizer"] == 3 * full["weights"]


def test_full_fine_tuning_with_a_kl_penalty_holds_a_reference_copy():
    with_kl = memory(config(model={"method": "full"}, algorithm={"beta": 0.04}))["parts"]
    without = memory(config(model={"method": "full"}, algorithm={"beta": 0.0}))["parts"]
    assert with_kl["reference_weights"] == with_kl["weights"]
    assert "reference_weights" not in without
    # the copy stays whichever phase peaks (here the generation's KV cache)
    generating = memory(config(model={"method": "full"}, algorithm={"beta": 0.04,
                                                                    "max_completion_length": 512},
                               training={"batch_size": 1, "gradient_accumulation_steps": 256}))
    assert {"reference_weights", "kv_cache"} <= set(generating["parts"])


def test_fp16_full_fine_tuning_keeps_fp32_weights_and_qlora_fp32_non_4bit_parameters():
    full16 = memory(config(model={"method": "full"}), precision="fp16")["parts"]
    assert full16["weights"] == SHAPE.parameters() * 4
    qlora = memory(config(model={"method": "qlora"}))["parts"]
    non_4bit = SHAPE.parameters() - SHAPE.linear_parameters()
    assert qlora["weights"] == pytest.approx(SHAPE.linear_parameters() * 0.53 + non_4bit * 4)


@pytest.mark.parametrize("optimizer, state_bytes", [
    ("adamw_torch", 4), ("adamw_8bit", 2), ("sgd", 0), ("paged_adamw_32bit", 8)])
def test_the_optimizer_decides_its_state(optimizer, state_bytes):
    """bf16 full fine-tuning: bf16 gradients (2 bytes) plus the optimizer's state."""
    parts = memory(config(model={"method": "full"}, training={"optimizer": optimizer}))["parts"]
    assert parts["gradients_optimizer"] == SHAPE.parameters() * (2 + state_bytes)


def test_gpt2_names_and_experts_are_read_and_an_unknown_shape_is_refused():
    gpt2 = ModelShape.from_config({"model_type": "gpt2", "n_embd": 768, "n_layer": 12,
                                   "n_head": 12, "vocab_size": 50257})
    assert (gpt2.hidden, gpt2.layers, gpt2.ffn, gpt2.tied_embeddings) == (768, 12, 3072, True)
    moe = ModelShape.from_config({**SMOLLM2, "num_local_experts": 8})
    assert moe.linear_parameters() > 7 * SHAPE.linear_parameters() / 2
    with pytest.raises(ValueError, match="does not say 'hidden_size'"):
        ModelShape.from_config({"vocab_size": 10})


def test_generation_is_the_peak_when_it_batches_far_more_than_training():
    """256 completions generated together (1 x 256 accumulation steps) against a micro-batch
    of 1: their KV cache outweighs one sequence's activations."""
    found = memory(config(training={"batch_size": 1, "gradient_accumulation_steps": 256},
                          algorithm={"max_completion_length": 512}))
    assert set(found["parts"]) == {"runtime", "weights", "adapter_optimizer", "kv_cache"}
    assert found["parts"]["kv_cache"] == 256 * (67 + 512) * 2 * 30 * 3 * 64 * 2


def test_a_calibration_replaces_runtime_and_per_token_bytes():
    calibration = {"runtime_bytes": 100, "train_bytes_per_token": 10**6}
    found = memory(config(training={"batch_size": 4}), calibration=calibration)["parts"]
    assert found["runtime"] == 100 + int(0.55 * GIB)
    assert found["activations_logits"] == 4 * (67 + 128) * 10**6


CALIBRATION = {"train_seconds_per_token": 0.001, "generate_seconds_per_step": [0.05, 0.01],
               "load_seconds": 3.0}


def test_grpo_time_is_generation_plus_update_per_step():
    cfg = config(training={"max_steps": 10, "batch_size": 8},
                 algorithm={"max_completion_length": 48, "beta": 0.0})
    found = estimate_time(cfg, LENGTHS, CALIBRATION, rows=1000)
    grpo = found["phases"]["grpo"]
    assert grpo["generation_seconds"] == pytest.approx(10 * (0.05 + 0.01 * 8) * 48)
    assert grpo["update_seconds"] == pytest.approx(10 * 0.001 * 8 * (67 + 48))
    assert found["seconds"] == pytest.approx(grpo["seconds"] + 3.0)


def test_reused_generations_cost_a_share_of_a_generation_per_step():
    """num_iterations 4: one generation every 4 steps; each step updates once."""
    cfg = config(training={"max_steps": 100, "batch_size": 8},
                 algorithm={"max_completion_length": 48, "beta": 0.0, "num_iterations": 4})
    grpo = estimate_time(cfg, LENGTHS, CALIBRATION, rows=1000)["phases"]["grpo"]
    assert grpo["generation_seconds"] == pytest.approx(25 * (0.05 + 0.01 * 8) * 48)
    assert grpo["update_seconds"] == pytest.approx(100 * 0.001 * 8 * (67 + 48))


@pytest.mark.parametrize("phase, sections, rows, steps", [
    # GRPO: 8 completions a step are 2 prompts; 90 training rows -> 45 steps an epoch
    ("grpo", {"training": {"epochs": 2}, "dataset": {"validation_split": 0.1}}, 100, 90),
    # num_iterations reuses each generation batch: 4 x the steps
    ("grpo", {"algorithm": {"num_iterations": 4}}, 100, 200),
    # gspo generates for 4 steps at once: 16 completions are 2 prompts, 10 rows 5 x 4 steps
    ("grpo", {"training": {"batch_size": 4}, "algorithm": {"num_generations": 8,
                                                          "variant": "gspo"}}, 10, 20),
    # partial generation batches are dropped: 9 rows make 4 batches of 2 prompts
    ("grpo", {}, 9, 4),
    # SFT: ceil(rows / batch) per epoch, over accumulation
    ("sft", {"algorithm": {"name": "sft"}, "training": {"epochs": 3, "batch_size": 4}}, 10, 9),
])
def test_steps_from_epochs_count_as_trl_does(phase, sections, rows, steps):
    base = {"training": {"max_steps": -1, "epochs": 1, "batch_size": 8}}
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    cfg = config(**base) if phase == "grpo" else validate_config(base, cuda=True)
    assert phase_steps(cfg, phase, rows) == steps


def test_unknown_rows_leave_steps_and_time_unknown():
    cfg = config(training={"max_steps": -1})
    assert phase_steps(cfg, "grpo", None) is None
    assert estimate_time(cfg, LENGTHS, CALIBRATION, None)["seconds"] is None


def test_variants_that_reuse_generations_generate_for_several_steps_at_once():
    assert generation_batch(config(algorithm={"variant": "gspo"},
                                   training={"batch_size": 4})) == 16
