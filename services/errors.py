"""The exceptions the services let through, in one place for the web layer's error handlers
(routes import services, not the engine's modules)."""
from core.config import ConfigError
from core.datasets import DatasetError
from rewards import RewardError
from services.checkpoints import CheckpointNotFound, CheckpointNotResumable
from services.configs import ConfigNotFound, ConfigReadOnly
from services.dataset_jobs import DatasetJobNotFound
from services.datasets import DatasetNotFound, UploadTooLarge
from services.exports import ExportNotFound, ExportRequestError
from services.jobs import BadSessionId, JobConflict
from services.model_cache import (CachedModelNotFound, DownloadNotFound, ModelAlreadyCached,
                                  ModelIdError)
from services.rewards import CustomRewardNotFound, TooManyTests
from services.runs import RunNotFound
from services.test_jobs import TestJobNotFound
from services.testing import TestRequestError

__all__ = ["ConfigError", "DatasetError", "RewardError", "ConfigNotFound", "ConfigReadOnly",
           "UploadTooLarge", "BadSessionId", "JobConflict", "RunNotFound", "CustomRewardNotFound", "TooManyTests", "ExportNotFound",
           "ExportRequestError", "TestJobNotFound", "TestRequestError", "ModelIdError",
           "ModelAlreadyCached", "DownloadNotFound", "CachedModelNotFound", "DatasetNotFound",
           "DatasetJobNotFound", "CheckpointNotFound", "CheckpointNotResumable"]
