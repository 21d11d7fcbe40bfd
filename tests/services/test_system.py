"""The system monitor: CPU and RAM always; GPUs through NVML, and "CPU only" (an empty list, never
an error) whenever NVML cannot answer."""
from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest

from services.system import gpu_status, system_status
from tests.nvml_stand_in import pynvml as nvml_stand_in

GIB = 1 << 30


@pytest.fixture
def stand_in_nvml(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Two GPUs that cannot exist on this machine: the stand-in replaces a driver (see
    tests/nvml_stand_in/pynvml.py)."""
    monkeypatch.setenv("NVML_STAND_IN_GPUS", "2")
    monkeypatch.setitem(sys.modules, "pynvml", nvml_stand_in)
    return nvml_stand_in


def broken_nvml(**failing: Any) -> SimpleNamespace:
    """An NVML whose named calls raise, the others answering as the stand-in does."""
    calls = {name: getattr(nvml_stand_in, name) for name in dir(nvml_stand_in)
             if name.startswith("nvml") or name.startswith("NVML")}

    def fail(*_: Any) -> None:
        raise nvml_stand_in.NVMLError("driver error")
    return SimpleNamespace(**{**calls, **{name: fail for name in failing}})


def test_cpu_and_ram_are_always_reported():
    status = system_status()
    assert status["ram_total"] > status["ram_used"] > 0
    assert 0 <= status["cpu_percent"] <= 100
    assert status["cpu_count"] >= 1


def test_without_the_nvml_package_there_are_no_gpus(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    assert gpu_status() == []
    assert system_status()["gpus"] == []


def test_without_a_driver_there_are_no_gpus(monkeypatch):
    # nvmlInit fails like this on a machine with nvidia-ml-py but no NVIDIA driver
    monkeypatch.setitem(sys.modules, "pynvml", broken_nvml(nvmlInit=True))
    assert gpu_status() == []


def test_gpu_readings_map_to_the_api_fields(stand_in_nvml):
    gpus = gpu_status()
    assert [g["index"] for g in gpus] == [0, 1]
    first = gpus[0]
    assert first == {"index": 0, "name": "Stand-in GPU 0",  # bytes from the driver, decoded
                     "memory_used": 1 * GIB, "memory_total": 24 * GIB, "utilization": 40,
                     "temperature": 60, "fan": 30, "power": 150.0, "power_limit": 300.0}


def test_a_reading_the_board_lacks_is_null_and_keeps_the_rest(stand_in_nvml):
    second = gpu_status()[1]
    assert second["fan"] is None  # the stand-in's GPU 1 has no fan reading
    assert second["name"] == "Stand-in GPU 1" and second["memory_used"] == 2 * GIB


@pytest.mark.parametrize("failing", [
    "nvmlDeviceGetUtilizationRates", "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetTemperature", "nvmlDeviceGetMemoryInfo",
])
def test_each_optional_reading_may_fail_alone(monkeypatch, failing):
    monkeypatch.setitem(sys.modules, "pynvml", broken_nvml(**{failing: True}))
    gpus = gpu_status()
    assert len(gpus) == 2 and gpus[0]["name"] == "Stand-in GPU 0"
    field = {"nvmlDeviceGetUtilizationRates": "utilization", "nvmlDeviceGetPowerUsage": "power",
             "nvmlDeviceGetEnforcedPowerLimit": "power_limit",
             "nvmlDeviceGetTemperature": "temperature",
             "nvmlDeviceGetMemoryInfo": "memory_used"}[failing]
    assert gpus[0][field] is None


def test_a_driver_failing_while_listing_gives_no_gpus_and_shuts_nvml_down(monkeypatch):
    shut = []
    nvml = broken_nvml(nvmlDeviceGetCount=True)
    nvml.nvmlShutdown = lambda: shut.append(True)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert gpu_status() == []
    assert shut == [True]


def test_status_carries_the_gpus(stand_in_nvml):
    assert [g["name"] for g in system_status()["gpus"]] == ["Stand-in GPU 0", "Stand-in GPU 1"]
