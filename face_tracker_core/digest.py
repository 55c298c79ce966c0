"""Content hashes of files (model ids, cache keys, duplicate photos)."""

from __future__ import annotations

import hashlib


def file_digest(path: str, n: int = 40) -> str:
    """First ``n`` hex digits of the SHA-1 of the file's bytes (read in 1 MiB chunks).

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]
