"""The web process stays light: every page and every read-only API answers without importing
torch (training and inference live in worker processes)."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

PAGES_AND_APIS = """
import os, sys, tempfile, pathlib
os.environ["HF_HUB_OFFLINE"] = "1"  # a download fails at once: its state is still served
from flask_app import create_app
from core.config import RunConfig
from core.run_dir import create_run
root = pathlib.Path(tempfile.mkdtemp())
app = create_app({"ROOT": root, "TESTING": True, "START_JOBS": False})
client = app.test_client()
run = create_run(RunConfig(), root / "outputs", run_id="a-run")
run.append_event("metric", phase="grpo", step=1, reward=0.5)
assert client.post("/api/rewards/custom", json={
    "name": "model", "source": "def reward(c, **k):\\n    return [1.0] * len(c)\\n"}).status_code == 201
export = root / "exports" / "an-export"
export.mkdir(parents=True)
(export / "export.json").write_text('{"status": "done", "files": [{"name": "model", "size": 1}]}')
(export / "model").write_text("x")
(root / "test_results").mkdir()
(root / "test_results" / "batch-000000000000.json").write_text(
    '{"job_id": "batch-000000000000", "kind": "batch", "status": "done", '
    '"result": {"rewards": [], "rows": []}}')
download = client.post("/api/models/download", json={"model_id": "owner/model"}).json
catalog_download = client.post("/api/datasets/catalog/download", json={"id": "openai/gsm8k"}).json
import io
dataset = client.post("/api/datasets/upload", content_type="multipart/form-data", data={
    "file": (io.BytesIO(b'{"question": "1+1?", "answer": "2"}\\n'), "a.jsonl")}).json
dataset_job = client.post("/api/datasets/stats", json={"id": dataset["id"]}).json["job_id"]
urls = [rule.rule.replace("<name>", "model").replace("<run_id>", "a-run").replace("<code>", "fr")
        .replace("<export_id>", "an-export").replace("<job_id>", "batch-000000000000")
        .replace("<download_id>", download["download_id"])
        .replace("<catalog_download_id>", catalog_download["download_id"])
        .replace("<upload_id>", dataset["id"]).replace("<dataset_job_id>", dataset_job)
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and "static" not in rule.rule and "<path" not in rule.rule]
urls = [u + "?name=examples/quickstart" if u == "/api/configs/load" else u for u in urls]
for step in ("dataset", "training", "rewards", "review"):
    urls.append(f"/wizard/{step}")
bad = [(u, r.status_code) for u in urls if (r := client.get(u)).status_code >= 400]
assert not bad, bad
assert client.post("/api/datasets/format", json={"config": {}}).status_code == 200
assert client.post("/api/configs/validate", json={"config": {}}).status_code == 200
assert client.post("/api/rewards/test", json={"rewards": [{"name": "answer_correct"}], "cases": [
    {"prompt": "1+1?", "completion": "2", "reference": "2"}]}).status_code == 200
print(len(urls), "torch" in sys.modules)
"""


def test_every_page_and_api_answers_without_importing_torch():
    out = subprocess.run([sys.executable, "-c", PAGES_AND_APIS], cwd=REPO, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    count, torch_loaded = out.stdout.split()
    assert int(count) >= 20 and torch_loaded == "False"
