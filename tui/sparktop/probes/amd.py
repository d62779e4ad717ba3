"""AMD GPUs through amdgpu's sysfs files (no ROCm library needed).

On Strix Halo (Ryzen AI Max+ 395, Radeon 8060S) the BIOS VRAM carve-out is often small
(512 MiB) and the GPU really allocates from GTT, i.e. system memory. Then GTT is shown as
the GPU's memory and labelled unified.
"""

from __future__ import annotations

from pathlib import Path

from sparktop.snapshot import GpuInfo

AMD_VENDOR = "0x1002"

# PCI device ids of the APUs this tool is for; anything else falls back to product_name.
KNOWN_DEVICES = {
    "0x1586": "AMD Radeon 8060S (Strix Halo)",
    "0x150e": "AMD Radeon 890M (Strix Point)",
}


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _card_index(path: Path) -> int:
    digits = path.name[4:]
    return int(digits) if digits.isdigit() else 0


def amd_cards(sys_root: Path) -> list[Path]:
    """`/sys/class/drm/cardN` entries whose device is an AMD GPU (connectors excluded)."""
    drm = sys_root / "class/drm"
    try:
        entries = list(drm.iterdir())
    except OSError:
        return []
    cards = [
        p
        for p in entries
        if p.name.startswith("card")
        and p.name[4:].isdigit()
        and _read(p / "device/vendor") == AMD_VENDOR
    ]
    return sorted(cards, key=_card_index)


def _hwmon(device: Path) -> tuple[float | None, float | None]:
    """Edge temperature in °C and average power in W from the card's hwmon directory."""
    try:
        hwmons = sorted((device / "hwmon").iterdir())
    except OSError:
        return None, None
    for hwmon in hwmons:
        temp = _read_int(hwmon / "temp1_input")
        power = _read_int(hwmon / "power1_average")
        if power is None:
            power = _read_int(hwmon / "power1_input")
        if temp is not None or power is not None:
            return (
                temp / 1000.0 if temp is not None else None,
                power / 1_000_000.0 if power is not None else None,
            )
    return None, None


def read_card(card: Path, index: int) -> GpuInfo:
    device = card / "device"
    vram_total = _read_int(device / "mem_info_vram_total")
    vram_used = _read_int(device / "mem_info_vram_used")
    gtt_total = _read_int(device / "mem_info_gtt_total")
    gtt_used = _read_int(device / "mem_info_gtt_used")
    busy = _read_int(device / "gpu_busy_percent")
    temp, power = _hwmon(device)
    device_id = (_read(device / "device") or "").lower()
    name = _read(device / "product_name") or KNOWN_DEVICES.get(device_id)
    name = name or f"AMD GPU {device_id or card.name}"

    # An APU whose carve-out is smaller than GTT really allocates from system memory.
    unified = gtt_total is not None and (vram_total is None or gtt_total > vram_total)
    if unified:
        total, used, source = gtt_total, gtt_used, "gtt"
    else:
        total, used, source = vram_total, vram_used, "vram"
    error = None
    if total is None:
        error = f"memory: amdgpu exposes no mem_info_* files for {card.name}"
    return GpuInfo(
        index=index,
        vendor="amd",
        name=name,
        utilization_percent=float(busy) if busy is not None else None,
        memory_total_bytes=total,
        memory_used_bytes=used,
        memory_source=source,
        temperature_c=temp,
        power_w=power,
        unified=unified,
        error=error,
    )


class AmdProbe:
    def __init__(self, sys_root: Path = Path("/sys"), sys_shown: str | None = None) -> None:
        self._sys_root = sys_root
        self._sys_shown = sys_shown or str(sys_root)
        self.reason: str | None = None

    def read(self, first_index: int = 0) -> list[GpuInfo]:
        cards = amd_cards(self._sys_root)
        if not cards:
            self.reason = f"no amdgpu device under {self._sys_shown}/class/drm"
            return []
        self.reason = None
        return [read_card(card, first_index + i) for i, card in enumerate(cards)]
