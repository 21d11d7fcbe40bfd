"""Command line: the same worker as the web app, in the foreground.

    python -m core.cli train CONFIG.json [--outputs DIR]   train; progress bar, summary at the end
    python -m core.cli validate CONFIG.json                 check a config, list every problem
    python -m core.cli resume RUN_DIR                       continue a stopped/paused/failed run
    python -m core.cli prepare-model                        convert the default model once
    python -m core.cli export RUN_DIR --format gguf --quantization q4_k_m [--checkpoint NAME]
                          [--out EXPORTS_ROOT]              export (adapter|merged|gguf|gguf_lora)
    python -m core.cli export --base-model NAME [--adapter DIR] --format ...   the same, no run

`--trust-remote-code` (before the command) lets a config's `model.trust_remote_code` run code
shipped with a model; without it such a config fails with a message saying so (core/models.py).

Ctrl-C stops cleanly (a checkpoint is saved, the run ends `cancelled` and can be resumed); a second
Ctrl-C abandons the step at once. The library and trainer chatter goes to the run's worker.log so the
terminal shows only progress. Exit status: 0 completed/paused/cancelled, 1 failed, 2 bad input.
`export` prints progress, the files and what was verified (its chatter goes to the export's
export.log); exit status 0 done, 1 failed, 2 bad request.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from core.config import ConfigError, RunConfig, load_config, validate_config
from core.run_dir import CLEAN_END_STATUSES, RunDir, create_run


@dataclass
class RunResult:
    run_dir: Path
    status: str
    error: str | None
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def rewards(self) -> list[float]:
        return [m["reward"] for m in self.metrics if m.get("phase") == "grpo" and "reward" in m]


class Progress:
    """A tqdm bar per phase, fed by the run's events."""

    def __init__(self, out: TextIO):
        self.out, self.bar = out, None

    def __call__(self, event: dict[str, Any]) -> None:
        from tqdm import tqdm
        kind = event["type"]
        if kind == "phase":
            self.close()
            self.bar = tqdm(total=None, desc=event["phase"], file=self.out, unit="step",
                            dynamic_ncols=True)
        elif kind == "resume" and self.bar is not None:
            self.bar.reset()
            self.bar.n = self.bar.initial = event["step"]
            self.write(f"resuming {event['phase']} from {event['checkpoint'] or 'its start'}")
        elif kind == "metric" and self.bar is not None:
            self.bar.total = event.get("total_steps")
            self.bar.n = event["step"]
            shown = {k: f"{event[k]:.3g}" for k in ("reward", "kl", "loss") if k in event}
            self.bar.set_postfix(shown, refresh=True)
        elif kind == "checkpoint":
            self.write(f"checkpoint saved: {event['path']}")
        elif kind == "status" and event["status"] != "running":
            self.close()

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_in_foreground(run: RunDir, show_progress: bool = True) -> RunResult:
    """Run the worker here, output to worker.log, progress (if asked) on the real terminal."""
    from core.training.control import RunControl
    from core.worker import output_to_log, run_worker
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    progress = Progress(terminal)
    if show_progress:
        run.listeners.append(progress)
        progress.write(f"run directory: {run.path}")
    control = RunControl()
    try:
        with output_to_log(run), control.signal_handlers():
            status = run_worker(run, control)
    finally:
        progress.close()
        if progress in run.listeners:
            run.listeners.remove(progress)
    state = run.read_state()
    result = RunResult(run.path, status, state.get("error"), run.metric_history())
    if show_progress:
        print_summary(result, terminal)
    terminal.close()
    return result


def print_summary(result: RunResult, out: TextIO) -> None:
    state = RunDir(result.run_dir).read_state()
    print(f"\nstatus: {result.status}" + (f" - {result.error}" if result.error else ""), file=out)
    print(f"steps: {state.get('step')}/{state.get('total_steps')} (phase {state.get('phase')})",
          file=out)
    rewards = result.rewards()
    if rewards:
        first, last = rewards[:5], rewards[-5:]
        print(f"reward: first {len(first)} logs {sum(first) / len(first):.3f} -> last {len(last)} "
              f"logs {sum(last) / len(last):.3f}", file=out)
    for name in ("adapter", "model"):
        if (result.run_dir / name).is_dir():
            print(f"result: {result.run_dir / name}", file=out)
    if result.status != "completed":
        print(f"resume with: python -m core.cli resume {result.run_dir}", file=out)


def train(config: str | Path | dict | RunConfig, outputs: str | Path = "outputs",
          show_progress: bool = True) -> RunResult:
    """Train from a config file, dict or RunConfig; a new run directory under `outputs`."""
    cfg = load_config(config) if isinstance(config, (str, Path)) else validate_config(config)
    return run_in_foreground(create_run(cfg, outputs), show_progress)


def resume(run_dir: str | Path, show_progress: bool = True) -> RunResult:
    run = RunDir(run_dir)
    run.read_state()  # a clear error when this is not a run directory
    return run_in_foreground(run, show_progress)


def export(args: argparse.Namespace) -> int:
    """Create an export and run it here, printing progress, the files and what was verified."""
    from core.export import ExportRequestError, create_export, new_export_id, run_export
    if bool(args.run_dir) == bool(args.base_model):
        print("error: give a RUN_DIR or --base-model (not both)", file=sys.stderr)
        return 2
    source = {"run_dir": args.run_dir, "checkpoint": args.checkpoint} if args.run_dir \
        else {"base_model": args.base_model, "adapter": args.adapter}
    label = Path(args.run_dir or args.adapter or args.base_model).name
    try:
        folder = create_export(args.out, new_export_id(label, args.format, args.quantization),
                               args.format, args.quantization, source)
    except ExportRequestError as err:
        print(f"error: {err.field}: {err}", file=sys.stderr)
        return 2
    # library chatter goes to export.log (output_to_log only needs a `log_path`)
    from types import SimpleNamespace

    from core.worker import output_to_log
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    print(f"export folder: {folder}", file=out)
    shown: list[str] = []

    def progress(state: dict[str, Any]) -> None:
        if state["status"] == "running" and state["message"] not in shown:
            shown.append(state["message"])
            print(f"[{state['progress']:4.0%}] {state['message']}", file=out)
    with output_to_log(SimpleNamespace(log_path=folder / "export.log")):  # type: ignore[arg-type]
        state = run_export(folder, on_progress=progress)
    print_export_result(state, folder, out)
    out.close()
    return 0 if state["status"] == "done" else 1


def print_export_result(state: dict[str, Any], folder: Path, out: TextIO) -> None:
    import json
    if state["status"] != "done":
        print(f"status: failed - {state['error']}\ndetails: {folder / 'export.log'}", file=out)
        return
    print("status: done", file=out)
    for f in state["files"]:
        print(f"  {f['name']}  ({f['size'] / 1e6:.1f} MB)", file=out)
    print("verified: " + json.dumps(state["verified"], indent=2, ensure_ascii=False), file=out)


def _add_export_parser(sub: Any) -> None:
    from core.export.request import FORMATS, QUANTIZATIONS
    repo = Path(__file__).resolve().parent.parent
    p = sub.add_parser("export", help="export a run or a base model + adapter (adapter, merged "
                                      "safetensors, GGUF + Ollama Modelfile, LoRA GGUF, "
                                      "bitsandbytes int8/nf4)")
    p.add_argument("run_dir", nargs="?", help="the run directory to export")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--quantization", type=str.lower,
                   choices=list(dict.fromkeys(q for qs in QUANTIZATIONS.values() for q in qs)),
                   help="gguf: its GGUF type (default q4_k_m); gguf_lora: f16, bf16 or q8_0; "
                        "bitsandbytes: int8 (default) or nf4")
    p.add_argument("--checkpoint", help="export this checkpoint (e.g. checkpoint-50) instead of "
                                        "the final result")
    p.add_argument("--base-model", help="instead of a run: a model name or folder ('default')")
    p.add_argument("--adapter", help="with --base-model: a PEFT adapter folder")
    p.add_argument("--out", default=str(repo / "exports"), help="where export folders go")


def _print_problems(err: ConfigError) -> None:
    print("config is invalid:", file=sys.stderr)
    for p in err.problems:
        print(f"  {p['field']}: {p['message']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="GRPO Studio CLI")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="let model.trust_remote_code run code shipped with a model")
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train from a JSON config")
    p_train.add_argument("config")
    p_train.add_argument("--outputs", default="outputs", help="where run directories go")
    p_validate = sub.add_parser("validate", help="check a JSON config")
    p_validate.add_argument("config")
    p_resume = sub.add_parser("resume", help="continue a run from its newest checkpoint")
    p_resume.add_argument("run_dir")
    sub.add_parser("prepare-model", help="convert the offline default model once")
    _add_export_parser(sub)
    args = parser.parse_args(argv)
    if args.trust_remote_code:
        from core.models import REMOTE_CODE_ENV
        os.environ[REMOTE_CODE_ENV] = "1"
    if args.command == "export":
        return export(args)
    try:
        if args.command == "validate":
            cfg = load_config(args.config)
            print(f"{args.config}: valid ({cfg.algorithm.name}"
                  f"{'/' + cfg.algorithm.variant if cfg.algorithm.name == 'grpo' else ''})")
            return 0
        if args.command == "prepare-model":
            from core.default_model import ensure_default_model
            print(f"default model ready: {ensure_default_model()}")
            return 0
        result = train(args.config, args.outputs) if args.command == "train" \
            else resume(args.run_dir)
    except ConfigError as err:
        _print_problems(err)
        return 2
    except (FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if result.status in CLEAN_END_STATUSES else 1


if __name__ == "__main__":
    sys.exit(main())
