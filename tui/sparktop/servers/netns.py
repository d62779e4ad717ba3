"""Reach a server that listens in another network namespace (a container's, a pod's).

Its socket table says where it listens inside; from sparktop's namespace it is reached
through a published host port (Docker's `docker-proxy` forwarder, read from its command
line), else through the namespace's own address (read from /proc/PID/net/fib_trie, or
if_inet6 for IPv6, never by entering the namespace), else not at all, and the reason says why.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

PUBLISHERS = frozenset({"docker-proxy"})
"""Programs whose command line publishes a container's port on the host."""
ANY = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class Published:
    """One published port: host_ip:host_port forwards to container_ip:container_port."""

    host_ip: str
    host_port: int
    container_ip: str
    container_port: int
    proto: str = "tcp"


@dataclass(frozen=True)
class Reach:
    """Where sparktop connects to a server in another namespace, and how that reads."""

    host: str | None
    """None: it cannot be reached from here (`text` says why)."""
    port: int | None
    text: str


def own_namespace() -> int | None:
    """The inode of sparktop's own network namespace."""
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


def published_from_argv(argv: tuple[str, ...]) -> Published | None:
    """A docker-proxy command line (`docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port
    30000 -container-ip 172.17.0.2 -container-port 8000`), wherever in argv it starts."""
    start = next((i for i, a in enumerate(argv) if Path(a).name in PUBLISHERS), None)
    if start is None:
        return None
    flags: dict[str, str] = {}
    args = list(argv[start + 1 :])
    while args:
        arg = args.pop(0)
        if not arg.startswith("-"):
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        if not eq:
            value = args.pop(0) if args and not args[0].startswith("-") else ""
        flags[name] = value
    try:
        return Published(
            host_ip=flags.get("host-ip", "0.0.0.0"),
            host_port=int(flags["host-port"]),
            container_ip=flags.get("container-ip", ""),
            container_port=int(flags["container-port"]),
            proto=flags.get("proto", "tcp"),
        )
    except (KeyError, ValueError):
        return None


def namespace_addresses(proc: Path, pid: int) -> list[str]:
    """The addresses of pid's network namespace, loopback and link-local left out."""
    out: list[str] = []
    try:
        lines = (proc / str(pid) / "net" / "fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    last = ""
    for line in lines:
        text = line.strip()
        if text.startswith(("|--", "+--")):
            last = text[3:].strip().split("/")[0]
        elif text == "/32 host LOCAL" and last and last not in out:
            out.append(last)
    try:
        inet6 = (proc / str(pid) / "net" / "if_inet6").read_text().splitlines()
    except OSError:
        inet6 = []
    for line in inet6:
        fields = line.split()
        if len(fields) >= 6 and fields[3] == "00" and fields[5] != "lo":  # global scope
            address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
            if address not in out:
                out.append(address)
    return [a for a in out if _usable(a)]


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def routable(address: str, route_file: Path = Path("/proc/self/net/route")) -> bool:
    """True when sparktop's namespace has a route to an IPv4 `address` (IPv6: assumed)."""
    try:
        ip = int(ipaddress.IPv4Address(address))
    except ValueError:
        return True
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return True
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dest = int.from_bytes(bytes.fromhex(fields[1]), "little")
        mask = int.from_bytes(bytes.fromhex(fields[7]), "little")
        if ip & mask == dest & mask:
            return True
    return False


def reach(
    namespace: int,
    listen: tuple[str, int],
    addresses: list[str],
    published: list[Published],
    *,
    where: str = "container",
) -> Reach:
    """How to reach a server listening on `listen` inside network namespace `namespace`.

    `addresses`: that namespace's own addresses; `published`: the host's published ports.
    """
    host, port = listen
    inside = f":{port} in {where}"
    for pub in published:
        if pub.container_port != port or pub.proto != "tcp":
            continue
        if addresses and pub.container_ip and pub.container_ip not in addresses:
            continue
        target = "127.0.0.1" if pub.host_ip in ANY else pub.host_ip
        return Reach(target, pub.host_port, f"{inside} → :{pub.host_port} on host")
    ns = f"in network namespace net:[{namespace}], no published port"
    if host not in ANY and not _usable(host):
        return Reach(None, None, f"{ns}, listens on {host} inside only: not reachable from here")
    candidates = [host] if host not in ANY else addresses
    for address in candidates:
        if routable(address):
            shown = f"[{address}]" if ":" in address else address
            return Reach(address, port, f"{inside} → {shown}:{port} (its own address)")
    if candidates:
        return Reach(None, None, f"{ns}, address {candidates[0]} not routable from here")
    return Reach(None, None, f"{ns}, no address of it readable from here")
