"""The services one web app uses, built from its folders (plain values in, no Flask).

Guarantees: one `RunStore`, `Jobs`, `ConfigLibrary`, `DatasetLibrary` (with its `DatasetTools`
and `DatasetJobs`), `CustomRewardLibrary`, `Exports`, inference client, test jobs, `ModelCache` and catalog downloads
per app, over the folders it was given; `start()` finds every run again before the jobs watcher
begins.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.configs import ConfigLibrary
from services.dataset_catalog import CatalogDownloads
from services.dataset_jobs import DatasetJobs
from services.dataset_tools import DatasetTools
from services.datasets import DatasetLibrary
from services.child_downloads import REPO_ROOT
from services.estimates import Estimates
from services.exports import Exports
from services.inference import InferenceClient
from services.jobs import Jobs, Publish
from services.model_cache import ModelCache
from services.rewards import CustomRewardLibrary
from services.runs import RunStore
from services.test_jobs import TestJobs
from services.testing import ModelSelector, ModelTester


@dataclass
class AppServices:
    runs: RunStore
    jobs: Jobs
    configs: ConfigLibrary
    datasets: DatasetLibrary
    custom_rewards: CustomRewardLibrary
    exports: Exports
    inference: InferenceClient
    tester: ModelTester
    test_jobs: TestJobs
    model_cache: ModelCache
    dataset_tools: DatasetTools
    dataset_jobs: DatasetJobs
    dataset_catalog: CatalogDownloads
    estimates: Estimates

    @classmethod
    def build(cls, outputs: Path, saved_configs: Path, uploads: Path, max_upload_bytes: int,
              publish: Publish, custom_rewards: Path, exports: Path, test_results: Path,
              protected: list[str] | None = None) -> "AppServices":
        runs = RunStore(outputs)
        exporter = Exports(exports, runs, publish)
        inference, selector = InferenceClient(), ModelSelector(runs, exporter)
        datasets = DatasetLibrary(uploads, max_upload_bytes)
        return cls(runs=runs, jobs=Jobs(runs, publish), configs=ConfigLibrary(saved_configs),
                   datasets=datasets, dataset_tools=DatasetTools(datasets),
                   dataset_jobs=DatasetJobs(datasets, publish),
                   dataset_catalog=CatalogDownloads(uploads, publish),
                   custom_rewards=CustomRewardLibrary(custom_rewards), exports=exporter,
                   inference=inference, tester=ModelTester(selector, inference),
                   test_jobs=TestJobs(test_results, runs, selector, inference, publish,
                                      protected),
                   model_cache=ModelCache(publish),
                   estimates=Estimates(datasets, REPO_ROOT))

    def start(self) -> None:
        self.jobs.start()
        self.exports.start()
        self.model_cache.start()
        self.dataset_catalog.remove_leftovers()
        self.datasets.remove_leftovers()

    def close(self) -> None:
        self.jobs.close()
        self.exports.close()
        self.model_cache.close()
        self.test_jobs.close()
        self.dataset_jobs.close()
        self.dataset_catalog.close()
        self.inference.close()
