"""A fake SimpleFIN Bridge over a real socket, for the ``simplefin`` connector's tests.

It issues setup tokens (the base64 of its claim URL), lets each be claimed once (a
second claim is a 403), and answers ``/accounts`` with HTTP Basic, honouring
``start-date``, ``end-date`` (exclusive), ``pending``, ``balances-only`` and
``version=2``. Its data, dated from ``today``: a checking account, a card and an
account named for neither whose balance is owed, with a pending purchase that posts
on the access's second pull (under a new id, or the same one with ``same_id``).

Each token has a ``mode`` (changeable later) that makes ``/accounts`` answer one kind of
trouble: ``auth`` (a ``gen.auth`` error), ``rate`` (the Bridge's rate-limit words),
``attention`` (a connection that needs signing in again at the Bridge), ``402``,
``403``, ``500`` or ``garbage``. It counts every request.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support import serving

ORG = "Fake Credit Union"
CONN_ID = "CON-fcu"
ATTENTION = f"Connection to {ORG} may need attention: sign in again at SimpleFIN Bridge."
RATE = "You have made too many requests today. Please make fewer requests (24 a day)."
AUTH = "Authentication failed: this access token is no longer valid."
PAYMENT = "Your SimpleFIN Bridge subscription has expired."


@dataclass
class Token:
    """One setup token and the access it gives once claimed."""

    code: str
    claim_url: str
    username: str
    password: str
    access_url: str
    mode: str = "ok"
    same_id: bool = False
    claimed: bool = False
    pulls: int = 0

    @property
    def token(self) -> str:
        return base64.b64encode(self.claim_url.encode()).decode()


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    username: str | None


@dataclass
class FakeBridge:
    port: int = 0
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())
    tokens: dict[str, Token] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    claims: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def issue(self, mode: str = "ok", *, same_id: bool = False) -> Token:
        code = secrets.token_urlsafe(16)
        username, password = f"user{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        token = Token(
            code=code,
            claim_url=f"{self.base}/simplefin/claim/{code}",
            username=username,
            password=password,
            access_url=f"http://{username}:{password}@127.0.0.1:{self.port}/simplefin",
            mode=mode,
            same_id=same_id,
        )
        self.tokens[code] = token
        return token

    def accounts_requests(self, token: Token | None = None) -> list[Request]:
        return [
            r
            for r in self.requests
            if r.path == "/simplefin/accounts" and (token is None or r.username == token.username)
        ]

    # --- answers ------------------------------------------------------------------

    def claim(self, code: str) -> tuple[int, str]:
        with self.lock:
            self.claims += 1
            token = self.tokens.get(code)
            if token is None or token.claimed:
                return 403, "Forbidden: this token was already claimed\n"
            token.claimed = True
            return 200, token.access_url

    def accounts(
        self, username: str | None, password: str | None, query: dict[str, list[str]]
    ) -> tuple[int, str]:
        with self.lock:
            token = next((t for t in self.tokens.values() if t.username == username), None)
            if token is None or not token.claimed or token.password != password:
                return 403, "Forbidden\n"
            token.pulls += 1
            mode, pulls, same_id = token.mode, token.pulls, token.same_id
        if mode in ("402", "403", "500"):
            words = {"402": PAYMENT, "403": "Forbidden", "500": "Internal Server Error"}[mode]
            return int(mode), words
        if mode == "garbage":
            return 200, "<html><body>Bridge maintenance</body></html>"
        v2 = _one(query, "version") == "2"
        errlist = {
            "auth": [{"code": "gen.auth", "msg": AUTH, "message": AUTH}],
            "rate": [{"code": "gen.", "msg": RATE, "message": RATE}],
            "attention": [
                {"code": "con.auth", "msg": ATTENTION, "message": ATTENTION, "conn_id": CONN_ID}
            ],
        }.get(mode, [])
        accounts = self._accounts(query, posted=pulls > 1, same_id=same_id)
        if v2:
            body: dict[str, Any] = {
                "errlist": errlist,
                "connections": [{"conn_id": CONN_ID, "name": ORG, "org_id": "fcu"}],
                "accounts": [{"conn_id": CONN_ID, **a} for a in accounts],
            }
        else:
            org = {"domain": "fcu.example", "name": ORG, "sfin-url": self.base + "/simplefin"}
            body = {
                "errors": [e["message"] for e in errlist],
                "accounts": [{"org": org, **a} for a in accounts],
            }
        return 200, json.dumps(body)

    def _accounts(
        self, query: dict[str, list[str]], *, posted: bool, same_id: bool
    ) -> list[dict[str, Any]]:
        start = int(_one(query, "start-date") or 0)
        end = int(_one(query, "end-date") or 2**40)
        pending_too = "pending" in query
        only_balances = _one(query, "balances-only") == "1"

        def t(days_ago: int, amount: str, description: str, tid: str, **extra: Any) -> Any:
            when = self._epoch(days_ago)
            return {
                "id": tid,
                "posted": when,
                "amount": amount,
                "description": description,
                "payee": extra.pop("payee", ""),
                "memo": "",
                "transacted_at": extra.pop("transacted_at", when),
                "pending": False,
                **extra,
            }

        coffee: dict[str, Any] = {
            "id": "P-coffee",
            "posted": 0,
            "amount": "-4.50",
            "description": "POS BLUE BOTTLE COFFEE",
            "payee": "Blue Bottle",
            "memo": "",
            "transacted_at": self._epoch(1),
            "pending": True,
        }
        if posted:
            coffee = {
                **coffee,
                "id": "P-coffee" if same_id else "T-coffee",
                "posted": self._epoch(0),
                "amount": "-5.25",  # with the tip
                "pending": False,
            }
        data = [
            {
                "id": "ACT-chk",
                "name": "Everyday Checking",
                "currency": "USD",
                "balance": "1523.40",
                "available-balance": "1500.00",
                "balance-date": self._epoch(0),
                "transactions": [
                    t(100, "-5.00", "OLD FEE", "T-old"),
                    t(20, "2500.00", "ACME CORP PAYROLL", "T-salary", payee="Acme Corp"),
                    t(15, "-1200.00", "ONLINE TRANSFER RENT", "T-rent"),
                    coffee,
                ],
                "holdings": [],
            },
            {
                "id": "ACT-card",
                "name": "Rewards Visa",
                "currency": "USD",
                "balance": "-642.18",
                "available-balance": "4357.82",
                "balance-date": self._epoch(0),
                "transactions": [
                    t(
                        3,
                        "-84.27",
                        "SAFEWAY #1234",
                        "T-grocery",
                        payee="Safeway",
                        transacted_at=self._epoch(4),
                        extra={"category": "Groceries"},
                    ),
                    t(10, "500.00", "PAYMENT THANK YOU", "T-payment"),
                ],
                "holdings": [],
            },
            {
                "id": "ACT-owed",
                "name": "Platinum Preferred",
                "currency": "USD",
                "balance": "-120.00",
                "available-balance": "0.00",
                "balance-date": self._epoch(0),
                "transactions": [t(30, "-120.00", "ANNUAL FEE", "T-fee")],
                "holdings": [],
            },
        ]
        for account in data:
            kept = []
            for txn in account["transactions"]:
                when = txn["transacted_at"] if txn["pending"] else txn["posted"]
                if only_balances or (txn["pending"] and not pending_too):
                    continue
                if start <= when < end:
                    kept.append(txn)
            account["transactions"] = kept
        return data

    def _epoch(self, days_ago: int) -> int:
        day = self.today - dt.timedelta(days=days_ago)
        return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp())


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


@contextmanager
def serve_fake_bridge() -> Iterator[FakeBridge]:
    bridge = FakeBridge()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, text: str) -> None:
            body = text.encode()
            self.send_response(status)
            ctype = "application/json" if text.startswith("{") else "text/plain; charset=utf-8"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> tuple[str, dict[str, list[str]], str | None, str | None]:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            username = password = None
            scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() == "basic":
                decoded = base64.b64decode(encoded).decode()
                username, _, password = decoded.partition(":")
            with bridge.lock:
                bridge.requests.append(Request(parts.path, query, username))
            return parts.path, query, username, password

        def do_POST(self) -> None:
            path, _, _, _ = self._record()
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            prefix = "/simplefin/claim/"
            if not path.startswith(prefix):
                return self._send(404, "Not found\n")
            self._send(*bridge.claim(path[len(prefix) :]))

        def do_GET(self) -> None:
            path, query, username, password = self._record()
            if path == "/simplefin/info":
                return self._send(200, json.dumps({"versions": ["1.0", "2.0"]}))
            if path != "/simplefin/accounts":
                return self._send(404, "Not found\n")
            self._send(*bridge.accounts(username, password, query))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as port:
        bridge.port = port
        yield bridge
