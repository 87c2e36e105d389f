"""The machine a model was trained on: GPUs through NVML, CPU model, cores and RAM.

NVML (``pynvml``, from nvidia-ml-py) is imported lazily; a machine without the NVIDIA
library or without a GPU gives ``gpu_count`` 0 and a warning.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HardwareCapture:
    """The ``hardware`` section of the record and its warnings."""

    info: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def capture_hardware() -> HardwareCapture:
    """GPUs (count, names, memory, driver and CUDA driver versions), CPU and RAM."""
    gpus, warnings = read_gpus()
    cuda_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    info = {
        **gpus,
        **({"cuda_visible_devices": cuda_visible} if cuda_visible is not None else {}),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_total_mib": _ram_total_mib(),
    }
    return HardwareCapture(info, warnings)


def read_gpus() -> tuple[dict[str, Any], list[str]]:
    """GPU facts from NVML; ``gpu_count`` 0 and a warning when NVML is unavailable."""
    empty = {"gpu_count": 0, "gpus": [], "driver_version": None, "cuda_driver_version": None}
    try:
        import pynvml
    except ImportError:
        return empty, ["hardware: no NVIDIA GPU found (nvidia-ml-py is not installed)"]
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return empty, [f"hardware: no NVIDIA GPU found (NVML: {exc})"]
    try:
        count = pynvml.nvmlDeviceGetCount()
        gpus = []
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                {"name": _text(pynvml.nvmlDeviceGetName(handle)), "memory_mib": memory.total >> 20}
            )
        info = {
            "gpu_count": count,
            "gpus": gpus,
            "driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": _cuda_version(pynvml.nvmlSystemGetCudaDriverVersion_v2()),
        }
    except Exception as exc:  # a GPU that fails a query must not fail the registration
        return empty, [f"hardware: NVML query failed ({exc})"]
    finally:
        with contextlib.suppress(Exception):  # after a failed query: nothing more to report
            pynvml.nvmlShutdown()
    return info, ([] if count else ["hardware: no NVIDIA GPU found (NVML reports 0 devices)"])


def _text(value: str | bytes) -> str:
    """Old nvidia-ml-py releases return bytes."""
    return value.decode() if isinstance(value, bytes) else value


def _cuda_version(version: int) -> str:
    """NVML encodes CUDA 12.4 as 12040."""
    return f"{version // 1000}.{version % 1000 // 10}"


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _ram_total_mib() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
    except (ValueError, OSError, AttributeError):
        return None
