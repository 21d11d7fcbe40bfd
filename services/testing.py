"""Model testing for the web app: which model a request names, chatting with it through the
inference worker, and prompt files for batch tests.

Guarantees: a request names its model by run id (its result, a checkpoint, or its base model, each
prompted with the run's training template), by export id (its GGUF or transformers folder, prompted
with the template of the run it came from), or by `model_path` ("default", a hub id, a model folder
or a .gguf file); `ModelSelector.resolve` turns that into an inference-worker reference and a label,
or raises `TestRequestError` naming the field. Generation runs in the inference worker process;
tokens reach `on_token` in order. Prompt files (.txt one prompt a line, .jsonl, .csv) are read with
the dataset readers, limited in size and rows, and errors name the line.

Does not: import torch, run batch or evaluation jobs (services/test_jobs.py does), or decide who may
read which local folder (the access token is the boundary, DESIGN.md §8).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

from core.config import ConfigError, DatasetSection, FieldMapping
from core.datasets import DatasetError, detect_mapping, to_example
from core.files import read_json
from core.formats import head_rows
from core.run_dir import RunDir
from services.exports import ExportNotFound, Exports
from services.inference import InferenceCancelled, InferenceClient
from services.runs import RunNotFound, RunStore

MAX_PROMPTS = 500
MAX_PROMPT_FILE_BYTES = 5 * 2**20
MAX_PROMPT_CHARS = 20_000
PROMPT_FILE_TYPES = (".txt", ".jsonl", ".csv")
SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "max_tokens", "seed")
GENERATE_TIMEOUT_SECONDS = 900.0
TokenCallback = Callable[[str], None]


class TestRequestError(ValueError):
    """A testing request that cannot be served; `field` names what to fix."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class ModelSelector:
    """Turns the model a request names into an inference-worker reference and a label."""

    def __init__(self, runs: RunStore, exports: Exports):
        self.runs, self.exports = runs, exports

    def resolve(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        given = [k for k in ("session_id", "export_id", "model_path") if body.get(k)]
        if len(given) != 1:
            raise TestRequestError("name one model: session_id (a run), export_id or model_path",
                                   "model")
        if given[0] == "session_id":
            return self._run(body)
        if given[0] == "export_id":
            return self._export(body["export_id"])
        return self._path(body["model_path"])

    def _run(self, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        run = self._run_dir(body["session_id"])
        ref: dict[str, Any] = {"kind": "run", "run_dir": str(run.path.resolve())}
        if body.get("base") is True:
            return {**ref, "base": True}, f"{run.run_id} (base model)"
        checkpoint = body.get("checkpoint")
        if checkpoint is not None:
            if not isinstance(checkpoint, str):
                raise TestRequestError("checkpoint must be a checkpoint's name or path",
                                       "checkpoint")
            names = {c["name"]: c["path"] for c in self.runs.checkpoints(run)}
            if checkpoint not in names and checkpoint not in names.values():
                raise TestRequestError(f"run {run.run_id!r} has no complete checkpoint "
                                       f"{checkpoint!r}", "checkpoint")
            return {**ref, "checkpoint": names.get(checkpoint, checkpoint)}, \
                f"{run.run_id} ({checkpoint})"
        return ref, run.run_id

    def _run_dir(self, run_id: Any) -> RunDir:
        if not isinstance(run_id, str):
            raise TestRequestError("session_id must be a run id", "session_id")
        try:
            return self.runs.run(run_id)
        except RunNotFound as err:
            raise TestRequestError(str(err), "session_id") from None

    def _export(self, export_id: Any) -> tuple[dict[str, Any], str]:
        try:
            state = self.exports.get(export_id)
        except ExportNotFound as err:
            raise TestRequestError(str(err), "export_id") from None
        if state.get("status") != "done":
            raise TestRequestError(f"export {export_id!r} is {state.get('status')}; test it "
                                   "once it is done", "export_id")
        folder = self.exports.folder(export_id)
        names = [f["name"] for f in state.get("files") or [] if isinstance(f, dict)]
        template = _source_template(state.get("source") or {})
        fmt = state.get("format")
        if fmt == "gguf":
            model = next((n for n in names if n.startswith("model-") and n.endswith(".gguf")),
                         None)
            if model is None:
                raise TestRequestError(f"export {export_id!r} lists no model file", "export_id")
            ref = {"kind": "gguf", "path": str(folder / model)}
        elif fmt in ("adapter", "merged"):
            ref = {"kind": "hf", "path": str(folder)}  # the adapter finds its base itself
        else:
            raise TestRequestError("a LoRA GGUF export is tested through its run (or export "
                                   "the merged model as GGUF)", "export_id")
        return ({**ref, "template": template} if template else ref), f"export {export_id}"

    @staticmethod
    def _path(path: Any) -> tuple[dict[str, Any], str]:
        if not isinstance(path, str) or not path.strip():
            raise TestRequestError("model_path must be 'default', a hub id, a model folder or "
                                   "a .gguf file", "model_path")
        kind = "gguf" if path.lower().endswith(".gguf") else "hf"
        return {"kind": kind, "path": path.strip()}, path.strip()

    # ---- what the pickers offer --------------------------------------------------------------
    def choices(self, cached: list[str]) -> list[dict[str, Any]]:
        """Every model a picker may offer: runs with a result, their complete checkpoints and
        base models, finished exports, then `cached` base models by name."""
        found: list[dict[str, Any]] = []
        for run in self.runs.runs():
            found.extend(self._run_choices(run))
        for export in self.exports.list():
            if export.get("status") == "done" and export.get("format") != "gguf_lora":
                label = " ".join(str(p) for p in (export["export_id"], export.get("format"),
                                                  export.get("quantization") or "") if p)
                found.append({"id": f"export:{export['export_id']}", "label": label.strip(),
                              "group": "export", "select": {"export_id": export["export_id"]},
                              "run_id": _source_run_id(export.get("source") or {})})
        for name in cached:
            found.append({"id": f"model:{name}", "label": name, "group": "base",
                          "select": {"model_path": name}})
        return found

    def _run_choices(self, run: RunDir) -> list[dict[str, Any]]:
        state = self.runs.state(run)
        name = state.get("name") or run.run_id
        choices = [{"id": f"base:{run.run_id}", "label": f"{name}: base model", "group": "base",
                    "select": {"session_id": run.run_id, "base": True}, "run_id": run.run_id}]
        if run.adapter_dir.is_dir() or run.model_dir.is_dir():
            choices.append({"id": f"run:{run.run_id}", "label": f"{name}: fine-tuned",
                            "group": "run", "select": {"session_id": run.run_id},
                            "run_id": run.run_id})
        for checkpoint in self.runs.checkpoints(run):
            choices.append({"id": f"checkpoint:{run.run_id}:{checkpoint['path']}",
                            "label": f"{name}: {checkpoint['phase']} {checkpoint['name']}",
                            "group": "checkpoint", "run_id": run.run_id,
                            "select": {"session_id": run.run_id,
                                       "checkpoint": checkpoint["path"]}})
        return choices


def _source_run_id(source: dict[str, Any]) -> str | None:
    return Path(source["run_dir"]).name if source.get("run_dir") else None


def _source_template(source: dict[str, Any]) -> dict[str, Any] | None:
    """The template section of the run an export came from (None for a base + adapter pair)."""
    run_dir = source.get("run_dir")
    config = read_json(Path(run_dir) / "config.json", default=None) if run_dir else None
    template = config.get("template") if isinstance(config, dict) else None
    return template if isinstance(template, dict) else None


def generate_request(body: dict[str, Any], ref: dict[str, Any], request_id: str,
                     defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The inference worker's generate request for a testing request (the worker checks values
    and names the bad one)."""
    request: dict[str, Any] = {"id": request_id, "model": ref, **(defaults or {})}
    request.update({k: body[k] for k in SAMPLING_FIELDS if body.get(k) is not None})
    if "messages" in body:
        request["messages"] = body["messages"]
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise TestRequestError("write a prompt", "prompt")
        request["prompt"] = prompt
    if body.get("system_prompt") is not None:
        if not isinstance(body["system_prompt"], str):
            raise TestRequestError("system_prompt must be text", "system_prompt")
        request["system_prompt"] = body["system_prompt"]
    return request


class ModelTester:
    """One chat answer at a time per request, through the shared inference worker."""

    def __init__(self, selector: ModelSelector, client: InferenceClient):
        self.selector, self.client = selector, client

    def generate(self, body: dict[str, Any], request_id: str,
                 on_token: TokenCallback | None = None) -> dict[str, Any]:
        ref, label = self.selector.resolve(body)
        try:
            result = self.client.generate(generate_request(body, ref, request_id), on_token,
                                          timeout=GENERATE_TIMEOUT_SECONDS)
        except InferenceCancelled:  # stopped while it waited for another request: no text
            result = {"text": "", "tokens": 0, "seconds": 0.0, "tokens_per_second": 0.0,
                      "first_token_seconds": None, "finish_reason": "cancelled"}
        return {**result, "model": label}

    def cancel(self, request_id: str) -> None:
        self.client.cancel(request_id)


# ---- prompt files ------------------------------------------------------------------------------
def read_prompt_file(stream: BinaryIO, filename: str) -> list[dict[str, Any]]:
    """Prompts (+ references) of an uploaded .txt, .jsonl or .csv file."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in PROMPT_FILE_TYPES:
        raise TestRequestError(f"upload a {', '.join(PROMPT_FILE_TYPES)} file", "file")
    data = stream.read(MAX_PROMPT_FILE_BYTES + 1)
    if len(data) > MAX_PROMPT_FILE_BYTES:
        raise TestRequestError(f"the prompt file is larger than "
                               f"{MAX_PROMPT_FILE_BYTES // 2**20} MB", "file")
    if suffix == ".txt":
        prompts = _text_prompts(data)
    else:
        prompts = _table_prompts(data, suffix, Path(filename).name)
    if not prompts:
        raise TestRequestError(f"{Path(filename).name} holds no prompt", "file")
    if len(prompts) > MAX_PROMPTS:
        raise TestRequestError(f"{Path(filename).name} holds {len(prompts)} prompts; at most "
                               f"{MAX_PROMPTS} at a time", "file")
    return prompts


def _text_prompts(data: bytes) -> list[dict[str, Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise TestRequestError(f"line {line}: the file is not UTF-8 text", "file") from None
    return [{"prompt": line.strip()} for line in text.splitlines() if line.strip()]


def _table_prompts(data: bytes, suffix: str, name: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"prompts{suffix}"
        path.write_bytes(data)
        try:
            rows = head_rows(path, MAX_PROMPTS + 1)
        except DatasetError as err:
            raise TestRequestError(str(err).replace(path.name, name), "file") from None
    if not rows:
        return []
    try:
        mapping = detect_mapping(list(rows[0]), FieldMapping())
    except DatasetError as err:
        raise TestRequestError(f"{name}: {err}".replace("set dataset.mapping.instruction "
                                                        "(or messages)", "name a column "
                                                        "prompt, question or instruction"),
                               "file") from None
    prompts = []
    for number, row in enumerate(rows, 2 if suffix == ".csv" else 1):
        example = to_example(row, mapping)
        text = example.prompt_messages[-1]["content"] if example.prompt_messages else ""
        if not text.strip():
            raise TestRequestError(f"{name} row {number}: the prompt is empty", "file")
        if len(text) > MAX_PROMPT_CHARS:
            raise TestRequestError(f"{name} row {number}: the prompt is longer than "
                                   f"{MAX_PROMPT_CHARS} characters", "file")
        prompts.append({"prompt": text, **({"reference": example.reference}
                                           if example.reference else {})})
    return prompts


def check_prompts(prompts: Any) -> list[dict[str, Any]]:
    """A request's `prompts`: [{prompt, reference?}], 1 to MAX_PROMPTS of them."""
    if not isinstance(prompts, list) or not prompts:
        raise TestRequestError("add prompts (upload a file) or choose the run's validation rows",
                               "prompts")
    if len(prompts) > MAX_PROMPTS:
        raise TestRequestError(f"at most {MAX_PROMPTS} prompts at a time", "prompts")
    checked = []
    for i, item in enumerate(prompts):
        item = {"prompt": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str) \
                or not item["prompt"].strip():
            raise TestRequestError("each prompt is {prompt, reference?} with text",
                                   f"prompts.{i}")
        reference = item.get("reference")
        if reference is not None and not isinstance(reference, (str, int, float)):
            raise TestRequestError("a reference must be text", f"prompts.{i}.reference")
        checked.append({"prompt": item["prompt"][:MAX_PROMPT_CHARS],
                        "reference": None if reference is None else str(reference)})
    return checked


def dataset_section(config: dict[str, Any]) -> DatasetSection:
    from core.config import validate_section
    try:
        return validate_section(DatasetSection, config.get("dataset"), "dataset")
    except ConfigError as err:
        raise TestRequestError(f"the run's dataset section cannot be read: {err}",
                               "session_id") from None
