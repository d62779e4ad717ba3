"""A loopback fake of the Hugging Face Hub that the real `huggingface_hub` client downloads from.

Written against huggingface_hub 2.4.0 (plain HTTP path; with ``xet`` on, LFS files are offered
with Xet headers, whose transfer cannot run here). Point the client at it
with ``HF_ENDPOINT=hub.endpoint`` *before* importing huggingface_hub, or in-process with
:func:`point_client_at`, which also patches the constants the client froze at import time.

Endpoints served (repo ids with one or two segments, ``models``/``datasets``/``spaces``)::

    GET  /api/models/{repo}[/revision/{rev}][?blobs=true]   model_info / repo_info
    GET  /api/models/{repo}/tree/{rev}[/{path}]?recursive=  list_repo_tree (Link-header paging)
    POST /api/models/{repo}/paths-info/{rev}                 get_paths_info (form or JSON body)
    HEAD|GET /{repo}/resolve/{rev}/{path}                    files, Range -> 206 + Content-Range
    HEAD|GET /_cdn/{sha256}                                  LFS bytes when ``cdn_redirect`` is on
    GET  /api/whoami-v2, /api/agent-harnesses                token check, empty agent registry
    GET  /api/models/{repo}/xet-read-token/{rev}             Xet token (no CAS here: see ``xet``)
    GET  /_stats                                             first body byte time, bytes sent

CLI: ``python tests/fake_hub.py --port N --repo unsloth/Tiny-GGUF [--size-mb M] [--throttle B]``
serves an Unsloth-like repo until killed and prints the endpoint on the first stdout line.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

BLOCK = 1 << 20
"""Generated content is produced in blocks of this size, each seeded by (seed, block index)."""
CHUNK = 256 * 1024
LFS_PATTERNS = ("*.gguf", "*.safetensors", "*.bin", "*.pt", "*.pth", "*.onnx", "*.npz", "*.h5")
LFS_MIN_SIZE = 10 * 1024 * 1024
"""Files at least this big are LFS whatever their name (the Hub refuses larger plain git blobs)."""
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_FLIP = bytes(b ^ 0xFF for b in range(256))
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
FAKE_DATE = "2025-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class Generated:
    """Deterministic pseudo-random content of `size` bytes, optionally starting with `prefix`."""

    size: int
    prefix: bytes = b""
    seed: str | None = None
    """Defaults to the file's path in the repo."""


@lru_cache(maxsize=32)
def _block(seed: str, index: int) -> bytes:
    return random.Random(f"{seed}#{index}").randbytes(BLOCK)


def generated_bytes(seed: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of the pseudo-random stream seeded by `seed` (a repo path by default)."""
    out = bytearray()
    pos = start
    while pos < end:
        index, offset = divmod(pos, BLOCK)
        take = min(BLOCK - offset, end - pos)
        out += _block(seed, index)[offset : offset + take]
        pos += take
    return bytes(out)


def git_blob_sha1(data: bytes) -> str:
    """Git's object id of a blob: sha1 of ``b"blob {len}\\0" + data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file git stores in place of an LFS file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


class HubFile:
    """One file of one revision: its bytes (stored or generated) and its Hub metadata."""

    def __init__(self, path: str, content: bytes | int | Generated, lfs: bool | None = None):
        self.path = path
        if isinstance(content, int):
            content = Generated(content)
        self._data: bytes | None = content if isinstance(content, bytes) else None
        self._gen = content if isinstance(content, Generated) else None
        self.size = len(self._data) if self._data is not None else content.size  # type: ignore[union-attr]
        if lfs is None:
            lfs = self.size >= LFS_MIN_SIZE or any(fnmatch.fnmatch(path, p) for p in LFS_PATTERNS)
        self.lfs = lfs
        sha = hashlib.sha256()
        for pos in range(0, self.size, BLOCK):
            sha.update(self.read(pos, min(pos + BLOCK, self.size)))
        self.sha256 = sha.hexdigest()
        if lfs:
            pointer = lfs_pointer(self.sha256, self.size)
            self.pointer_size: int | None = len(pointer)
            self.blob_id = git_blob_sha1(pointer)
        else:
            self.pointer_size = None
            self.blob_id = git_blob_sha1(self.read(0, self.size))

    @property
    def etag(self) -> str:
        """The (X-Linked-)ETag the Hub sends: sha256 for LFS, the git blob sha1 otherwise."""
        return self.sha256 if self.lfs else self.blob_id

    def read(self, start: int, end: int) -> bytes:
        """The true bytes [start, end)."""
        if self._data is not None:
            return self._data[start:end]
        gen = self._gen
        assert gen is not None
        plen = len(gen.prefix)
        out = gen.prefix[start : min(end, plen)] if start < plen else b""
        rand_start = max(start, plen)
        if end > rand_start:
            out += generated_bytes(gen.seed or self.path, rand_start, end)
        return out

    def content(self) -> bytes:
        return self.read(0, self.size)

    def tree_entry(self) -> dict[str, Any]:
        """The entry `/tree` and `/paths-info` return."""
        entry: dict[str, Any] = {
            "type": "file",
            "oid": self.blob_id,
            "size": self.size,
            "path": self.path,
        }
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
        return entry

    def sibling(self, blobs: bool) -> dict[str, Any]:
        """The entry of `siblings` in model_info (with `blobs`: size, blobId, lfs)."""
        entry: dict[str, Any] = {"rfilename": self.path}
        if blobs:
            entry["size"] = self.size
            entry["blobId"] = self.blob_id
            if self.lfs:
                entry["lfs"] = {
                    "size": self.size,
                    "sha256": self.sha256,
                    "pointerSize": self.pointer_size,
                }
        return entry


@dataclass
class Revision:
    name: str
    commit: str
    files: dict[str, HubFile]

    def folders(self) -> set[str]:
        out: set[str] = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return out


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool = False
    revisions: dict[str, Revision] = field(default_factory=dict)

    def lookup(self, revision: str) -> Revision | None:
        """A branch/tag name, or a full (or >= 7 char) commit sha."""
        if revision in self.revisions:
            return self.revisions[revision]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            for rev in self.revisions.values():
                if rev.commit.startswith(revision):
                    return rev
        return None


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_header(metadata: Mapping[str, str | int]) -> bytes:
    """A GGUF v3 header with no tensors: str values are STRING, ints are UINT32 (split.* UINT16)."""
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata))
    for key, value in metadata.items():
        out += _gguf_string(key)
        if isinstance(value, str):
            out += struct.pack("<I", 8) + _gguf_string(value)
        elif key in ("split.no", "split.count"):
            out += struct.pack("<IH", 2, value)
        else:
            out += struct.pack("<II", 4, value)
    return out + b"\0" * (-len(out) % 32)


def _llama_meta(name: str) -> dict[str, str | int]:
    return {
        "general.architecture": "llama",
        "general.name": name,
        "llama.block_count": 2,
        "llama.context_length": 4096,
        "llama.embedding_length": 64,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 2,
    }


def unsloth_files(repo_id: str, size_mb: float = 2.0) -> dict[str, bytes | int | Generated]:
    """Files of an Unsloth-style GGUF repo; the GGUFs are ~`size_mb` MB with a real GGUF header.

    For ``unsloth/Tiny-GGUF``: ``UD-Q2_K_XL/Tiny-UD-Q2_K_XL-0000{1,2}-of-00002.gguf`` (split
    shards), ``UD-Q4_K_XL/Tiny-UD-Q4_K_XL.gguf``, ``Tiny-Q4_K_M.gguf``, ``README.md``,
    ``config.json`` and ``.gitattributes``.
    """
    base = repo_id.split("/")[-1].removesuffix("-GGUF").removesuffix("-gguf")
    size = max(int(size_mb * 1024 * 1024), 4096)

    def gguf(quant: str, total: int, split: tuple[int, int] | None = None) -> Generated:
        meta = _llama_meta(f"{base}-{quant}")
        if split is not None:
            meta |= {"split.no": split[0] - 1, "split.count": split[1], "split.tensors.count": 0}
        return Generated(total, prefix=gguf_header(meta))

    q2 = f"UD-Q2_K_XL/{base}-UD-Q2_K_XL"
    return {
        ".gitattributes": (
            b"*.gguf filter=lfs diff=lfs merge=lfs -text\n"
            b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
        ),
        "README.md": (
            f"---\nbase_model: {base}\nlibrary_name: gguf\ntags:\n- unsloth\n- gguf\n---\n"
            f"# {base} GGUF\n\nDynamic 2.0 quants by a fake Unsloth.\n"
        ).encode(),
        "config.json": json.dumps(
            {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}
        ).encode(),
        f"{q2}-00001-of-00002.gguf": gguf("UD-Q2_K_XL", size, (1, 2)),
        f"{q2}-00002-of-00002.gguf": gguf("UD-Q2_K_XL", size // 2 + 12345, (2, 2)),
        f"UD-Q4_K_XL/{base}-UD-Q4_K_XL.gguf": gguf("UD-Q4_K_XL", size + size // 3),
        f"{base}-Q4_K_M.gguf": gguf("Q4_K_M", size - 777),
    }


@dataclass
class _Drop:
    after: int
    mode: str
    times: int


class FakeHub:
    """The fake Hub: repos, a ThreadingHTTPServer on 127.0.0.1, fault knobs and counters.

    Knobs (set any time): ``throttle_bytes_per_s`` (global cap over all bodies, None = off),
    ``require_token`` (``"hf_x"`` -> 401 unless ``Authorization: Bearer hf_x``), ``cdn_redirect``
    (LFS resolve answers 302 to ``http://localhost:PORT/_cdn/<sha256>``, a different origin,
    like the real Hub's CDN), ``xet`` (LFS resolve answers carry ``X-Xet-Hash`` and a
    ``Link: <…/xet-read-token/REV>; rel="xet-auth"`` refresh route, as the Hub's do for files
    stored with Xet; that route answers without the ``X-Xet-Cas-Url``/token headers, so
    huggingface_hub's Xet transfer stops with "Xet headers have not been correctly set").
    Methods: :meth:`drop_after`, :meth:`corrupt`, :meth:`fail_next`.

    Counters: ``bytes_sent`` (body bytes, all files), ``bytes_sent_by_path[path_in_repo]``,
    ``first_body_at`` (``time.time()`` of the first file body byte since the last reset),
    ``requests`` [(method, url path decoded, Range header or None)] and ``request_headers``
    (one dict per request, same order).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.repos: dict[tuple[str, str], Repo] = {}
        self.throttle_bytes_per_s: float | None = None
        self.require_token: str | None = None
        self.cdn_redirect = False
        self.xet = False
        self.first_body_at: float | None = None
        self.tree_page_size = 1000
        self.bytes_sent = 0
        self.bytes_sent_by_path: defaultdict[str, int] = defaultdict(int)
        self.requests: list[tuple[str, str, str | None]] = []
        self.request_headers: list[dict[str, str]] = []
        self._drops: dict[str, _Drop] = {}
        self._corrupt: set[str] = set()
        self._fails: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeHub:
        """Serve in a background thread; picks a free port when `port` is 0."""
        handler = type("Handler", (_Handler,), {"hub": self})
        server = ThreadingHTTPServer((self.host, self.port), handler)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- content ---------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes | int | Generated],
        revision: str = "main",
        *,
        repo_type: str = "model",
        lfs: Iterable[str] | None = None,
        private: bool = False,
    ) -> str:
        """Add (or replace) `revision` of a repo; returns its 40-hex commit sha.

        File values: bytes, a size (deterministic bytes seeded by the path) or :class:`Generated`.
        `lfs` lists the LFS paths explicitly; by default LFS = model-weight suffix or >= 10 MiB.
        """
        lfs_set = set(lfs) if lfs is not None else None
        hub_files = {
            path: HubFile(path, content, None if lfs_set is None else path in lfs_set)
            for path, content in files.items()
        }
        digest = hashlib.sha1(f"{repo_type}/{repo_id}@{revision}".encode())
        for path in sorted(hub_files):
            digest.update(f"\n{path}\0{hub_files[path].etag}".encode())
        commit = digest.hexdigest()
        repo = self.repos.setdefault((repo_type, repo_id), Repo(repo_id, repo_type, private))
        repo.revisions[revision] = Revision(revision, commit, hub_files)
        return commit

    def unsloth_layout(self, repo_id: str = "unsloth/Tiny-GGUF", size_mb: float = 2.0) -> str:
        """Add an Unsloth-like GGUF repo (see :func:`unsloth_files`); returns the commit."""
        return self.add_repo(repo_id, unsloth_files(repo_id, size_mb))

    def file(
        self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model"
    ) -> HubFile:
        rev = self.repos[(repo_type, repo_id)].lookup(revision)
        assert rev is not None, revision
        return rev.files[path]

    def content(
        self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model"
    ) -> bytes:
        """The true bytes of a file (what a correct download must produce)."""
        return self.file(repo_id, path, revision, repo_type).content()

    def commit(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        rev = self.repos[(repo_type, repo_id)].lookup(revision)
        assert rev is not None, revision
        return rev.commit

    # -- faults ----------------------------------------------------------------------------

    def drop_after(self, path: str, n_bytes: int, *, mode: str = "close", times: int = 1) -> None:
        """Cut the next `times` GET bodies of `path` (path in repo) after `n_bytes` bytes.

        ``mode="close"``: orderly FIN, the client sees a short body (httpx RemoteProtocolError).
        ``mode="reset"``: RST via SO_LINGER 0 (httpx ReadError, "connection reset by peer").
        Only responses longer than `n_bytes` trigger it.
        """
        assert mode in ("close", "reset"), mode
        self._drops[path] = _Drop(n_bytes, mode, times)

    def corrupt(self, path: str, enabled: bool = True) -> None:
        """Serve bit-flipped bytes for `path`; sizes, ETags and sha256 stay the true ones."""
        if enabled:
            self._corrupt.add(path)
        else:
            self._corrupt.discard(path)

    def fail_next(self, path: str, status: int = 503, times: int = 1) -> None:
        """Answer the next `times` resolve requests (HEAD or GET) of `path` with `status`."""
        self._fails[path] = [status] * times

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_sent = 0
            self.first_body_at = None
            self.bytes_sent_by_path.clear()
            self.requests.clear()
            self.request_headers.clear()

    def requests_for(
        self, path: str, method: str | None = None
    ) -> list[tuple[str, str, str | None]]:
        """Recorded resolve (and CDN) requests of one path in repo, optionally of one method."""
        resolve = re.compile(r"/resolve/[^/]+/" + re.escape(path) + "$")
        return [
            r
            for r in self.requests
            if (
                resolve.search(r[1]) or (r[1].startswith("/_cdn/") and self._cdn_path(r[1]) == path)
            )
            and (method is None or r[0] == method)
        ]

    # -- internals used by the handler -----------------------------------------------------

    def _cdn_path(self, url_path: str) -> str | None:
        sha = url_path.rsplit("/", 1)[-1]
        for repo in self.repos.values():
            for rev in repo.revisions.values():
                for f in rev.files.values():
                    if f.sha256 == sha:
                        return f.path
        return None

    def _blob(self, sha256: str) -> HubFile | None:
        for repo in self.repos.values():
            for rev in repo.revisions.values():
                for f in rev.files.values():
                    if f.lfs and f.sha256 == sha256:
                        return f
        return None

    def _take_drop(self, path: str, length: int) -> _Drop | None:
        with self._lock:
            drop = self._drops.get(path)
            if drop is None or length <= drop.after:
                return None
            drop.times -= 1
            if drop.times <= 0:
                del self._drops[path]
            return drop

    def _take_fail(self, path: str) -> int | None:
        with self._lock:
            fails = self._fails.get(path)
            if not fails:
                return None
            status = fails.pop(0)
            if not fails:
                del self._fails[path]
            return status

    def _throttle(self, n: int) -> None:
        rate = self.throttle_bytes_per_s
        if not rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_slot)
            self._next_slot = start + n / rate
        if start > now:
            time.sleep(start - now)

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            if self.first_body_at is None:
                self.first_body_at = time.time()
            self.bytes_sent += n
            self.bytes_sent_by_path[path] += n


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing --------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _send(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        self.send_response(status)
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        merged.setdefault("Content-Length", str(len(body)))
        for key, value in merged.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(200, json.dumps(obj).encode(), headers)

    def _error(
        self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        extra = {"X-Error-Message": message, **(headers or {})}
        if code:
            extra["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), extra)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        hub = self.hub
        split = urlsplit(self.path)
        parts = [unquote(p) for p in split.path.split("/")[1:]]
        url_path = "/" + "/".join(parts)
        hub.requests.append((self.command, url_path, self.headers.get("Range")))
        hub.request_headers.append({k.lower(): v for k, v in self.headers.items()})
        body = self._read_body() if self.command == "POST" else b""
        query = parse_qs(split.query)
        try:
            if parts[:2] == ["api", "agent-harnesses"]:
                self._json({"standardEnvVars": [], "harnesses": {}})
                return
            if parts == ["_stats"]:
                self._json({"first_body_at": hub.first_body_at, "bytes_sent": hub.bytes_sent})
                return
            if parts == ["_stats", "reset"] and self.command == "POST":
                hub.reset_counters()
                self._json({})
                return
            if parts and parts[0] == "_cdn" and self.command in ("GET", "HEAD"):
                self._cdn(parts[-1])  # a signed CDN URL: no token needed (the client sends none)
                return
            if not self._authorized():
                return
            if parts[:2] == ["api", "whoami-v2"]:
                self._json(_whoami())
            elif len(parts) >= 3 and parts[0] == "api" and parts[1] in REPO_TYPES:
                self._api(REPO_TYPES[parts[1]], parts[2:], query, body)
            elif self.command in ("GET", "HEAD"):
                self._resolve(parts)
            else:
                self._error(404, None, "Not Found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _authorized(self) -> bool:
        token = self.hub.require_token
        if token is None:
            return True
        sent = self.headers.get("Authorization")
        if sent == f"Bearer {token}":
            return True
        if sent is None:
            # What the Hub answers for a private repo without credentials.
            self._error(401, "RepoNotFound", "Invalid username or password.")
        else:
            self._error(401, None, "Invalid credentials in Authorization header")
        return False

    def _split_repo(self, repo_type: str, parts: list[str]) -> tuple[Repo | None, list[str]]:
        """Longest known repo id (2 then 1 segments) at the start of `parts`, and the rest."""
        for n in (2, 1):
            repo = self.hub.repos.get((repo_type, "/".join(parts[:n])))
            if repo is not None and len(parts) >= n:
                return repo, parts[n:]
        return None, parts

    # -- API -------------------------------------------------------------------------------

    def _api(
        self, repo_type: str, parts: list[str], query: dict[str, list[str]], body: bytes
    ) -> None:
        repo, rest = self._split_repo(repo_type, parts)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        kind = rest[0] if rest else "revision"
        revision = rest[1] if len(rest) > 1 else "main"
        if kind == "xet-read-token" and self.command == "GET":
            self._json({})  # no X-Xet-Cas-Url / token headers: there is no CAS here
            return
        if kind not in ("revision", "tree", "paths-info"):
            self._error(404, None, f"Sorry, we can't find the page you are looking for ({kind}).")
            return
        rev = repo.lookup(revision)
        if rev is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        if kind == "revision" and self.command == "GET":
            self._info(repo, rev, _truthy(query.get("blobs")))
        elif kind == "tree" and self.command == "GET":
            self._tree(repo, rev, "/".join(rest[2:]), query)
        elif kind == "paths-info" and self.command == "POST":
            self._paths_info(rev, body)
        else:
            self._error(405, None, "Method not allowed")

    def _info(self, repo: Repo, rev: Revision, blobs: bool) -> None:
        files = sorted(rev.files.values(), key=lambda f: f.path)
        author = repo.repo_id.split("/")[0] if "/" in repo.repo_id else None
        tags = ["gguf"] if any(f.path.endswith(".gguf") for f in files) else []
        self._json(
            {
                "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "author": author,
                "sha": rev.commit,
                "lastModified": FAKE_DATE,
                "createdAt": FAKE_DATE,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": tags,
                "library_name": "gguf" if tags else None,
                "siblings": [f.sibling(blobs) for f in files],
                "spaces": [],
                "usedStorage": sum(f.size for f in files),
            }
        )

    def _tree(self, repo: Repo, rev: Revision, base: str, query: dict[str, list[str]]) -> None:
        recursive = _truthy(query.get("recursive"))
        prefix = f"{base}/" if base else ""
        entries: list[dict[str, Any]] = []
        for folder in sorted(rev.folders()):
            if folder.startswith(prefix) and (recursive or "/" not in folder[len(prefix) :]):
                entries.append(_folder_entry(rev, folder))
        for f in sorted(rev.files.values(), key=lambda f: f.path):
            if f.path.startswith(prefix) and (recursive or "/" not in f.path[len(prefix) :]):
                entries.append(f.tree_entry())
        if base and base not in rev.folders():
            message = f"{base} does not exist on {rev.name}"
            self._error(404, "EntryNotFound", message, {"X-Repo-Commit": rev.commit})
            return
        entries.sort(key=lambda e: e["path"])
        page_size = self.hub.tree_page_size
        cursor = int((query.get("cursor") or ["0"])[0])
        page = entries[cursor : cursor + page_size]
        headers: dict[str, str] = {}
        if cursor + page_size < len(entries):
            nxt = urlsplit(self.path)._replace(query="")
            params = {k: v[0] for k, v in query.items() if k != "cursor"}
            params["cursor"] = str(cursor + page_size)
            qs = "&".join(f"{k}={quote(v)}" for k, v in params.items())
            headers["Link"] = f'<{self.hub.endpoint}{nxt.path}?{qs}>; rel="next"'
        self._json(page, headers)

    def _paths_info(self, rev: Revision, body: bytes) -> None:
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        folders = rev.folders()
        out: list[dict[str, Any]] = []
        for path in paths:
            path = path.strip("/")
            if path in rev.files:
                out.append(rev.files[path].tree_entry())
            elif path in folders:
                out.append(_folder_entry(rev, path))
        self._json(out)

    # -- files -----------------------------------------------------------------------------

    def _resolve(self, parts: list[str]) -> None:
        repo_type = "model"
        if parts and parts[0] in ("datasets", "spaces"):
            repo_type, parts = REPO_TYPES[parts[0]], parts[1:]
        if "resolve" not in parts[:3]:
            self._error(404, None, "Not Found")
            return
        idx = parts.index("resolve")
        repo = self.hub.repos.get((repo_type, "/".join(parts[:idx])))
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return
        if len(parts) < idx + 3:
            self._error(404, "EntryNotFound", "Entry not found")
            return
        revision, path = parts[idx + 1], "/".join(parts[idx + 2 :])
        rev = repo.lookup(revision)
        if rev is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        f = rev.files.get(path)
        commit = {"X-Repo-Commit": rev.commit}
        if f is None:
            self._error(404, "EntryNotFound", "Entry not found", commit)
            return
        status = self.hub._take_fail(path)
        if status is not None:
            self._error(status, None, f"Injected failure {status}", commit)
            return
        headers = {**commit, "ETag": f'"{f.etag}"', "Accept-Ranges": "bytes"}
        if f.lfs:
            headers |= {"X-Linked-Size": str(f.size), "X-Linked-ETag": f'"{f.sha256}"'}
            if self.hub.xet:
                token_route = f"{self.hub.endpoint}/api/{repo_type}s/{repo.repo_id}"
                headers |= {
                    "X-Xet-Hash": hashlib.sha256(f.sha256.encode()).hexdigest(),
                    "Link": f'<{token_route}/xet-read-token/{rev.commit}>; rel="xet-auth"',
                }
            if self.hub.cdn_redirect:
                location = f"http://localhost:{self.hub.port}/_cdn/{f.sha256}"
                self._send(302, b"", {**headers, "Location": location})
                return
        self._serve_file(f, headers)

    def _cdn(self, sha256: str) -> None:
        f = self.hub._blob(sha256)
        if f is None:
            self._send(404, b"<Error>NoSuchKey</Error>", {"Content-Type": "application/xml"})
            return
        self._serve_file(f, {"ETag": f'"{f.sha256}"', "Accept-Ranges": "bytes"})

    def _serve_file(self, f: HubFile, headers: dict[str, str]) -> None:
        name = f.path.rsplit("/", 1)[-1]
        headers |= {
            "Content-Type": "application/octet-stream" if f.lfs else "text/plain; charset=utf-8",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";",
        }
        start, end, status = 0, f.size, 200
        rng = self.headers.get("Range")
        if rng and "," not in rng and (m := _RANGE.fullmatch(rng.strip())):
            first, last = m.groups()
            if first:
                start, end = int(first), min(int(last) + 1, f.size) if last else f.size
            elif last:
                start, end = max(f.size - int(last), 0), f.size
            if start >= f.size or start >= end:
                self._send(416, b"", {**headers, "Content-Range": f"bytes */{f.size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
        headers["Content-Length"] = str(end - start)
        self._send(status, b"", headers)
        if self.command == "GET":
            self._stream(f, start, end)

    def _stream(self, f: HubFile, start: int, end: int) -> None:
        hub = self.hub
        drop = hub._take_drop(f.path, end - start)
        limit = start + drop.after if drop else end
        corrupt = f.path in hub._corrupt
        pos = start
        while pos < limit:
            n = min(CHUNK, limit - pos)
            if hub.throttle_bytes_per_s:
                n = min(n, max(4096, int(hub.throttle_bytes_per_s) // 20))
                hub._throttle(n)
            data = f.read(pos, pos + n)
            if corrupt:
                data = data.translate(_FLIP)
            self.wfile.write(data)
            hub._count(f.path, n)
            pos += n
        if drop is not None:
            self._abort(drop.mode)

    def _abort(self, mode: str) -> None:
        self.close_connection = True
        conn: socket.socket = self.connection
        try:
            self.wfile.flush()
            if mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            else:
                conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes")  # type: ignore[index]


def _folder_entry(rev: Revision, folder: str) -> dict[str, Any]:
    oid = hashlib.sha1(f"{rev.commit}:{folder}".encode()).hexdigest()
    return {"type": "directory", "oid": oid, "size": 0, "path": folder}


def _whoami() -> dict[str, Any]:
    return {
        "type": "user",
        "id": "000000000000000000000000",
        "name": "fake-user",
        "fullname": "Fake User",
        "orgs": [],
        "auth": {"type": "access_token", "accessToken": {"displayName": "fake", "role": "read"}},
    }


# -- pointing the real client at the fake ----------------------------------------------------


def client_env(hub: FakeHub, home: Path | str) -> dict[str, str]:
    """Environment variables that point a *fresh* huggingface_hub process at `hub`.

    HF_HOME/HF_HUB_CACHE live under `home`; Xet, telemetry, update checks and implicit tokens
    from the real home are all off (set HF_TOKEN yourself to send one).
    """
    home = Path(home)
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_ETAG_TIMEOUT": "10",
        "DO_NOT_TRACK": "1",
    }


def point_client_at(hub: FakeHub, home: Path | str, monkeypatch: Any) -> dict[str, str]:
    """Point the huggingface_hub already imported in *this* process at `hub`.

    Sets the :func:`client_env` variables (for subprocesses and call-time reads such as HF_TOKEN)
    and patches the values huggingface_hub froze at import time: ``constants.ENDPOINT``,
    ``HUGGINGFACE_CO_URL_TEMPLATE``, cache/token paths, ``HF_HUB_DISABLE_XET``/``_TELEMETRY``, the
    module-level ``hf_api.api.endpoint`` (behind ``huggingface_hub.model_info`` & co) and the
    Hub-origin set used to decide which redirects keep the auth header. `monkeypatch` is
    pytest's (anything with ``setenv``/``setattr``/``delenv``). Closes the pooled httpx client.
    """
    from huggingface_hub import constants, hf_api
    from huggingface_hub.utils import _http

    env = client_env(hub, home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    home = Path(home)
    patches: dict[str, Any] = {
        "ENDPOINT": hub.endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
        "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(home / ".agent_harnesses.json"),
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_HUB_OFFLINE": False,
    }
    for name, value in patches.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", hub.endpoint)
    monkeypatch.setattr(
        _http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(hub.endpoint)}
    )
    _http.close_session()
    return env


# -- CLI -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve an Unsloth-like repo until SIGINT/SIGTERM; print the endpoint first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--repo", action="append", help="repo id (repeatable)")
    parser.add_argument("--size-mb", type=float, default=2.0, help="size of each GGUF, MB")
    parser.add_argument("--throttle", type=float, default=None, help="bytes/s over all bodies")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--cdn-redirect", action="store_true", help="302 LFS files to /_cdn")
    parser.add_argument(
        "--files", type=int, default=0, help="instead of the Unsloth layout: N GGUFs of --size-mb"
    )
    args = parser.parse_args(argv)

    hub = FakeHub(args.host, args.port)
    for repo in args.repo or ["unsloth/Tiny-GGUF"]:
        if args.files:
            size = int(args.size_mb * 1024 * 1024)
            hub.add_repo(repo, {f"part-{n:02d}.gguf": size for n in range(1, args.files + 1)})
        else:
            hub.unsloth_layout(repo, args.size_mb)
    hub.throttle_bytes_per_s = args.throttle
    hub.require_token = args.token
    hub.cdn_redirect = args.cdn_redirect
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    hub.start()
    print(hub.endpoint, flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
