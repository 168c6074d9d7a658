"""A fake bank with a small JSON API, over a real socket, for the test connector
package in tests/connector_plugin: sign-in with a device it registers on first
use, then accounts and transactions (a pending one that posts on the next pull)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USERNAME, PASSWORD = "ada", "correct-horse-9"
LOCKED_USERNAME = "locked"
API_SECRET = "bank-api-secret-42"


class FakeJsonBank:
    def __init__(self) -> None:
        self.devices_seen: list[str | None] = []
        self.tokens: set[str] = set()
        self.pulls = 0
        self.lock = threading.Lock()

    def login(self, body: dict[str, Any], api_secret: str | None) -> tuple[int, dict[str, Any]]:
        if api_secret != API_SECRET:
            return 403, {"error": "unknown app"}
        with self.lock:
            self.devices_seen.append(body.get("device_id"))
            if body.get("username") == LOCKED_USERNAME:
                return 423, {"error": "locked"}
            if (body.get("username"), body.get("password")) != (USERNAME, PASSWORD):
                return 401, {"error": "bad credentials"}
            device = body.get("device_id") or f"device-{secrets.token_hex(8)}"
            token = secrets.token_hex(16)
            self.tokens.add(token)
            return 200, {"token": token, "device_id": device}

    def data(self, authorization: str | None) -> tuple[int, dict[str, Any]]:
        token = (authorization or "").removeprefix("Bearer ")
        with self.lock:
            if token not in self.tokens:
                return 401, {"error": "not signed in"}
            self.pulls += 1
            first = self.pulls == 1
        moving = (
            [
                {
                    "id": "p-1",
                    "account": "A1",
                    "amount": "-4.50",
                    "date": "2026-12-05",
                    "description": "Coffee (pending)",
                    "status": "PENDING",
                }
            ]
            if first
            else [
                {
                    "id": "t-3",
                    "account": "A1",
                    "amount": "-4.75",
                    "date": "2026-12-06",
                    "description": "Coffee",
                    "replaces": "p-1",
                }
            ]
        )
        return 200, {
            "accounts": [{"id": "A1", "name": "Everyday", "balance": "1200.00"}],
            "transactions": [
                {
                    "id": "t-1",
                    "account": "A1",
                    "amount": "2500.00",
                    "date": "2026-12-01",
                    "description": "Salary",
                },
                {
                    "id": "t-2",
                    "account": "A1",
                    "amount": "-60.10",
                    "date": "2026-12-02",
                    "description": "Groceries",
                },
                *moving,
            ],
        }


@contextmanager
def running_bank() -> Iterator[tuple[FakeJsonBank, str]]:
    bank = FakeJsonBank()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path == "/login":
                self._answer(*bank.login(body, self.headers.get("X-Api-Secret")))
            else:
                self._answer(404, {})

        def do_GET(self) -> None:
            if self.path == "/data":
                self._answer(*bank.data(self.headers.get("Authorization")))
            else:
                self._answer(404, {})

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield bank, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
