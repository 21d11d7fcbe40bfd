"""The rewards API: the catalog, reward tests (presets, custom code, errors that name what to fix),
test cases from a dataset, and the library of saved custom rewards."""
from __future__ import annotations

import io
import threading
import time

import pytest

ADD = "def reward(completions, **kwargs):\n    return [float(len(c)) for c in completions]\n"
CASES = [{"prompt": "2+2?", "completion": "<think>add</think><answer>4</answer>", "reference": "4"},
         {"prompt": "3+3?", "completion": "7", "reference": "6"}]


def test_the_catalog_lists_at_least_16_presets_with_their_metadata(client):
    rewards = client.get("/api/rewards/list").json["rewards"]
    assert len(rewards) >= 16
    assert {"math", "programming", "reasoning", "format", "qa", "writing"} <= \
        {r["category"] for r in rewards}
    for r in rewards:
        assert r["id"] and r["name"] and r["description"] and len(r["range"]) == 2
        assert isinstance(r["needs"], list) and isinstance(r["parameters"], list)
        for p in r["parameters"]:
            assert {"name", "default", "help", "minimum", "maximum", "choices"} <= set(p)


def test_presets_score_each_case_with_weighted_totals_and_statistics(client):
    body = {"rewards": [{"name": "answer_correct", "weight": 2.0},
                        {"name": "format_markers", "weight": 0.5, "params": {"strict": True}}],
            "cases": CASES}
    answer = client.post("/api/rewards/test", json=body).json
    first, second = answer["results"]
    assert first["components"] == {"answer_correct": 1.0, "format_markers": 1.0}
    assert first["total"] == 2.5
    assert second["components"] == {"answer_correct": 0.0, "format_markers": 0.0}
    assert second["total"] == 0.0
    stats = answer["statistics"]
    assert (stats["mean"], stats["min"], stats["max"], stats["count"]) == (1.25, 0.0, 2.5, 2)
    assert stats["std"] == pytest.approx(1.25)


def test_a_custom_reward_runs_and_its_output_comes_back(client):
    code = ADD.replace("    return", "    print('lengths!')\n    return")
    answer = client.post("/api/rewards/test", json={"custom_code": code, "custom_weight": 0.5,
                                                    "cases": CASES}).json
    assert [r["components"]["custom"] for r in answer["results"]] == [36.0, 1.0]
    assert [r["total"] for r in answer["results"]] == [18.0, 0.5]
    assert "lengths!" in answer["output"]


@pytest.mark.parametrize("body,status,field,message", [
    # a syntax error names its line, before anything runs
    ({"custom_code": "def reward(completions):\n    return [\n"}, 400, "custom_code",
     "line 2"),
    # three values for two cases
    ({"custom_code": "def reward(completions, **kw):\n    return [1.0, 1.0, 1.0]\n"}, 400,
     "custom_code", "returned 3 values for 2 completions"),
    # NaN is an error on the testing page, named by case
    ({"custom_code": "def reward(completions, **kw):\n    return [1.0, float('nan')]\n"}, 400,
     "cases.1", "NaN for case 2"),
    # an exception names the row and the line
    ({"custom_code": "def reward(completions, **kw):\n    return [1 / (len(c) - 1) "
                     "for c in completions]\n"}, 400, "cases.1", "failed on row 2"),
    # an unknown preset
    ({"rewards": [{"name": "nope"}]}, 400, "rewards.0.name", "unknown reward 'nope'"),
    # a bad parameter
    ({"rewards": [{"name": "length_band", "params": {"unit": "pages"}}]}, 400,
     "rewards.0.params", "unit"),
    # nothing to test with
    ({"rewards": []}, 400, "rewards", "at least one reward"),
])
def test_errors_name_what_to_fix(client, body, status, field, message):
    response = client.post("/api/rewards/test", json={"cases": CASES, **body})
    assert response.status_code == status
    assert response.json["field"] == field
    assert message in response.json["error"]


def test_a_syntax_error_carries_its_line_number(client):
    response = client.post("/api/rewards/test", json={
        "custom_code": "def reward(completions):\n    x = (\n", "cases": CASES})
    assert response.json["line"] == 2


def test_cases_are_checked_before_anything_runs(client):
    assert client.post("/api/rewards/test", json={"rewards": [{"name": "answer_correct"}],
                                                  "cases": []}).json["field"] == "cases"
    response = client.post("/api/rewards/test", json={
        "rewards": [{"name": "answer_correct"}], "cases": [{"completion": {"x": 1}}]})
    assert response.json["field"] == "cases.0.completion"


def test_the_server_keeps_answering_while_a_reward_loops_forever(client, app):
    answer = {}

    def looping_test():
        answer["response"] = app.test_client().post("/api/rewards/test", json={
            "custom_code": "def reward(completions, **kw):\n    while True:\n        pass\n",
            "timeout_seconds": 3, "cases": CASES})

    start = time.monotonic()
    worker = threading.Thread(target=looping_test)
    worker.start()
    answered = 0
    while worker.is_alive():
        assert client.get("/api/rewards/list").status_code == 200
        answered += 1
        worker.join(0.2)
    elapsed = time.monotonic() - start
    assert answered >= 3
    response = answer["response"]
    assert response.status_code == 400 and "timed out after 3 s" in response.json["error"]
    assert elapsed < 3 + 2 + 2  # the timeout, the +2 s the sandbox allows, starting the runner


def test_dataset_rows_become_cases(client):
    answer = client.post("/api/rewards/cases", json={"source": "builtin", "path": "arithmetic",
                                                     "samples": 3}).json
    assert len(answer["cases"]) == 3
    for case in answer["cases"]:
        assert case["prompt"] and case["reference"].lstrip("-").isdigit()
        assert case["response"]


def test_the_custom_reward_library_saves_lists_loads_and_deletes(client, app):
    assert client.post("/api/rewards/custom", json={"name": "by_length", "source": ADD}) \
        .status_code == 201
    listed = client.get("/api/rewards/custom").json["rewards"]
    assert [r["id"] for r in listed] == ["by_length"]
    assert client.get("/api/rewards/custom/by_length").json["source"] == ADD
    assert (app.config["CUSTOM_REWARDS_DIR"] / "by_length.json").is_file()
    # saving the same name replaces it
    client.post("/api/rewards/custom", json={"name": "by_length", "source": ADD + "# v2\n"})
    assert client.get("/api/rewards/custom/by_length").json["source"].endswith("# v2\n")
    assert client.delete("/api/rewards/custom/by_length").status_code == 200
    assert client.get("/api/rewards/custom/by_length").status_code == 404


@pytest.mark.parametrize("name,source,field,message", [
    # a name is never a path
    ("../../evil", ADD, "name", "must start with a letter"),
    # nor a preset's id
    ("answer_correct", ADD, "name", "a preset's id"),
    # the source is parsed before it is saved; the error carries the line
    ("broken", "def reward(completions):\n    return [\n", "source", "never closed"),
    ("empty", "   ", "source", "write the reward"),
])
def test_bad_custom_rewards_are_refused_and_nothing_is_written(client, app, name, source, field,
                                                                message):
    response = client.post("/api/rewards/custom", json={"name": name, "source": source})
    assert response.status_code == 400
    assert response.json["field"] == field and message in response.json["error"]
    folder = app.config["CUSTOM_REWARDS_DIR"]
    assert not folder.exists() or not any(folder.iterdir())


def test_a_py_file_can_be_uploaded(client):
    response = client.post("/api/rewards/custom/upload", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(ADD.encode()), "my reward.py")})
    assert response.status_code == 201 and response.json["name"] == "my_reward"
    response = client.post("/api/rewards/custom/upload", content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"x = 1"), "notes.txt")})
    assert response.status_code == 400 and response.json["field"] == "file"


def test_check_parses_without_running(client):
    assert client.post("/api/rewards/custom/check", json={"source": ADD}).json == {"ok": True}
    answer = client.post("/api/rewards/custom/check", json={
        "source": "import os\nos.system('x')\ndef reward(c):\n  return [\n"}).json
    assert answer["ok"] is False and answer["line"] == 4


def test_a_run_config_with_a_custom_reward_is_validated_by_parsing_it(client, tiny_model):
    from tests.conftest import tiny_config
    config = tiny_config(tiny_model) | {"rewards": [
        {"name": "mine", "source": "def reward(completions):\n    return [\n"}]}
    response = client.post("/api/configs/validate", json={"config": config})
    problems = response.json["problems"]
    assert problems[0]["field"] == "rewards.0.source" and "line 2" in problems[0]["message"]


def test_a_custom_reward_cannot_read_the_apps_own_folder(client, app):
    secret = app.config["ROOT"] / ".secret_key"
    assert secret.is_file()
    code = f"def reward(completions, **kw):\n    open({str(secret)!r}).read()\n    return [1.0]\n"
    response = client.post("/api/rewards/test", json={"custom_code": code, "cases": CASES[:1]})
    assert response.status_code == 400 and "belongs to GRPO Studio" in response.json["error"]


@pytest.mark.parametrize("body,field", [
    ({"custom_weight": None}, "custom_weight"),   # a weight is a number
    ({"template": "think"}, "template"),           # markers are an object of texts
    ({"timeout_seconds": 600}, "timeout_seconds"),  # above the limit
])
def test_test_options_are_checked(client, body, field):
    response = client.post("/api/rewards/test", json={"custom_code": ADD, "cases": CASES, **body})
    assert response.status_code == 400 and response.json["field"] == field


def test_too_many_tests_at_once_get_429():
    from services import rewards as reward_service
    held = [reward_service._running_tests.acquire(blocking=False)
            for _ in range(reward_service.MAX_RUNNING_TESTS)]
    try:
        with pytest.raises(reward_service.TooManyTests):
            reward_service.run_reward_test({"custom_code": ADD, "cases": CASES})
    finally:
        for taken in held:
            if taken:
                reward_service._running_tests.release()


def test_custom_rewards_given_as_a_run_config_holds_them_are_scored(client):
    answer = client.post("/api/rewards/test", json={"rewards": [
        {"name": "length", "weight": 2.0,
         "source": "def reward(completions, **kw):\n    return [len(c) for c in completions]"},
        {"name": "broken", "source": "def reward(:\n"}],
        "cases": [{"prompt": "p", "completion": "abc"}]})
    assert answer.status_code == 400 and answer.json["field"] == "rewards.1.source"
    answer = client.post("/api/rewards/test", json={"rewards": [
        {"name": "length", "weight": 2.0,
         "source": "def reward(completions, **kw):\n    return [len(c) for c in completions]"}],
        "cases": [{"prompt": "p", "completion": "abc"}]})
    assert answer.status_code == 200, answer.json
    assert answer.json["results"][0] == {"total": 6.0, "components": {"length": 3.0}}
