"""What the machine has and is doing: GPUs (through NVML), CPU and RAM (through psutil).

Guarantees: `system_status()` always answers; a machine without a GPU, without the NVIDIA driver
or without `nvidia-ml-py` gives `"gpus": []`, never an error. Values are plain numbers (bytes,
percent, degrees C, watts) or null where the device does not report them (a fan, a power reading
or a temperature missing on one board leaves the rest of that GPU). GPU indices are NVML's, which
are also what `compute.gpu_ids` means (the worker is launched with CUDA_DEVICE_ORDER=PCI_BUS_ID,
core/launch.py).

Does not: import torch (NVML talks to the driver directly) or Flask.
"""
from __future__ import annotations

import logging
from typing import Any

import psutil

log = logging.getLogger("grpo_studio.system")


def system_status() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    return {"gpus": gpu_status(), "cpu_percent": psutil.cpu_percent(interval=None),
            "cpu_count": psutil.cpu_count(), "ram_used": memory.total - memory.available,
            "ram_total": memory.total}


def gpu_status() -> list[dict[str, Any]]:
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception:  # no package, no driver, no GPU: all mean "CPU only"
        return []
    try:
        return [_one_gpu(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception as err:
        log.warning("reading the GPUs failed: %s", err)
        return []
    finally:
        pynvml.nvmlShutdown()


def _one_gpu(nvml: Any, index: int) -> dict[str, Any]:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)

    def read(fn: Any, *args: Any) -> Any:
        try:
            return fn(handle, *args)
        except Exception:  # fans, power and temperature are missing on some boards
            return None
    memory = read(nvml.nvmlDeviceGetMemoryInfo)
    util = read(nvml.nvmlDeviceGetUtilizationRates)
    power = read(nvml.nvmlDeviceGetPowerUsage)
    limit = read(nvml.nvmlDeviceGetEnforcedPowerLimit)
    name = nvml.nvmlDeviceGetName(handle)
    return {"index": index, "name": name.decode() if isinstance(name, bytes) else name,
            "memory_used": memory.used if memory is not None else None,
            "memory_total": memory.total if memory is not None else None,
            "utilization": util.gpu if util is not None else None,
            "temperature": read(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU),
            "fan": read(nvml.nvmlDeviceGetFanSpeed),
            "power": power / 1000 if power is not None else None,
            "power_limit": limit / 1000 if limit is not None else None}
