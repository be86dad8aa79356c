"""A real local HTTP receiver of badges (a CRM's webhook), in a thread of the test.

It answers from a script first (500, 429 with Retry-After, 422, slowness), then 200; it
checks the bearer token, and keeps every badge it accepted by idempotency key, as a CRM
that honours idempotency keys does: a key seen twice is stored once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int
    retry_after: str | None = None
    body: dict[str, Any] | None = None


@dataclass
class Receiver:
    token: str = "crm-secret-token"
    delay: float = 0.0  # seconds per request (a slow CRM)
    script: list[Answer] = field(default_factory=list)  # answers to the first requests
    reject: dict[str, str] = field(default_factory=dict)  # record -> error (2xx per badge)
    pushed: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> badge
    withdrawn: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, int, int]] = field(default_factory=list)  # action, status, badges
    batch_keys: list[str] = field(default_factory=list)
    # every key each record came with, in every request, answered 200 or not
    offered: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.delay:
                    time.sleep(receiver.delay)
                if self.headers.get("Authorization") != f"Bearer {receiver.token}":
                    return self._answer(Answer(401, body={"error": "bad token"}), "?", 0)
                document = json.loads(body)
                action, badges = document["action"], document["badges"]
                with receiver.lock:
                    for badge in badges:
                        receiver.offered[badge["record"]].add(badge["idempotency_key"])
                    answer = receiver.script.pop(0) if receiver.script else Answer(200)
                    if answer.status == 200:
                        receiver.batch_keys.append(self.headers["Idempotency-Key"])
                        rejected = []
                        for badge in badges:
                            if badge["record"] in receiver.reject:
                                rejected.append(
                                    {
                                        "idempotency_key": badge["idempotency_key"],
                                        "error": receiver.reject[badge["record"]],
                                    }
                                )
                            elif action == "push":
                                receiver.pushed.setdefault(badge["idempotency_key"], badge)
                            else:
                                receiver.withdrawn.setdefault(badge["idempotency_key"], badge)
                        answer = Answer(200, body={"rejected": rejected} if rejected else None)
                self._answer(answer, action, len(badges))

            def _answer(self, answer: Answer, action: str, n: int) -> None:
                with receiver.lock:
                    receiver.requests.append((action, answer.status, n))
                payload = json.dumps(answer.body or {}).encode()
                self.send_response(answer.status)
                if answer.retry_after is not None:
                    self.send_header("Retry-After", answer.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/badges"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def keys_by_record(self, action: str = "push") -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        with self.lock:
            for key, badge in (self.pushed if action == "push" else self.withdrawn).items():
                found[badge["record"]].add(key)
        return dict(found)
