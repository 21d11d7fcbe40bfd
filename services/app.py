"""The services one web app uses, built from its folders (plain values in, no Flask).

Guarantees: one `RunStore`, `Jobs`, `ConfigLibrary`, `DatasetLibrary` and
`CustomRewardLibrary` and `Exports` per app, over the folders
it was given; `start()` finds every run again before the jobs watcher begins.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.configs import ConfigLibrary
from services.datasets import DatasetLibrary
from services.exports import Exports
from services.jobs import Jobs, Publish
from services.rewards import CustomRewardLibrary
from services.runs import RunStore


@dataclass
class AppServices:
    runs: RunStore
    jobs: Jobs
    configs: ConfigLibrary
    datasets: DatasetLibrary
    custom_rewards: CustomRewardLibrary
    exports: Exports

    @classmethod
    def build(cls, outputs: Path, saved_configs: Path, uploads: Path, max_upload_bytes: int,
              publish: Publish, custom_rewards: Path, exports: Path) -> "AppServices":
        runs = RunStore(outputs)
        return cls(runs=runs, jobs=Jobs(runs, publish), configs=ConfigLibrary(saved_configs),
                   datasets=DatasetLibrary(uploads, max_upload_bytes),
                   custom_rewards=CustomRewardLibrary(custom_rewards),
                   exports=Exports(exports, runs, publish))

    def start(self) -> None:
        self.jobs.start()
        self.exports.start()

    def close(self) -> None:
        self.jobs.close()
        self.exports.close()
