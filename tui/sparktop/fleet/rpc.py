"""Split serving across the fleet: RPC workers on other hosts are started and stopped over
SSH. The worker itself (argv, remote scripts) is `sparktop.engines.llama_rpc`; this
module only hands the supervisor a way to run those scripts on a configured host."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sparktop.engines.llama_rpc import RemoteResult, RemoteRunner
from sparktop.fleet.ssh import run_ssh


def ssh_runner(hosts: Sequence[Any]) -> RemoteRunner:
    """A RemoteRunner over `sparktop.fleet.ssh` for the configured `hosts`."""

    def run(host_name: str, argv: Sequence[str], timeout: float) -> Any:
        host = next((h for h in hosts if getattr(h, "name", None) == host_name), None)
        if host is None:
            return RemoteResult(None, "", "", f"host {host_name} is not configured (hosts:)")
        if getattr(host, "ssh", None) is None:
            return RemoteResult(None, "", "", f"host {host_name} has no ssh destination")
        return run_ssh(host, list(argv), timeout)

    return run
