"""Helpers shared by the test suite."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest


def skip_or_fail(reason: str) -> None:
    """Skip when a system part is missing on a laptop; fail in CI, where
    ``.ci/run`` sets OPENAGG_REQUIRE_ALL=1 and every part must be there."""
    if os.environ.get("OPENAGG_REQUIRE_ALL") == "1":
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


MXBANK_USERNAME = "CRD-9f61fb4c-912c-bd1e-b175-ccc7f0275cc1"
MXBANK_PASSWORD = "CRD-e3d7ea81-aac7-05e9-fbdd-4b493c6e474d"
# mxbank's sign-in that connects (any password but the reference's special ones).
MXBANK_CREDENTIALS = [
    {"guid": MXBANK_USERNAME, "value": "mxuser"},
    {"guid": MXBANK_PASSWORD, "value": "secret"},
]


def credentials_for(
    institution_credentials: list[dict[str, Any]], username: str, password: str
) -> list[dict[str, Any]]:
    """Credential values for an institution's LOGIN / PASSWORD fields."""
    by_field = {"LOGIN": username, "PASSWORD": password}
    return [
        {"guid": c["guid"], "value": by_field[c["field_name"]]} for c in institution_credentials
    ]


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not become healthy")


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up
            super().handle_error(request, client_address)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A fake of the outside world on 127.0.0.1, in a thread, for as long as the block
    runs; yields its port."""
    server = _FakeServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
