"""The fake Hub (tests/fake_hub.py) against the real huggingface_hub client (2.4.0).

huggingface_hub freezes HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_DISABLE_XET… at import time,
so in-process tests go through `point_client_at` (env + patched constants) and the CLI runs in a
subprocess with `client_env`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_hub import FakeHub, client_env, point_client_at

hf = pytest.importorskip("huggingface_hub")
httpx2 = pytest.importorskip("httpx2")

REPO = "unsloth/Tiny-GGUF"
Q2 = [
    "UD-Q2_K_XL/Tiny-UD-Q2_K_XL-00001-of-00002.gguf",
    "UD-Q2_K_XL/Tiny-UD-Q2_K_XL-00002-of-00002.gguf",
]
Q4 = "UD-Q4_K_XL/Tiny-UD-Q4_K_XL.gguf"
MiB = 1024 * 1024
CHUNK = 10 * MiB  # huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE: http_get writes in these


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.unsloth_layout(REPO, size_mb=2)
        yield hub


@pytest.fixture
def hf_home(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HF_HOME in tmp_path, this process's huggingface_hub pointed at the fake hub."""
    from huggingface_hub.utils import _http

    home = tmp_path / "hf"
    point_client_at(hub, home, monkeypatch)
    yield home
    _http.close_session()  # pooled keep-alive connections to a server about to stop


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def incomplete_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".incomplete")]


def test_download_cache_and_local_dir_identical(hub: FakeHub, hf_home: Path, tmp_path: Path):
    cached = Path(hf.hf_hub_download(REPO, Q4))
    local = Path(hf.hf_hub_download(REPO, Q4, local_dir=tmp_path / "local"))
    truth = hub.content(REPO, Q4)
    assert cached.read_bytes() == local.read_bytes() == truth
    assert local == tmp_path / "local" / Q4
    commit = hub.commit(REPO)
    assert cached == hf_home / "hub/models--unsloth--Tiny-GGUF/snapshots" / commit / Q4
    assert cached.resolve().name == sha256(truth)  # blobs/<sha256> for LFS files
    # local_dir found the blob in the cache at that commit and copied it: one GET in all.
    assert [m for m, _, _ in hub.requests_for(Q4)] == ["HEAD", "GET", "HEAD"]
    assert hub.bytes_sent_by_path[Q4] == len(truth)
    # Regular (non-LFS) file: blob named by its git sha1.
    readme = Path(hf.hf_hub_download(REPO, "README.md"))
    assert readme.resolve().name == hub.file(REPO, "README.md").blob_id
    assert readme.read_bytes() == hub.content(REPO, "README.md")


def test_snapshot_allow_patterns_fetches_exactly_the_shards(hub: FakeHub, hf_home: Path):
    folder = Path(hf.snapshot_download(REPO, allow_patterns=["UD-Q2_K_XL/*"]))
    got = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert got == Q2
    for path in Q2:
        assert (folder / path).read_bytes() == hub.content(REPO, path)
    assert set(hub.bytes_sent_by_path) == set(Q2)
    commit = hub.commit(REPO)
    api = [(m, p) for m, p, _ in hub.requests if p.startswith("/api/")]
    assert api == [
        ("GET", f"/api/models/{REPO}/revision/main"),
        ("GET", f"/api/models/{REPO}/tree/{commit}"),
    ]
    files = sorted((m, p) for m, p, _ in hub.requests if "/resolve/" in p)
    assert files == sorted(
        (m, f"/{REPO}/resolve/{commit}/{p}") for p in Q2 for m in ("HEAD", "GET")
    )


def test_drop_close_client_retries_alone_but_restarts_from_zero(hub: FakeHub, hf_home: Path):
    """Orderly close mid-body: http_get retries by itself (1 s later) in the same call.

    It resumes from what it has *written*, and it writes in 10 MiB chunks: a drop inside the first
    chunk loses everything, so the retry is a plain GET from byte 0 and the bytes are re-sent.
    """
    size = hub.file(REPO, Q4).size
    hub.drop_after(Q4, 1_000_000)
    path = hf.hf_hub_download(REPO, Q4)
    assert Path(path).read_bytes() == hub.content(REPO, Q4)
    assert hub.requests_for(Q4, "GET") == [("GET", f"/{REPO}/resolve/main/{Q4}", None)] * 2
    assert hub.bytes_sent_by_path[Q4] == 1_000_000 + size  # re-sent, not resumed
    assert not incomplete_files(hf_home)


def test_drop_close_after_a_chunk_resumes_with_range(hub: FakeHub, hf_home: Path, tmp_path: Path):
    """Past the first 10 MiB chunk the retry sends Range from the last whole chunk."""
    big = "big/model.gguf"
    size = 12 * MiB
    hub.add_repo("acme/big", {big: size})
    hub.drop_after(big, 11 * MiB)
    path = hf.hf_hub_download("acme/big", big, local_dir=tmp_path / "out")
    assert Path(path).read_bytes() == hub.content("acme/big", big)
    assert [r[2] for r in hub.requests_for(big, "GET")] == [None, f"bytes={CHUNK}-"]
    assert hub.bytes_sent_by_path[big] == size + (11 * MiB - CHUNK)


@pytest.mark.parametrize("mode", ["cache", "local_dir"])
def test_connection_reset_fails_and_next_call_starts_over(
    hub: FakeHub, hf_home: Path, tmp_path: Path, mode: str
):
    """A reset (RST) is an httpx ReadError, which http_get does not retry: the call raises.

    The partial file is deleted on the way out, so the next call downloads everything again:
    there is no resume across calls in 2.4.0 (temp files are per-call, uuid-named).
    """
    size = hub.file(REPO, Q4).size
    local_dir = tmp_path / "out" if mode == "local_dir" else None
    hub.drop_after(Q4, 1_000_000, mode="reset")
    with pytest.raises(httpx2.ReadError):
        hf.hf_hub_download(REPO, Q4, local_dir=local_dir)
    assert not incomplete_files(tmp_path)
    path = hf.hf_hub_download(REPO, Q4, local_dir=local_dir)
    assert Path(path).read_bytes() == hub.content(REPO, Q4)
    assert [m for m, _, _ in hub.requests_for(Q4)] == ["HEAD", "GET", "HEAD", "GET"]
    assert all(r[2] is None for r in hub.requests_for(Q4))  # never a Range request
    assert hub.bytes_sent_by_path[Q4] == 1_000_000 + size


def test_hf_download_cli(hub: FakeHub, tmp_path: Path):
    """`hf download` (installed console script) in a fresh process, env set before import."""
    hf_cli = Path(sys.executable).with_name("hf")
    env = {**os.environ, **client_env(hub, tmp_path / "hf")}
    env.pop("HF_TOKEN", None)
    out = tmp_path / "dl"
    proc = subprocess.run(
        [str(hf_cli), "download", REPO, "--include", "UD-Q2_K_XL/*", "--local-dir", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    files = sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and ".cache" not in p.parts
    )
    assert files == Q2
    for path in Q2:
        assert (out / path).read_bytes() == hub.content(REPO, path)
    assert str(out) in proc.stdout
    assert not list((tmp_path / "hf").rglob("*.gguf"))  # --local-dir bypasses the cache


def test_model_info_and_paths_info_match_served_bytes(hub: FakeHub, hf_home: Path):
    api = hf.HfApi()
    info = api.model_info(REPO, files_metadata=True)
    assert info.sha == hub.commit(REPO)
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == set(hub.repos[("model", REPO)].revisions["main"].files)
    for path, sib in siblings.items():
        data = hub.content(REPO, path)
        assert sib.size == len(data)
        if path.endswith(".gguf"):
            assert sib.lfs is not None and sib.lfs.sha256 == sha256(data)
            assert sib.lfs.size == len(data)
        else:
            assert sib.lfs is None
            assert sib.blob_id == hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    plain = hf.model_info(REPO)  # module-level function: bound to hf_api.api, patched too
    assert plain.siblings is not None and plain.siblings[0].size is None
    infos = api.get_paths_info(REPO, [*Q2, "UD-Q2_K_XL", "missing.bin"], revision="main")
    by_path = {i.path: i for i in infos}
    assert set(by_path) == {*Q2, "UD-Q2_K_XL"}
    assert isinstance(by_path["UD-Q2_K_XL"], hf.hf_api.RepoFolder)
    for path in Q2:
        data = hub.content(REPO, path)
        assert by_path[path].size == len(data)
        assert by_path[path].lfs.sha256 == sha256(data)
    tree = {
        f.path: f.size
        for f in api.list_repo_tree(REPO, "UD-Q2_K_XL")
        if isinstance(f, hf.hf_api.RepoFile)
    }
    assert tree == {p: len(hub.content(REPO, p)) for p in Q2}
    meta = hf.get_hf_file_metadata(hf.hf_hub_url(REPO, Q2[0]))
    assert (meta.etag, meta.size, meta.commit_hash) == (
        sha256(hub.content(REPO, Q2[0])),
        len(hub.content(REPO, Q2[0])),
        hub.commit(REPO),
    )


def test_tree_pagination(hub: FakeHub, hf_home: Path):
    hub.tree_page_size = 2
    files = hf.HfApi().list_repo_files(REPO)
    assert sorted(files) == sorted(hub.repos[("model", REPO)].revisions["main"].files)
    assert sum(1 for m, p, _ in hub.requests if "/tree/" in p) > 2


def test_errors_carry_hub_error_codes(hub: FakeHub, hf_home: Path):
    from huggingface_hub.errors import (
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    with pytest.raises(RepositoryNotFoundError):
        hf.hf_hub_download("nobody/nothing", "x.gguf")
    with pytest.raises(RevisionNotFoundError):
        hf.hf_hub_download(REPO, "README.md", revision="v9")
    with pytest.raises(RemoteEntryNotFoundError):
        hf.hf_hub_download(REPO, "nope.gguf")
    with pytest.raises(RevisionNotFoundError):
        hf.HfApi().model_info(REPO, revision="v9")


def test_token_required(hub: FakeHub, hf_home: Path, monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    hub.require_token = "hf_secret"
    with pytest.raises(RepositoryNotFoundError):  # no token: 401 + X-Error-Code RepoNotFound
        hf.hf_hub_download(REPO, "README.md")
    with pytest.raises(HfHubHTTPError) as err:
        hf.hf_hub_download(REPO, "README.md", token="hf_wrong")
    assert err.value.response.status_code == 401
    monkeypatch.setenv("HF_TOKEN", "hf_secret")  # read at call time by get_token()
    assert hf.get_token() == "hf_secret"
    assert Path(hf.hf_hub_download(REPO, "README.md")).read_bytes() == hub.content(
        REPO, "README.md"
    )
    assert hub.request_headers[-1]["authorization"] == "Bearer hf_secret"
    monkeypatch.delenv("HF_TOKEN")
    (hf_home / "token").parent.mkdir(parents=True, exist_ok=True)
    (hf_home / "token").write_text("hf_secret\n")  # what `hf auth login` stores
    assert hf.get_token() == "hf_secret"
    assert hf.HfApi().whoami()["name"] == "fake-user"


def test_corrupt_bytes_pass_the_client_unnoticed(hub: FakeHub, hf_home: Path, tmp_path: Path):
    """The client checks only the size; sha256 checking is up to the caller."""
    hub.corrupt(Q2[0])
    out = tmp_path / "out"
    path = Path(hf.hf_hub_download(REPO, Q2[0], local_dir=out))
    data = path.read_bytes()
    assert len(data) == hub.file(REPO, Q2[0]).size
    assert sha256(data) != hub.file(REPO, Q2[0]).sha256
    report = hf.HfApi().verify_repo_checksums(REPO, local_dir=out)
    assert [m["path"] for m in report.mismatches] == [Q2[0]]


def test_cdn_redirect_and_range(hub: FakeHub, hf_home: Path):
    """LFS resolve -> 302 to another origin: HEAD stops there, GET follows without auth."""
    hub.cdn_redirect = True
    hub.require_token = "hf_secret"
    path = hf.hf_hub_download(REPO, Q2[1], token="hf_secret")
    assert Path(path).read_bytes() == hub.content(REPO, Q2[1])
    methods = [(m, p.split("/")[1]) for m, p, _ in hub.requests_for(Q2[1])]
    assert methods == [("HEAD", "unsloth"), ("GET", "_cdn")]
    auth = [h.get("authorization") for h in hub.request_headers]
    assert auth == ["Bearer hf_secret", None]  # dropped for the other origin
    hub.require_token = None
    session = hf.get_session()
    url = hf.hf_hub_url(REPO, "README.md")
    resp = session.get(url, headers={"Range": "bytes=5-9"})
    assert resp.status_code == 206
    assert resp.content == hub.content(REPO, "README.md")[5:10]
    size = hub.file(REPO, "README.md").size
    assert resp.headers["Content-Range"] == f"bytes 5-9/{size}"
    assert session.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416


def test_progress_tqdm_class_hooks(hub: FakeHub, hf_home: Path, tmp_path: Path):
    """hf_hub_download: one bar per file; snapshot_download: only aggregate bars."""
    made: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.n = kwargs.get("initial", 0)
            self.total = kwargs.get("total")
            self.kwargs = kwargs
            made.append({"kwargs": kwargs, "bar": self})

        def update(self, n: float | None = 1) -> None:
            self.n += n or 0

        def __enter__(self) -> Recorder:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def refresh(self) -> None:
            pass

        def close(self) -> None:
            pass

        def set_description(self, *args: Any, **kwargs: Any) -> None:
            pass

        set_description_str = set_postfix_str = set_description

        @property
        def format_dict(self) -> dict[str, Any]:
            return {"rate": None}

    size = hub.file(REPO, Q4).size
    hf.hf_hub_download(REPO, Q4, tqdm_class=Recorder)  # type: ignore[arg-type]
    assert len(made) == 1
    assert made[0]["kwargs"]["total"] == size and made[0]["bar"].n == size
    assert made[0]["kwargs"]["unit"] == "B"
    made.clear()
    hf.snapshot_download(REPO, allow_patterns=["UD-Q2_K_XL/*"], tqdm_class=Recorder)  # type: ignore[arg-type]
    descs = [m["kwargs"].get("desc") for m in made]
    assert "Fetching 2 files" in descs and "Downloading bytes" in descs
    total = sum(hub.file(REPO, p).size for p in Q2)
    byte_bars = [m["bar"] for m in made if m["kwargs"].get("unit") == "B"]
    assert all(bar.n == total for bar in byte_bars)


def test_throttle(hub: FakeHub, hf_home: Path):
    hub.throttle_bytes_per_s = 2 * MiB
    hub.add_repo("acme/small", {"w.gguf": MiB})
    start = time.monotonic()
    hf.hf_hub_download("acme/small", "w.gguf")
    assert time.monotonic() - start >= 0.4
    assert hub.bytes_sent == MiB


def test_cli_process_serves_unsloth_layout(tmp_path: Path):
    script = Path(__file__).with_name("fake_hub.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--repo", REPO, "--size-mb", "0.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        code = (
            "import huggingface_hub as h, sys;"
            f"p = h.hf_hub_download({REPO!r}, {Q4!r});"
            "sys.stdout.write(str(len(open(p, 'rb').read())))"
        )
        hub = FakeHub()
        hub.port = int(endpoint.rsplit(":", 1)[1])
        env = {**os.environ, **client_env(hub, tmp_path / "hf")}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
        )
        assert out.returncode == 0, out.stderr
        local = FakeHub()  # same generator, same sizes: no need to start it
        local.unsloth_layout(REPO, 0.5)
        assert int(out.stdout) == local.file(REPO, Q4).size
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_shards_are_readable_ggufs(hub: FakeHub, hf_home: Path):
    gguf = pytest.importorskip("gguf")
    path = hf.hf_hub_download(REPO, Q2[1])
    fields = gguf.GGUFReader(path, "r").fields
    assert fields["general.architecture"].contents() == "llama"
    assert fields["split.no"].contents() == 1
    assert fields["split.count"].contents() == 2


def test_xet_headers_are_what_the_client_reads_as_a_xet_file(hub: FakeHub, hf_home: Path):
    """With `xet` on, the client sees Xet file data (hash, refresh route on this hub) for LFS
    files and none for git files; the token route answers without CAS headers."""
    from huggingface_hub.utils._xet import refresh_xet_connection_info

    hub.xet = True
    lfs = hf.get_hf_file_metadata(hf.hf_hub_url(REPO, Q4))
    assert lfs.xet_file_data is not None and len(lfs.xet_file_data.file_hash) == 64
    route = lfs.xet_file_data.refresh_route
    assert route == f"{hub.endpoint}/api/models/{REPO}/xet-read-token/{hub.commit(REPO)}"
    assert lfs.etag == hub.file(REPO, Q4).sha256
    assert hf.get_hf_file_metadata(hf.hf_hub_url(REPO, "README.md")).xet_file_data is None
    with pytest.raises(ValueError, match="Xet headers have not been correctly set"):
        refresh_xet_connection_info(file_data=lfs.xet_file_data, headers={})
    hub.xet = False
    assert hf.get_hf_file_metadata(hf.hf_hub_url(REPO, Q4)).xet_file_data is None


def test_stats_tell_when_the_first_body_byte_left(hub: FakeHub, hf_home: Path, tmp_path: Path):
    stats = httpx2.get(f"{hub.endpoint}/_stats").json()
    assert stats == {"first_body_at": None, "bytes_sent": 0}
    before = time.time()
    hf.hf_hub_download(REPO, Q4, local_dir=tmp_path / "d")
    stats = httpx2.get(f"{hub.endpoint}/_stats").json()
    assert before <= stats["first_body_at"] <= time.time()
    assert stats["bytes_sent"] == hub.file(REPO, Q4).size
    httpx2.post(f"{hub.endpoint}/_stats/reset")
    assert httpx2.get(f"{hub.endpoint}/_stats").json()["first_body_at"] is None
