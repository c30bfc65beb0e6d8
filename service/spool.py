"""An append-only, fsync'd local spool for prediction records while Postgres is unreachable.

Each process appends to its own segment file and holds an exclusive flock on it, so a segment
that can be locked belongs to nobody alive (a finished or SIGKILLed process) and can be replayed.
A frame is `length (4 bytes) | crc32 (4 bytes) | orjson list of records`; a torn last frame (a crash
mid-append, before its fsync returned, so never acknowledged) is reported and set aside.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger("modelship.spool")
HEADER = struct.Struct(">II")
SUFFIX = ".spool"


@dataclass
class SegmentContents:
    path: Path
    records: list[Any]
    damaged_bytes: int


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "damaged").mkdir(exist_ok=True)
        self._fd = -1
        self._active: Path | None = None
        self._active_bytes = 0
        self.damaged_bytes_total = 0

    # -- writing (called from a worker thread; one writer at a time) ---------------------
    def append(self, records: list[Any]) -> int:
        """Append one frame and fsync it. Returns the bytes written."""
        payload = orjson.dumps(records)
        frame = HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        if self._fd < 0:
            self._open_segment()
        written = os.write(self._fd, frame)
        if written != len(frame):
            raise OSError(f"short write to {self._active}: {written} of {len(frame)} bytes")
        os.fsync(self._fd)
        self._active_bytes += len(frame)
        return len(frame)

    def rotate(self) -> None:
        """Close the active segment so it can be replayed; the next append starts a new one."""
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
        self._fd, self._active, self._active_bytes = -1, None, 0

    def _open_segment(self) -> None:
        name = f"{time.time_ns():020d}-{os.getpid()}{SUFFIX}"
        self._active = self.directory / name
        self._fd = os.open(self._active, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_dir(self.directory)  # the new file's name must survive a crash too

    # -- reading ----------------------------------------------------------------------------
    def total_bytes(self) -> int:
        return sum(size for _, size in self._sizes())

    def replayable(self) -> Iterator[Path]:
        """Segments no live process is appending to, oldest first (our own active one is rotated)."""
        self.rotate()
        for path, _ in sorted(self._sizes()):
            fd = os.open(path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a sibling worker is still appending to it
            finally:
                os.close(fd)
            yield path

    def read(self, path: Path) -> SegmentContents:
        data = path.read_bytes()
        records: list[Any] = []
        offset = 0
        while offset + HEADER.size <= len(data):
            length, crc = HEADER.unpack_from(data, offset)
            payload = data[offset + HEADER.size : offset + HEADER.size + length]
            if len(payload) != length or zlib.crc32(payload) != crc:
                break
            records.extend(orjson.loads(payload))
            offset += HEADER.size + length
        damaged = len(data) - offset
        if damaged:
            self.damaged_bytes_total += damaged
            logger.warning(
                "spool segment %s has a damaged tail of %d bytes after %d complete records; "
                "keeping the records, moving the file to damaged/",
                path.name,
                damaged,
                len(records),
            )
        return SegmentContents(path, records, damaged)

    def discard(self, contents: SegmentContents) -> None:
        if contents.damaged_bytes:
            contents.path.rename(self.directory / "damaged" / contents.path.name)
        else:
            contents.path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    def _sizes(self) -> Iterator[tuple[Path, int]]:
        for path in self.directory.glob(f"*{SUFFIX}"):
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue  # replayed by a sibling worker meanwhile
            if size or path != self._active:
                yield path, size


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
