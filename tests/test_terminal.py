"""sparktop in a real terminal (tmux), the way it lives on a box: SSH drops, panes die."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    _alive,
    free_port,
    machine_env,
    run_cli,
    tiny_entry,
    wait_for,
    write_user_catalog,
)

from sparktop.servers.http import get
from sparktop.ui.charset import encodable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed"),
]


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout


def test_sighup_exits_cleanly_and_served_models_keep_serving(llama_server, tiny_gguf,
                                                             isolated_dirs):  # fmt: skip
    port = free_port()
    write_user_catalog(isolated_dirs["config"], [tiny_entry("tiny", tiny_gguf, port)])
    assert run_cli("serve", "tiny", timeout=90).returncode == 0
    server_pid = json.loads(run_cli("status", "--json").stdout)["servers"][0]["pid"]
    session = f"sparktop-hup-{os.getpid()}"
    env_args = []
    for key in ("SPARKTOP_CONFIG_DIR", "SPARKTOP_STATE_DIR", "SPARKTOP_DATA_DIR"):
        env_args += ["-e", f"{key}={os.environ[key]}"]
    rc_file = isolated_dirs["state"] / "rc"
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "30", *env_args,
         f"sh -c '{sys.executable} -m sparktop; echo $? > {rc_file}; sleep 30'")  # fmt: skip
    try:
        wait_for(lambda: "tiny" in tmux("capture-pane", "-p", "-t", session), timeout=20)
        shell = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        app_pid = int(children[0])
        os.kill(app_pid, 1)  # SIGHUP, as when the SSH connection drops
        wait_for(lambda: rc_file.exists() and rc_file.read_text().strip(), timeout=10)
        assert rc_file.read_text().strip() == "0", "sparktop exits cleanly on SIGHUP"
    finally:
        tmux("kill-session", "-t", session)
    time.sleep(0.5)
    assert _alive(server_pid), "the served model must survive sparktop's hang-up"
    assert get(f"http://127.0.0.1:{port}/health", timeout=5).status == 200
    server = json.loads(run_cli("status", "--json").stdout)["servers"][0]
    assert server["managed"] is True and server["pid"] == server_pid  # adopted again
    assert run_cli("stop", "tiny", timeout=60).returncode == 0


# -- terminals: the Linux console, 256 colours, NO_COLOR, small panes, resize storms ---------

SGR = re.compile(r"\x1b\[([0-9;:]*)m")


class Pane:
    """sparktop alone in a tmux session, read back as a person would see it."""

    def __init__(self, name: str, size: tuple[int, int], env: dict[str, str], rc_file: Path):
        self.name = f"sparktop-{name}-{os.getpid()}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        command = (
            # a fresh login shell's environment: no stale COLUMNS/LINES, no COLORTERM
            f"env -u COLORTERM -u NO_COLOR -u COLUMNS -u LINES {exports} "
            f"{shlex.quote(sys.executable)} -m sparktop; "
            f"echo $? > {shlex.quote(str(rc_file))}; sleep 60"
        )
        self.rc_file = rc_file
        tmux("kill-session", "-t", self.name)
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", str(size[0]), "-y", str(size[1]),
             "sh", "-c", command],
            check=True,
        )  # fmt: skip

    def screen(self, escapes: bool = False) -> str:
        return tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.name)

    def wait_for(self, *needles: str, timeout: float = 20.0) -> str:
        try:
            wait_for(lambda: all(n in self.screen() for n in needles), timeout=timeout)
        except AssertionError:
            missing = [n for n in needles if n not in self.screen()]
            raise AssertionError(f"{missing} not on screen:\n{self.screen()}") from None
        return self.screen()

    def resize(self, columns: int, rows: int) -> None:
        tmux("resize-window", "-t", self.name, "-x", str(columns), "-y", str(rows))

    def quit(self) -> int:
        tmux("send-keys", "-t", self.name, "q")
        wait_for(lambda: self.rc_file.exists() and self.rc_file.read_text().strip(), timeout=10)
        return int(self.rc_file.read_text())

    def close(self) -> None:
        tmux("kill-session", "-t", self.name)


@pytest.fixture
def pane(isolated_dirs):
    opened: list[Pane] = []

    def open_pane(size: tuple[int, int], term: str, machine: str = "spark", **extra: str) -> Pane:
        env = {
            key: value
            for key, value in machine_env(machine).items()
            if key.startswith("SPARKTOP_") or key == "PYTHONPATH"
        }
        env.update(TERM=term, **extra)
        opened.append(Pane(f"{len(opened)}", size, env, isolated_dirs["state"] / "rc"))
        return opened[-1]

    yield open_pane
    for each in opened:
        each.close()


def colour_codes(screen: str) -> set[str]:
    """Every SGR colour parameter list on the screen (attributes like bold left out)."""
    found = set()
    for params in SGR.findall(screen):
        parts = params.replace(":", ";").split(";")
        if any(p in ("38", "48") or (p.isdigit() and (30 <= int(p) <= 49 or 90 <= int(p) <= 107)
                                     and p not in ("39", "49")) for p in parts):  # fmt: skip
            found.add(params)
    return found


def test_linux_console_at_80x24_uses_16_colours_and_reads_well(pane):
    """A Talos debug shell / KVM console: TERM=linux, 16 colours, 80x24."""
    console = pane((80, 24), "linux")
    text = console.wait_for("Used ", "NVIDIA GB10", "q Quit", "Memory · unified CPU+GPU")
    assert "Memory · unified CPU+GPU" in text and "drop_caches" in text
    # drawn with the console font's characters (CP437): ASCII borders, no eighth blocks
    assert "+- Memory" in text and "╭" not in text
    missing = sorted({char for char in text if not char.isascii() and not encodable(char)})
    assert not missing, f"not in the console font: {missing}"
    codes = colour_codes(console.screen(escapes=True))
    assert codes, "the console theme still has colour"
    extended = {c for c in codes if "38;5" in c or "48;5" in c or "38;2" in c or "48;2" in c}
    assert not extended, f"256/true-colour codes on a 16-colour console: {sorted(extended)[:5]}"
    assert console.quit() == 0


def test_256_colours_at_200x60_show_every_panel_side_by_side(pane):
    big = pane((200, 60), "xterm-256color")
    text = big.wait_for("Used ", "NVIDIA GB10", "Servers", "used % history")
    rows = text.splitlines()
    assert len(rows) == 60 and max(len(r) for r in rows) <= 200
    top = next(r for r in rows if "Memory" in r)
    assert "GPUs" in top, "memory and GPUs sit side by side on a wide screen"
    assert any("38;5;" in c or "38;2;" in c for c in colour_codes(big.screen(escapes=True)))
    assert big.quit() == 0


def is_grey(params: str) -> bool:
    """A colour parameter list that names a shade of grey (or the default colour)."""
    parts = [int(p) for p in params.replace(":", ";").split(";") if p.isdigit()]
    i = 0
    while i < len(parts):
        p = parts[i]
        if p in (38, 48) and parts[i + 1 : i + 2] == [5]:
            index = parts[i + 2]
            if not (index in (0, 7, 8, 15, 16, 231) or 232 <= index <= 255):
                return False
            i += 3
        elif p in (38, 48) and parts[i + 1 : i + 2] == [2]:
            r, g, b = parts[i + 2 : i + 5]
            if not r == g == b:
                return False
            i += 5
        elif 30 <= p <= 37 or 40 <= p <= 47 or 90 <= p <= 97 or 100 <= p <= 107:
            if p % 10 not in (0, 7):
                return False
            i += 1
        else:
            i += 1
    return True


def test_no_color_shows_no_hues(pane):
    """NO_COLOR: no hue anywhere; shades of grey keep the cursor row and bars readable."""
    plain = pane((100, 30), "xterm-256color", NO_COLOR="1")
    plain.wait_for("Used ", "NVIDIA GB10")
    time.sleep(0.5)
    hued = {c for c in colour_codes(plain.screen(escapes=True)) if not is_grey(c)}
    assert not hued, sorted(hued)[:5]
    assert plain.quit() == 0


def test_small_panes_get_the_summary_and_a_resize_storm_is_survived(pane):
    view = pane((80, 24), "tmux-256color")
    view.wait_for("Used ", "NVIDIA GB10")
    sizes = [(20, 5), (200, 60), (50, 12), (120, 40), (64, 20), (30, 8), (160, 48), (80, 24)]
    for _ in range(4):
        for columns, rows in sizes:
            view.resize(columns, rows)
            time.sleep(0.03)
    view.resize(60, 15)  # a phone's SSH client, a split pane: one line per fact
    text = view.wait_for("Mem ", "GPU")
    assert "╭" not in text, "no boxed panels below 64x20"
    assert all(len(row) <= 60 for row in text.splitlines())
    view.resize(100, 30)
    text = view.wait_for("Memory", "GPUs")
    assert "Used " in text
    assert view.quit() == 0
