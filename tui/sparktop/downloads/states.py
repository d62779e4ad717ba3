"""The states of a download and of each of its files (a module of its own: the views read
these without loading the download machinery)."""

QUEUED, RUNNING, VERIFYING, DONE, CORRUPT, FAILED, CANCELLED = (
    "queued", "downloading", "verifying", "done", "corrupt", "failed", "cancelled",
)  # fmt: skip
ENDED = (DONE, CORRUPT, FAILED, CANCELLED)
ACTIVE = (RUNNING, VERIFYING)
"""States of a download (or file) that is moving bytes or checking them."""
