"""The model and public-dataset catalogs the wizard offers, with rough memory guidance.

Guarantees: every catalog entry names a real Hugging Face id with the config, split and field
mapping it needs; `memory_guidance` is a rule of thumb (weights by method and precision plus a fixed
allowance for activations and generation), labelled as such in the UI; the precise estimate before
launch is the estimates issue's. Texts wrapped in `N_` are extracted for translation.

Does not: reach the hub (downloads happen in the worker or the models page) or import Flask.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.datasets import BUILTIN_DIR
from core.default_model import default_model_dir
from core.models import downloaded_model_dir
from rewards import list_rewards


def N_(text: str) -> str:
    """Marks a text for translation; the page translates it when showing it."""
    return text


DEFAULT_MODEL = "default"
FAMILIES = ("SmolLM", "Qwen3", "Llama", "Mistral", "Phi", "Gemma")
# (family, hub id, billions of parameters, note)
MODELS: tuple[tuple[str, str, float, str], ...] = (
    ("SmolLM", DEFAULT_MODEL, 0.135, N_("SmolLM2-135M-Instruct, bundled: works offline and on a "
                                        "CPU")),
    ("SmolLM", "HuggingFaceTB/SmolLM2-360M-Instruct", 0.36, ""),
    ("SmolLM", "HuggingFaceTB/SmolLM2-1.7B-Instruct", 1.7, ""),
    ("SmolLM", "HuggingFaceTB/SmolLM3-3B", 3.1, ""),
    ("Qwen3", "Qwen/Qwen3-0.6B", 0.6, ""),
    ("Qwen3", "Qwen/Qwen3-1.7B", 1.7, ""),
    ("Qwen3", "Qwen/Qwen3-4B", 4.0, ""),
    ("Qwen3", "Qwen/Qwen3-8B", 8.2, ""),
    ("Qwen3", "Qwen/Qwen3-14B", 14.8, ""),
    ("Llama", "meta-llama/Llama-3.2-1B-Instruct", 1.2, N_("gated: accept the licence on the hub")),
    ("Llama", "meta-llama/Llama-3.2-3B-Instruct", 3.2, N_("gated: accept the licence on the hub")),
    ("Llama", "meta-llama/Llama-3.1-8B-Instruct", 8.0, N_("gated: accept the licence on the hub")),
    ("Mistral", "mistralai/Mistral-7B-Instruct-v0.3", 7.2, ""),
    ("Mistral", "mistralai/Mistral-Nemo-Instruct-2407", 12.2, ""),
    ("Phi", "microsoft/Phi-4-mini-instruct", 3.8, ""),
    ("Phi", "microsoft/phi-4", 14.7, ""),
    ("Gemma", "google/gemma-3-1b-it", 1.0, N_("gated: accept the licence on the hub")),
    ("Gemma", "google/gemma-3-4b-it", 4.3, N_("gated: accept the licence on the hub")),
    ("Gemma", "google/gemma-3-12b-it", 12.2, N_("gated: accept the licence on the hub")),
)

# Public datasets. "id" is the hub id; "key" names the entry's offline test fixture
# (tests/data/datasets/catalog/<key>.jsonl); "config_name" and "split" are what the wizard loads,
# "splits" every split the dataset has; "rows" the approximate size of "split"; "download_rows",
# when set, caps a download (the whole split is far larger than a GRPO run needs). A mapping value
# may be a dotted path into a nested column (SQuAD's `answers.text`, see core.datasets).
DATASETS: tuple[dict[str, Any], ...] = (
    {"id": "tatsu-lab/alpaca", "key": "alpaca", "name": "Alpaca", "config_name": None,
     "split": "train", "splits": ["train"], "rows": 52_002, "download_rows": None,
     "mapping": {"instruction": "instruction", "input": "input", "response": "output"},
     "rewards": ["length_band", "repetition"],
     "description": N_("52k instructions with answers written by text-davinci-003 (SFT).")},
    {"id": "openai/gsm8k", "key": "gsm8k", "name": "GSM8K", "config_name": "main",
     "split": "train", "splits": ["train", "test"], "rows": 7_473, "download_rows": None,
     "mapping": {"instruction": "question", "response": "answer"},
     "rewards": ["answer_correct", "format_markers"],
     "description": N_("Grade-school math word problems; answers end in '#### N'.")},
    {"id": "nvidia/OpenMathReasoning", "key": "openmathreasoning", "name": "OpenMathReasoning",
     "config_name": None, "split": "cot", "splits": ["cot", "tir", "genselect"],
     "rows": 3_201_061, "download_rows": 50_000,  # the card: cot 3,201,061, tir, genselect
     "mapping": {"instruction": "problem", "response": "generated_solution",
                 "reference": "expected_answer"},
     "rewards": ["answer_correct", "format_markers"],
     "description": N_("Olympiad-level math problems with long chain-of-thought solutions and "
                       "their expected answers (the first 50k rows are downloaded).")},
    {"id": "sahil2801/CodeAlpaca-20k", "key": "code_alpaca", "name": "Code Alpaca",
     "config_name": None, "split": "train", "splits": ["train"], "rows": 20_022,
     "download_rows": None,
     "mapping": {"instruction": "instruction", "input": "input", "response": "output"},
     "rewards": ["code_block", "python_parses"],
     "description": N_("20k programming instructions with code answers, in several languages.")},
    {"id": "databricks/databricks-dolly-15k", "key": "dolly", "name": "Dolly 15k",
     "config_name": None, "split": "train", "splits": ["train"], "rows": 15_011,
     "download_rows": None,
     "mapping": {"instruction": "instruction", "input": "context", "response": "response"},
     "rewards": ["length_band", "repetition"],
     "description": N_("15k human-written instructions (SFT).")},
    {"id": "microsoft/orca-math-word-problems-200k", "key": "orca_math", "name": "Orca Math",
     "config_name": None, "split": "train", "splits": ["train"], "rows": 200_035,
     "download_rows": None, "mapping": {"instruction": "question", "response": "answer"},
     "rewards": ["answer_correct", "format_markers"],
     "description": N_("200k math word problems with worked answers.")},
    {"id": "rajpurkar/squad_v2", "key": "squad_v2", "name": "SQuAD v2", "config_name": "squad_v2",
     "split": "train", "splits": ["train", "validation"], "rows": 130_319, "download_rows": None,
     "mapping": {"instruction": "question", "input": "context", "response": "answers.text",
                 "reference": "answers.text"},
     "rewards": ["exact_match", "token_f1"],
     "description": N_("Questions on Wikipedia paragraphs; a third have no answer in the text "
                       "(no reference: their rewards are skipped).")},
)


def catalog_dataset(dataset_id: str) -> dict[str, Any] | None:
    """The catalog entry with hub id `dataset_id`, or None."""
    return next((d for d in DATASETS if d["id"] == dataset_id), None)


def memory_guidance(billions: float) -> dict[str, float]:
    """Rough GPU memory in GB to train with each method: bf16 weights for LoRA, 4-bit for QLoRA,
    bf16 weights + fp32 AdamW state for full, each plus 1.5 GB for activations and generation."""
    return {"lora": round(billions * 2 + 1.5, 1), "qlora": round(billions * 0.7 + 1.5, 1),
            "full": round(billions * 16 + 1.5, 1)}


def model_catalog() -> list[dict[str, Any]]:
    return [{"family": family, "id": hub_id, "params_b": size, "note": note,
             "memory_gb": memory_guidance(size), "offline": hub_id == DEFAULT_MODEL}
            for family, hub_id, size, note in MODELS]


def builtin_datasets() -> list[dict[str, Any]]:
    """The samples shipped in data/, with their row counts."""
    found = []
    for path in sorted(BUILTIN_DIR.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            rows = sum(1 for line in f if line.strip())
        found.append({"id": path.stem, "name": path.stem, "format": "jsonl", "rows": rows,
                      "source": "builtin"})
    return found


def local_model_dir(name: str) -> Path | None:
    """The folder holding `name` on this machine (the converted default model, a local path or a
    hub id downloaded into the model cache), or None for a hub id that has not been downloaded."""
    if name == DEFAULT_MODEL:
        folder = default_model_dir()
        return folder if folder.is_dir() else None
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    return downloaded_model_dir(name)


def reward_catalog() -> list[dict[str, Any]]:
    """The reward registry: id, name, category, description, parameters, needed fields."""
    return list_rewards()
