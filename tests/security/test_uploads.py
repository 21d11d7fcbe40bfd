"""Uploads: a request size limit (MAX_CONTENT_LENGTH, the upload limit plus form overhead), form
limits (fields and the size of a text field), an extension allow-list per upload kind, and names
chosen by the server (an upload's own name is only a label). The routes' app limits uploads to
64 KB."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from flask_app import MB, create_app

ROWS = b'{"question": "1 + 1?", "answer": "2"}\n'
REWARD = b"def reward(completions, **kwargs):\n    return [0.0 for _ in completions]\n"


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) \
        if folder.exists() else []


def post_form(client, url: str, fields: dict):
    """A multipart POST encoded here: the test client would spool a large body to a temporary
    file that it never closes."""
    boundary, data = encode_multipart(fields)
    return client.post(url, data=data, content_type=f"multipart/form-data; boundary={boundary}")


def upload(client, url: str, data: bytes, filename: str):
    return post_form(client, url, {"file": FileStorage(io.BytesIO(data), filename)})


# ---- sizes -------------------------------------------------------------------------------------
def test_the_request_limit_is_the_upload_limit_plus_form_overhead(app):
    assert app.config["MAX_CONTENT_LENGTH"] == app.config["MAX_UPLOAD_BYTES"] + MB


def test_a_request_over_the_request_limit_is_refused_before_it_is_read(app, client):
    body = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    response = upload(client, "/api/datasets/upload", body, "big.jsonl")
    assert response.status_code == 413 and response.json["field"] == "file"
    assert "64 KB limit" in response.json["error"]
    assert files_under(app.config["UPLOADS_DIR"]) == []


def test_a_file_over_the_upload_limit_is_refused_and_leaves_nothing(app, client):
    response = upload(client, "/api/datasets/upload", b"x" * ((64 << 10) + 1), "big.jsonl")
    assert response.status_code == 413 and response.json["field"] == "file"
    assert files_under(app.config["UPLOADS_DIR"]) == []


def test_a_form_with_too_many_fields_is_refused(app, client):
    fields = {f"f{i}": "x" for i in range(app.config["MAX_FORM_PARTS"] + 1)}
    response = post_form(client, "/api/datasets/upload", fields)
    assert response.status_code == 413 and "fields" in response.json["error"]
    assert files_under(app.config["UPLOADS_DIR"]) == []


def test_a_form_text_field_over_its_limit_is_refused(tmp_path):
    app = create_app({"ROOT": tmp_path, "TESTING": True, "START_JOBS": False,
                      "MAX_UPLOAD_BYTES": 8 * MB})
    try:
        too_long = "n" * (app.config["MAX_FORM_MEMORY_SIZE"] + 1)
        response = post_form(app.test_client(), "/api/rewards/custom/upload",
                             {"name": too_long})
        assert response.status_code == 413 and "larger than 1.0 MB" in response.json["error"]
    finally:
        app.extensions["grpo_studio"].close()


# ---- extensions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "rows.exe",          # a program
    "rows.py",           # code
    "rows.html",         # a page a browser would render
    "rows.jsonl.sh",     # a double extension ending in the wrong one
    "rows",              # none at all
    ".jsonl",            # a dotfile, no extension
])
def test_a_dataset_upload_must_have_a_dataset_extension(app, client, name):
    response = upload(client, "/api/datasets/upload", ROWS, name)
    assert response.status_code == 400 and response.json["field"] == "file"
    assert files_under(app.config["UPLOADS_DIR"]) == []


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.JSON", "rows.csv", "rows.txt"])
def test_each_dataset_extension_is_accepted(client, name):
    data = b"question,answer\n1 + 1?,2\n" if name.endswith(".csv") else ROWS
    data = b'[{"question": "1 + 1?", "answer": "2"}]' if name.endswith(".JSON") else data
    assert upload(client, "/api/datasets/upload", data, name).status_code == 201


@pytest.mark.parametrize("name", ["reward.txt", "reward.pyc", "reward.py.txt", "reward"])
def test_a_custom_reward_upload_must_be_a_python_file(app, client, name):
    response = upload(client, "/api/rewards/custom/upload", REWARD, name)
    assert response.status_code == 400 and response.json["field"] == "file"
    assert files_under(app.config["CUSTOM_REWARDS_DIR"]) == []


@pytest.mark.parametrize("name", ["prompts.py", "prompts.parquet", "prompts.html", "prompts"])
def test_a_prompt_file_must_be_text_jsonl_or_csv(client, name):
    response = upload(client, "/api/test/prompts", b"hello\n", name)
    assert response.status_code == 400 and response.json["field"] == "file"


# ---- names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [
    "../../escape.jsonl",            # a parent
    "/etc/cron.d/job.jsonl",         # an absolute path
    "C:\\Users\\me\\rows.jsonl",     # a Windows path
    ".bashrc.jsonl",                 # a dotfile's name
    "rows\x00.jsonl",                # NUL
])
def test_an_uploaded_dataset_gets_a_server_chosen_name(tmp_path, app, client, name):
    response = upload(client, "/api/datasets/upload", ROWS, name)
    assert response.status_code == 201
    upload_id = response.json["id"]
    assert files_under(tmp_path) == sorted([".secret_key", f"uploads/{upload_id}.jsonl",
                                            f"uploads/{upload_id}.meta.json"])
    assert Path(response.json["path"]).parent == Path(app.config["UPLOADS_DIR"]).resolve()


@pytest.mark.parametrize("name", ["../../escape.jsonl", "/etc/cron.d/job.jsonl",
                                  "C:\\Users\\me\\rows.jsonl", "rows\x00.jsonl"])
def test_an_uploads_own_name_is_kept_only_as_a_label_without_a_path(client, name):
    label = upload(client, "/api/datasets/upload", ROWS, name).json["name"]
    assert label.endswith(".jsonl") and not any(c in label for c in "/\\\x00")


def test_upload_ids_are_random_not_derived_from_the_name(client):
    first = upload(client, "/api/datasets/upload", ROWS, "same.jsonl").json["id"]
    second = upload(client, "/api/datasets/upload", ROWS, "same.jsonl").json["id"]
    assert first != second and "same" not in first


@pytest.mark.parametrize("name", ["../x.py", "/tmp/x.py", "C:\\x.py", ".x.py", "x y.py"])
def test_a_custom_reward_file_is_saved_under_a_checked_name_inside_its_folder(tmp_path, app,
                                                                              client, name):
    before = files_under(tmp_path)
    response = upload(client, "/api/rewards/custom/upload", REWARD, name)
    added = sorted(set(files_under(tmp_path)) - set(before))
    if response.status_code == 201:
        assert added == [f"configs/rewards/{response.json['id']}.json"]
    else:
        assert response.status_code == 400 and added == []


def test_a_prompt_file_is_read_not_stored(tmp_path, client):
    before = files_under(tmp_path)
    response = upload(client, "/api/test/prompts", b"What is 2 + 2?\n", "../../prompts.txt")
    assert response.status_code == 200 and response.json["count"] == 1
    assert files_under(tmp_path) == before
