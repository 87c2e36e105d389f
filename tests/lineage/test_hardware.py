"""Hardware capture: the real machine (no GPU here), the NVML parser on a fake NVML, and
which GPUs ``CUDA_VISIBLE_DEVICES`` leaves a process."""

from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from jupyreg.lineage import capture
from jupyreg.lineage.hardware import (
    Device,
    HardwareCapture,
    capture_hardware,
    visible_devices,
)
from jupyreg.tags import search_tag_key

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


MACHINE = ["NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA A100-SXM4-80GB", "NVIDIA L40S"]
UUIDS = [
    "GPU-8f2c0a11-5c1e-4e8a-9f3b-0a1b2c3d4e5f",
    "GPU-8f2c0b22-6d2f-4f9b-a04c-1b2c3d4e5f60",
    "GPU-3d41e7c9-0a2b-4c3d-8e9f-2c3d4e5f6071",
    "GPU-c0de1234-1b3c-4d4e-9fa0-3d4e5f607182",
]
MIGS = ["MIG-5e6f7a8b-2c4d-5e6f-8a9b-4e5f60718293", "MIG-9a0b1c2d-3d5e-6f7a-9bac-5f6071829304"]


def fake_nvml(
    names: list[str | bytes],
    fail_on: str | None = None,
    uuids: list[str] | None = None,
    mig: dict[int, list[str | None]] | None = None,
) -> types.ModuleType:
    """A stand-in ``pynvml`` with the calls the parser makes, recording them. A GPU handle
    is its index; ``mig`` gives the GPUs in MIG mode their MIG devices' UUIDs by slot
    (None: an empty slot), whose handles are ``(gpu, slot)``. GPU 3 has no MIG support."""
    nvml = types.ModuleType("pynvml")
    nvml.calls = []  # type: ignore[attr-defined]
    uuids = uuids or UUIDS[: len(names)]
    mig = mig or {}

    def call(name: str, result: object = None):
        def fn(*args: object) -> object:
            nvml.calls.append(name)  # type: ignore[attr-defined]
            if name == fail_on:
                raise FakeNVMLError(f"{name} failed")
            return result(*args) if callable(result) else result

        return fn

    def mig_mode(gpu: int) -> list[int]:
        if gpu == 3:
            raise FakeNVMLError("Not Supported")
        return [1, 1] if gpu in mig else [0, 0]

    def mig_handle(gpu: int, slot: int) -> tuple[int, int]:
        if mig[gpu][slot] is None:
            raise FakeNVMLError("Not Found")
        return gpu, slot

    def uuid(handle: int | tuple[int, int]) -> str | None:
        return mig[handle[0]][handle[1]] if isinstance(handle, tuple) else uuids[handle]

    def name(handle: int | tuple[int, int]) -> str | bytes:
        return f"{names[handle[0]]} MIG 1g.10gb" if isinstance(handle, tuple) else names[handle]

    def memory(handle: int | tuple[int, int]) -> types.SimpleNamespace:
        mib = 9984 if isinstance(handle, tuple) else 81559
        return types.SimpleNamespace(total=mib * 2**20 + 5)

    nvml.NVMLError = FakeNVMLError
    nvml.NVML_DEVICE_MIG_ENABLE = 1
    nvml.nvmlInit = call("nvmlInit")
    nvml.nvmlShutdown = call("nvmlShutdown")
    nvml.nvmlDeviceGetCount = call("nvmlDeviceGetCount", len(names))
    nvml.nvmlDeviceGetHandleByIndex = call("nvmlDeviceGetHandleByIndex", lambda i: i)
    nvml.nvmlDeviceGetUUID = call("nvmlDeviceGetUUID", uuid)
    nvml.nvmlDeviceGetName = call("nvmlDeviceGetName", name)
    nvml.nvmlDeviceGetMemoryInfo = call("nvmlDeviceGetMemoryInfo", memory)
    nvml.nvmlDeviceGetMigMode = call("nvmlDeviceGetMigMode", mig_mode)
    nvml.nvmlDeviceGetMaxMigDeviceCount = call(
        "nvmlDeviceGetMaxMigDeviceCount", lambda gpu: len(mig[gpu])
    )
    nvml.nvmlDeviceGetMigDeviceHandleByIndex = call(
        "nvmlDeviceGetMigDeviceHandleByIndex", mig_handle
    )
    nvml.nvmlSystemGetDriverVersion = call("nvmlSystemGetDriverVersion", b"550.54.15")
    nvml.nvmlSystemGetCudaDriverVersion_v2 = call("nvmlSystemGetCudaDriverVersion_v2", 12040)
    return nvml


@pytest.fixture(autouse=True)
def _no_runtime_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``NVIDIA_VISIBLE_DEVICES`` from a container this runs in (conftest already
    removes ``CUDA_VISIBLE_DEVICES``)."""
    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)


def four_gpus(
    monkeypatch: pytest.MonkeyPatch,
    cuda_visible: str | None,
    mig: dict[int, list[str | None]] | None = None,
) -> HardwareCapture:
    """``capture_hardware`` on a fake four-GPU machine with ``CUDA_VISIBLE_DEVICES`` set."""
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(MACHINE, mig=mig))
    if cuda_visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cuda_visible)
    return capture_hardware()


def gpu(index: int) -> dict:
    return {"index": index, "uuid": UUIDS[index], "name": MACHINE[index], "memory_mib": 81559}


DEVICES = [Device(index, uuid) for index, uuid in enumerate(UUIDS)]


@pytest.mark.parametrize(
    ("spec", "indices"),
    [
        (None, [0, 1, 2, 3]),  # unset: every GPU
        ("", []),  # set and empty: none
        ("0,1", [0, 1]),
        ("2,0", [2, 0]),  # CUDA's order is the list's
        (" 1 , 3 ", [1, 3]),
        ("+1", [1]),
        ("1gpu2,2ampere", [1, 2]),  # read like strtoul: the leading digits
        ("-1", []),
        ("0,-1,2", [0]),  # the first invalid entry ends the list
        ("0,4,1", [0]),  # so does an index this machine lacks
        ("4", []),
        ("0,,1", [0]),
        ("x,0", []),
        ("0,1,0", []),  # a device named twice: none at all
        (UUIDS[2], [2]),
        ("GPU-3d41", [2]),  # a unique prefix
        ("GPU-8f2c0b", [1]),
        ("GPU-8f2c0", []),  # a prefix of two GPUs names neither
        ("GPU-ffff", []),
        ("GPU-3d41,0", [2, 0]),
        ("GPU-c0de,GPU-ffff,1", [3]),
        ("0,GPU-8f2c0a", []),  # GPU 0 twice
        ("8f2c0a11", []),  # without "GPU-" it reads as index 8, which this machine lacks
    ],
)
def test_visible_devices_follow_cuda(spec: str | None, indices: list[int]) -> None:
    assert visible_devices(spec, DEVICES) == [DEVICES[i] for i in indices]


def test_visible_mig_devices() -> None:
    devices = [*DEVICES, Device(1, MIGS[0]), Device(1, MIGS[1])]
    assert visible_devices(None, devices) == DEVICES  # unset: the GPUs, not their MIG devices
    assert visible_devices("1", devices) == [DEVICES[1]]
    assert visible_devices(f"{MIGS[1]},MIG-5e6f", devices) == [devices[5], devices[4]]
    assert visible_devices("MIG-", devices) == []  # ambiguous
    assert visible_devices(f"{MIGS[0]},{MIGS[0]}", devices) == []


def test_nvml_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml(["NVIDIA H100 80GB HBM3", b"NVIDIA H100 80GB HBM3"])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    hardware = capture_hardware()
    assert hardware.warnings == []
    assert hardware.info["gpu_count"] == 1
    assert hardware.info["machine_gpu_count"] == 2
    assert hardware.info["gpus"] == [
        {"index": 1, "uuid": UUIDS[1], "name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559}
    ]
    assert hardware.info["driver_version"] == "550.54.15"
    assert hardware.info["cuda_driver_version"] == "12.4"
    assert hardware.info["cuda_visible_devices"] == "1"
    assert "nvidia_visible_devices" not in hardware.info
    assert nvml.calls[0] == "nvmlInit" and nvml.calls[-1] == "nvmlShutdown"
    assert "nvmlDeviceGetMigMode" not in nvml.calls  # MIG devices only looked up when named


def test_every_gpu_without_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = four_gpus(monkeypatch, None)
    assert hardware.info["gpu_count"] == hardware.info["machine_gpu_count"] == 4
    assert hardware.info["gpus"] == [gpu(i) for i in range(4)]
    assert "cuda_visible_devices" not in hardware.info and hardware.warnings == []


def test_cuda_visible_devices_limits_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = four_gpus(monkeypatch, "0,1")
    assert hardware.info["gpu_count"] == 2
    assert hardware.info["machine_gpu_count"] == 4
    assert hardware.info["gpus"] == [gpu(0), gpu(1)]
    assert hardware.info["cuda_visible_devices"] == "0,1"
    assert hardware.warnings == []


def test_gpus_named_by_uuid_in_cuda_order(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = four_gpus(monkeypatch, f"{UUIDS[3]},GPU-3d41")
    assert hardware.info["gpus"] == [gpu(3), gpu(2)]
    assert (hardware.info["gpu_count"], hardware.info["machine_gpu_count"]) == (2, 4)


@pytest.mark.parametrize(("spec", "count"), [("0,-1,2", 1), ("1,7,2", 1), ("1,2,1", 0)])
def test_invalid_entries_end_the_list(
    monkeypatch: pytest.MonkeyPatch, spec: str, count: int
) -> None:
    hardware = four_gpus(monkeypatch, spec)
    assert hardware.info["gpu_count"] == count
    assert hardware.info["machine_gpu_count"] == 4


@pytest.mark.parametrize("spec", ["", "-1", "GPU-ffff"])
def test_hiding_every_gpu_is_a_warning(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    hardware = four_gpus(monkeypatch, spec)
    assert (hardware.info["gpu_count"], hardware.info["gpus"]) == (0, [])
    assert hardware.info["machine_gpu_count"] == 4
    assert hardware.warnings == [
        f"hardware: CUDA_VISIBLE_DEVICES={spec!r} hides all 4 GPUs of this machine"
    ]


def test_hiding_the_only_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(["NVIDIA H100 80GB HBM3"]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert capture_hardware().warnings == [
        "hardware: CUDA_VISIBLE_DEVICES='' hides the only GPU of this machine"
    ]


@pytest.mark.parametrize("spec", ["all", "none", "void", "", "2,3", UUIDS[1]])
def test_nvidia_visible_devices_is_recorded_not_applied(
    monkeypatch: pytest.MonkeyPatch, spec: str
) -> None:
    """The container runtime applied it before this process started: NVML shows only the
    GPUs it chose, renumbered from 0 (and outside a container CUDA ignores it)."""
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", spec)
    hardware = four_gpus(monkeypatch, None)
    assert hardware.info["gpu_count"] == hardware.info["machine_gpu_count"] == 4
    assert hardware.info["nvidia_visible_devices"] == spec
    assert hardware.warnings == []


def test_container_given_gpus_2_and_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """``docker run --gpus '"device=2,3"'``: NVML inside sees two GPUs, numbered 0 and 1."""
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(MACHINE[2:], uuids=UUIDS[2:]))
    info = capture_hardware().info
    assert (info["gpu_count"], info["machine_gpu_count"]) == (2, 2)
    assert [g["uuid"] for g in info["gpus"]] == UUIDS[2:]


@pytest.mark.parametrize("runtime", ["all", "void", "0"])
def test_cuda_visible_devices_takes_precedence(
    monkeypatch: pytest.MonkeyPatch, runtime: str
) -> None:
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", runtime)
    hardware = four_gpus(monkeypatch, "1")
    assert hardware.info["gpus"] == [gpu(1)]
    assert hardware.info["gpu_count"] == 1 and hardware.info["machine_gpu_count"] == 4
    assert hardware.info["cuda_visible_devices"] == "1"
    assert hardware.info["nvidia_visible_devices"] == runtime


def test_mig_devices_named_by_uuid(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = four_gpus(monkeypatch, f"{MIGS[1]},MIG-5e6f", mig={0: [MIGS[0], None, MIGS[1]]})
    assert hardware.warnings == []
    assert hardware.info["gpu_count"] == 2 and hardware.info["machine_gpu_count"] == 4
    assert hardware.info["gpus"] == [
        {"index": 0, "uuid": uuid, "name": "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "memory_mib": 9984}
        for uuid in (MIGS[1], MIGS[0])
    ]


def test_unknown_mig_device_hides_every_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = four_gpus(monkeypatch, MIGS[0])  # no GPU in MIG mode
    assert hardware.info["gpu_count"] == 0
    assert hardware.warnings == [
        f"hardware: CUDA_VISIBLE_DEVICES={MIGS[0]!r} hides all 4 GPUs of this machine"
    ]


def test_gpu_tags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(["NVIDIA H100 80GB HBM3"]))
    tags = capture(cwd=tmp_path, data=[]).to_tags()
    assert tags["jupyreg.gpu.count"] == "1"
    assert tags["jupyreg.gpu.machine_count"] == "1"
    assert tags["jupyreg.gpu.name"] == "NVIDIA H100 80GB HBM3"


def test_gpu_tags_name_the_visible_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(MACHINE))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,2")
    tags = capture(cwd=tmp_path, data=[]).to_tags()
    assert tags["jupyreg.gpu.count"] == "2"
    assert tags["jupyreg.gpu.machine_count"] == "4"
    assert tags["jupyreg.gpu.name"] == "NVIDIA A100-SXM4-80GB, NVIDIA L40S"
    assert search_tag_key("gpu.machine_count") == "jupyreg.gpu.machine_count"


def test_nvml_without_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], fail_on="nvmlInit"))
    hardware = capture_hardware()
    assert hardware.info["gpu_count"] == hardware.info["machine_gpu_count"] == 0
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
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    hardware = capture_hardware()
    assert hardware.info["gpu_count"] == hardware.info["machine_gpu_count"] == 0
    assert hardware.warnings == ["hardware: no NVIDIA GPU found (NVML reports 0 devices)"]
