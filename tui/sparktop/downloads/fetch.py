"""Moving one file's bytes, through huggingface_hub: which way the Hub offers it (`probe`),
then either HTTP into the resumable partial file, hashed as it arrives (`fetch_http`, with the
client's own session, auth and retries), or huggingface_hub's own Xet transfer (`fetch_xet`)
when the Hub stores the file with Xet and `hf_xet` is installed (never re-implemented here).

Nothing here changes huggingface_hub's settings for the process: what a call needs (chunking,
headers) is passed with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparktop.downloads.hub import endpoint, token
from sparktop.downloads.verify import Digest

RETRIES = 5
"""Tries after a dropped connection that brought no new byte (as huggingface_hub's)."""
RETRY_WAIT_S = 1.0
XET, HTTP = "xet", "http"


class Cancelled(Exception):
    """The download was cancelled; the partial file stays for the next attempt."""


@dataclass(frozen=True)
class Source:
    """Where and how a file's bytes come: its URL, the Hub's ETag for it, and the Xet file
    data when the Hub offers Xet for it (`X-Xet-Hash` and its refresh route)."""

    url: str
    etag: str | None
    xet: Any = None
    """huggingface_hub's XetFileData, or None."""

    @property
    def way(self) -> str:
        """XET when the Hub offers Xet and huggingface_hub would use it here (`hf_xet`
        installed, HF_HUB_DISABLE_XET unset: the test `hf_hub_download` makes), else HTTP."""
        from huggingface_hub.file_download import is_xet_available

        return XET if self.xet is not None and is_xet_available() else HTTP


def headers() -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    return build_hf_headers(token=token())


def probe(repo: str, path: str, revision: str) -> Source:
    """Ask the Hub about one file (a HEAD, as `hf_hub_download` does): its ETag, and whether
    it is stored with Xet. Raises the client's errors."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo, path, revision=revision, endpoint=endpoint())
    meta = get_hf_file_metadata(
        url, token=token(), timeout=constants.HF_HUB_ETAG_TIMEOUT, endpoint=endpoint(),
        retry_on_errors=True,
    )  # fmt: skip
    return Source(url, meta.etag, meta.xet_file_data)


def fetch_http(
    url: str,
    part: Path,
    digest: Digest,
    *,
    size: int,
    cancel: threading.Event,
    progress: Callable[[int], None],
) -> None:
    """Append the missing bytes of the file to `part` (which holds `digest.size` of them),
    feeding each to `digest` and `progress`. A dropped connection resumes with a Range
    request from the last byte written; raises `Cancelled` when `cancel` is set, the client's
    errors otherwise."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.utils import hf_raise_for_status, http_stream_backoff

    transient = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
    tries = RETRIES
    with open(part, "ab") as handle:
        while digest.size < size:
            sent = headers() | {"Accept-Encoding": "identity"}
            if digest.size:
                sent["Range"] = f"bytes={digest.size}-"
            try:
                with http_stream_backoff(
                    "GET", url, headers=sent, timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
                    retry_on_exceptions=(), retry_on_status_codes=(408, 429),
                ) as response:  # fmt: skip
                    hf_raise_for_status(response)
                    if digest.size and response.status_code == 200:  # the Range was ignored
                        progress(-digest.size)
                        handle.seek(0)
                        handle.truncate()
                        digest.reset()
                    for chunk in response.iter_bytes():
                        if cancel.is_set():
                            raise Cancelled()
                        chunk = chunk[: size - digest.size]  # never past the Hub's size
                        handle.write(chunk)
                        digest.update(chunk)
                        progress(len(chunk))
                        tries = RETRIES
            except transient:
                if tries <= 0:
                    raise
                tries -= 1
                handle.flush()
                if cancel.wait(RETRY_WAIT_S):
                    raise Cancelled() from None
                continue
            if digest.size < size:
                raise OSError(f"the Hub sent {digest.size} of {size} bytes")
        handle.flush()


def fetch_xet(source: Source, target: Path, *, size: int, name: str, bar: type) -> None:
    """The whole file into `target` by huggingface_hub's own Xet transfer (`xet_get`, as
    `hf_hub_download` calls it), its progress into `bar` (a tqdm-like class). It does not
    resume from a partial file: hf_xet fetches the file's chunks afresh each time."""
    from huggingface_hub.file_download import xet_get

    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    xet_get(
        incomplete_path=target, xet_file_data=source.xet, headers=headers(),
        expected_size=size, displayed_filename=name, tqdm_class=bar,
    )  # fmt: skip
