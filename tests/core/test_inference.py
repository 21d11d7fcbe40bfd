"""The inference engine: both backends stream tokens that add up to the text, greedy is
deterministic, models are kept in an LRU, adapters and run directories resolve as training formats
prompts, and bad references fail with a message naming what to fix."""
from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import Any

import pytest

from core.config import validate_config
from core.datasets import format_prompt
from core.default_model import default_gguf_path, default_model_dir
from core.inference import InferenceEngine, InferenceError, resolve_ref
from core.inference.sampling import IncrementalDecoder
from core.run_dir import CHECKPOINT_MARKER, create_run
from tests.conftest import tiny_config

QUESTION = "What is 12 + 30?"


@pytest.fixture
def engine() -> Any:
    engine = InferenceEngine(precision="fp32")
    yield engine
    engine.unload()


@pytest.fixture(scope="module")
def adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter on the tiny model whose weights are random, so it changes the answers."""
    return save_adapter(tiny_model, tmp_path_factory.mktemp("adapter"))


def save_adapter(model_dir: Path, folder: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    lora = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                      init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(folder)
    return folder


def hf(path: Path, adapter: Path | None = None) -> dict[str, Any]:
    return {"kind": "hf", "path": str(path), "adapter": str(adapter) if adapter else None}


def gguf() -> dict[str, Any]:
    return {"kind": "gguf", "path": str(default_gguf_path())}


def greedy(engine: InferenceEngine, ref: dict[str, Any], max_tokens: int = 12,
           **kwargs: Any) -> dict[str, Any]:
    return engine.generate(ref, prompt=QUESTION, temperature=0, max_tokens=max_tokens, **kwargs)


# transformers backend ------------------------------------------------------------------------
def test_greedy_generation_is_deterministic(engine, tiny_model):
    first, second = greedy(engine, hf(tiny_model)), greedy(engine, hf(tiny_model))
    assert first["text"] == second["text"] and first["tokens"] == second["tokens"] > 0


def test_greedy_matches_transformers_generate(engine, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    result = greedy(engine, hf(tiny_model), max_tokens=10)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    ids = tokenizer(result["prompt"], add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(ids, do_sample=False, max_new_tokens=10)
    assert result["text"] == tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_streamed_tokens_add_up_to_the_text(engine, tiny_model):
    pieces: list[str] = []
    result = greedy(engine, hf(tiny_model), max_tokens=16, on_token=pieces.append)
    assert len(pieces) > 1 and all(pieces)
    assert "".join(pieces) == result["text"]
    assert result["tokens"] == 16 and result["finish_reason"] == "length"
    assert result["tokens_per_second"] > 0 and result["first_token_seconds"] <= result["seconds"]


def test_should_stop_ends_generation_at_the_next_token(engine, tiny_model):
    pieces: list[str] = []
    result = engine.generate(hf(tiny_model), prompt=QUESTION, temperature=0, max_tokens=500,
                             on_token=pieces.append, should_stop=lambda: len(pieces) >= 3)
    assert result["finish_reason"] == "cancelled"
    assert 3 <= result["tokens"] < 500


def test_system_prompt_and_chat_template_shape_the_prompt(engine, tiny_model):
    result = greedy(engine, hf(tiny_model), max_tokens=1, system_prompt="Answer in French.")
    assert result["prompt"].startswith("<|im_start|>system\nAnswer in French.<|im_end|>")
    assert result["prompt"].endswith(f"{QUESTION}<|im_end|>\n<|im_start|>assistant\n")


def test_sampling_with_a_seed_repeats(engine, tiny_model):
    runs = [engine.generate(hf(tiny_model), prompt=QUESTION, temperature=1.0, top_p=0.9,
                            max_tokens=8, seed=7)["text"] for _ in range(2)]
    assert runs[0] == runs[1]


def test_an_adapter_is_applied(engine, tiny_model, adapter):
    assert greedy(engine, hf(tiny_model, adapter))["text"] != greedy(engine, hf(tiny_model))["text"]


def test_an_adapter_folder_finds_its_base(engine, tiny_model, adapter):
    assert resolve_ref(hf(adapter)).key == resolve_ref(hf(tiny_model, adapter)).key
    assert greedy(engine, hf(adapter))["text"] == greedy(engine, hf(tiny_model, adapter))["text"]


# the LRU ------------------------------------------------------------------------------------
def loaded_paths(engine: InferenceEngine) -> list[tuple[str, str | None]]:
    return [(Path(m["path"]).name, m["adapter"] and Path(m["adapter"]).name)
            for m in engine.loaded()]


def test_the_least_recently_used_model_is_evicted_and_freed(engine, tiny_model, adapter):
    base, _ = engine.model(resolve_ref(hf(tiny_model)))
    freed = weakref.ref(base.model)
    engine.model(resolve_ref(hf(tiny_model, adapter)))
    engine.model(resolve_ref(gguf()))
    assert loaded_paths(engine) == [(tiny_model.name, adapter.name), (default_gguf_path().name,
                                                                     None)]
    del base
    assert freed() is None


def test_using_a_model_makes_it_recent(engine, tiny_model, adapter):
    for ref in (hf(tiny_model), hf(tiny_model, adapter), hf(tiny_model), gguf()):
        engine.model(resolve_ref(ref))
    assert loaded_paths(engine) == [(tiny_model.name, None), (default_gguf_path().name, None)]


def test_the_memory_budget_evicts_older_models(tiny_model):
    engine = InferenceEngine(max_models=5, max_bytes=1, precision="fp32")
    engine.model(resolve_ref(hf(tiny_model)))
    engine.model(resolve_ref(gguf()))
    assert loaded_paths(engine) == [(default_gguf_path().name, None)]  # alone, even over budget
    assert engine.unload() == 1 and engine.loaded() == []


# run directories ---------------------------------------------------------------------------
@pytest.fixture
def run(tiny_model: Path, tmp_path: Path, adapter: Path) -> Any:
    import shutil
    config = validate_config(tiny_config(tiny_model, template={
        "system_prompt": "Think in <think></think>, answer in <answer></answer>."}))
    run = create_run(config, tmp_path / "outputs")
    shutil.copytree(adapter, run.adapter_dir)
    return run


def test_a_run_is_prompted_exactly_as_training_formatted_it(engine, run, tiny_model):
    from transformers import AutoTokenizer

    from core.config import load_config
    result = greedy(engine, {"kind": "run", "run_dir": str(run.path)}, max_tokens=2)
    template = load_config(run.config_path).template
    tokenizer = AutoTokenizer.from_pretrained(run.adapter_dir)
    assert result["prompt"] == format_prompt(tokenizer, template,
                                             [{"role": "user", "content": QUESTION}])


def test_a_run_is_its_base_plus_its_adapter(engine, run, tiny_model):
    from_run = greedy(engine, {"kind": "run", "run_dir": str(run.path)},
                      system_prompt="")["text"]
    assert from_run == greedy(engine, hf(tiny_model, run.adapter_dir))["text"]


def test_a_run_checkpoint_resolves_inside_the_run(run, adapter):
    import shutil
    checkpoint = run.path / "checkpoints" / "checkpoint-2"
    shutil.copytree(adapter, checkpoint)
    (checkpoint / CHECKPOINT_MARKER).write_text(json.dumps({"step": 2}))
    for name in ("checkpoint-2", "checkpoints/checkpoint-2"):
        resolved = resolve_ref({"kind": "run", "run_dir": str(run.path), "checkpoint": name})
        assert resolved.adapter == str(checkpoint.resolve())


@pytest.mark.parametrize("checkpoint, message", [
    ("checkpoint-9", "has no checkpoint"),                 # not there
    ("../../etc", "outside run"),                          # escapes the run directory
    ("checkpoints/checkpoint-3", "incomplete"),            # no checkpoint.json: save unfinished
])
def test_a_bad_checkpoint_is_named(run, checkpoint, message):
    (run.path / "checkpoints" / "checkpoint-3").mkdir(parents=True)
    with pytest.raises(InferenceError, match=message) as err:
        resolve_ref({"kind": "run", "run_dir": str(run.path), "checkpoint": checkpoint})
    assert err.value.field == "model.checkpoint"


def test_an_unfinished_run_lists_its_checkpoints(run):
    import shutil
    shutil.rmtree(run.adapter_dir)
    checkpoint = run.path / "checkpoints" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / CHECKPOINT_MARKER).write_text("{}")
    with pytest.raises(InferenceError, match="no result yet.*checkpoints/checkpoint-4"):
        resolve_ref({"kind": "run", "run_dir": str(run.path)})


# llama.cpp backend -------------------------------------------------------------------------
def test_gguf_streams_tokens_and_greedy_repeats(engine):
    pieces: list[str] = []
    first = greedy(engine, gguf(), max_tokens=24, on_token=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == first["text"] and first["tokens"] > 1
    assert greedy(engine, gguf(), max_tokens=24)["text"] == first["text"]


def test_gguf_prompt_renders_like_the_tokenizer_chat_template(engine):
    from transformers import AutoTokenizer

    from core.config import TemplateSection
    result = greedy(engine, gguf(), max_tokens=1, system_prompt="Be brief.")
    tokenizer = AutoTokenizer.from_pretrained(default_model_dir())
    assert result["prompt"] == format_prompt(tokenizer, TemplateSection(system_prompt="Be brief."),
                                             [{"role": "user", "content": QUESTION}])


def test_gguf_uses_an_explicit_chat_template(engine):
    ref = {**gguf(), "chat_template": "{% for m in messages %}Q: {{ m.content }}\n{% endfor %}A:"}
    assert greedy(engine, ref, max_tokens=1)["prompt"] == f"Q: {QUESTION}\nA:"


def test_ignore_eos_generates_exactly_max_tokens(engine):
    result = engine.generate(gguf(), prompt="Say hi.", temperature=0, max_tokens=40,
                             ignore_eos=True)
    assert result["tokens"] == 40 and result["finish_reason"] == "length"


# errors ------------------------------------------------------------------------------------
def broken_gguf(folder: Path) -> Path:
    path = folder / "broken.gguf"
    path.write_bytes(default_gguf_path().read_bytes()[:4096])
    return path


@pytest.mark.parametrize("ref, message, field", [
    ({"kind": "hf", "path": "/nonexistent/model"}, "model folder not found", "model.path"),
    ({"kind": "gguf", "path": "/nonexistent/m.gguf"}, "GGUF file not found", "model.path"),
    ({"kind": "onnx", "path": "x"}, "unknown model kind", "model.kind"),
    ({"kind": "hf"}, "model.path is required", "model.path"),
    ({"kind": "run", "run_dir": "/nonexistent/run"}, "not a run directory", "model.run_dir"),
    ("default", "must be an object", "model"),
])
def test_a_bad_reference_names_what_to_fix(ref, message, field):
    with pytest.raises(InferenceError, match=message) as err:
        resolve_ref(ref)
    assert err.value.field == field


def test_a_folder_that_is_not_a_model_is_named(tmp_path):
    with pytest.raises(InferenceError, match="not a transformers model folder"):
        resolve_ref({"kind": "hf", "path": str(tmp_path)})


def test_a_file_that_is_not_gguf_is_named(tmp_path):
    (tmp_path / "notes.gguf").write_text("hello")
    with pytest.raises(InferenceError, match="not a GGUF file"):
        resolve_ref({"kind": "gguf", "path": str(tmp_path / "notes.gguf")})


def test_a_gguf_that_fails_to_load_is_named(engine, tmp_path):
    with pytest.raises(InferenceError, match="could not load broken.gguf.*export it again"):
        greedy(engine, {"kind": "gguf", "path": str(broken_gguf(tmp_path))})


@pytest.mark.parametrize("settings, field", [
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": "many"}, "max_tokens"),
    ({"max_tokens": 9000}, "max_tokens"),   # more than the model's context (8192)
])
def test_bad_settings_name_their_field(engine, settings, field):
    with pytest.raises(InferenceError) as err:
        engine.generate(gguf(), prompt=QUESTION, **{"temperature": 0, **settings})
    assert err.value.field == field


def test_a_missing_prompt_is_named(engine):
    with pytest.raises(InferenceError, match="give a prompt") as err:
        engine.generate(gguf(), prompt="  ")
    assert err.value.field == "prompt"


# streaming text ------------------------------------------------------------------------------
def test_incomplete_characters_wait_for_their_last_byte():
    table = {1: b"caf", 2: b"\xc3", 3: b"\xa9", 4: b" ok"}   # "café ok", é split in two tokens
    decoder = IncrementalDecoder(lambda ids: b"".join(table[i] for i in ids).decode(
        "utf-8", errors="replace"))
    assert [decoder.push(i) for i in (1, 2, 3, 4)] == ["caf", "", "é", " ok"]
    assert decoder.flush() == ""


def test_a_run_base_reference_is_the_base_model_with_the_run_template(run, tiny_model):
    resolved = resolve_ref({"kind": "run", "run_dir": str(run.path), "base": True})
    assert resolved.adapter is None and resolved.path == str(tiny_model.resolve())
    assert resolved.template.system_prompt.startswith("Think in <think>")


def test_any_reference_may_carry_its_template(tiny_model):
    resolved = resolve_ref({**hf(tiny_model), "template": {"system_prompt": "Be brief."}})
    assert resolved.template.system_prompt == "Be brief."
    with pytest.raises(InferenceError) as err:
        resolve_ref({**hf(tiny_model), "template": {"system_prompt": 3}})
    assert err.value.field == "model.template"


def test_perplexity_counts_the_completion_and_tracks_the_model(engine, tiny_model, adapter):
    pairs = [{"prompt": QUESTION, "completion": "4"}, {"prompt": "2 + 3?", "completion":
                                                       "It is 5.\n#### 5"}]
    base = engine.perplexity(hf(tiny_model), pairs)
    assert base["pairs"] == 2 and base["tokens"] > 2 and base["perplexity"] > 1
    # the same text scored by hand: mean negative log-likelihood of the completion tokens
    import math
    assert base["perplexity"] == pytest.approx(math.exp(base["mean_nll"]))
    assert engine.perplexity(hf(tiny_model, adapter), pairs)["perplexity"] != base["perplexity"]


def test_perplexity_needs_a_transformers_model(engine):
    with pytest.raises(InferenceError, match="transformers model") as err:
        engine.perplexity(gguf(), [{"prompt": "a", "completion": "b"}])
    assert err.value.field == "model"
