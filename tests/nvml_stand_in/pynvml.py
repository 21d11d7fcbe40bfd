"""A stand-in for `pynvml` (nvidia-ml-py) with NVIDIA GPUs that do not exist.

The machines the tests run on have no NVIDIA GPU and no driver, so the real NVML cannot answer
anything there; this module stands in for a driver with `NVML_STAND_IN_GPUS` GPUs (default 2)
and answers only the calls services/system.py makes. Unit tests put it in `sys.modules`; browser
tests put its folder first on the live server's PYTHONPATH. The readings are fixed so tests can
check the mapping: GPU i has 24 GiB, uses i+1 GiB, is i+40 % busy at i+60 degrees C, draws 150 W
of a 300 W limit; GPU 0's name comes back as bytes (older drivers), and GPU 1 reports no fan
(as datacenter boards do).
"""
from __future__ import annotations

import os
from types import SimpleNamespace

GIB = 1 << 30
NVML_TEMPERATURE_GPU = 0


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 (the real module's name)
    pass


def _count() -> int:
    return int(os.environ.get("NVML_STAND_IN_GPUS", "2"))


def nvmlInit() -> None:
    pass


def nvmlShutdown() -> None:
    pass


def nvmlDeviceGetCount() -> int:
    return _count()


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    if not 0 <= index < _count():
        raise NVMLError(f"no GPU {index}")
    return index


def nvmlDeviceGetName(handle: int) -> str | bytes:
    name = f"Stand-in GPU {handle}"
    return name.encode() if handle == 0 else name


def nvmlDeviceGetMemoryInfo(handle: int) -> SimpleNamespace:
    used = (handle + 1) * GIB
    return SimpleNamespace(total=24 * GIB, used=used, free=24 * GIB - used)


def nvmlDeviceGetUtilizationRates(handle: int) -> SimpleNamespace:
    return SimpleNamespace(gpu=40 + handle, memory=10)


def nvmlDeviceGetTemperature(handle: int, sensor: int) -> int:
    return 60 + handle


def nvmlDeviceGetFanSpeed(handle: int) -> int:
    if handle == 1:
        raise NVMLError_NotSupported("Not Supported")
    return 30


def nvmlDeviceGetPowerUsage(handle: int) -> int:
    return 150_000  # milliwatts


def nvmlDeviceGetEnforcedPowerLimit(handle: int) -> int:
    return 300_000
