"""A stand-in NVML (pynvml.py here): see its docstring."""
