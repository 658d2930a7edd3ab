"""``GET /system_stats`` read: ComfyUI's version, PyTorch's, and the devices with their memory.

Pure. ComfyUI fills each device from ``torch.cuda.mem_get_info`` (``vram_total``,
``vram_free``: the whole device, other processes included) and from its own
allocator (``torch_vram_*``). A field a server leaves out reads as unknown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GIB = 1024**3


@dataclass(frozen=True)
class Device:
    name: str
    type: str
    """``cuda``, ``cpu``, ``mps``, ``xpu``, ..."""
    vram_total: int | None
    vram_free: int | None

    @property
    def is_gpu(self) -> bool:
        return self.type not in ("cpu", "")

    @property
    def vram_used(self) -> int | None:
        """Bytes in use on the whole device (``vram_total - vram_free``): a sample, not a peak."""
        if self.vram_total is None or self.vram_free is None:
            return None
        return max(0, self.vram_total - self.vram_free)


@dataclass(frozen=True)
class SystemStats:
    comfyui_version: str
    pytorch_version: str
    python_version: str
    devices: tuple[Device, ...]

    @property
    def gpu(self) -> Device | None:
        """The first GPU device ComfyUI runs on, if any."""
        return next((d for d in self.devices if d.is_gpu), None)


def parse_system_stats(body: Mapping[str, Any]) -> SystemStats:
    system = body.get("system")
    system = system if isinstance(system, Mapping) else {}
    devices = []
    for raw in body.get("devices") or ():
        if not isinstance(raw, Mapping):
            continue
        devices.append(
            Device(
                name=str(raw.get("name") or "unknown device"),
                type=str(raw.get("type") or ""),
                vram_total=_int(raw.get("vram_total")),
                vram_free=_int(raw.get("vram_free")),
            )
        )
    python = str(system.get("python_version") or "unknown").split()[0]
    return SystemStats(
        comfyui_version=str(system.get("comfyui_version") or "unknown"),
        pytorch_version=str(system.get("pytorch_version") or "unknown"),
        python_version=python,
        devices=tuple(devices),
    )


def vram_used(body: Mapping[str, Any]) -> int | None:
    """Bytes in use on the first GPU of a ``/system_stats`` answer; None without a GPU."""
    gpu = parse_system_stats(body).gpu
    return gpu.vram_used if gpu is not None else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
