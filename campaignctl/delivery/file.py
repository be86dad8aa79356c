"""The `file` transports: capture emails as `.eml` files and SMS as JSON lines.

They are the demo's default and the way to inspect a campaign before it goes
out. Both are idempotent per message id, because the engine may hand the same
message again after a crash:

- an email becomes `<folder>/<message-id>.eml`, written to a temporary file in
  the same folder and moved into place with `os.replace`, so a reader never sees
  half a message and a re-send overwrites instead of adding a copy;
- an SMS becomes one line of `<folder>/sms.jsonl`, written with a single
  `os.write` on an `O_APPEND` descriptor (whole lines, never interleaved with
  another writer's); client refs already in the file are not appended again.

Durability policy (`fsync=True`, the default): every `.eml` file is fsynced
before its rename and the folder once per batch; the JSONL file is fsynced once
per batch. `send_many` returns only afterwards, so "sent" in the outbox means
"on disk". `fsync=False` trades that for speed (tests, throw-away previews).
The `.eml` files of a batch are fsynced by a few threads at once: one fsync
waits for a commit of the file system's journal (about a millisecond), and
fsyncs issued together share one (benchmarks/send.py, the file transport).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from campaignctl.delivery.transport import (
    DeliveryOutcome,
    DeliveryStatus,
    OutgoingEmail,
    OutgoingSms,
    TransportBase,
)
from campaignctl.spec.models import Channel

SMS_FILE_NAME = "sms.jsonl"
# fsyncs of .eml files issued at once by one transport: enough for the journal to commit
# many together, few enough to stay a handful of idle threads
WRITERS = 16
# .eml files written, then fsynced, then moved into place together: bounds the open files
CHUNK = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")


def capture_name(message_id: str) -> str:
    """A file name (without extension) for a message id: the id itself when it is safe,
    else a sanitised id plus a short hash so that two ids never share a file."""
    bare = message_id.strip().strip("<>")
    safe = _UNSAFE.sub("_", bare)[:150]
    if safe != bare or not safe or safe.startswith("."):
        digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:12]
        safe = f"{safe.lstrip('.') or 'message'}-{digest}"
    return safe


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EmailFileTransport(TransportBase[OutgoingEmail]):
    """Writes each email as `<folder>/<message-id>.eml`, atomically and idempotently."""

    name = "file"
    channel = Channel.EMAIL
    idempotent = True  # a message id is written once, whatever the calls

    def __init__(self, folder: Path, *, fsync: bool = True, writers: int = WRITERS) -> None:
        self.folder = Path(folder)
        self.fsync = fsync
        self.writers = writers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    async def open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def path_for(self, message_id: str) -> Path:
        """Where the capture of `message_id` lives."""
        return self.folder / f"{capture_name(message_id)}.eml"

    async def send_many(self, messages: Sequence[OutgoingEmail]) -> list[DeliveryOutcome]:
        # Blocking file I/O runs in a thread so the engine's loop stays responsive.
        return await asyncio.to_thread(self._write_batch, list(messages))

    def _write_batch(self, messages: list[OutgoingEmail]) -> list[DeliveryOutcome]:
        outcomes: list[DeliveryOutcome] = []
        for start in range(0, len(messages), CHUNK):
            outcomes += self._write_chunk(messages[start : start + CHUNK])
        if self.fsync and messages:
            _fsync_dir(self.folder)
        return outcomes

    def _write_chunk(self, messages: list[OutgoingEmail]) -> list[DeliveryOutcome]:
        """Write each message to a temporary file, fsync them all (in parallel), then move
        each into place: a capture is never seen, nor left by a crash, half written."""
        # pid, thread and position in the names: no two writers share a temporary file
        tag = f"{os.getpid()}.{threading.get_ident()}"
        problems: dict[int, OSError] = {}
        staged: list[tuple[int, int, Path, Path]] = []  # index, fd, temp, final
        finals = [self.path_for(message.message_id) for message in messages]
        for index, (message, final) in enumerate(zip(messages, finals, strict=True)):
            temp = final.with_name(f".{final.name}.{tag}.{index}.tmp")
            fd = -1
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                view = memoryview(message.message)
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as exc:
                problems[index] = exc
                if fd >= 0:
                    os.close(fd)
                temp.unlink(missing_ok=True)
                continue
            staged.append((index, fd, temp, final))
        try:
            if self.fsync:
                problems.update(self._fsync_all([(index, fd) for index, fd, _, _ in staged]))
        finally:
            for _, fd, _, _ in staged:
                os.close(fd)
        for index, _, temp, final in staged:
            if index not in problems:
                try:
                    os.replace(temp, final)
                    continue
                except OSError as exc:
                    problems[index] = exc
            temp.unlink(missing_ok=True)
        outcomes = []
        for index, (message, final) in enumerate(zip(messages, finals, strict=True)):
            problem = problems.get(index)
            if problem is None:
                outcomes.append(
                    DeliveryOutcome(
                        message.message_id, DeliveryStatus.SENT, reply=f"written {final}"
                    )
                )
            else:
                reply = f"cannot write {final}: {problem.strerror or problem}"
                outcomes.append(
                    DeliveryOutcome(message.message_id, DeliveryStatus.RETRY, reply=reply)
                )
        return outcomes

    def _fsync_all(self, files: list[tuple[int, int]]) -> dict[int, OSError]:
        """fsync `(index, fd)` pairs, `writers` at a time: the file system's journal commits
        fsyncs issued together at once. Each writer thread takes its share in one task, so
        the threads wait on the disk, not on each other."""
        shares = [files[start :: self.writers] for start in range(min(self.writers, len(files)))]
        if len(shares) <= 1:
            return _fsync_share(files)
        problems: dict[int, OSError] = {}
        for found in self._writer_pool().map(_fsync_share, shares):
            problems.update(found)
        return problems

    def _writer_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.writers, thread_name_prefix="eml-fsync")
            return self._pool


def _fsync_share(files: list[tuple[int, int]]) -> dict[int, OSError]:
    problems = {}
    for index, fd in files:
        try:
            os.fsync(fd)
        except OSError as exc:
            problems[index] = exc
    return problems


class SmsFileTransport(TransportBase[OutgoingSms]):
    """Appends each SMS as one JSON line to `<folder>/sms.jsonl`, once per client ref."""

    name = "file"
    channel = Channel.SMS
    idempotent = True  # a message id is written once, whatever the calls

    def __init__(self, folder: Path, *, fsync: bool = True, file_name: str = SMS_FILE_NAME) -> None:
        self.folder = Path(folder)
        self.path = self.folder / file_name
        self.fsync = fsync
        self._fd: int | None = None
        self._written: set[str] = set()

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with open(self.path, "rb") as existing:
            data = existing.read()
        for line in data.splitlines():
            try:
                self._written.add(json.loads(line)["client_ref"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line: readers skip it too
        if data and not data.endswith(b"\n"):
            # A crash tore the last line; start ours on a fresh one.
            os.write(self._fd, b"\n")

    async def send_many(self, messages: Sequence[OutgoingSms]) -> list[DeliveryOutcome]:
        if self._fd is None:
            raise RuntimeError("SmsFileTransport.send_many called before open()")
        return await asyncio.to_thread(self._write_batch, list(messages))

    def _write_batch(self, messages: list[OutgoingSms]) -> list[DeliveryOutcome]:
        assert self._fd is not None
        outcomes = []
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for sms in messages:
            if sms.client_ref in self._written:
                outcomes.append(
                    DeliveryOutcome(sms.message_id, DeliveryStatus.SENT, reply="already captured")
                )
                continue
            record = {
                "to": sms.to,
                "text": sms.text,
                "sender_id": sms.sender_id,
                "client_ref": sms.client_ref,
                "captured_at": now,
            }
            line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
            try:
                # One write per line: O_APPEND makes it land whole at the end of the file.
                written = os.write(self._fd, line)
            except OSError as exc:
                reply = f"cannot write {self.path}: {exc.strerror or exc}"
                outcomes.append(DeliveryOutcome(sms.message_id, DeliveryStatus.RETRY, reply=reply))
                continue
            if written != len(line):  # only on a full disk; the torn line is skipped on read
                os.write(self._fd, b"\n")
                reply = f"short write to {self.path} (disk full?)"
                outcomes.append(DeliveryOutcome(sms.message_id, DeliveryStatus.RETRY, reply=reply))
                continue
            self._written.add(sms.client_ref)
            outcomes.append(
                DeliveryOutcome(sms.message_id, DeliveryStatus.SENT, reply=f"written {self.path}")
            )
        if self.fsync and messages:
            os.fsync(self._fd)
        return outcomes

    async def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
