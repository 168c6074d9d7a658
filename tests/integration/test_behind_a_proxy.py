"""Behind a trusted proxy, ``serve`` sees each end user's address (X-Forwarded-For):
the console's login throttle holds back the address that failed, not everyone who
comes through the proxy. An untrusted proxy's header is ignored."""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx

from tests.conftest import LiveServer, start_live_server

_emails = (f"nobody{n}@openagg.test" for n in itertools.count())


def _login(server: LiveServer, forwarded_for: str) -> int:
    """A failed login (a new email each time, so only the address's count grows)."""
    r = httpx.post(
        f"{server.url}/console/api/login",
        json={"email": next(_emails), "password": "not the password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return r.status_code


def test_the_throttle_counts_the_forwarded_address_of_a_trusted_proxy(tmp_path: Path) -> None:
    server = start_live_server(tmp_path, OPENAGG_WEB_LOGIN_MAX_FAILURES="2")
    try:
        # The test talks from 127.0.0.1, the proxy trusted by default.
        assert [_login(server, "203.0.113.7") for _ in range(3)] == [401, 401, 429]
        assert _login(server, "198.51.100.9") == 401  # another user behind the proxy

        server.stop()
        server.env["OPENAGG_FORWARDED_ALLOW_IPS"] = "192.0.2.1"  # not this client
        server.start()
        # The header is not believed: every request is 127.0.0.1's.
        assert [_login(server, "203.0.113.7") for _ in range(2)] == [401, 401]
        assert _login(server, "198.51.100.9") == 429
    finally:
        server.stop()
