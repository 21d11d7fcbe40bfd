"""Real TRL training on the tiny model, in this process: GRPO metrics and weight changes, every
variant, SFT learning, pre-training then GRPO, references reaching rewards, readable failures."""
from __future__ import annotations

import pytest
from safetensors.torch import load_file

from core.config import VARIANTS, validate_config
from core.run_dir import RunDir, create_run
from core.worker import run_worker
from tests.conftest import tiny_config

GRPO_KEYS = ("reward", "reward_std", "kl", "clip_ratio/region_mean", "completions/mean_length",
             "loss", "learning_rate")


def train(tmp_path, cfg: dict) -> RunDir:
    run = create_run(validate_config(cfg), tmp_path / "outputs")
    run_worker(run)
    return run


def grpo_metrics(run: RunDir) -> list[dict]:
    return [e for e in run.metric_history() if e["phase"] == "grpo"]


def test_grpo_logs_every_metric_and_changes_lora_weights(tmp_path, tiny_model):
    run = train(tmp_path, tiny_config(tiny_model, training={"max_steps": 3}))
    state = run.read_state()
    assert (state["status"], state["step"], state["total_steps"]) == ("completed", 3, 3), state
    metrics = grpo_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2, 3]
    for m in metrics:
        missing = [k for k in GRPO_KEYS if k not in m]
        missing += [f"rewards/{r}/mean" for r in ("length_band", "answer_correct",
                                                   "format_markers") if f"rewards/{r}/mean" not in m]
        assert not missing, f"step {m['step']} lacks {missing}"
    # the ETA splits into generation and update; the run's record keeps what it used
    for m in metrics[:-1]:
        assert m["eta_generation_seconds"] >= 0 and m["eta_update_seconds"] >= 0, m
        assert abs(m["eta_generation_seconds"] + m["eta_update_seconds"]
                   - m["eta_seconds"]) <= 0.2, m
    assert state["measured"]["seconds"] > 0 and state["measured"]["peak_ram_bytes"] > 2**20
    # LoRA B matrices start at zero: any nonzero value means GRPO moved the adapter
    weights = load_file(run.adapter_dir / "adapter_model.safetensors")
    lora_b = [w for name, w in weights.items() if "lora_B" in name]
    assert lora_b and any(w.abs().sum() > 0 for w in lora_b)


def test_reference_reaches_the_correctness_reward(tmp_path, tiny_model):
    run = train(tmp_path, tiny_config(tiny_model, training={"max_steps": 1}))
    samples = [e for e in run.iter_events() if e["type"] == "sample"]
    assert samples
    for s in samples:
        assert s["reference"] and s["reference"].isdigit()
        # scored 0 or 1, never None: the reward saw the reference
        assert set(s["scores"]["answer_correct"]) <= {0.0, 1.0}
        assert len(s["completions"]) == len(s["total"]) == 4


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_runs_two_steps(tmp_path, tiny_model, variant):
    run = train(tmp_path, tiny_config(tiny_model, algorithm={"variant": variant},
                                      output={"sample_every": 0}))
    assert run.read_state()["status"] == "completed", run.read_state()["error"]
    assert [m["step"] for m in grpo_metrics(run)] == [1, 2]


# a random 2-layer model: full fine-tuning memorises fast; a rank-8 adapter on it learns slower
@pytest.mark.parametrize("method,learning_rate,fraction", [("lora", 1e-2, 0.97),
                                                           ("full", 3e-3, 0.5)])
def test_sft_loss_falls_on_a_memorisable_set(tmp_path, tiny_model, method, learning_rate,
                                             fraction):
    data = tmp_path / "four.jsonl"
    data.write_text("".join(f'{{"question": "Say {w}.", "answer": "{w} {w} {w}"}}\n'
                            for w in ("apple", "river", "cloud", "stone")))
    cfg = tiny_config(tiny_model, algorithm={"name": "sft"}, model={"method": method},
                      dataset={"source": "file", "path": str(data)},
                      training={"max_steps": 25, "learning_rate": learning_rate})
    run = train(tmp_path, cfg)
    losses = [m["loss"] for m in run.metric_history()]
    assert run.read_state()["status"] == "completed"
    assert sum(losses[-3:]) / 3 < fraction * sum(losses[:3]) / 3, losses
    assert (run.path / ("adapter" if method == "lora" else "model")).is_dir()


def test_validation_split_is_evaluated(tmp_path, tiny_model):
    cfg = tiny_config(tiny_model, algorithm={"name": "sft"},
                      dataset={"path": "instructions", "validation_split": 0.25},
                      training={"max_steps": 2}, output={"save_steps": 2})
    run = train(tmp_path, cfg)
    assert run.read_state()["status"] == "completed", run.read_state()["error"]
    evals = [e for e in run.iter_events() if e["type"] == "eval"]
    assert evals and "eval_loss" in evals[-1]
    assert not any("eval_loss" in m for m in run.metric_history())


def test_a_validation_file_is_the_grpo_evaluation_set(tmp_path, tiny_model):
    """The split tool's parts: train on one, held-out reward on the other (every row of it)."""
    from core.formats.split import split_file
    from core.datasets import builtin_path
    parts = split_file(builtin_path("arithmetic"), tmp_path / "parts", validation=0.05)["parts"]
    cfg = tiny_config(tiny_model, dataset={"source": "file", "path": parts["train"]["path"],
                                           "validation_path": parts["validation"]["path"]},
                      training={"max_steps": 2}, output={"save_steps": 2, "sample_every": 0})
    run = train(tmp_path, cfg)
    assert run.read_state()["status"] == "completed", run.read_state()["error"]
    evals = [e for e in run.iter_events() if e["type"] == "eval"]
    assert evals and "eval_reward" in evals[-1], evals


def test_an_unreadable_validation_file_fails_the_run_naming_it(tmp_path, tiny_model):
    cfg = tiny_config(tiny_model, dataset={"validation_path": str(tmp_path / "missing.jsonl")})
    state = train(tmp_path, cfg).read_state()
    assert state["status"] == "failed"
    assert "validation file: dataset file not found" in state["error"], state["error"]


def test_pre_training_then_grpo_continues_the_adapter(tmp_path, tiny_model):
    run = train(tmp_path, tiny_config(tiny_model, pre_training={"enabled": True,
                                                                "max_steps": 2}))
    phases = [e["phase"] for e in run.iter_events() if e["type"] == "phase"]
    assert phases == ["pre_training", "grpo"]
    assert (run.pre_training_dir / "adapter" / "adapter_model.safetensors").is_file()
    assert (run.adapter_dir / "adapter_model.safetensors").is_file()
    pre = load_file(run.pre_training_dir / "adapter" / "adapter_model.safetensors")
    final = load_file(run.adapter_dir / "adapter_model.safetensors")
    assert pre.keys() == final.keys()
    assert any(pre[k].abs().sum() > 0 for k in pre if "lora_B" in k)


FAILURES = [
    # a missing dataset file
    ({"dataset": {"source": "file", "path": "/no/such/data.jsonl"}}, "dataset file not found"),
    # a correctness reward with no reference in the data fails before training, not silently 0
    ({"dataset": {"source": "file", "path": "{questions_only}"}}, "compares with a reference"),
]


@pytest.mark.parametrize("patch,message", FAILURES)
def test_failures_end_failed_with_one_readable_line(tmp_path, tiny_model, patch, message):
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "What is 1 + 1?"}\n' * 4)
    patch = {k: {kk: str(vv).replace("{questions_only}", str(questions)) for kk, vv in v.items()}
             for k, v in patch.items()}
    run = train(tmp_path, tiny_config(tiny_model, **patch))
    state = run.read_state()
    assert state["status"] == "failed"
    assert message in state["error"] and "\n" not in state["error"]
    assert [e["status"] for e in run.iter_events() if e["type"] == "status"][-1] == "failed"


def alerts_of(run: RunDir) -> list[dict]:
    return [e for e in run.iter_events() if e["type"] == "alert"]


def test_a_constant_reward_raises_the_no_learning_signal_alert(tmp_path, tiny_model):
    constant = {"name": "length_band", "params": {"min_length": 0, "max_length": 1_000_000}}
    run = train(tmp_path, tiny_config(tiny_model, training={"max_steps": 11},
                                      output={"sample_every": 0}) | {"rewards": [constant]})
    assert run.read_state()["status"] == "completed", run.read_state()["error"]
    by_kind = {a["kind"]: a for a in alerts_of(run)}
    assert by_kind["no_signal"]["step"] == 10
    assert by_kind["reward_at_max"]["reward"] == "length_band"
    assert "no learning signal" in by_kind["no_signal"]["message"]


def test_a_custom_reward_trains_in_the_sandbox_and_sees_dataset_columns(tmp_path, tiny_model):
    source = ("def reward(completions, **kwargs):\n"
              "    assert all(r.isdigit() for r in kwargs['reference'])\n"
              "    return [len(c) / 100 for c in completions]\n")
    cfg = tiny_config(tiny_model) | {"rewards": [{"name": "my_len", "source": source}]}
    run = train(tmp_path, cfg)
    assert run.read_state()["status"] == "completed", run.read_state()["error"]
    assert all("rewards/my_len/mean" in m for m in grpo_metrics(run))


def test_a_failing_custom_reward_fails_the_run_naming_reward_row_and_cause(tmp_path, tiny_model):
    source = "def reward(completions, **kwargs):\n    return [1 / 0 for c in completions]\n"
    cfg = tiny_config(tiny_model) | {"rewards": [{"name": "broken", "source": source}]}
    run = train(tmp_path, cfg)
    state = run.read_state()
    assert state["status"] == "failed"
    assert "custom reward 'broken' failed on row 1 (completion " in state["error"]
    assert "ZeroDivisionError" in state["error"]
