"""The states of a download and of each of its files (a module of its own: the views read
these without loading the download machinery)."""

QUEUED, RUNNING, VERIFYING, DONE, CORRUPT, FAILED, CANCELLED = (
    "queued", "downloading", "verifying", "done", "corrupt", "failed", "cancelled",
)  # fmt: skip
WAITING = "waiting"
"""A file (or a download whose every file in flight does so) waits for another download of
the same file, in this process or another, to finish with it (its lock)."""
WAITING_NOTE = "waiting for another download of this file"
"""What a face shows beside a waiting file."""
ENDED = (DONE, CORRUPT, FAILED, CANCELLED)
ACTIVE = (RUNNING, VERIFYING, WAITING)
"""States of a download (or file) under way: moving bytes, checking them, or waiting for
another download of the same file."""
