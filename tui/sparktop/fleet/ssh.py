"""Running sparktop on another host through the user's own OpenSSH client.

Key-based only (BatchMode: ssh never asks for a password or a host-key confirmation), no
local shell anywhere (argv lists), every remote argument quoted with shlex.quote for the
remote shell, and every call bounded in time.
"""

from __future__ import annotations

import math
import shlex
import subprocess
import time
from dataclasses import dataclass

from sparktop.fleet.hosts import Host

SSH = "ssh"


@dataclass(frozen=True)
class SshResult:
    """What one remote command did. `reason` is set when it could not run or timed out."""

    returncode: int | None
    stdout: str
    stderr: str
    elapsed_s: float
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None and self.returncode == 0


def remote_command(argv: list[str] | tuple[str, ...]) -> str:
    """The one string ssh hands to the remote shell: each argument quoted on its own."""
    return " ".join(shlex.quote(arg) for arg in argv)


def ssh_argv(
    host: Host, remote_argv: list[str] | tuple[str, ...], connect_timeout: float
) -> list[str]:
    """`ssh -o BatchMode=yes … TARGET -- 'quoted' 'remote' 'argv'` for `host`."""
    if host.ssh is None:
        raise ValueError(f"host {host.name} has no ssh destination")
    argv = [
        SSH,
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={max(1, math.ceil(connect_timeout))}",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ServerAliveInterval=5",
        "-o",
        "ServerAliveCountMax=2",
    ]
    if host.port is not None:
        argv += ["-p", str(host.port)]
    if host.identity is not None:
        argv += ["-i", host.identity, "-o", "IdentitiesOnly=yes"]
    for key, value in host.options:
        argv += ["-o", f"{key}={value}"]
    argv += [host.ssh, "--", remote_command(remote_argv)]
    return argv


def failure_reason(returncode: int | None, stderr: str) -> str:
    """One line saying why: ssh's own last error line, or the remote command's."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if lines:
        return lines[-1][:300]
    if returncode == 255:
        return "ssh failed (exit 255) without saying why"
    return f"remote command exited with {returncode}"


def run_ssh(
    host: Host,
    remote_argv: list[str] | tuple[str, ...],
    timeout: float,
    *,
    capture: bool = True,
) -> SshResult:
    """Run `remote_argv` on `host`; never longer than `timeout` seconds (ssh is killed then).

    capture=False lets the remote stdout stream straight to this process's stdout (the CLI's
    `--host`; stderr is still captured, for the reason); stdin is never passed (the TUI's
    terminal stays the TUI's).
    """
    argv = ssh_argv(host, remote_argv, connect_timeout=min(timeout, host.timeout))
    out = subprocess.PIPE if capture else None
    started = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            start_new_session=True,  # no controlling terminal: ssh cannot prompt on it
        )
    except FileNotFoundError:
        return SshResult(None, "", "", 0.0, "ssh client not found (install openssh-client)")
    except subprocess.TimeoutExpired as exc:
        elapsed = time.monotonic() - started
        stdout = exc.stdout
        if isinstance(stdout, bytes):
            stdout = stdout.decode(errors="replace")
        return SshResult(None, stdout or "", "", elapsed, f"timed out after {timeout:g} s")
    elapsed = time.monotonic() - started
    stdout, stderr = proc.stdout or "", proc.stderr or ""
    reason = None
    if proc.returncode == 255:
        reason = failure_reason(255, stderr)
    return SshResult(proc.returncode, stdout, stderr, elapsed, reason)
