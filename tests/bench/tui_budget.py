#!/usr/bin/env python3
"""Cost of the full-screen view: run sparktop in tmux at a 1 s refresh for N seconds,
with btop and glances beside it in the same run at the same refresh, and print each one's
CPU (% of one core), peak RSS and, for sparktop, the time to its first frame.

    python tests/bench/tui_budget.py                 # 60 s, 80x24, this machine
    python tests/bench/tui_budget.py --machine spark --seconds 30 --size 160x48
    python tests/bench/tui_budget.py --servers 4     # with 4 live llama-servers to watch

Targets (issue #2): CPU no higher than btop's, RSS <= 60 MiB, first frame <= 0.6 s.
Issue #6 asks the same with all panels and 4 live servers, and a first frame <= 0.5 s.
"first frame" is the time from starting the process until the pane shows the memory
panel filled with data (not just an empty window).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def start(session: str, command: str, size: tuple[int, int], env: dict[str, str]) -> int:
    """Start `command` alone in a detached tmux session; return its PID."""
    tmux("kill-session", "-t", session)
    exports = " ".join(f"{k}={v!s}" for k, v in env.items())
    full = f"exec env {exports} {command}" if exports else f"exec {command}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", str(size[0]), "-y", str(size[1]), full],
        check=True,
    )
    return int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())


def end(session: str, pid: int | None, timeout: float = 5.0) -> bool:
    """Kill the tmux session (the pty closes, as when SSH drops) and wait for `pid` to
    leave by itself; True if it did. One that stays is killed, so it cannot skew the next
    figures, and reported."""
    tmux("kill-session", "-t", session)
    if pid is None:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.02)
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return True
    return False


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (all threads)


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def wait_for_text(session: str, needle: str, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if needle in tmux("capture-pane", "-p", "-t", session):
            return time.monotonic()
        time.sleep(0.005)
    return None


def machine_env(name: str | None) -> dict[str, str]:
    if not name:
        return {}
    root = TESTS / "fixtures" / name
    return {
        "PYTHONPATH": str(TESTS / "stubs" / "nvml"),
        "SPARKTOP_FAKE_NVML": str(root / "nvml.json"),
        "SPARKTOP_PROC_ROOT": str(root / "proc"),
        "SPARKTOP_SYS_ROOT": str(root / "sys"),
        "SPARKTOP_DEV_ROOT": str(root / "dev"),
        "SPARKTOP_ROOT": str(root),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--size", default="80x24")
    parser.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds after start before the measured window opens",
    )
    parser.add_argument(
        "--machine",
        choices=["spark", "strix", "nogpu"],
        default=None,
        help="fixture machine to show instead of this one",
    )
    parser.add_argument(
        "--starts",
        type=int,
        default=0,
        help="only measure the first frame, over this many fresh starts (median, min, max)",
    )
    beside = Path(sys.executable).with_name("sparktop")  # the venv's own, when run from it
    parser.add_argument(
        "--sparktop", default=str(beside) if beside.exists() else shutil.which("sparktop")
    )
    parser.add_argument(
        "--servers",
        type=int,
        default=0,
        help="start this many real llama-servers (tiny model, --metrics) for sparktop to watch",
    )
    args = parser.parse_args()
    if not args.sparktop:
        print("sparktop not found: pass --sparktop PATH", file=sys.stderr)
        return 2
    if not shutil.which("tmux"):
        print("tmux is needed for this benchmark", file=sys.stderr)
        return 2
    size = tuple(int(x) for x in args.size.split("x"))
    scratch = Path(tempfile.mkdtemp(prefix="sparktop-bench-"))
    env = {
        "TERM": "xterm-256color",
        "SPARKTOP_STATE_DIR": str(scratch / "state"),
        "SPARKTOP_CONFIG_DIR": str(scratch / "config"),
        **machine_env(args.machine),
    }
    # btop reads its refresh from its config file; give it the same interval.
    (scratch / "btop").mkdir()
    (scratch / "btop" / "btop.conf").write_text(f"update_ms = {int(args.interval * 1000)}\n")

    servers = start_servers(args.servers, scratch)
    try:
        return measure(args, size, scratch, env)
    finally:
        for proc in servers:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


def start_servers(count: int, scratch: Path) -> list[subprocess.Popen]:
    """`count` real llama-servers on loopback, each in its own process group."""
    if not count:
        return []
    from llama_common import free_port, start_llama_server
    from tinymodel import write_tiny_llama

    model = write_tiny_llama(scratch / "models" / "tiny-f32.gguf")
    return [
        start_llama_server(model, f"bench-{i}", free_port(), "--metrics", "-c", "512")
        for i in range(count)
    ]


def measure(args: argparse.Namespace, size: tuple[int, ...], scratch: Path, env: dict) -> int:
    if args.starts:
        times = []
        stayed = 0
        for _ in range(args.starts):
            t0 = time.monotonic()
            pid = start(
                "bench-sparktop", f"{args.sparktop} --interval {args.interval:g}", size, env
            )
            seen = wait_for_text("bench-sparktop", "Used ", timeout=20)
            stayed += not end("bench-sparktop", pid)
            if seen is not None:
                times.append(seen - t0)
            time.sleep(0.5)
        times.sort()
        median = times[len(times) // 2] if times else float("nan")
        print(
            f"first frame with data over {len(times)} starts ({args.size}, "
            f"machine={args.machine or 'this one'}): median {median:.3f} s, "
            f"min {times[0]:.3f} s, max {times[-1]:.3f} s; "
            f"{stayed} of {args.starts} still running 5 s after their pane closed"
        )
        return 0

    runs: dict[str, int] = {}
    t0 = time.monotonic()
    runs["sparktop"] = start(
        "bench-sparktop", f"{args.sparktop} --interval {args.interval:g}", size, env
    )
    first = wait_for_text("bench-sparktop", "Used ", timeout=20)
    first_frame = (first - t0) if first else None
    if shutil.which("btop"):
        runs["btop"] = start(
            "bench-btop", "btop", size, {"XDG_CONFIG_HOME": str(scratch), "TERM": "xterm-256color"}
        )
    if shutil.which("glances"):
        runs["glances"] = start(
            "bench-glances", f"glances -t {args.interval:g}", size, {"TERM": "xterm-256color"}
        )
    time.sleep(args.warmup)  # let every tool finish starting before the window opens
    before = {name: cpu_ticks(pid) for name, pid in runs.items()}
    window_start = time.monotonic()
    time.sleep(args.seconds)
    elapsed = time.monotonic() - window_start
    after = {name: cpu_ticks(pid) for name, pid in runs.items()}
    rss = {name: status_kib(pid, "VmHWM") / 1024 for name, pid in runs.items()}
    stayed = not end("bench-sparktop", runs["sparktop"])
    for session in ("bench-btop", "bench-glances"):
        tmux("kill-session", "-t", session)

    print(
        f"window {elapsed:.1f} s at {args.interval:g} s refresh, {args.size}, "
        f"machine={args.machine or 'this one'}, {args.servers} live servers, "
        f"{os.cpu_count()} cores"
    )
    print(f"{'tool':<10} {'CPU % of a core':>16} {'peak RSS MiB':>13}")
    for name in runs:
        cpu = 100.0 * (after[name] - before[name]) / CLK_TCK / elapsed
        print(f"{name:<10} {cpu:>16.2f} {rss[name]:>13.1f}")
    shown = f"{first_frame:.3f} s" if first_frame is not None else "never (20 s timeout)"
    print(f"sparktop first frame with data: {shown}")
    print(f"sparktop left by itself when its pane closed: {'no (killed)' if stayed else 'yes'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
