"""Reads in one turn of the event loop share a read transaction, while nothing commits.

On a WAL database every autocommit read begins and ends a read transaction of its own: a
shared lock in the WAL index (two fcntl calls) and a look at the file's size (fstat), which
under load cost more than the B-tree lookup itself. Here the reads answered in one turn of
the event loop share one transaction, ended when the turn ends, so that an idle server never
holds a snapshot (nor a checkpoint back).

A read must never be staler for it. Every commit to the database, by any connection of any
process, rewrites the WAL-index header at the start of the ``-shm`` file (SQLite's file
format documentation, "the WAL-index header"). Before each read the header is compared with
its value from just before the transaction began, and on any difference the transaction
is ended and a new one begun. A write acknowledged before a read arrived has rewritten the
header before that read looks, so the read sees the write.

The ``-shm`` file is mapped once for the store's life (:class:`WalIndex`), and its file
descriptors are closed only after the store's SQLite connections are. POSIX record locks
belong to a process and a file: closing *any* descriptor of the ``-shm`` file drops every lock
the process holds on it, SQLite's included. With its locks gone, another process opening the
database takes SQLite for the only user and truncates the ``-shm`` file under this process's
mapping, whose next access is a bus error.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import sqlite3

#: The WAL-index header: 48 bytes (a second copy follows), changed by every commit.
HEADER_BYTES = 48


class WalIndex:
    """The ``-shm`` file mapped read-only, with the descriptor it was opened by; closed only
    when the store's connections are (see the module)."""

    def __init__(self, shm_path: str) -> None:
        self._file = None
        self.map: mmap.mmap | None = None
        try:
            self._file = open(shm_path, "rb")  # noqa: SIM115 - kept open, closed in close()
            shm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return  # read-only or immutable databases: their reads are not shared
        if len(shm) < 2 * HEADER_BYTES:
            shm.close()
            return
        self.map = shm

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
        if self._file is not None:
            self._file.close()
            self._file = None


class SharedReads:
    def __init__(self, conn: sqlite3.Connection, index: WalIndex) -> None:
        self.conn = conn
        self._shm = index.map
        #: The header as it was before the held transaction began; None: none held.
        self._header: bytes | None = None

    def before_read(self) -> None:
        """Make the connection's next read see every commit made before this call."""
        shm = self._shm
        if shm is None:
            return
        header = shm[:HEADER_BYTES]
        if self._header is not None:
            if header == self._header:
                return
            self.release()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not on an event loop: each read is its own transaction
        self.conn.execute("BEGIN")  # the snapshot is taken by the first read
        self._header = header
        loop.call_soon(self.release)

    def release(self) -> None:
        """End the held transaction, if any (after a failed read, too)."""
        if self._header is not None:
            self._header = None
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("COMMIT")

    def close(self) -> None:
        """End the held transaction; the mapping stays the store's (:class:`WalIndex`)."""
        self.release()
        self._shm = None
