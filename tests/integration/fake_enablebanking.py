"""A fake Enable Banking API over a real socket, for the ``enablebanking`` connector's
tests. Synthetic data only.

Every API request must carry ``Authorization: Bearer <JWT>``: RS256, signed by the
test application's key, ``kid`` its id, ``iss`` enablebanking.com, ``aud``
api.enablebanking.com, issued now (wall clock, a minute's skew allowed) and living at
most an hour; anything else is answered 401 and counted in ``jwt_rejections``.

``GET /aspsps`` lists the one bank (with its maximum consent validity); ``POST /auth``
checks the bank, the redirect URL and the consent's end, and answers the URL of its
own consent page (``/consent/<id>``: a form whose first button allows, the second
denies), which sends the browser back with ``code`` and ``state`` (or
``error=access_denied``); ``POST /sessions`` trades a code (once, within
``code_seconds`` of the consent by the tests' clock; else 422) for a session with
two accounts that have IBANs. ``GET /accounts/<uid>/balances`` and
``/accounts/<uid>/transactions`` (three a page, ``continuation_key``, filtered by
``date_from``/``date_to`` on the booking date) serve them. The current account's card
payment is pending (``PDNG``) on its first read and booked from the second on.

A transactions request without ``Psu-Ip-Address`` and without a continuation key
begins an unattended access: ``unattended[(iban, day)]`` counts them by the tests'
clock, and a fifth on one day is refused 429, as a bank applying PSD2 would.
``new_uids`` gives each new session fresh account uids (as re-authorisation does at
many banks); ``end_sessions()`` ends every session (revoked or expired consent), as
``DELETE /sessions/<id>`` ends one (recorded in ``deleted_sessions``);
``fail`` makes the API answer a status (or ``garbage``) until cleared.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.conftest import VENV_BIN
from tests.support import serving

APPLICATION_ID = "0b6e3b55-7d0f-4a4e-9c1e-openagg-test"
ASPSP_NAME = "Fake Pankki"
ASPSP_COUNTRY = "FI"
MAX_CONSENT_DAYS = 180
TRANSACTIONS_PER_PAGE = 3
# How long an authorization code can be traded for a session.
CODE_SECONDS = 600
UNATTENDED_PER_DAY = 4
# Synthetic IBANs (valid check digits, no real account).
CURRENT_IBAN = "FI2112345600000785"
SAVINGS_IBAN = "FI5542345670000081"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class Session:
    session_id: str
    accounts: dict[str, str]  # uid -> IBAN
    valid_until: dt.datetime
    ended: bool = False


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    psu_ip: str | None


def _rows(anchor: dt.date, booked_card: bool) -> dict[str, list[dict[str, Any]]]:
    """The accounts' transactions, newest last."""

    def row(
        ref: str, days_ago: int, amount: str, indicator: str, text: str, status: str = "BOOK"
    ) -> dict[str, Any]:
        day = (anchor - dt.timedelta(days=days_ago)).isoformat()
        party = {"creditor" if indicator == "DBIT" else "debtor": {"name": text}}
        return {
            "entry_reference": ref,
            "transaction_amount": {"amount": amount, "currency": "EUR"},
            "credit_debit_indicator": indicator,
            "status": status,
            "booking_date": day if status == "BOOK" else None,
            "value_date": day,
            "transaction_date": day,
            "remittance_information": [f"{text} {ref}"],
            **party,
        }

    card = row("CUR-P1", 1, "23.40", "DBIT", "Kahvila Aurora", "BOOK" if booked_card else "PDNG")
    return {
        CURRENT_IBAN: [
            row("CUR-1", 20, "2450.00", "CRDT", "Palkka Oy"),
            row("CUR-2", 18, "850.00", "DBIT", "Vuokranantaja"),
            row("CUR-3", 15, "64.10", "DBIT", "Ruokakauppa"),
            row("CUR-4", 11, "12.00", "DBIT", "Kirjasto"),
            row("CUR-5", 7, "39.90", "DBIT", "Puhelinyhtiö"),
            row("CUR-6", 3, "18.75", "DBIT", "Apteekki"),
            card,
        ],
        SAVINGS_IBAN: [
            row("SAV-1", 25, "200.00", "CRDT", "Siirto"),
            row("SAV-2", 2, "1.15", "CRDT", "Korko"),
        ],
    }


@dataclass
class FakeEnableBanking:
    public_key: rsa.RSAPublicKey
    port: int = 0
    clock: Callable[[], dt.datetime] = _now
    max_consent_days: int = MAX_CONSENT_DAYS
    new_uids: bool = False
    sessions: dict[str, Session] = field(default_factory=dict)
    auths: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)  # -> auth, when
    code_seconds: int = CODE_SECONDS
    requests: list[Request] = field(default_factory=list)
    unattended: dict[tuple[str, dt.date], int] = field(default_factory=dict)
    transaction_reads: dict[str, int] = field(default_factory=dict)  # by IBAN
    jwt_rejections: list[str] = field(default_factory=list)
    deleted_sessions: list[str] = field(default_factory=list)  # by DELETE /sessions/<id>
    # The day of the first transactions read: the rows are dated from it, so they do
    # not move when the tests' clock does.
    anchor: dt.date | None = None
    fail: int | str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def options(self, key: rsa.RSAPrivateKey, **extra: str) -> dict[str, str]:
        return {
            "application_id": APPLICATION_ID,
            "private_key_secret": pem(key),
            "api_base": self.api_base,
            "aspsp_name": ASPSP_NAME,
            "aspsp_country": ASPSP_COUNTRY,
            **extra,
        }

    def end_sessions(self) -> None:
        with self.lock:
            for s in self.sessions.values():
                s.ended = True

    def uid_of(self, iban: str, session_id: str) -> str:
        if self.new_uids:
            return f"acc-{session_id[:8]}-{iban[-4:]}"
        return f"acc-{iban[-4:]}"

    # -- checks ---------------------------------------------------------------------

    def jwt_problem(self, header: str | None) -> str | None:
        """Why the request's JWT is refused, or None."""
        if not header or not header.startswith("Bearer "):
            return "no Bearer JWT"
        parts = header[len("Bearer ") :].split(".")
        if len(parts) != 3:
            return "not a JWT"
        try:
            head = json.loads(_b64decode(parts[0]))
            claims = json.loads(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except ValueError:
            return "undecodable JWT"
        if head.get("alg") != "RS256" or head.get("kid") != APPLICATION_ID:
            return f"alg {head.get('alg')!r}, kid {head.get('kid')!r}"
        try:
            self.public_key.verify(
                signature,
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return "signature does not verify with the application's public key"
        if claims.get("iss") != "enablebanking.com" or claims.get("aud") != "api.enablebanking.com":
            return f"iss {claims.get('iss')!r}, aud {claims.get('aud')!r}"
        iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "no iat or exp"
        if iat > now + 60 or exp <= now or exp - iat > 3600:
            return f"lifetime iat={iat} exp={exp} now={int(now)}"
        return None


@contextmanager
def serve_fake_enablebanking(public_key: rsa.RSAPublicKey) -> Iterator[FakeEnableBanking]:
    bank = FakeEnableBanking(public_key)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: Any, *, location: str | None = None) -> None:
            text = body if isinstance(body, str) else json.dumps(body)
            data = text.encode()
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            ctype = "text/html; charset=utf-8" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _api(self) -> tuple[str, dict[str, list[str]]] | None:
            """The request's path and query if its JWT is good; else answered 401."""
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            with bank.lock:
                bank.requests.append(
                    Request(self.command, parts.path, query, self.headers.get("Psu-Ip-Address"))
                )
            problem = bank.jwt_problem(self.headers.get("Authorization"))
            if problem is not None:
                with bank.lock:
                    bank.jwt_rejections.append(problem)
                self._send(401, {"error": "UNAUTHORIZED", "message": f"Invalid JWT: {problem}"})
                return None
            if bank.fail == "garbage":
                self._send(200, "<html>maintenance</html>")
                return None
            if isinstance(bank.fail, int):
                self._send(bank.fail, {"error": "FAILED", "message": "the fake says so"})
                return None
            return parts.path, query

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.startswith("/consent/"):
                return self._consent_page(parts.path.rsplit("/", 1)[-1])
            found = self._api()
            if found is None:
                return
            path, query = found
            if path == "/aspsps":
                aspsps = [
                    {
                        "name": ASPSP_NAME,
                        "country": ASPSP_COUNTRY,
                        "maximum_consent_validity": bank.max_consent_days * 86400,
                        "psu_types": ["personal"],
                    }
                ]
                wanted = query.get("country", [ASPSP_COUNTRY])[0]
                return self._send(200, {"aspsps": [a for a in aspsps if a["country"] == wanted]})
            bits = path.strip("/").split("/")
            if len(bits) == 3 and bits[0] == "accounts":
                return self._account(bits[1], bits[2], query)
            self._send(404, {"error": "NOT_FOUND", "message": path})

        def _account(self, uid: str, what: str, query: dict[str, list[str]]) -> None:
            with bank.lock:
                owner = next((s for s in bank.sessions.values() if uid in s.accounts), None)
            if owner is None:
                return self._send(404, {"error": "ACCOUNT_DOES_NOT_EXIST", "message": uid})
            if owner.ended or owner.valid_until <= bank.clock():
                return self._send(401, {"error": "EXPIRED_SESSION", "message": "Session expired"})
            iban = owner.accounts[uid]
            if what == "balances":
                amount = "3158.71" if iban == CURRENT_IBAN else "12201.15"
                return self._send(
                    200,
                    {
                        "balances": [
                            {
                                "name": "Booked",
                                "balance_amount": {"amount": amount, "currency": "EUR"},
                                "balance_type": "CLBD",
                            },
                            {
                                "name": "Available",
                                "balance_amount": {"amount": amount, "currency": "EUR"},
                                "balance_type": "ITAV",
                            },
                        ]
                    },
                )
            if what != "transactions":
                return self._send(404, {"error": "NOT_FOUND", "message": what})
            key = query.get("continuation_key", [""])[0]
            today = bank.clock().date()
            with bank.lock:
                if not key:
                    if not self.headers.get("Psu-Ip-Address"):
                        used = bank.unattended.get((iban, today), 0)
                        if used >= UNATTENDED_PER_DAY:
                            return self._send(
                                429,
                                {
                                    "error": "ASPSP_RATE_LIMIT_EXCEEDED",
                                    "message": "PSD2 allows 4 unattended accesses a day",
                                },
                            )
                        bank.unattended[(iban, today)] = used + 1
                    bank.transaction_reads[iban] = bank.transaction_reads.get(iban, 0) + 1
                reads = bank.transaction_reads.get(iban, 1)
                bank.anchor = bank.anchor or today
                anchor = bank.anchor
            rows = _rows(anchor, booked_card=reads > 1)[iban]
            start = query.get("date_from", [""])[0] or "0000"
            end = query.get("date_to", [""])[0] or "9999"
            rows = [r for r in rows if start <= (r["booking_date"] or r["value_date"]) <= end]
            at = int(key or 0)
            page = rows[at : at + TRANSACTIONS_PER_PAGE]
            nxt = at + TRANSACTIONS_PER_PAGE
            body: dict[str, Any] = {"transactions": page}
            body["continuation_key"] = str(nxt) if nxt < len(rows) else None
            self._send(200, body)

        def do_DELETE(self) -> None:
            found = self._api()
            if found is None:
                return
            bits = found[0].strip("/").split("/")
            with bank.lock:
                session = bank.sessions.get(bits[1]) if len(bits) == 2 else None
                if bits[0] != "sessions" or session is None or session.ended:
                    session = None
                else:
                    session.ended = True
                    bank.deleted_sessions.append(session.session_id)
            if session is None:
                return self._send(404, {"error": "SESSION_DOES_NOT_EXIST", "message": found[0]})
            self._send(200, {"message": "OK"})

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.startswith("/consent/"):
                return self._decide(parts.path.rsplit("/", 1)[-1])
            raw = self._body()
            found = self._api()
            if found is None:
                return
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {"error": "BAD_REQUEST", "message": "not JSON"})
            if found[0] == "/auth":
                return self._auth(body)
            if found[0] == "/sessions":
                return self._session(body)
            self._send(404, {"error": "NOT_FOUND", "message": found[0]})

        def _auth(self, body: dict[str, Any]) -> None:
            aspsp = body.get("aspsp") or {}
            if aspsp != {"name": ASPSP_NAME, "country": ASPSP_COUNTRY}:
                return self._send(400, {"error": "WRONG_ASPSP", "message": str(aspsp)})
            until = dt.datetime.fromisoformat(body["access"]["valid_until"])
            most = bank.clock() + dt.timedelta(days=bank.max_consent_days, minutes=5)
            if until > most or until <= bank.clock():
                return self._send(400, {"error": "WRONG_VALID_UNTIL", "message": str(until)})
            if not str(body.get("redirect_url", "")).endswith("/oauth/callback"):
                return self._send(400, {"error": "WRONG_REDIRECT", "message": "redirect_url"})
            auth_id = secrets.token_hex(8)
            with bank.lock:
                bank.auths[auth_id] = body
            self._send(
                200, {"url": f"{bank.api_base}/consent/{auth_id}", "authorization_id": auth_id}
            )

        def _session(self, body: dict[str, Any]) -> None:
            with bank.lock:
                auth_id, issued = bank.codes.pop(str(body.get("code")), (None, None))
                auth = bank.auths.get(auth_id or "")
            if auth is None:
                return self._send(422, {"error": "WRONG_AUTHORIZATION_CODE", "message": "code"})
            assert issued is not None
            if bank.clock() - issued > dt.timedelta(seconds=bank.code_seconds):
                return self._send(
                    422, {"error": "WRONG_AUTHORIZATION_CODE", "message": "code expired"}
                )
            sid = secrets.token_hex(16)
            until = dt.datetime.fromisoformat(auth["access"]["valid_until"])
            accounts = {bank.uid_of(iban, sid): iban for iban in (CURRENT_IBAN, SAVINGS_IBAN)}
            with bank.lock:
                bank.sessions[sid] = Session(sid, accounts, until)
            kinds = {CURRENT_IBAN: ("CACC", "Käyttötili"), SAVINGS_IBAN: ("SVGS", "Säästötili")}
            self._send(
                200,
                {
                    "session_id": sid,
                    "accounts": [
                        {
                            "uid": uid,
                            "account_id": {"iban": iban},
                            "name": kinds[iban][1],
                            "currency": "EUR",
                            "cash_account_type": kinds[iban][0],
                        }
                        for uid, iban in accounts.items()
                    ],
                    "aspsp": {"name": ASPSP_NAME, "country": ASPSP_COUNTRY},
                    "access": {"valid_until": until.isoformat()},
                },
            )

        def _consent_page(self, auth_id: str) -> None:
            if auth_id not in bank.auths:
                return self._send(404, "<p>Unknown authorization</p>")
            action = html.escape(f"/consent/{auth_id}")
            self._send(
                200,
                f"<!doctype html><title>{ASPSP_NAME}</title><h1>{ASPSP_NAME}</h1>"
                f'<form method="post" action="{action}">'
                '<input type="hidden" name="authorization" value="'
                f'{html.escape(auth_id)}">'
                '<button type="submit" name="decision" value="allow">Allow</button>'
                '<button type="submit" name="decision" value="deny">Deny</button></form>',
            )

        def _decide(self, auth_id: str) -> None:
            form = {k: v[-1] for k, v in parse_qs(self._body().decode()).items()}
            auth = bank.auths.get(auth_id)
            if auth is None:
                return self._send(404, "<p>Unknown authorization</p>")
            if form.get("decision") == "allow":
                code = secrets.token_urlsafe(16)
                with bank.lock:
                    bank.codes[code] = (auth_id, bank.clock())
                answer = {"code": code, "state": auth["state"]}
            else:
                answer = {"error": "access_denied", "state": auth["state"]}
            self._send(303, "", location=f"{auth['redirect_url']}?{urlencode(answer)}")

    with serving(Handler) as port:
        bank.port = port
        yield bank


def add_with_cli(
    env: dict[str, str], bank: FakeEnableBanking, key: rsa.RSAPrivateKey, code: str
) -> None:
    """The bank as an institution of the platform whose environment is ``env``, added
    the way an operator does (`openagg institutions add`)."""
    options = [f"--option={k}={v}" for k, v in bank.options(key).items()]
    add = ["institutions", "add", "--connector", "enablebanking", "--oauth", "--code", code]
    added = subprocess.run(
        [str(VENV_BIN / "openagg"), *add, "--name", "Fake Pankki", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr


# The fixtures of the test modules that talk to this bank (they import them).
@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return new_key()


@pytest.fixture
def bank(key: rsa.RSAPrivateKey) -> Iterator[FakeEnableBanking]:
    # The bank keeps its own (real) clock, as a live server does.
    with serve_fake_enablebanking(key.public_key()) as b:
        yield b
