"""One inference server as the views show it: the Snapshot's own dataclasses and health
words (they live in sparktop.snapshot, below every package that fills them in)."""

from sparktop.snapshot import (
    CRASHED,
    ERROR,
    LOADING,
    NOT_RESPONDING,
    READY,
    STARTING,
    ProxyStatus,
    RpcWorkerStatus,
    ServerInfo,
)

__all__ = [
    "CRASHED",
    "ERROR",
    "LOADING",
    "NOT_RESPONDING",
    "READY",
    "STARTING",
    "ProxyStatus",
    "RpcWorkerStatus",
    "ServerInfo",
]
