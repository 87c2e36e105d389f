"""The real GPU capture checked against nvidia-smi (run on a machine with an NVIDIA GPU):

    PYTHONPATH=. python3 -m pytest -m gpu tests/lineage

Imports only the standard library, pytest and jupyreg.lineage: no MLflow, GitPython or DVC.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from jupyreg.lineage.hardware import capture_hardware


def nvidia_smi() -> list[list[str]]:
    if shutil.which("nvidia-smi") is None:
        pytest.skip("no NVIDIA driver (nvidia-smi not found)")
    done = subprocess.run(
        [
            "nvidia-smi",
            "--query-gpu=name,memory.total,driver_version,uuid",
            "--format=csv,noheader",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = [[f.strip() for f in line.split(",")] for line in done.stdout.splitlines() if line]
    if done.returncode != 0 or not rows:
        pytest.skip(f"nvidia-smi found no GPU: {done.stderr.strip()}")
    return rows


@pytest.mark.gpu
def test_gpu_capture_matches_nvidia_smi() -> None:
    rows = nvidia_smi()
    hardware = capture_hardware()
    info = hardware.info
    assert hardware.warnings == []
    assert info["gpu_count"] == info["machine_gpu_count"] == len(rows)
    assert [gpu["name"] for gpu in info["gpus"]] == [row[0] for row in rows]
    assert [gpu["uuid"] for gpu in info["gpus"]] == [row[3] for row in rows]
    for gpu, row in zip(info["gpus"], rows, strict=True):
        assert row[1].endswith(" MiB")
        assert abs(gpu["memory_mib"] - int(row[1].removesuffix(" MiB"))) <= 1
    assert info["driver_version"] == rows[0][2]
    banner = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=60).stdout
    cuda = re.search(r"CUDA Version:\s*(\d+\.\d+)", banner)
    if cuda:
        assert info["cuda_driver_version"] == cuda.group(1)


@pytest.mark.gpu
def test_cuda_visible_devices_limits_the_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = nvidia_smi()  # nvidia-smi ignores CUDA_VISIBLE_DEVICES: every GPU of the machine
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    hardware = capture_hardware()
    info = hardware.info
    assert hardware.warnings == []
    assert info["gpu_count"] == 1
    assert info["machine_gpu_count"] == len(rows)
    assert info["gpus"][0]["name"] == rows[0][0]
    assert info["gpus"][0]["uuid"] == rows[0][3]
    assert info["cuda_visible_devices"] == "0"

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", rows[-1][3][:12])  # the last GPU, by UUID prefix
    info = capture_hardware().info
    assert [gpu["uuid"] for gpu in info["gpus"]] == [rows[-1][3]]
    assert info["gpus"][0]["index"] == len(rows) - 1

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    hardware = capture_hardware()
    assert hardware.info["gpu_count"] == 0
    assert hardware.info["machine_gpu_count"] == len(rows)
    assert len(hardware.warnings) == 1 and "hides" in hardware.warnings[0]
