"""Content-addressed image store: ``<root>/<aa>/<bb>/<sha256>``; writes are atomic (rename)."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from smartscreen.errors import StorageError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FsImageStore:
    """Implements ``smartscreen.domain.ports.ImageStore`` on a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        """Path of a blob; raises KeyError for anything that is not a lowercase sha256 hex digest."""
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise KeyError(f"not a sha256 digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            raise StorageError(f"cannot store image {digest[:12]} under {self.root}: {e.strerror}") from e
        return digest

    def get(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError(f"no image {sha256}") from None

    def __contains__(self, sha256: object) -> bool:
        try:
            return isinstance(sha256, str) and self.path_for(sha256).exists()
        except KeyError:
            return False
