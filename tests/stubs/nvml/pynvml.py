"""A stand-in for `pynvml` that answers like a chosen machine (GB10, H100, no driver).

It is the real nvidia-ml-py module with the device entry points replaced: constants and
the NVMLError class hierarchy are the real ones, so `except pynvml.NVMLError_NotSupported`
and `.value` checks behave exactly as with a driver. The machine is described by a JSON
scenario (see tests/fixtures/*/nvml.json), named by $SPARKTOP_FAKE_NVML for processes
that import this file through PYTHONPATH, or passed to `configure()` in-process.

Scenario keys: library (false = libnvidia-ml.so.1 missing), driver (false = driver not
loaded), init_error, devices[]: name, utilization, temperature, power_mw, power_limit_mw,
memory{total, used} , compute_processes / graphics_processes [{pid, used|null}],
errors{function name: NVML error name}, fail_after_calls{function name: N} (raise
GPU_IS_LOST after N successful calls, to model a GPU lost mid-run).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
from types import SimpleNamespace
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_real() -> Any:
    if "_pynvml_real" in sys.modules:
        return sys.modules["_pynvml_real"]
    loaded = sys.modules.get("pynvml")
    if loaded is not None and hasattr(loaded, "nvmlLib"):  # the real module, already imported
        sys.modules["_pynvml_real"] = loaded
        return loaded
    search = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("pynvml", search)
    if spec is None or spec.loader is None:
        raise ImportError("the real nvidia-ml-py must be installed beside the stub")
    module = importlib.util.module_from_spec(spec)
    # The real module looks itself up as sys.modules["pynvml"] while it loads.
    sys.modules["pynvml"] = module
    try:
        spec.loader.exec_module(module)
    finally:
        if loaded is None:
            del sys.modules["pynvml"]
        else:
            sys.modules["pynvml"] = loaded
    sys.modules["_pynvml_real"] = module
    return module


_real = _load_real()
for _name in dir(_real):
    if _name.startswith(("NVML_", "NVMLError")):
        globals()[_name] = getattr(_real, _name)
NVMLError = _real.NVMLError
nvmlMemory_v2 = _real.nvmlMemory_v2

_scenario: dict[str, Any] | None = None
_initialised = 0
calls: dict[str, int] = {}


def configure(scenario: dict[str, Any] | None) -> None:
    """Use this scenario from now on (in-process tests)."""
    global _scenario, _initialised
    _scenario = scenario
    _initialised = 0
    calls.clear()


def _current() -> dict[str, Any]:
    if _scenario is not None:
        return _scenario
    path = os.environ.get("SPARKTOP_FAKE_NVML")
    if not path:
        return {"library": False}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _raise(name: str) -> None:
    raise NVMLError(getattr(_real, f"NVML_ERROR_{name}"))


def _check(function: str, device: dict[str, Any] | None = None) -> None:
    calls[function] = calls.get(function, 0) + 1
    if not _initialised and function != "nvmlInit":
        _raise("UNINITIALIZED")
    if device is None:
        return
    limit = device.get("fail_after_calls", {}).get(function)
    if limit is not None and calls[function] > limit:
        _raise("GPU_IS_LOST")
    error = device.get("errors", {}).get(function)
    if error:
        _raise(error)


def nvmlInit() -> None:
    global _initialised
    calls["nvmlInit"] = calls.get("nvmlInit", 0) + 1
    scenario = _current()
    if not scenario.get("library", True):
        _raise("LIBRARY_NOT_FOUND")
    if not scenario.get("driver", True):
        _raise("DRIVER_NOT_LOADED")
    if scenario.get("init_error"):
        _raise(scenario["init_error"])
    _initialised += 1


nvmlInitWithFlags = lambda flags=0: nvmlInit()  # noqa: E731


def nvmlShutdown() -> None:
    global _initialised
    _check("nvmlShutdown")
    _initialised -= 1


def _devices() -> list[dict[str, Any]]:
    return _current().get("devices", [])


def nvmlDeviceGetCount() -> int:
    _check("nvmlDeviceGetCount")
    return len(_devices())


def nvmlDeviceGetHandleByIndex(index: int) -> Any:
    _check("nvmlDeviceGetHandleByIndex")
    devices = _devices()
    if not 0 <= index < len(devices):
        _raise("INVALID_ARGUMENT")
    return SimpleNamespace(index=index)


def _device(handle: Any, function: str) -> dict[str, Any]:
    device = _devices()[handle.index]
    _check(function, device)
    return device


def nvmlDeviceGetName(handle: Any) -> str:
    return _device(handle, "nvmlDeviceGetName")["name"]


def nvmlDeviceGetUtilizationRates(handle: Any) -> Any:
    device = _device(handle, "nvmlDeviceGetUtilizationRates")
    return SimpleNamespace(gpu=device.get("utilization", 0), memory=0)


def nvmlDeviceGetTemperature(handle: Any, sensor: int) -> int:
    device = _device(handle, "nvmlDeviceGetTemperature")
    if sensor != _real.NVML_TEMPERATURE_GPU:
        _raise("INVALID_ARGUMENT")
    return device.get("temperature", 0)


def nvmlDeviceGetPowerUsage(handle: Any) -> int:
    return _device(handle, "nvmlDeviceGetPowerUsage").get("power_mw", 0)


def nvmlDeviceGetEnforcedPowerLimit(handle: Any) -> int:
    return _device(handle, "nvmlDeviceGetEnforcedPowerLimit").get("power_limit_mw", 0)


def nvmlDeviceGetMemoryInfo(handle: Any, version: Any = None) -> Any:
    device = _device(handle, "nvmlDeviceGetMemoryInfo")
    memory = device.get("memory")
    if memory is None:
        _raise("NOT_SUPPORTED")
    return SimpleNamespace(
        total=memory["total"], used=memory["used"], free=memory["total"] - memory["used"]
    )


def _processes(handle: Any, function: str, key: str) -> list[Any]:
    device = _device(handle, function)
    return [
        SimpleNamespace(
            pid=p["pid"],
            usedGpuMemory=p.get("used"),
            gpuInstanceId=0xFFFFFFFF,
            computeInstanceId=0xFFFFFFFF,
        )
        for p in device.get(key, [])
    ]


def nvmlDeviceGetComputeRunningProcesses(handle: Any) -> list[Any]:
    return _processes(handle, "nvmlDeviceGetComputeRunningProcesses", "compute_processes")


def nvmlDeviceGetGraphicsRunningProcesses(handle: Any) -> list[Any]:
    return _processes(handle, "nvmlDeviceGetGraphicsRunningProcesses", "graphics_processes")
