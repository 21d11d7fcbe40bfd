"""Testing API: naming a model, prompt files, chat through the real inference worker with tokens
streamed to the requesting socket, batch tests with reward scores and their CSV, and held-out
evaluation of base vs fine-tuned on a real tiny run."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from routes.extensions import socketio


@pytest.mark.parametrize("body, field", [
    ({"prompt": "hi"}, "model"),                                        # no model named
    ({"prompt": "hi", "session_id": "a", "model_path": "default"}, "model"),  # two named
    ({"prompt": "hi", "session_id": "no-such-run"}, "session_id"),
    ({"prompt": "hi", "export_id": "no-such-export"}, "export_id"),
    ({"model_path": "default"}, "prompt"),                               # nothing to answer
    ({"prompt": "hi", "model_path": "default", "system_prompt": 3}, "system_prompt"),
])
def test_a_chat_request_names_what_to_fix(client, body, field):
    answer = client.post("/api/models/test", json=body)
    assert answer.status_code == 400 and answer.json["field"] == field, answer.json


def upload(client, name: str, content: bytes):
    return client.post("/api/test/prompts", data={"file": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


@pytest.mark.parametrize("name, content, expected", [
    ("p.txt", "\ufeffWhat is 2+2?\r\n\r\nName a colour.\r\n".encode(),
     [{"prompt": "What is 2+2?"}, {"prompt": "Name a colour."}]),
    ("p.jsonl", b'{"question": "2+2?", "answer": "#### 4"}\n{"question": "3+3?"}\n',
     [{"prompt": "2+2?", "reference": "4"}, {"prompt": "3+3?"}]),
    ("p.csv", b"prompt,reference\n2+2?,4\n\"a, b\",c\n",
     [{"prompt": "2+2?", "reference": "4"}, {"prompt": "a, b", "reference": "c"}]),
])
def test_prompt_files_of_each_type_are_read(client, name, content, expected):
    answer = upload(client, name, content)
    assert answer.status_code == 200, answer.json
    assert answer.json["prompts"] == expected and answer.json["count"] == len(expected)


@pytest.mark.parametrize("name, content, message", [
    ("p.jsonl", b'{"question": "ok"}\n{"question": \n', "line 2: invalid JSON"),
    ("p.csv", b"question\nfine\n\"\"\n", "row 3: the prompt is empty"),
    ("p.csv", b"colour,size\nred,1\n", "no prompt column"),
    ("p.txt", b"fine\n\xff\xfe broken\n", "line 2: the file is not UTF-8"),
    ("p.exe", b"x", "upload a .txt, .jsonl, .csv file"),
    ("p.txt", b"\n\n", "holds no prompt"),
])
def test_a_broken_prompt_file_is_refused_naming_the_line(client, name, content, message):
    answer = upload(client, name, content)
    assert answer.status_code == 400 and answer.json["field"] == "file"
    assert message in answer.json["error"], answer.json["error"]


def test_unknown_jobs_answer_404_and_bad_batches_name_their_field(client):
    assert client.get("/api/test/jobs/batch-0123456789ab").status_code == 404
    assert client.get("/api/test/jobs/..%2Fx/download").status_code == 404
    assert client.delete("/api/test/jobs/batch-0123456789ab").status_code == 404
    answer = client.post("/api/test/batch", json={"model_path": "default", "prompts": []})
    assert answer.status_code == 400 and answer.json["field"] == "prompts"
    answer = client.post("/api/test/batch", json={"model_path": "default", "prompts": ["hi"],
                                                  "validation_rows": 3})
    assert answer.status_code == 400 and answer.json["field"] == "validation_rows"
    answer = client.post("/api/test/eval", json={})
    assert answer.status_code == 400 and answer.json["field"] == "session_id"


def wait_job(client, job_id: str, timeout: float = 300) -> dict:
    from tests.conftest import wait_for
    return wait_for(lambda: (lambda j: j if j["status"] != "running" else None)(
        client.get(f"/api/test/jobs/{job_id}").json), timeout, f"test job {job_id}")


@pytest.fixture
def finished_run(services, tiny_model):
    """A real tiny GRPO run, trained for one step, holding a quarter of its rows out."""
    from core.config import validate_config
    from core.run_dir import create_run
    from core.worker import run_worker
    from tests.conftest import tiny_config
    config = tiny_config(tiny_model, training={"max_steps": 1}, output={"sample_every": 0},
                         dataset={"validation_split": 0.25, "max_samples": 16})
    config["rewards"] = [{"name": "length_band", "params": {"min_length": 1, "max_length": 30,
                                                            "unit": "characters"}},
                         {"name": "answer_correct"}]
    run = create_run(validate_config(config), services.runs.outputs, run_id="tested-run")
    run_worker(run)
    assert (run.path / "adapter").is_dir()
    return run


@pytest.mark.slow
def test_a_run_is_chatted_with_batch_tested_and_evaluated(app, client, services, finished_run):
    choices = client.get("/api/test/models").json["models"]
    assert {"base:tested-run", "run:tested-run"} <= {c["id"] for c in choices}
    listed = client.get("/api/models/list").json["runs"]
    assert [(r["session_id"], r["adapter"], r["exports"]) for r in listed] == [
        ("tested-run", True, [])] and isinstance(listed[0]["checkpoints"], list)

    # chat: tokens reach the requesting socket only, in order, adding up to the answer
    listener, other = (socketio.test_client(app, flask_test_client=client) for _ in range(2))
    sid = socketio.server.manager.sid_from_eio_sid(listener.eio_sid, "/")
    answer = client.post("/api/models/test", json={
        "session_id": "tested-run", "prompt": "What is 2 + 2?", "temperature": 0,
        "max_tokens": 12, "stream_id": "s1", "socket_id": sid})
    assert answer.status_code == 200, answer.json
    result = answer.json
    tokens = [e["args"][0] for e in listener.get_received() if e["name"] == "generation_token"]
    assert tokens and all(t["stream_id"] == "s1" for t in tokens)
    assert "".join(t["token"] for t in tokens) == result["text"]
    assert not [e for e in other.get_received() if e["name"] == "generation_token"]
    for socket_id in (None, "tested-run"):  # no socket, or a room's name: nothing is streamed
        client.post("/api/models/test", json={
            "session_id": "tested-run", "prompt": "Hi", "temperature": 0, "max_tokens": 2,
            "stream_id": "s2", "socket_id": socket_id})
        assert not [e for c in (listener, other) for e in c.get_received()
                    if e["name"] == "generation_token"]
    assert result["tokens"] == 12 and result["finish_reason"] == "length"
    assert result["model"] == "tested-run" and result["backend"] == "hf"
    assert "Solve the problem" in result["prompt"]  # the run's training system prompt
    plain = client.post("/api/models/test", json={
        "session_id": "tested-run", "base": True, "prompt": "What is 2 + 2?",
        "temperature": 0, "max_tokens": 12, "system_prompt": ""}).json
    assert "Solve the problem" not in plain["prompt"] and plain["model"].endswith("(base model)")

    # batch: prompts with references, scored; the CSV has a column per reward
    job_id = client.post("/api/test/batch", json={
        "model_path": str(finished_run.path / "adapter"), "max_tokens": 8,
        "prompts": [{"prompt": "1+1?", "reference": "2"}, {"prompt": "2+2?"}],
        "rewards": [{"name": "length_band", "params": {"min_length": 1, "max_length": 500,
                                                       "unit": "characters"}}]}).json["job_id"]
    job = wait_job(client, job_id)
    assert job["status"] == "done", job["error"]
    rows = job["result"]["rows"]
    assert [r["prompt"] for r in rows] == ["1+1?", "2+2?"]
    assert all(r["scores"]["length_band"] is not None and r["tokens"] > 0 for r in rows)
    table = list(csv.reader(io.StringIO(client.get(
        f"/api/test/jobs/{job_id}/download?format=csv").get_data(as_text=True))))
    assert table[0] == ["index", "prompt", "reference", "completion", "tokens", "seconds",
                        "length_band", "total"] and len(table) == 3
    assert json.loads(client.get(f"/api/test/jobs/{job_id}/download?format=json").data)[
        "rows"][0]["reference"] == "2"

    # the run's held-out rows with its own rewards
    job = wait_job(client, client.post("/api/test/batch", json={
        "session_id": "tested-run", "validation_rows": 2, "max_tokens": 8}).json["job_id"])
    assert job["status"] == "done" and job["note"] is None, job["error"]
    assert job["result"]["rewards"] == ["length_band", "answer_correct"]

    # held-out evaluation: base vs fine-tuned, with accuracy and perplexity
    job = wait_job(client, client.post("/api/test/eval", json={
        "session_id": "tested-run", "rows": 2, "max_tokens": 8}).json["job_id"])
    assert job["status"] == "done", job["error"]
    models = job["result"]["models"]
    assert [m["label"] for m in models] == ["base", "fine-tuned"]
    assert all(m["perplexity"] > 1 and m["accuracy"] is not None and m["rows"] == 2
               for m in models)
    assert job["result"]["held_out"] is True and job["done"] == job["total"]


def test_batches_check_rewards_and_settings_before_generating(client):
    base = {"model_path": "default", "prompts": ["hi"]}
    answer = client.post("/api/test/batch", json={**base, "rewards": [
        {"name": "length_band", "weight": "heavy"}]})
    assert answer.status_code == 400 and answer.json["field"] == "rewards.0.weight"
    answer = client.post("/api/test/batch", json={**base, "temperature": -1})
    assert answer.status_code == 400 and answer.json["field"] == "temperature"
    answer = client.post("/api/test/batch", json={**base, "template": {"solution_start": 3}})
    assert answer.status_code == 400 and answer.json["field"] == "template"
    answer = client.post("/api/models/test", json={"session_id": "x", "checkpoint": ["a"],
                                                   "prompt": "hi"})
    assert answer.status_code == 400  # (no such run: named before the checkpoint)


def test_csv_cells_a_spreadsheet_would_run_are_quoted():
    from services.test_jobs import results_csv
    text = results_csv({"rewards": ["r"], "rows": [
        {"index": 1, "prompt": "=cmd|' /C calc'!A0", "reference": "-2", "completion": "@x",
         "tokens": 3, "seconds": 0.5, "scores": {"r": -1.0}, "total": -1.0}]})
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row == ["1", "'=cmd|' /C calc'!A0", "'-2", "'@x", "3", "0.5", "-1.0", "-1.0"]


def test_held_out_rows_leave_out_what_pre_training_trained_on(services):
    """With SFT pre-training on, the rows it trained on (its own split of the rows with a
    response) are never offered as held out, checked against training's own split."""
    import datasets

    from core.config import validate_config
    from core.datasets import training_examples
    from core.training.phases import _train_and_evaluation
    config = validate_config({"dataset": {"path": "arithmetic", "max_samples": 40,
                                          "validation_split": 0.25},
                              "pre_training": {"enabled": True, "max_samples": 12},
                              "rewards": [{"name": "answer_correct"}]})
    plain = config.model_copy(update={"pre_training": config.pre_training.model_copy(
        update={"enabled": False})})
    jobs = services.test_jobs
    with_pre, _ = jobs._held_out_cases(config.model_dump(mode="json"), 40)
    without, _ = jobs._held_out_cases(plain.model_dump(mode="json"), 40)
    sft_rows = training_examples(config.dataset, "sft")[:12]
    pre_train, _ = _train_and_evaluation(config, datasets.Dataset.from_list(
        [{"position": e.position} for e in sft_rows]), lambda section: None)
    trained = set(pre_train["position"])
    assert [c["row"] for c in with_pre] == [c["row"] for c in without if c["row"] not in trained]
    assert len(with_pre) < len(without)  # this seed puts some pre-training rows in the way


def test_held_out_rows_are_the_validation_files_rows_when_the_run_names_one(services, tmp_path):
    """A run trained on the split tool's train part evaluates on every row of its validation
    part, in file order, with no note (nothing it trained on)."""
    from core.config import validate_config
    from core.datasets import builtin_path
    from core.formats.readers import iter_records
    from core.formats.split import split_file
    parts = split_file(builtin_path("arithmetic"), tmp_path, validation=0.1)["parts"]
    config = validate_config({"dataset": {"source": "file", "path": parts["train"]["path"],
                                          "validation_path": parts["validation"]["path"]},
                              "pre_training": {"enabled": True},
                              "rewards": [{"name": "answer_correct"}]})
    cases, note = services.test_jobs._held_out_cases(config.model_dump(mode="json"), 1000)
    expected = [r.row["question"] for r in iter_records(Path(parts["validation"]["path"]))]
    assert [c["prompt"] for c in cases] == expected and note is None
    assert len(cases) == parts["validation"]["rows"]
