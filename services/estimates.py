"""Estimates before launch, for the wizard's review step and a run's record: peak memory by part
and, once this machine has been calibrated for the model, time (generation and update apart).

Guarantees: `estimate(config)` never imports torch: the model's shape comes from its config.json,
the dataset's typical lengths (95th percentile of the first `LENGTH_ROWS` rows, formatted with the
chat template and counted with the model's `tokenizer.json`) through the `tokenizers` library,
free memory from psutil (RAM) or NVML (the first chosen GPU). A calibration (`core.calibrate`,
run in a child process, at most one at a time, `CALIBRATION_TIMEOUT` seconds) is cached in
`<cache>/calibration.json` per model, device, method and precision, and replaces the defaults of
`core.estimate` with what was measured. An estimate above the free memory carries a warning.

Does not: estimate a hub model that has not been downloaded (it says so), or a run on several GPUs
(the estimate is per GPU, as DDP keeps a whole copy on each).
"""
from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from core.config import RunConfig, validate_config
from core.datasets import DatasetError
from core.estimate import GIB, Lengths, ModelShape, estimate_memory, estimate_time
from core.files import read_json, write_json_atomic
from core.run_dir import now_iso
from services.catalog import local_model_dir

LENGTH_ROWS = 50
FALLBACK_LENGTHS = Lengths(prompt=256, response=256)
CALIBRATION_TIMEOUT = 600
ESTIMATE_FILE = "estimate.json"   # in a run's directory
CALIBRATION_KEYS = {"device", "precision", "train_seconds_per_token", "train_bytes_per_token",
                    "generate_seconds_per_step", "runtime_bytes"}
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b")
log = logging.getLogger("grpo_studio.estimates")


class CalibrationFailed(RuntimeError):
    field = "model.name"


class CalibrationBusy(CalibrationFailed):
    """Another calibration, or a run, is using the machine."""


class Estimates:
    def __init__(self, library: Any, project_root: Path):
        self.library, self.project_root = library, project_root
        self._calibrating = threading.Lock()

    @property
    def cache_file(self) -> Path:
        from core.default_model import cache_root
        return cache_root() / "calibration.json"

    def at_launch(self, config: dict[str, Any] | RunConfig) -> dict[str, Any] | None:
        """The estimate to keep with a run, made before it is submitted (so the free memory does
        not count its worker); None, logged, when it cannot be made: it never fails a launch."""
        try:
            return {**self.estimate(config), "estimated_at": now_iso()}
        except Exception:  # noqa: BLE001 - an estimate is advice, the run goes on without it
            log.exception("no estimate for this launch")
            return None

    @staticmethod
    def record(run_dir: Path, found: dict[str, Any] | None) -> None:
        """Keep `at_launch`'s estimate in the run's `estimate.json` (a failure is logged)."""
        if found is None:
            return
        try:
            write_json_atomic(run_dir / ESTIMATE_FILE, found)
        except OSError:
            log.exception("could not keep the estimate of %s", run_dir.name)

    # the estimate ----------------------------------------------------------------------------
    def estimate(self, config: dict[str, Any] | RunConfig) -> dict[str, Any]:
        """Memory (and time when calibrated) of a config; `available: False` with a reason when
        the model's shape is not on this machine."""
        cfg = validate_config(config)
        folder = local_model_dir(cfg.model.name)
        if folder is None or not (folder / "config.json").is_file():
            return {"available": False, "reason": f"model {cfg.model.name!r} is not on this "
                    "machine; download it on the models page to estimate its memory"}
        try:
            shape = ModelShape.from_config(read_json(folder / "config.json", default={}) or {})
        except (ValueError, OSError) as err:
            return {"available": False, "reason": f"model {cfg.model.name!r} cannot be "
                    f"estimated: {err}"}
        device, precision = device_and_precision(cfg)
        lengths, rows, notes = self._lengths(cfg, folder)
        calibration = self.calibration_for(cfg, folder, device, precision)
        memory = estimate_memory(cfg, shape, lengths, precision, device, calibration)
        free, total = free_memory(cfg, device)
        memory.update(free=free, total=total)
        if free is not None and memory["peak"] > free:
            memory["warning"] = (f"the estimated peak ({memory['peak'] / GIB:.1f} GB) is above "
                                 f"the free {'GPU memory' if device == 'cuda' else 'RAM'} "
                                 f"({free / GIB:.1f} GB): lower the batch size or the sequence "
                                 "lengths, turn on gradient checkpointing, or use LoRA/QLoRA")
        return {"available": True, "device": device, "precision": precision,
                "lengths": {"prompt": lengths.prompt, "response": lengths.response,
                            "rows": rows},
                "memory": memory, "calibrated": calibration is not None,
                "calibrated_at": (calibration or {}).get("measured_at"),
                "time": estimate_time(cfg, lengths, calibration, rows) if calibration else None,
                "notes": notes}

    def _lengths(self, cfg: RunConfig, folder: Path) -> tuple[Lengths, int | None, list[str]]:
        """Typical prompt and response tokens of the dataset, and its row count when known."""
        tokenizer_file = folder / "tokenizer.json"
        try:
            rows = self.library.head_rows_of(cfg.dataset, LENGTH_ROWS)
        except (DatasetError, OSError) as err:
            return FALLBACK_LENGTHS, None, [f"the dataset could not be read ({err}); lengths of "
                                            f"{FALLBACK_LENGTHS.prompt} tokens are assumed"]
        if not rows or not tokenizer_file.is_file():
            return FALLBACK_LENGTHS, None, ["lengths of 256 tokens are assumed (no rows or no "
                                            "tokenizer.json)"]
        from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        prompts, responses = [], []
        for row in rows:
            try:
                prompt, response = self.library.formatted_texts(cfg, row, folder)
            except DatasetError:
                continue
            prompts.append(len(tokenizer.encode(prompt, add_special_tokens=False).ids))
            responses.append(len(tokenizer.encode(response, add_special_tokens=False).ids))
        if not prompts:
            return FALLBACK_LENGTHS, None, ["no row could be formatted; lengths of 256 tokens "
                                            "are assumed"]
        return Lengths(percentile(prompts), percentile(responses)), \
            self.library.rows_of(cfg.dataset), []

    # calibration -----------------------------------------------------------------------------
    def calibration_for(self, cfg: RunConfig, folder: Path, device: str, precision: str
                        ) -> dict[str, Any] | None:
        found = self._cache().get(calibration_key(folder, device, cfg.model.method, precision))
        return found if isinstance(found, dict) and CALIBRATION_KEYS <= set(found) else None

    def _cache(self) -> dict[str, Any]:
        """The cached calibrations; an unreadable cache (damaged, another version) is empty."""
        try:
            cached = read_json(self.cache_file, default={})
        except (OSError, ValueError):
            log.warning("ignoring the unreadable calibration cache %s", self.cache_file)
            return {}
        return cached if isinstance(cached, dict) else {}

    def calibrate(self, config: dict[str, Any]) -> dict[str, Any]:
        """Measure the config's model on this machine (a child process), cache it, and answer
        the estimate with it."""
        cfg = validate_config(config)
        folder = local_model_dir(cfg.model.name)
        if folder is None:
            raise CalibrationFailed(f"model {cfg.model.name!r} is not on this machine; "
                                    "download it on the models page first")
        if not self._calibrating.acquire(blocking=False):
            raise CalibrationBusy("a calibration is already running; wait for it")
        try:
            measured = self._run_child(cfg)
            cached = self._cache()
            cached[calibration_key(folder, measured["device"], cfg.model.method,
                                   measured["precision"])] = {**measured,
                                                              "measured_at": now_iso()}
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.cache_file, cached)
        finally:
            self._calibrating.release()
        return self.estimate(cfg)

    def _run_child(self, cfg: RunConfig) -> dict[str, Any]:
        command = [sys.executable, "-m", "core.calibrate", cfg.model.name, "--method",
                   cfg.model.method, "--precision", cfg.training.precision,
                   "--lora-rank", str(cfg.model.lora_rank)]
        try:
            done = subprocess.run(command, cwd=self.project_root, capture_output=True,
                                  text=True, timeout=CALIBRATION_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise CalibrationFailed(f"the calibration took over {CALIBRATION_TIMEOUT} s and was "
                                    "stopped") from None
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            log.error("calibration failed (exit %s): %s", done.returncode, done.stderr[-4000:])
            raise CalibrationFailed(f"the calibration failed: {child_failure(done)}")
        try:
            measured = json.loads(lines[-1])
            if not isinstance(measured, dict) or not CALIBRATION_KEYS <= set(measured):
                raise ValueError(lines[-1][:200])
        except ValueError as err:
            raise CalibrationFailed(f"the calibration answered what it should not: {err}") \
                from None
        return measured


def child_failure(done: subprocess.CompletedProcess) -> str:
    """Why a calibration child failed, in one line: the signal that ended it, or its last
    exception line."""
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        hint = " (out of memory?)" if -done.returncode == signal.SIGKILL else ""
        return f"it was ended by {name}{hint}"
    errors = [line.strip() for line in done.stderr.splitlines()
              if EXCEPTION_LINE.match(line.strip())]
    return errors[-1] if errors else f"it exited with {done.returncode} and no error message"


def calibration_key(folder: Path, device: str, method: str, precision: str) -> str:
    return f"{folder.resolve()}|{device}|{method}|{precision}"


def percentile(values: list[int], share: float = 0.95) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def device_and_precision(cfg: RunConfig) -> tuple[str, str]:
    """Where the run will train and in what precision ('auto': bf16 on a GPU, and on a CPU with
    native bf16, else fp32), without importing torch."""
    from core.hardware import cpu_flags_have_bf16, cuda_available
    device = "cuda" if cuda_available() else "cpu"
    precision = cfg.training.precision
    if precision == "auto":
        native = device == "cuda" or cpu_flags_have_bf16()
        precision = "bf16" if native else "fp32"
    return device, precision


def free_memory(cfg: RunConfig, device: str) -> tuple[int | None, int | None]:
    """(free, total) bytes of RAM, or of the first chosen GPU."""
    if device == "cpu":
        import psutil
        memory = psutil.virtual_memory()
        return memory.available, memory.total
    from services.system import gpu_status
    gpus = gpu_status()
    wanted = cfg.compute.gpu_ids[0] if cfg.compute.gpu_ids else 0
    gpu = next((g for g in gpus if g.get("index") == wanted), None)
    if not gpu or gpu.get("memory_total") is None or gpu.get("memory_used") is None:
        return None, None
    return gpu["memory_total"] - gpu["memory_used"], gpu["memory_total"]
