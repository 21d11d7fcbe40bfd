"""The reward sandbox, one property per test: timeouts, memory, environment, refused operations,
wrong results named by reward and row, and what the user's code printed."""
from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from rewards import CustomReward, RewardError, check_scores
from rewards.sandbox import PROJECT_ROOT, Limits, SandboxError, check_source, run_code_tests, \
    run_reward

FOUR = ["a", "bb", "ccc", "dddd"]


def reward_source(body: str, header: str = "") -> str:
    lines = "\n".join(f"    {line}" for line in body.strip().splitlines())
    return f"{header}\ndef reward(completions, **kwargs):\n{lines}\n"


def test_a_well_behaved_reward_returns_its_scores_and_what_it_printed():
    source = reward_source("print('scoring', len(completions))\n"
                           "return [float(len(c)) for c in completions]")
    scores, output = run_reward(source, FOUR, {})
    assert scores == [1.0, 2.0, 3.0, 4.0]
    assert "scoring 4" in output


def test_dataset_columns_reach_the_reward_as_keyword_lists():
    source = reward_source("return [1.0 if c == r else 0.0 for c, r in "
                           "zip(completions, kwargs['reference'])]")
    scores, _ = run_reward(source, ["4", "5"], {"reference": ["4", "4"]})
    assert scores == [1.0, 0.0]


def test_an_endless_loop_ends_with_a_timeout_error_within_the_timeout_plus_2s():
    start = time.monotonic()
    with pytest.raises(SandboxError, match="timed out after 2 s") as err:
        run_reward(reward_source("while True:\n    pass"), FOUR, {}, Limits(timeout_seconds=2))
    assert err.value.kind == "timeout"
    assert time.monotonic() - start < 2 + 2


def test_a_4gb_allocation_fails_with_a_memory_error():
    with pytest.raises(SandboxError, match="ran out of memory") as err:
        run_reward(reward_source("block = bytearray(4 * 1024 ** 3)\nreturn [1.0] * 4"), FOUR, {})
    assert err.value.kind == "memory"


def test_an_environment_secret_of_the_server_is_not_visible(monkeypatch):
    monkeypatch.setenv("GRPO_STUDIO_TOKEN", "s3cret-token")
    source = reward_source("import os\n"
                           "seen = 's3cret-token' in repr(dict(os.environ))\n"
                           "return [1.0 if seen else 0.0] * len(completions)")
    scores, _ = run_reward(source, FOUR, {})
    assert scores == [0.0] * 4


def test_os_system_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    source = reward_source(f"import os\nos.system('touch {marker}')\nreturn [1.0] * 4")
    with pytest.raises(SandboxError, match="os.system is not allowed") as err:
        run_reward(source, FOUR, {})
    assert err.value.kind == "refused" and err.value.line == 4
    assert not marker.exists()


def test_subprocess_is_refused(tmp_path):
    marker = tmp_path / "ran"
    source = reward_source(f"import subprocess\nsubprocess.run(['touch', '{marker}'])\n"
                           f"return [1.0] * 4")
    with pytest.raises(SandboxError, match="subprocess.Popen is not allowed"):
        run_reward(source, FOUR, {})
    assert not marker.exists()


@pytest.mark.parametrize("statement", [
    # writing a new file into the project
    "open({target!r}, 'w').write('x')",
    # through pathlib
    "import pathlib; pathlib.Path({target!r}).write_text('x')",
    # through a relative path that climbs out of the temporary folder
    "open('../../../../../../../..' + {target!r}, 'w').write('x')",
])
def test_writing_outside_the_temp_dir_does_not_touch_the_project(statement):
    target = str(PROJECT_ROOT / "sandbox-escape.txt")
    source = reward_source(statement.format(target=target) + "\nreturn [1.0] * 4")
    with pytest.raises(SandboxError, match="outside the reward's temporary folder"):
        run_reward(source, FOUR, {})
    assert not Path(target).exists()


def test_deleting_project_files_is_refused():
    source = reward_source(f"import os\nos.remove({str(PROJECT_ROOT / 'README.md')!r})\n"
                           f"return [1.0] * 4")
    with pytest.raises(SandboxError, match="os.remove outside"):
        run_reward(source, FOUR, {})
    assert (PROJECT_ROOT / "README.md").is_file()


def test_reading_the_projects_own_files_is_refused():
    source = reward_source(f"return [float(len(open({str(PROJECT_ROOT / 'README.md')!r})"
                           f".read()))] * 4")
    with pytest.raises(SandboxError, match="belongs to GRPO Studio"):
        run_reward(source, FOUR, {})


def test_the_temporary_folder_is_the_working_directory_and_is_removed_afterwards():
    source = reward_source("import os\nopen('scratch.txt', 'w').write('ok')\n"
                           "print(os.getcwd())\nreturn [1.0] * 4")
    _, output = run_reward(source, FOUR, {})
    work_dir = Path(output.strip())
    assert work_dir.name.startswith("grpo-reward-") and not work_dir.exists()
    assert work_dir != Path.cwd()


def test_there_is_no_stdin():
    scores, _ = run_reward(reward_source("import sys\nreturn [float(len(sys.stdin.read()))] * 4"),
                           FOUR, {})
    assert scores == [0.0] * 4


def test_a_reward_returning_3_values_for_4_completions_is_reported_as_such():
    reward = CustomReward("short", reward_source("return [1.0, 1.0, 1.0]"))
    scores = reward(FOUR)
    with pytest.raises(RewardError, match="'short' returned 3 values for 4 completions"):
        check_scores(reward.__name__, scores, len(FOUR))


def test_an_exception_names_the_reward_the_row_and_the_line():
    source = reward_source("return [1.0 / (len(c) - 3) for c in completions]")
    with pytest.raises(SandboxError) as err:
        CustomReward("ratio", source)(FOUR)
    assert str(err.value) == ("custom reward 'ratio' failed on row 3 (completion 'ccc'): "
                              "ZeroDivisionError: float division by zero (line 3)")


def test_a_timeout_names_the_reward_and_the_batch():
    reward = CustomReward("slow", reward_source("while True:\n    pass"),
                          limits=Limits(timeout_seconds=1))
    with pytest.raises(SandboxError, match="custom reward 'slow' failed while scoring 4 "
                                           "completions: timed out after 1 s"):
        reward(FOUR)


def test_nan_and_text_scores_are_named_by_row():
    nan = CustomReward("nan", reward_source("return [1.0, float('nan'), 0.5, None]"))
    assert check_scores("nan", nan(FOUR), 4) == [1]  # NaN rows are reported to the caller
    text = CustomReward("text", reward_source("return [1.0, 'yes', 0.5, 0.0]"))
    with pytest.raises(SandboxError, match="failed on row 2 .*: TypeError: a score must be a number"):
        text(FOUR)
    with pytest.raises(RewardError, match="'inf' returned inf for row 2"):
        check_scores("inf", [1.0, float("inf")], 2)


@pytest.mark.parametrize("source,line,message", [
    # a syntax error is found by parsing, at its line, without running anything
    ("def reward(completions, **kwargs):\n    return [\n", 2, "never closed"),
    # no function named reward
    ("def score(completions):\n    return []\n", 1, "no function `reward`"),
    # reward without a place for the completions
    ("def reward():\n    return []\n", 1, "first argument"),
])
def test_check_source_names_the_line(source, line, message):
    with pytest.raises(SandboxError, match=message) as err:
        check_source(source)
    assert err.value.line == line


def test_exiting_the_process_is_reported_not_hung():
    with pytest.raises(SandboxError, match="exit status 3"):
        run_reward(reward_source("import os\nos._exit(3)"), FOUR, {})


@pytest.mark.parametrize("code,tests,expected", [
    # both tests pass
    ("def add(a, b):\n    return a + b", ["assert add(1, 2) == 3", "assert add(0, 0) == 0"], 1.0),
    # one of two fails
    ("def add(a, b):\n    return a - b", ["assert add(1, 2) == 3", "assert add(0, 0) == 0"], 0.5),
    # code that does not run scores 0
    ("def add(a, b) return a + b", ["assert add(1, 2) == 3"], 0.0),
    # code that never ends scores 0 (timeout), it does not hang
    ("while True:\n    pass", ["assert True"], 0.0),
    # no tests, nothing to pass
    ("x = 1", [], 0.0),
])
def test_run_code_tests(code, tests, expected):
    assert run_code_tests([(code, tests)], timeout_seconds=2) == [expected]


def test_code_tests_run_as_one_batch_where_one_bad_completion_costs_only_itself():
    good = ("def one():\n    return 1", ["assert one() == 1"])
    items = [good, ("import os\nos._exit(1)", ["assert True"]), ("while True:\n    pass", []),
             ("while True:\n    pass", ["assert True"]), good]
    assert run_code_tests(items, timeout_seconds=1) == [1.0, 0.0, 0.0, 0.0, 1.0]


def test_starting_processes_through_multiprocessing_is_refused(tmp_path):
    marker = tmp_path / "ran"
    source = reward_source(
        "import multiprocessing\n"
        f"p = multiprocessing.get_context('spawn').Process(target=open, args=({str(marker)!r}, "
        f"'w'))\np.start()\np.join()\n"
        "return [1.0] * 4")
    with pytest.raises(SandboxError, match="not allowed"):
        run_reward(source, FOUR, {})
    assert not marker.exists()


def test_what_was_printed_before_a_timeout_is_kept():
    with pytest.raises(SandboxError) as err:
        run_reward(reward_source("print('started')\nwhile True:\n    pass"), FOUR, {},
                   Limits(timeout_seconds=1))
    assert "started" in err.value.output


def test_a_print_storm_hits_the_file_size_limit():
    with pytest.raises(SandboxError, match="wrote more than 1 MB"):
        run_reward(reward_source("while True:\n    print('x' * 10000)"), FOUR, {},
                   Limits(timeout_seconds=20, file_mb=1))


def test_the_sandbox_ends_itself_when_nobody_waits_for_it():
    """The child's own alarm: a sleeping reward (no CPU time) still ends after its timeout."""
    import subprocess
    import sys
    from rewards.sandbox import CHILD
    work = tempfile.mkdtemp()
    Path(work, ".payload.json").write_text(json.dumps({
        "mode": "reward", "completions": ["a"], "kwargs": {},
        "source": "import time\ndef reward(c, **k):\n    time.sleep(60)\n"}))
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-I", str(CHILD), json.dumps(
        Limits(timeout_seconds=1).for_child())], cwd=work, capture_output=True, timeout=30)
    assert done.returncode == -signal.SIGALRM and time.monotonic() - start < 1 + 2 + 2


def test_no_child_outlives_a_timeout(tmp_path):
    """A reward that forks is refused, and a timed-out one leaves no process behind."""
    before = set(os.listdir("/proc"))
    with pytest.raises(SandboxError):
        run_reward(reward_source("while True:\n    pass"), FOUR, {}, Limits(timeout_seconds=1))
    leftovers = [p for p in set(os.listdir("/proc")) - before if p.isdigit()
                 and "sandbox_child" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]
    assert not leftovers
