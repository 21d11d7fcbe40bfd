"""Exports on the tiny model: the PEFT adapter reloads, merged logits equal base + adapter, GGUF
files load in llama.cpp with the tensor types asked for (k-quants on a model with 256-wide rows),
a quantization that cannot be produced fails and leaves no file, the Modelfile's template renders
the tokenizer's chat template, and the CLI and worker entry points."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from core.config import validate_config
from core.export import ExportError, ExportRequestError, create_export, run_export
from core.export.gotemplate import TemplateError, render
from core.export.request import STATE_FILE
from core.run_dir import create_run
from core.worker import run_worker
from tests.conftest import REPO, tiny_config

CONTRACT_KEYS = {"export_id", "format", "quantization", "source", "created_at", "status",
                 "progress", "message", "files", "verified", "error", "pid", "finished_at"}


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model) -> Path:
    """A one-step LoRA run with a checkpoint, shared by the module's tests."""
    cfg = tiny_config(tiny_model, training={"max_steps": 1}, output={"save_steps": 1})
    run = create_run(validate_config(cfg), tmp_path_factory.mktemp("export-run") / "outputs")
    assert run_worker(run) == "completed", run.read_state()["error"]
    return run.path


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> Path:
    """Like the tiny model, with rows of 256 and 512 values: k-quants fit it."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from core.default_model import ensure_default_model
    source, folder = ensure_default_model(), tmp_path_factory.mktemp("wide-model")
    config = AutoConfig.from_pretrained(source)
    config.update({"num_hidden_layers": 2, "hidden_size": 256, "intermediate_size": 512,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 64})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def export(tmp_path: Path, fmt: str, quantization: str | None, source: dict) -> dict:
    folder = create_export(tmp_path / "exports", "e1", fmt, quantization, source)
    return run_export(folder)


def run_source(run_dir: Path, checkpoint: str | None = None) -> dict:
    return {"run_dir": str(run_dir), "checkpoint": checkpoint}


def gguf_types(path: Path) -> Counter:
    import gguf
    return Counter(t.tensor_type.name for t in gguf.GGUFReader(path).tensors
                   if len(t.shape) >= 2)


def folder_of(state: dict, tmp_path: Path) -> Path:
    return tmp_path / "exports" / state["export_id"]


# ---- the request ---------------------------------------------------------------------------
def test_create_export_writes_a_queued_request_with_every_contract_key(tmp_path, lora_run):
    folder = create_export(tmp_path, "x1", "gguf", "Q4_K_M", run_source(lora_run))
    state = json.loads((folder / STATE_FILE).read_text())
    assert set(state) == CONTRACT_KEYS
    assert (state["status"], state["quantization"], state["files"]) == ("queued", "q4_k_m", [])
    assert state["source"] == {"run_dir": str(lora_run.resolve()), "checkpoint": None}


@pytest.mark.parametrize("fmt,quantization,source,field", [
    ("onnx", None, None, "format"),                           # unknown format
    ("bitsandbytes", "q4_k_m", None, "quantization"),         # bitsandbytes: int8/nf4
    ("gguf", "q2_k", None, "quantization"),                   # not one we offer
    ("merged", "q8_0", None, "quantization"),                 # merged takes none
    ("gguf_lora", "q4_k_m", None, "quantization"),            # LoRA GGUF: f16/bf16/q8_0
    ("adapter", None, {"path": "x"}, "source"),               # neither source shape
    ("adapter", None, {"run_dir": "/nonexistent"}, "source.run_dir"),
    ("adapter", None, {"base_model": "default", "adapter": "/nonexistent"}, "source.adapter"),
])
def test_bad_requests_name_the_field(tmp_path, lora_run, fmt, quantization, source, field):
    with pytest.raises(ExportRequestError) as err:
        create_export(tmp_path, "x1", fmt, quantization, source or run_source(lora_run))
    assert err.value.field == field
    assert not (tmp_path / "x1").exists()


@pytest.mark.parametrize("fmt,default", [("gguf", "q4_k_m"), ("gguf_lora", "f16"),
                                         ("bitsandbytes", "int8")])
def test_quantized_formats_have_a_default_and_ids_are_checked(tmp_path, lora_run, fmt, default):
    folder = create_export(tmp_path, "x1", fmt, None, run_source(lora_run))
    assert json.loads((folder / STATE_FILE).read_text())["quantization"] == default
    with pytest.raises(ExportRequestError):
        create_export(tmp_path, "../x2", "adapter", None, run_source(lora_run))


# ---- adapter and merged ------------------------------------------------------------------
def test_adapter_export_reloads_in_peft_with_the_runs_weights(tmp_path, lora_run, tiny_model):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
    state = export(tmp_path, "adapter", None, run_source(lora_run))
    assert state["status"] == "done", state["error"]
    names = {f["name"] for f in state["files"]}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= names
    assert not names & {"optimizer.pt", "training_args.bin"} and not any("ref/" in n for n in names)
    assert state["verified"]["loads"] and state["verified"]["lora_tensors"] > 0
    folder = folder_of(state, tmp_path)
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), str(folder))
    exported = load_file(folder / "adapter_model.safetensors")
    trained = load_file(lora_run / "adapter" / "adapter_model.safetensors")
    assert exported.keys() == trained.keys()
    assert all((exported[k] == trained[k]).all() for k in trained)


def test_checkpoint_export_takes_the_checkpoints_adapter(tmp_path, lora_run):
    state = export(tmp_path, "adapter", None, run_source(lora_run, "checkpoint-1"))
    assert state["status"] == "done", state["error"]
    copied = folder_of(state, tmp_path) / "adapter_model.safetensors"
    original = lora_run / "checkpoints" / "checkpoint-1" / "adapter_model.safetensors"
    assert copied.read_bytes() == original.read_bytes()


def test_unknown_checkpoint_fails_naming_the_complete_ones(tmp_path, lora_run):
    state = export(tmp_path, "merged", None, run_source(lora_run, "checkpoint-99"))
    assert state["status"] == "failed"
    assert "checkpoint-99" in state["error"] and "checkpoint-1" in state["error"]


def test_checkpoint_names_find_the_pre_training_phase_and_stay_inside_the_run(tmp_path):
    from core.export.source import _checkpoint_dir
    from core.run_dir import RunDir
    folder = tmp_path / "pre_training" / "checkpoints" / "checkpoint-9"
    folder.mkdir(parents=True)
    (folder / "checkpoint.json").write_text("{}")
    assert _checkpoint_dir(RunDir(tmp_path), "checkpoint-9") == folder
    assert _checkpoint_dir(RunDir(tmp_path), "pre_training/checkpoints/checkpoint-9") == folder
    with pytest.raises(ExportError, match="outside"):
        _checkpoint_dir(RunDir(tmp_path), "../../etc/x")


def test_merged_logits_equal_base_plus_adapter(tmp_path, lora_run, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    state = export(tmp_path, "merged", None, run_source(lora_run))
    assert state["status"] == "done", state["error"]
    verified = state["verified"]
    assert verified["max_logit_diff"] <= verified["tolerance"] and verified["generated"]
    folder = folder_of(state, tmp_path)
    assert {"model.safetensors", "config.json", "chat_template.jinja"} <= \
        {f["name"] for f in state["files"]}
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("Iris has 2 bags with 2 cards in each bag.", return_tensors="pt")
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    reference = PeftModel.from_pretrained(base, str(lora_run / "adapter")).eval()
    merged = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    with torch.no_grad():
        diff = (merged(**ids).logits - reference(**ids).logits).abs().max()
    assert diff < 1e-4


def test_bitsandbytes_int8_copy_reloads_quantized_with_the_same_logits(tmp_path, lora_run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    state = export(tmp_path, "bitsandbytes", None, run_source(lora_run))  # int8 by default
    assert state["status"] == "done", state["error"]
    verified = state["verified"]
    assert state["quantization"] == "int8" and verified["bnb_layers"] > 0
    assert verified["reload_logit_diff"] <= 1e-3 and verified["merged_adapter"] is True
    assert 0 <= verified["top1_agreement_with_full_precision"] <= 1
    folder = folder_of(state, tmp_path)
    config = json.loads((folder / "config.json").read_text())
    assert config["quantization_config"]["load_in_8bit"] is True
    model = AutoModelForCausalLM.from_pretrained(folder, device_map="cpu")
    assert any(type(m).__name__ == "Linear8bitLt" for m in model.modules())
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        assert model(**tokenizer("7 + 5 =", return_tensors="pt")).logits.isfinite().all()


def test_a_bitsandbytes_copy_that_reloads_differently_fails_and_leaves_no_file(tmp_path,
                                                                              lora_run):
    """bitsandbytes 4-bit copies saved on a CPU reload with other weights (transformers 5.23 +
    bitsandbytes 0.50.2); the check catches it instead of shipping a broken model."""
    from core.hardware import cuda_available
    if cuda_available():
        pytest.skip("nf4 reloads correctly on CUDA")
    state = export(tmp_path, "bitsandbytes", "nf4", run_source(lora_run))
    assert state["status"] == "failed" and state["files"] == []
    assert "does not reload the same" in state["error"] and "int8" in state["error"]
    assert {p.name for p in folder_of(state, tmp_path).iterdir()} <= {"export.json",
                                                                     "export.log"}


def test_adapter_export_of_a_whole_model_says_to_merge_instead(tmp_path, tiny_model):
    state = export(tmp_path, "adapter", None, {"base_model": str(tiny_model), "adapter": None})
    assert state["status"] == "failed" and "'merged' or 'gguf'" in state["error"]
    assert state["files"] == [] and not list(folder_of(state, tmp_path).glob("*.safetensors"))


# ---- GGUF ----------------------------------------------------------------------------------
@pytest.mark.parametrize("quantization,main", [("f16", "F16"), ("q8_0", "Q8_0")])
def test_gguf_loads_in_llama_cpp_with_the_requested_types(tmp_path, lora_run, quantization,
                                                          main):
    state = export(tmp_path, "gguf", quantization, run_source(lora_run))
    assert state["status"] == "done", state["error"]
    folder = folder_of(state, tmp_path)
    assert [f["name"] for f in state["files"]] == ["Modelfile", f"model-{quantization}.gguf"]
    assert gguf_types(folder / f"model-{quantization}.gguf") == Counter({main: 15})
    verified = state["verified"]
    assert verified["loads"] and verified["generated"] and verified["tokens_match"]
    assert verified["template_embedded"] and verified["modelfile"]["template_matches"]
    assert verified["merge"]["max_logit_diff"] <= verified["merge"]["tolerance"]
    modelfile = (folder / "Modelfile").read_text()
    assert f"FROM ./model-{quantization}.gguf" in modelfile
    assert 'SYSTEM """Solve the problem.' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert not (folder / ".work").exists()


def test_k_quants_on_a_model_whose_rows_fit_them(tmp_path, wide_model):
    state = export(tmp_path, "gguf", "q4_k_m", {"base_model": str(wide_model), "adapter": None})
    assert state["status"] == "done", state["error"]
    types = gguf_types(folder_of(state, tmp_path) / "model-q4_k_m.gguf")
    assert set(types) == {"Q4_K", "Q6_K"} and types["Q4_K"] > types["Q6_K"], types
    assert state["verified"]["file_type"] == "MOSTLY_Q4_K_M"
    assert state["verified"]["fallback_tensors"] == 0 and state["verified"]["loads"]


@pytest.mark.slow
@pytest.mark.parametrize("quantization,main,others", [
    ("bf16", "BF16", set()),
    ("q6_k", "Q6_K", set()),
    ("q5_k_m", "Q5_K", {"Q6_K"}),
    ("q4_0", "Q4_0", {"Q6_K"}),                  # llama.cpp keeps the output matrix at Q6_K
    ("q3_k_m", "Q3_K", {"Q4_K", "Q5_K", "Q6_K"}),
])
def test_every_gguf_quantization_holds_its_own_types(tmp_path, wide_model, quantization, main,
                                                     others):
    state = export(tmp_path, "gguf", quantization,
                   {"base_model": str(wide_model), "adapter": None})
    assert state["status"] == "done", state["error"]
    types = gguf_types(folder_of(state, tmp_path) / f"model-{quantization}.gguf")
    assert main in types and set(types) <= {main} | others, types
    assert types[main] == max(types.values()) and state["verified"]["loads"]


def test_a_quantization_the_model_cannot_take_fails_and_leaves_no_file(tmp_path, lora_run):
    state = export(tmp_path, "gguf", "q4_k_m", run_source(lora_run))
    assert state["status"] == "failed"
    assert "q4_k_m cannot be produced" in state["error"] and "256" in state["error"]
    folder = folder_of(state, tmp_path)
    assert state["files"] == [] and not list(folder.rglob("*.gguf"))
    assert sorted(p.name for p in folder.iterdir()) == ["export.json", "export.log"]


def test_a_failed_quantize_call_raises_and_leaves_no_file(tmp_path):
    from core.export.convert import quantize
    source, out = tmp_path / "broken.gguf", tmp_path / "model-q4_0.gguf"
    source.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ExportError, match="llama_model_quantize q4_0 failed"):
        quantize(source, out, "q4_0", tmp_path / "export.log")
    assert not out.exists()


def test_an_f16_file_renamed_to_a_quantization_is_rejected_and_deleted(tmp_path, wide_model):
    from core.export.convert import hf_to_gguf
    from core.export.runner import checked_types
    from core.export.tensor_types import TensorTypeMismatch
    f16 = hf_to_gguf(wide_model, tmp_path / "model-q4_k_m.gguf", "f16", tmp_path / "log")
    with pytest.raises(TensorTypeMismatch, match="MOSTLY_F16, not MOSTLY_Q4_K_M"):
        checked_types(f16, "q4_k_m")
    assert not f16.exists()


@pytest.mark.slow
def test_lora_gguf_loads_on_the_base_in_llama_cpp(tmp_path, lora_run):
    from core.export.request import update_export
    folder = create_export(tmp_path / "exports", "e1", "gguf_lora", None, run_source(lora_run))
    update_export(folder, quantization=None)  # as the service writes it: the worker picks f16
    state = run_export(folder)
    assert state["status"] == "done", state["error"]
    assert [f["name"] for f in state["files"]] == ["Modelfile", "base-f16.gguf", "lora-f16.gguf"]
    verified = state["verified"]
    assert verified["adapter_type"] == "lora" and verified["lora_pairs"] == 14
    assert verified["loads"] and verified["modelfile"]["template_matches"]
    modelfile = (folder_of(state, tmp_path) / "Modelfile").read_text()
    assert "FROM ./base-f16.gguf\nADAPTER ./lora-f16.gguf" in modelfile


def test_a_missing_converter_names_make_install(monkeypatch, tmp_path):
    from core.export.convert import CONVERTER_ENV, converter_dir
    monkeypatch.setenv(CONVERTER_ENV, str(tmp_path))
    with pytest.raises(ExportError, match="make install"):
        converter_dir()


# ---- the Modelfile -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_model)


LLAMA3 = ("{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
          "'<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
          "{% endif %}")


@pytest.mark.parametrize("chat_template,family", [
    (None, "chatml"),            # SmolLM2's own: ChatML with a default system prompt
    (LLAMA3, "llama3"),          # writes BOS itself, which llama.cpp adds when tokenizing
])
def test_modelfile_template_renders_the_tokenizers_chat_template(tmp_path, tokenizer,
                                                                 chat_template, family):
    from core.export.modelfile import modelfile_text, ollama_values, read_block, verify_modelfile
    if chat_template:
        tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
        tokenizer.chat_template = chat_template
    path = tmp_path / "Modelfile"
    path.write_text(modelfile_text("m.gguf", tokenizer, "Think, then answer.", 8192))
    assert verify_modelfile(path, tokenizer)["template"] == family
    conversation = [{"role": "user", "content": "Iris has 2 bags. How many?"}]
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Think, then answer."}, *conversation], tokenize=False,
        add_generation_prompt=True).removeprefix(tokenizer.bos_token if chat_template else "")
    template = read_block(path.read_text(), "TEMPLATE")
    assert render(template, ollama_values(conversation, "Think, then answer.")) == expected


def test_a_modelfile_template_that_renders_differently_is_an_error(tmp_path, tokenizer):
    from core.export.modelfile import modelfile_text, verify_modelfile
    path = tmp_path / "Modelfile"
    path.write_text(modelfile_text("m.gguf", tokenizer, None, 2048).replace("<|im_end|>\n{{ end",
                                                                             "\n{{ end"))
    with pytest.raises(ExportError, match="TEMPLATE renders"):
        verify_modelfile(path, tokenizer)


def test_an_unknown_chat_template_leaves_the_template_to_the_gguf(tmp_path, tokenizer):
    from core.export.modelfile import modelfile_text, verify_modelfile
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = "{% for m in messages %}### {{ m.role }}: {{ m.content }}\n" \
                              "{% endfor %}### assistant:"
    path = tmp_path / "Modelfile"
    path.write_text(modelfile_text("m.gguf", tokenizer, None, 2048))
    assert "TEMPLATE" not in path.read_text().replace("# chat template", "")
    assert verify_modelfile(path, tokenizer)["template_matches"] is None


@pytest.mark.parametrize("template,values,expected", [
    ("a {{ .X }} b", {"X": 1}, "a 1 b"),
    ("a  {{- .X -}}  b", {"X": "x"}, "axb"),                                # trim markers
    ("{{ if .X }}y{{ else if .Y }}z{{ else }}n{{ end }}", {"X": "", "Y": 1}, "z"),
    ("{{ range .M }}[{{ .R }}{{ $.S }}]{{ end }}", {"M": [{"R": 1}, {"R": 2}], "S": "s"},
     "[1s][2s]"),
    ('{{ if eq .R "user" }}u{{ end }}{{ if ne .R "x" }}n{{ end }}', {"R": "user"}, "un"),
    ("{{ if and .A (not .B) }}t{{ end }}{{ if or .B .A }}o{{ end }}", {"A": 1, "B": 0}, "to"),
    ("{{/* a comment */}}x", {}, "x"),
])
def test_go_template_subset_renders_as_go_does(template, values, expected):
    assert render(template, values) == expected


@pytest.mark.parametrize("template", ["{{ .X | printf }}", "{{ if .X }}open", "{{ end }}",
                                      "{{ .Missing }}", "{{ index .M 0 }}"])
def test_go_template_outside_the_subset_is_refused(template):
    with pytest.raises(TemplateError):
        render(template, {"X": 1, "M": [1]})


@pytest.mark.parametrize("quantization,row,present,absent", [
    ("q4_k_m", 256, {"Q4_K", "Q6_K"}, {"Q5_0", "F16"}),   # fits the k-quants
    ("q4_k_m", 576, {"Q5_0", "Q8_0"}, {"Q4_K", "Q6_K"}),  # SmolLM2-135M: llama.cpp's fallbacks
    ("q8_0", 64, {"Q8_0"}, {"F16"}),
    ("q8_0", 48, {"F16"}, {"Q8_0"}),                       # not a multiple of 32
])
def test_allowed_types_follow_llama_cpp_fallbacks(quantization, row, present, absent):
    from core.export.tensor_types import allowed_types
    allowed = allowed_types(quantization, row)
    assert present <= allowed and not absent & allowed


# ---- entry points --------------------------------------------------------------------------
def test_worker_exits_1_with_the_error_in_export_json(tmp_path, lora_run):
    folder = create_export(tmp_path, "w1", "merged", None, run_source(lora_run, "checkpoint-7"))
    done = subprocess.run([sys.executable, "-m", "core.export", str(folder)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    state = json.loads((folder / STATE_FILE).read_text())
    assert done.returncode == 1 and state["status"] == "failed", done.stderr
    assert "checkpoint-7" in state["error"] and state["pid"] and state["finished_at"]
    assert "Traceback" in done.stderr and "Traceback" not in state["error"]


def test_worker_refuses_a_folder_without_export_json(tmp_path):
    done = subprocess.run([sys.executable, "-m", "core.export", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not an export folder" in done.stderr


@pytest.mark.slow
def test_cli_exports_a_run_to_gguf_q8_0(tmp_path, lora_run):
    done = subprocess.run([sys.executable, "-m", "core.cli", "export", str(lora_run), "--format",
                           "gguf", "--quantization", "q8_0", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "status: done" in done.stdout and "model-q8_0.gguf" in done.stdout
    assert '"Q8_0": 15' in done.stdout and "%] converting to GGUF" in done.stdout
    assert "Loading weights" not in done.stdout  # library chatter is in export.log
    (folder,) = tmp_path.iterdir()
    assert json.loads((folder / STATE_FILE).read_text())["status"] == "done"


@pytest.mark.slow
def test_default_model_exports_to_q4_k_m_with_llama_cpp_fallbacks(tmp_path):
    state = export(tmp_path, "gguf", "q4_k_m", {"base_model": "default", "adapter": None})
    assert state["status"] == "done", state["error"]
    verified = state["verified"]
    # 576-wide rows cannot hold Q4_K: llama.cpp gives them Q5_0/Q8_0; ffn_down (1536) is Q4_K/Q6_K
    assert verified["file_type"] == "MOSTLY_Q4_K_M"
    assert {"Q4_K", "Q6_K", "Q5_0"} <= set(verified["tensor_types"])
    assert verified["loads"] and verified["tokens_match"] and verified["generated"].strip()
