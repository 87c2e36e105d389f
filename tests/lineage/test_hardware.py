"""Hardware capture: the real machine (no GPU here), and the NVML parser on a fake NVML."""

from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from jupyreg.lineage import capture
from jupyreg.lineage.hardware import capture_hardware

needs_no_gpu = pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="this machine has an NVIDIA driver"
)


@needs_no_gpu
def test_no_gpu_gives_zero_and_a_warning(tmp_path: Path) -> None:
    lineage = capture(cwd=tmp_path, data=[])
    hardware = lineage.record["hardware"]
    assert hardware["gpu_count"] == 0 and hardware["gpus"] == []
    assert any(w.startswith("hardware: no NVIDIA GPU found") for w in lineage.warnings)
    tags = lineage.to_tags()
    assert tags["jupyreg.gpu.count"] == "0"
    assert "jupyreg.gpu.name" not in tags


def test_cpu_and_memory() -> None:
    info = capture_hardware().info
    assert info["cpu_count"] == os.cpu_count()
    assert info["ram_total_mib"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") >> 20
    if Path("/proc/cpuinfo").exists():
        models = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        if models:
            assert info["cpu_model"] == models[0]


class FakeNVMLError(Exception):
    pass


def fake_nvml(names: list[str | bytes], fail_on: str | None = None) -> types.ModuleType:
    """A stand-in ``pynvml`` with the calls the parser makes, recording shutdowns."""
    nvml = types.ModuleType("pynvml")
    nvml.calls = []  # type: ignore[attr-defined]

    def call(name: str, result: object = None):
        def fn(*args: object) -> object:
            nvml.calls.append(name)  # type: ignore[attr-defined]
            if name == fail_on:
                raise FakeNVMLError(f"{name} failed")
            return result(*args) if callable(result) else result

        return fn

    nvml.nvmlInit = call("nvmlInit")
    nvml.nvmlShutdown = call("nvmlShutdown")
    nvml.nvmlDeviceGetCount = call("nvmlDeviceGetCount", len(names))
    nvml.nvmlDeviceGetHandleByIndex = call("nvmlDeviceGetHandleByIndex", lambda i: i)
    nvml.nvmlDeviceGetName = call("nvmlDeviceGetName", lambda i: names[i])
    nvml.nvmlDeviceGetMemoryInfo = call(
        "nvmlDeviceGetMemoryInfo", lambda i: types.SimpleNamespace(total=81559 * 2**20 + 5)
    )
    nvml.nvmlSystemGetDriverVersion = call("nvmlSystemGetDriverVersion", b"550.54.15")
    nvml.nvmlSystemGetCudaDriverVersion_v2 = call("nvmlSystemGetCudaDriverVersion_v2", 12040)
    return nvml


def test_nvml_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml(["NVIDIA H100 80GB HBM3", b"NVIDIA H100 80GB HBM3"])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    hardware = capture_hardware()
    assert hardware.warnings == []
    assert hardware.info["gpu_count"] == 2
    assert hardware.info["gpus"] == [{"name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559}] * 2
    assert hardware.info["driver_version"] == "550.54.15"
    assert hardware.info["cuda_driver_version"] == "12.4"
    assert hardware.info["cuda_visible_devices"] == "1"
    assert nvml.calls[0] == "nvmlInit" and nvml.calls[-1] == "nvmlShutdown"


def test_gpu_tags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(["NVIDIA H100 80GB HBM3"]))
    tags = capture(cwd=tmp_path, data=[]).to_tags()
    assert tags["jupyreg.gpu.count"] == "1"
    assert tags["jupyreg.gpu.name"] == "NVIDIA H100 80GB HBM3"


def test_nvml_without_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], fail_on="nvmlInit"))
    hardware = capture_hardware()
    assert hardware.info["gpu_count"] == 0
    assert hardware.warnings == ["hardware: no NVIDIA GPU found (NVML: nvmlInit failed)"]


def test_nvml_query_failure_still_shuts_down(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml(["A"], fail_on="nvmlDeviceGetMemoryInfo")
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    hardware = capture_hardware()
    assert hardware.info["gpu_count"] == 0
    assert hardware.warnings == ["hardware: NVML query failed (nvmlDeviceGetMemoryInfo failed)"]
    assert nvml.calls[-1] == "nvmlShutdown"


def test_nvml_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    hardware = capture_hardware()
    assert hardware.info["gpu_count"] == 0
    assert hardware.warnings == ["hardware: no NVIDIA GPU found (nvidia-ml-py is not installed)"]


def test_zero_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([]))
    hardware = capture_hardware()
    assert hardware.info["gpu_count"] == 0
    assert hardware.warnings == ["hardware: no NVIDIA GPU found (NVML reports 0 devices)"]
