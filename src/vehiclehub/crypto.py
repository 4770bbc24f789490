"""Secrets in use: keyed pseudonyms (ICD §5) and the encrypted audit archive.

Archive format: ``VHA1`` then chunks of ``length(4) nonce(12) AES-256-GCM ciphertext``;
each chunk's associated data is its index, and an empty final chunk marked ``end``
proves the file was not cut short.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vehiclehub.config import Settings
from vehiclehub.errors import HubError

MAGIC = b"VHA1"
CHUNK = 1 << 20


class ArchiveCorrupt(HubError):
    """An archived file does not decrypt: wrong key, tampering or truncation."""


def derive_key(secret: str, purpose: bytes) -> bytes:
    """32 bytes for one purpose from a configured secret (HKDF-SHA256, ``purpose`` as info):
    keys derived for different purposes from the same secret are unrelated."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode("utf-8")
    )


def pseudonym_key(settings: Settings) -> bytes:
    return settings.pseudonym_key.encode("utf-8")


def archive_key(settings: Settings) -> bytes:
    """The archive key: ``archive_key`` when set, else derived from the pseudonym key."""
    if settings.archive_key:
        return derive_key(settings.archive_key, b"vehiclehub archive")
    return derive_key(settings.pseudonym_key, b"vehiclehub archive (derived)")


def session_key(settings: Settings) -> bytes:
    """The review desk's cookie-signing key: ``[review] session_secret`` when set, else
    derived from the pseudonym key (its own purpose: it never reveals that key)."""
    if settings.review.session_secret:
        return derive_key(settings.review.session_secret, b"vehiclehub review sessions")
    return derive_key(settings.pseudonym_key, b"vehiclehub review sessions (derived)")


def _aad(index: int, final: bool) -> bytes:
    return struct.pack(">Q?", index, final)


class ArchiveWriter:
    """A file-like sink that encrypts what is written and hashes the plaintext."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._part = path.with_name(path.name + ".part")
        self._aes = AESGCM(key)
        # Readable by the hub's user only, whatever the umask (it holds what agencies sent).
        fd = os.open(self._part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._sink: BinaryIO = os.fdopen(fd, "wb")
        try:
            self._sink.write(MAGIC)
        except BaseException:  # a full disk at the first write leaves no .part either
            self.abort()
            raise
        self._buffer = bytearray()
        self._index = 0
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) >= CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]), final=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _emit(self, plain: bytes, final: bool) -> None:
        nonce = os.urandom(12)
        sealed = self._aes.encrypt(nonce, plain, _aad(self._index, final))
        self._sink.write(struct.pack(">I", len(sealed)) + nonce + sealed)
        self._index += 1

    def commit(self) -> None:
        """Seal the archive and move it to its final name."""
        if self._buffer:
            self._emit(bytes(self._buffer), final=False)
            self._buffer.clear()
        self._emit(b"", final=True)
        self._sink.flush()
        os.fsync(self._sink.fileno())
        self._sink.close()
        os.replace(self._part, self.path)

    def abort(self) -> None:
        """Discard the ``.part``; closing may fail as the write did (a full disk)."""
        with suppress(OSError):
            self._sink.close()
        self._part.unlink(missing_ok=True)


def read_archive(path: Path, key: bytes) -> Iterator[bytes]:
    """The plaintext chunks of an archived file."""
    aes = AESGCM(key)
    with path.open("rb") as source:
        if source.read(4) != MAGIC:
            raise ArchiveCorrupt(f"{path.name}: not a vehiclehub archive")
        index = 0
        while header := source.read(4):
            (length,) = struct.unpack(">I", header)
            nonce = source.read(12)
            sealed = source.read(length)
            for final in (False, True):
                try:
                    plain = aes.decrypt(nonce, sealed, _aad(index, final))
                except Exception:
                    continue
                if final:
                    return
                yield plain
                break
            else:
                raise ArchiveCorrupt(f"{path.name}: chunk {index} does not decrypt")
            index += 1
    raise ArchiveCorrupt(f"{path.name}: archive is cut short")
