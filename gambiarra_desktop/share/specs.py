"""What a participant's machine is, for the room to see: CPU, RAM, and GPU with VRAM.

The GPU probe runs ``nvidia-smi`` with a short timeout: on machines without it, or when
the driver hangs, joining must not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import shutil
from pathlib import Path
from typing import Any

import psutil

GPU_PROBE_TIMEOUT_S = 2.0


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        with contextlib.suppress(OSError):
            for line in cpuinfo.read_text(errors="replace").splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


async def nvidia_gpu(timeout_s: float = GPU_PROBE_TIMEOUT_S) -> tuple[str, int] | None:
    """``(name, VRAM in GB)`` of the first NVIDIA GPU, or ``None``."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        process = await asyncio.create_subprocess_exec(
            executable, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        async with asyncio.timeout(timeout_s):
            output, _ = await process.communicate()
    except BaseException as exc:
        # A timeout, or "off" cancelling the share's start mid-read: never leave the
        # child behind (a hung driver would keep it forever).
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if isinstance(exc, TimeoutError):
            return None
        raise
    first = output.decode(errors="replace").strip().splitlines()[:1]
    if process.returncode != 0 or not first or "," not in first[0]:
        return None
    name, memory_mib = (part.strip() for part in first[0].rsplit(",", 1))
    try:
        return name, round(int(float(memory_mib)) / 1024)
    except ValueError:
        return name, 0


async def machine_specs() -> dict[str, Any]:
    specs: dict[str, Any] = {
        "cpu": cpu_name(),
        "ram": round(psutil.virtual_memory().total / 1024**3),
    }
    gpu = await nvidia_gpu()
    if gpu is not None:
        specs["gpu"], specs["vram"] = gpu
    return specs
