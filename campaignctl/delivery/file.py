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
The `.eml` files of a batch are written by a few threads at once: one fsync
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
# .eml files written (each fsynced) at once by one transport: enough for the journal to
# commit many fsyncs together, few enough to stay a handful of idle threads
WRITERS = 16
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
        if self.fsync and self.writers > 1 and len(messages) > 1:
            outcomes = list(self._writer_pool().map(self._write_one, messages))
        else:
            outcomes = [self._write_one(message) for message in messages]
        if self.fsync and messages:
            _fsync_dir(self.folder)
        return outcomes

    def _writer_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.writers, thread_name_prefix="eml-writer")
            return self._pool

    def _write_one(self, message: OutgoingEmail) -> DeliveryOutcome:
        final = self.path_for(message.message_id)
        # the thread in the name: two writers of one message id never share a temporary file
        temp = final.with_name(f".{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(message.message)
                while view:
                    view = view[os.write(fd, view) :]
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, final)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            return DeliveryOutcome(
                message.message_id,
                DeliveryStatus.RETRY,
                reply=f"cannot write {final}: {exc.strerror or exc}",
            )
        return DeliveryOutcome(message.message_id, DeliveryStatus.SENT, reply=f"written {final}")


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
