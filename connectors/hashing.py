"""Hashing what is read: the ledger records the SHA-256 of the bytes a reader actually consumed, not
of a separate read before or after it (issue #15: a file rewritten while read was recorded with the
first version's hash)."""
from __future__ import annotations

import hashlib


class HashingReader:
    """A binary stream that hashes (SHA-256) and counts every byte it hands out, so the ledger records
    the bytes actually read, not a separate earlier read (issue #15). ``finish()`` reads on to the end
    (what the consumer left, e.g. after a rejection) and returns the hex digest."""

    def __init__(self, fh):
        self._fh, self._h, self.bytes_read = fh, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._h.update(data)
        self.bytes_read += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fh.close()

    @property
    def closed(self) -> bool:
        return self._fh.closed

    def finish(self) -> str:
        if not self._fh.closed:
            for _ in iter(lambda: self.read(1 << 20), b""):
                pass
        return self._h.hexdigest()
