"""What the machine offers, asked without importing torch when torch is not loaded yet.

The web process must never import torch, so outside the worker CUDA is detected with `nvidia-smi`.
Inside the worker (torch already imported) torch's own answer is used.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import sys


@functools.lru_cache(maxsize=1)
def _nvidia_smi_finds_gpu() -> bool:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def cuda_available() -> bool:
    """True when an NVIDIA GPU is usable."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    return _nvidia_smi_finds_gpu()


def cpu_has_bf16() -> bool:
    """True when the CPU has native bf16 (AVX512-BF16 or AMX); needs torch."""
    import torch
    cpu = torch.backends.cpu
    level = cpu.get_cpu_capability() if hasattr(cpu, "get_cpu_capability") else ""
    return "AMX" in level.upper() or cpu_flags_have_bf16()


def cpu_flags_have_bf16() -> bool:
    """True when /proc/cpuinfo lists native bf16 (AVX512-BF16 or AMX); no torch needed."""
    return _cpuinfo_has("avx512_bf16") or _cpuinfo_has("amx_bf16")


def _cpuinfo_has(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return any(flag in line.split() for line in f if line.startswith("flags"))
    except OSError:
        return False
