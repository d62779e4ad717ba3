"""NVIDIA GPUs through NVML (the `nvidia-ml-py` package, imported as `pynvml`).

On a DGX Spark (GB10) the GPU shares the system's LPDDR5X: NVML answers NOT_SUPPORTED for
device memory but does report each process's `usedGpuMemory`. Then the GPU's memory is
shown as the unified pool: the system's total, and the sum of what GPU processes hold.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from sparktop.probes.procfs import process_name
from sparktop.snapshot import GpuInfo, GpuProcess, MemoryInfo

T = TypeVar("T")

RETRY_INIT_S = 30.0


def _import_pynvml() -> ModuleType:
    import pynvml

    return pynvml


def _device_nodes(dev_root: Path) -> list[str]:
    try:
        return sorted(p.name for p in dev_root.glob("nvidia[0-9]*"))
    except OSError:
        return []


class NvidiaProbe:
    """Reads every NVIDIA GPU; keeps NVML initialised between reads, retries a failed init."""

    def __init__(
        self,
        proc_root: Path = Path("/proc"),
        dev_root: Path = Path("/dev"),
        nvml: ModuleType | None = None,
        clock: Callable[[], float] = time.monotonic,
        dev_shown: str | None = None,
        host_root: Path | None = None,
    ) -> None:
        self._host_root = host_root
        self._host_note: str | None = None
        """Why the node's NVML library could not be used (--host-root), once tried."""
        self._proc_root = proc_root
        self._dev_root = dev_root
        self._dev_shown = dev_shown or str(dev_root)
        self._nvml = nvml
        self._clock = clock
        self._ready = False
        self._reason: str | None = None
        self._retry_at = 0.0
        self._lost: Exception | None = None

    # -- initialisation -------------------------------------------------------------------

    def _init(self) -> bool:
        if self._ready:
            return True
        if self._clock() < self._retry_at:
            return False
        self._retry_at = self._clock() + RETRY_INIT_S
        if self._nvml is None:
            try:
                self._nvml = _import_pynvml()
            except ImportError:
                self._reason = "NVML bindings not installed (pip package nvidia-ml-py)"
                return False
        nvml = self._nvml
        if self._host_root is not None and self._host_note is None:
            self._host_note = preload_nvml(self._host_root) or ""
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            self._reason = self._explain_init_error(exc)
            if self._host_note:
                self._reason += f"; {self._host_note}"
            return False
        except OSError as exc:  # a broken libnvidia-ml can fail inside ctypes
            self._reason = f"NVML failed to load: {exc}"
            return False
        self._ready = True
        self._reason = None
        return True

    def _explain_init_error(self, exc: Any) -> str:
        nvml = self._nvml
        value = getattr(exc, "value", None)
        nodes = _device_nodes(self._dev_root)
        no_nodes = f"no {self._dev_shown}/nvidia* device nodes"
        if value == nvml.NVML_ERROR_LIBRARY_NOT_FOUND:
            reason = "NVML library not found (libnvidia-ml.so.1)"
            return reason if nodes else f"{reason}; {no_nodes}"
        if value == nvml.NVML_ERROR_DRIVER_NOT_LOADED:
            reason = "NVIDIA driver not loaded"
            return reason if nodes else f"{reason}; {no_nodes}"
        if value == nvml.NVML_ERROR_NO_PERMISSION:
            return f"no permission to use the NVIDIA driver (check {self._dev_shown}/nvidia*)"
        if value == nvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH:
            return "NVML/driver version mismatch (reboot after a driver update?)"
        return f"NVML: {exc}"

    @property
    def reason(self) -> str | None:
        """Why no NVIDIA GPU is shown, or None."""
        return self._reason

    # -- reading ---------------------------------------------------------------------------

    def _call(self, fn: Callable[..., T], *args: Any) -> tuple[T | None, Any]:
        try:
            return fn(*args), None
        except self._nvml.NVMLError as exc:
            if getattr(exc, "value", None) in (
                self._nvml.NVML_ERROR_GPU_IS_LOST,
                self._nvml.NVML_ERROR_UNINITIALIZED,
            ):
                self._ready = False  # re-initialise on the next read
                self._retry_at = 0.0
                self._lost = exc
            return None, exc

    def _is_not_supported(self, exc: Any) -> bool:
        return getattr(exc, "value", None) == self._nvml.NVML_ERROR_NOT_SUPPORTED

    def read(self, memory: MemoryInfo | None) -> list[GpuInfo]:
        """All NVIDIA GPUs now; an empty list with `reason` set when NVML is unusable."""
        if not self._init():
            return []
        nvml = self._nvml
        count, err = self._call(nvml.nvmlDeviceGetCount)
        if err is not None or not count:
            self._reason = f"NVML: {err}" if err is not None else "NVML found no NVIDIA GPU"
            return []
        self._reason = None
        return [self._read_device(index, memory) for index in range(count)]

    def _read_device(self, index: int, memory: MemoryInfo | None) -> GpuInfo:
        nvml = self._nvml
        handle, err = self._call(nvml.nvmlDeviceGetHandleByIndex, index)
        if err is not None:
            return GpuInfo(index=index, vendor="nvidia", name="NVIDIA GPU", error=f"NVML: {err}")
        self._lost = None
        name, _ = self._call(nvml.nvmlDeviceGetName, handle)
        if isinstance(name, bytes):
            name = name.decode(errors="replace")
        util, _ = self._call(nvml.nvmlDeviceGetUtilizationRates, handle)
        temp, _ = self._call(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
        power_mw, _ = self._call(nvml.nvmlDeviceGetPowerUsage, handle)
        limit_mw, _ = self._call(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        processes = self._processes(handle)
        mem, mem_err = self._memory_info(handle)

        unified = False
        source = "nvml"
        total = used = None
        error = None
        if mem is not None:
            total, used = int(mem.total), int(mem.used)
        elif self._is_not_supported(mem_err):
            # GB10: the GPU's memory is the system's memory.
            unified = True
            source = "system+processes"
            total = memory.total_bytes if memory else None
            used = sum(p.used_bytes or 0 for p in processes)
        elif mem_err is not None:
            error = f"memory: {mem_err}"
        if self._lost is not None:  # fell off the bus, driver reset: say so, retry each read
            error = f"NVML: {self._lost} (retrying)"
        return GpuInfo(
            index=index,
            vendor="nvidia",
            name=str(name) if name else "NVIDIA GPU",
            utilization_percent=float(util.gpu) if util is not None else None,
            memory_total_bytes=total,
            memory_used_bytes=used,
            memory_source=source,
            temperature_c=float(temp) if temp is not None else None,
            power_w=power_mw / 1000.0 if power_mw is not None else None,
            power_limit_w=limit_mw / 1000.0 if limit_mw is not None else None,
            unified=unified,
            processes=processes,
            error=error,
        )

    def _memory_info(self, handle: Any) -> tuple[Any, Any]:
        """Device memory, v2 first: its `used` leaves out the driver's reserved memory, as
        nvidia-smi does; old drivers without v2 get the v1 answer."""
        nvml = self._nvml
        version = getattr(nvml, "nvmlMemory_v2", None)
        if version is not None:
            mem, err = self._call(nvml.nvmlDeviceGetMemoryInfo, handle, version)
            fallback = {
                getattr(nvml, "NVML_ERROR_FUNCTION_NOT_FOUND", 13),
                getattr(nvml, "NVML_ERROR_ARGUMENT_VERSION_MISMATCH", 25),
            }
            if err is None or getattr(err, "value", None) not in fallback:
                return mem, err
        return self._call(nvml.nvmlDeviceGetMemoryInfo, handle)

    def _processes(self, handle: Any) -> tuple[GpuProcess, ...]:
        nvml = self._nvml
        by_pid: dict[int, int | None] = {}
        for getter in (
            nvml.nvmlDeviceGetComputeRunningProcesses,
            nvml.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            procs, _ = self._call(getter, handle)
            for proc in procs or ():
                used = proc.usedGpuMemory
                previous = by_pid.get(proc.pid)
                if previous is None or (used is not None and used > previous):
                    by_pid[int(proc.pid)] = int(used) if used is not None else None
        return tuple(
            GpuProcess(pid=pid, name=process_name(pid, self._proc_root), used_bytes=used)
            for pid, used in sorted(by_pid.items(), key=lambda kv: -(kv[1] or 0))
        )

    def close(self) -> None:
        if self._ready and self._nvml is not None:
            with contextlib.suppress(self._nvml.NVMLError):
                self._nvml.nvmlShutdown()
            self._ready = False


NVML_DIRS = (
    "usr/local/glibc/usr/lib",  # Talos' nvidia-container-toolkit extension (glibc)
    "usr/local/lib",
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/lib64",
    "usr/lib",
    "lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "lib64",
    "lib",
)
"""Where the NVIDIA driver's libnvidia-ml.so.1 lives on a node, under its root."""


def find_nvml(host_root: Path) -> Path | None:
    """The node's libnvidia-ml.so.1 under `host_root` (the usual library folders)."""
    for folder in NVML_DIRS:
        path = host_root / folder / "libnvidia-ml.so.1"
        if path.is_file():
            return path
    return None


def preload_nvml(host_root: Path) -> str | None:
    """Load the node's NVML library when this container has none of its own, so NVML's own
    dlopen("libnvidia-ml.so.1") finds it loaded; the reason when that fails, else None."""
    import ctypes
    import ctypes.util

    if ctypes.util.find_library("nvidia-ml"):
        return None  # the container has one: NVML uses it
    path = find_nvml(host_root)
    if path is None:
        return f"no libnvidia-ml.so.1 under {host_root} ({', '.join(NVML_DIRS[:3])}, …)"
    try:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    except OSError as exc:
        return f"NVML failed to load from the node: {exc}"
    return None
