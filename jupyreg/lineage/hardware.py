"""The machine a model was trained on: GPUs through NVML, CPU model, cores and RAM.

NVML (``pynvml``, from nvidia-ml-py) is imported lazily; a machine without the NVIDIA
library or without a GPU gives ``gpu_count`` 0 and a warning. ``gpu_count`` and ``gpus``
are the GPUs this process can use (``CUDA_VISIBLE_DEVICES`` applied), ``machine_gpu_count``
all that NVML sees.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

CUDA_VISIBLE = "CUDA_VISIBLE_DEVICES"
NVIDIA_VISIBLE = "NVIDIA_VISIBLE_DEVICES"
_INDEX = re.compile(r"\+?\d+")


@dataclass
class HardwareCapture:
    """The ``hardware`` section of the record and its warnings."""

    info: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


class Device(NamedTuple):
    """A device ``CUDA_VISIBLE_DEVICES`` can name: a GPU by its NVML index or UUID
    (``GPU-...``), or a MIG device by its UUID (``MIG-...``; ``index`` is its GPU's)."""

    index: int
    uuid: str


def capture_hardware() -> HardwareCapture:
    """GPUs (count, names, memory, driver and CUDA driver versions), CPU and RAM, and the
    variables that chose the GPUs: ``NVIDIA_VISIBLE_DEVICES`` is recorded, not applied (the
    container runtime reads it before the process starts, and NVML then sees only the GPUs
    it chose, renumbered from 0; outside a container CUDA ignores it)."""
    gpus, warnings = read_gpus()
    chosen = {
        key: os.environ[name]
        for key, name in (
            ("cuda_visible_devices", CUDA_VISIBLE),
            ("nvidia_visible_devices", NVIDIA_VISIBLE),
        )
        if name in os.environ
    }
    info = {
        **gpus,
        **chosen,
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_total_mib": _ram_total_mib(),
    }
    return HardwareCapture(info, warnings)


def read_gpus() -> tuple[dict[str, Any], list[str]]:
    """GPU facts from NVML: ``gpus`` lists those ``CUDA_VISIBLE_DEVICES`` leaves this
    process, in CUDA's order (``gpus[0]`` is ``cuda:0``); ``gpu_count`` 0 and a warning
    when NVML is unavailable or the variable hides every GPU."""
    spec = os.environ.get(CUDA_VISIBLE)
    empty = {
        "gpu_count": 0,
        "machine_gpu_count": 0,
        "gpus": [],
        "driver_version": None,
        "cuda_driver_version": None,
    }
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
        handles: dict[Device, Any] = {}
        for index in range(count):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            handles[Device(index, _text(pynvml.nvmlDeviceGetUUID(handle)))] = handle
        if spec and "MIG-" in spec:
            handles |= _mig_devices(pynvml, handles)
        visible = visible_devices(spec, list(handles))
        info = {
            "gpu_count": len(visible),
            "machine_gpu_count": count,
            "gpus": [_describe(pynvml, device, handles[device]) for device in visible],
            "driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
            "cuda_driver_version": _cuda_version(pynvml.nvmlSystemGetCudaDriverVersion_v2()),
        }
    except Exception as exc:  # a GPU that fails a query must not fail the registration
        return empty, [f"hardware: NVML query failed ({exc})"]
    finally:
        with contextlib.suppress(Exception):  # after a failed query: nothing more to report
            pynvml.nvmlShutdown()
    if not count:
        return info, ["hardware: no NVIDIA GPU found (NVML reports 0 devices)"]
    if not visible:
        every = "the only GPU" if count == 1 else f"all {count} GPUs"
        return info, [f"hardware: {CUDA_VISIBLE}={spec!r} hides {every} of this machine"]
    return info, []


def visible_devices(spec: str | None, devices: Sequence[Device]) -> list[Device]:
    """The devices a CUDA process sees with ``CUDA_VISIBLE_DEVICES=spec``, in its order.

    CUDA's rules (CUDA C++ Programming Guide, "CUDA Environment Variables"; the corner
    cases as ``torch.cuda._parse_visible_devices`` encodes them): unset, every GPU; else a
    comma-separated list of GPU indices (read like ``strtoul``: ``" 1"``, ``"+1"`` and
    ``"1gpu"`` are 1), GPU UUIDs (``GPU-8f2c...``, or a prefix naming one device) and MIG
    device UUIDs (``MIG-...``). The list ends at the first entry that names no device (a
    negative, out-of-range or non-numeric index, an unknown or ambiguous UUID), so ``""``
    and ``"-1"`` hide every GPU and ``"0,-1,2"`` leaves GPU 0; a device named twice hides
    them all.
    """
    if spec is None:
        return [device for device in devices if not device.uuid.startswith("MIG-")]
    seen: list[Device] = []
    for entry in spec.split(","):
        device = _named(entry.strip(), devices)
        if device is None:
            break
        if device in seen:
            return []
        seen.append(device)
    return seen


def _named(entry: str, devices: Sequence[Device]) -> Device | None:
    """The one device an entry of ``CUDA_VISIBLE_DEVICES`` names, None when none is."""
    if entry.startswith(("GPU-", "MIG-")):
        named = [device for device in devices if device.uuid.startswith(entry)]
    elif number := _INDEX.match(entry):
        named = [
            device
            for device in devices
            if device.index == int(number.group()) and not device.uuid.startswith("MIG-")
        ]
    else:
        return None
    return named[0] if len(named) == 1 else None


def _mig_devices(pynvml: Any, gpus: Mapping[Device, Any]) -> dict[Device, Any]:
    """The MIG devices of the GPUs in MIG mode, with their NVML handles."""
    found: dict[Device, Any] = {}
    for gpu, handle in gpus.items():
        try:
            if pynvml.nvmlDeviceGetMigMode(handle)[0] != pynvml.NVML_DEVICE_MIG_ENABLE:
                continue
            slots = pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)
        except pynvml.NVMLError:  # a GPU without MIG support
            continue
        for slot in range(slots):
            with contextlib.suppress(pynvml.NVMLError):  # an empty slot
                mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
                found[Device(gpu.index, _text(pynvml.nvmlDeviceGetUUID(mig)))] = mig
    return found


def _describe(pynvml: Any, device: Device, handle: Any) -> dict[str, Any]:
    return {
        "index": device.index,
        "uuid": device.uuid,
        "name": _text(pynvml.nvmlDeviceGetName(handle)),
        "memory_mib": pynvml.nvmlDeviceGetMemoryInfo(handle).total >> 20,
    }


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
