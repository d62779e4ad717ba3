"""Addresses as URLs: where a server bound to a host and port is reached."""

from __future__ import annotations


def host_for_url(host: str) -> str:
    """Bracket IPv6 literals; map wildcard binds to loopback (that is where to reach them)."""
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def base_url(host: str, port: int) -> str:
    return f"http://{host_for_url(host)}:{port}"
