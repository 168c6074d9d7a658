"""A fake FDX v6 bank with its own OpenID provider over a real socket, for the ``fdx``
connector's tests. Synthetic data only.

The provider: discovery at ``/.well-known/openid-configuration``; ``/authorize``
checks the client, the registered redirect URI and PKCE (S256 only), then shows a
consent page (a form whose first button allows, the second denies: a browser or
the conformance suite submits it); ``/token`` checks the client's authentication
(``client_secret_basic`` or ``client_secret_post``, as ``auth_method`` says), each
code's single use, expiry, redirect URI and PKCE verifier, and rotates refresh
tokens (a used one is refused after); ``/revoke`` ends the grant of the token it is
given (RFC 7009: its refresh and access tokens are refused from then on), records it
in ``revoked`` and answers ``revocation_fail`` instead while that is set; the test
hook ``revoke(user)`` ends a user's grants as if at the bank's site. Time is
``clock()``, which tests tie to the platform's.

The FDX API at ``/fdx/v6``: ``/accounts`` (two a page), ``/accounts/{id}`` (details,
balances, holdings), ``/accounts/{id}/transactions`` (three a page, by ``pageKey`` or
``offset``, filtered by ``startTime``/``endTime`` on the posting date) and
``/accounts/{id}/contact``. The checking account's card purchase is pending
(``AUTHORIZATION``) on the first read of its transactions, and posted with a tip
under a new id from the second on. ``fail`` makes the API answer a status (or
``garbage``) until cleared. Every request is counted.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.support import serving

CLIENT_ID = "openagg-test-client"
CLIENT_SECRET = "fake-fdx-client-secret-5b1e"
USER = "ada"
API_PREFIX = "/fdx/v6"
ACCOUNTS_PER_PAGE = 2
TRANSACTIONS_PER_PAGE = 3
BANK_NAME = "Fake FDX Bank"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Grant:
    """One consent: its user, scopes, and the tokens it has given."""

    user: str
    scope: str
    refresh_token: str | None = None
    used_refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: dict[str, dt.datetime] = field(default_factory=dict)
    revoked: bool = False
    ends: dt.datetime | None = None  # when the consent ends (None: never)


@dataclass
class Code:
    grant: Grant
    client_id: str
    redirect_uri: str
    challenge: str
    expires: dt.datetime
    used: bool = False


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]


@dataclass
class FakeFdxBank:
    port: int = 0
    clock: Callable[[], dt.datetime] = _now
    # None: any redirect URI ending in /oauth/callback (the conformance suite's host
    # is its own); tests of registration set the one they registered.
    redirect_uris: set[str] | None = None
    auth_method: str = "client_secret_basic"
    access_seconds: int = 3600
    code_seconds: int = 60
    # How long a consent lasts (None: until revoked). Token answers say when it ends in
    # ``refresh_token_expires_in``, as many providers do; past it, refreshes are refused.
    consent_seconds: int | None = 365 * 86400
    # The day the synthetic data is dated from (None: the clock's day, moving with it).
    data_day: dt.date | None = None
    grants: list[Grant] = field(default_factory=list)
    codes: dict[str, Code] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    # Answers of the token endpoint: ("refresh_token", "invalid_grant") and the like.
    token_answers: list[tuple[str, str]] = field(default_factory=list)
    transaction_reads: dict[str, int] = field(default_factory=dict)
    fail: int | str | None = None
    # (token, token_type_hint) of every revocation request the bank accepted, and the
    # status its revocation endpoint answers instead while set (the provider down).
    revoked: list[tuple[str, str]] = field(default_factory=list)
    revocation_fail: int | None = None
    revocation_endpoint: bool = True  # whether discovery names it
    revocation_delay: float = 0.0  # seconds the revocation endpoint takes to answer
    api_delay: float = 0.0  # seconds each FDX API request takes
    unauthorized: int = 0  # API requests refused for their token
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.issuer + API_PREFIX

    def options(self, **extra: str) -> dict[str, str]:
        """The institution's options for this bank."""
        return {
            "issuer": self.issuer,
            "api_base": self.api_base,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            **extra,
        }

    def revoke(self, user: str = USER) -> None:
        """The user withdraws every consent they gave (at the bank's own site)."""
        with self.lock:
            for grant in self.grants:
                if grant.user == user:
                    grant.revoked = True

    def api_requests(self, path: str = "") -> list[Request]:
        return [r for r in self.requests if r.path.startswith(API_PREFIX + path)]

    # --- the OpenID provider ----------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        found = {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "revocation_endpoint": self.issuer + "/revoke",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": [self.auth_method],
            "scopes_supported": ["openid", "offline_access", "accounts:read"],
        }
        if not self.revocation_endpoint:
            del found["revocation_endpoint"]
        return found

    def _redirect_ok(self, uri: str) -> bool:
        if self.redirect_uris is not None:
            return uri in self.redirect_uris
        return urlsplit(uri).path == "/oauth/callback"

    def authorize_page(self, q: dict[str, str]) -> tuple[int, str, str | None]:
        """(status, html, redirect location)."""
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != CLIENT_ID or not self._redirect_ok(redirect_uri):
            # Never send anyone to a URI that was not registered.
            return 400, _page("This authorization request is not valid.", ""), None
        problem = None
        if q.get("response_type") != "code":
            problem = "unsupported_response_type"
        elif not q.get("code_challenge") or q.get("code_challenge_method") != "S256":
            problem = "invalid_request"
        if problem:
            answer = {"error": problem, "state": q.get("state", "")}
            return 303, "", f"{redirect_uri}?{urlencode(answer)}"
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(q.get(k, ""), quote=True)}">'
            for k in ("client_id", "redirect_uri", "scope", "state", "code_challenge")
        )
        hidden += f'<input type="hidden" name="user" value="{USER}">'
        form = (
            f'<form method="post" action="/authorize/decision">{hidden}'
            '<button type="submit" name="decision" value="allow">Allow</button> '
            '<button type="submit" name="decision" value="deny">Deny</button></form>'
        )
        scope = html.escape(q.get("scope", ""))
        return 200, _page(f"Share your accounts with OpenAgg? ({scope})", form), None

    def decide(self, form: dict[str, str]) -> tuple[int, str, str | None]:
        redirect_uri = form.get("redirect_uri", "")
        if form.get("client_id") != CLIENT_ID or not self._redirect_ok(redirect_uri):
            return 400, _page("This authorization request is not valid.", ""), None
        state = form.get("state", "")
        if form.get("decision") != "allow":
            answer = {
                "error": "access_denied",
                "error_description": "The user declined to share accounts",
                "state": state,
            }
            return 303, "", f"{redirect_uri}?{urlencode(answer)}"
        code = "code-" + secrets.token_urlsafe(18)
        with self.lock:
            now = self.clock()
            ends = (
                None
                if self.consent_seconds is None
                else now + dt.timedelta(seconds=self.consent_seconds)
            )
            grant = Grant(user=form.get("user") or USER, scope=form.get("scope", ""), ends=ends)
            self.grants.append(grant)
            self.codes[code] = Code(
                grant=grant,
                client_id=CLIENT_ID,
                redirect_uri=redirect_uri,
                challenge=form.get("code_challenge", ""),
                expires=self.clock() + dt.timedelta(seconds=self.code_seconds),
            )
        answer = {"code": code, "state": state, "iss": self.issuer}
        return 303, "", f"{redirect_uri}?{urlencode(answer)}"

    def _client_ok(self, form: dict[str, str], authorization: str | None) -> bool:
        if self.auth_method == "client_secret_basic":
            scheme, _, encoded = (authorization or "").partition(" ")
            if scheme.lower() != "basic":
                return False
            user, _, password = base64.b64decode(encoded).decode().partition(":")
            return (unquote(user), unquote(password)) == (CLIENT_ID, CLIENT_SECRET)
        return (form.get("client_id"), form.get("client_secret")) == (CLIENT_ID, CLIENT_SECRET)

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type", "")
        with self.lock:
            status, body = self._token(grant_type, form, authorization)
            self.token_answers.append((grant_type, str(body.get("error", "ok"))))
        return status, body

    def _token(
        self, grant_type: str, form: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        if not self._client_ok(form, authorization):
            return 401, {"error": "invalid_client", "error_description": "Unknown client"}
        now = self.clock()
        if grant_type == "authorization_code":
            code = self.codes.get(form.get("code", ""))
            if code is None or code.used or code.expires <= now:
                if code is not None and code.used:
                    code.grant.revoked = True  # RFC 6749 4.1.2: a replayed code ends its grant
                return 400, _invalid("The authorization code is not valid")
            code.used = True
            if code.redirect_uri != form.get("redirect_uri"):
                return 400, _invalid("The redirect_uri does not match")
            if _s256(form.get("code_verifier", "")) != code.challenge:
                return 400, _invalid("PKCE verification failed")
            return 200, self._issue(code.grant, now)
        if grant_type == "refresh_token":
            given = form.get("refresh_token", "")
            grant = next((g for g in self.grants if g.refresh_token == given), None)
            if grant is None or grant.revoked:
                return 400, _invalid("The refresh token is not valid or was revoked")
            if grant.ends is not None and grant.ends <= now:
                return 400, _invalid("The consent has ended")
            grant.used_refresh_tokens.add(given)
            return 200, self._issue(grant, now)
        return 400, {"error": "unsupported_grant_type"}

    def _issue(self, grant: Grant, now: dt.datetime) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        grant.access_tokens[access] = now + dt.timedelta(seconds=self.access_seconds)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_seconds,
            "scope": grant.scope,
        }
        if "offline_access" in grant.scope.split():
            grant.refresh_token = "rt-" + secrets.token_urlsafe(24)  # rotated on every use
            body["refresh_token"] = grant.refresh_token
            if grant.ends is not None:
                body["refresh_token_expires_in"] = int((grant.ends - now).total_seconds())
        return body

    def revoke_token(self, form: dict[str, str], authorization: str | None) -> tuple[int, str]:
        if self.revocation_delay:
            time.sleep(self.revocation_delay)  # this request's thread only
        with self.lock:
            if self.revocation_fail is not None:
                return self.revocation_fail, json.dumps({"error": "temporarily_unavailable"})
            if not self._client_ok(form, authorization):
                return 401, json.dumps({"error": "invalid_client"})
            token = form.get("token", "")
            if not token:
                return 400, json.dumps({"error": "invalid_request"})
            self.revoked.append((token, form.get("token_type_hint", "")))
            for grant in self.grants:
                if grant.refresh_token == token or token in grant.access_tokens:
                    grant.revoked = True
        return 200, ""  # RFC 7009: also for a token that was not (or no longer) valid

    # --- the FDX API ------------------------------------------------------------------

    def _bearer(self, authorization: str | None) -> Grant | None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        with self.lock:
            for grant in self.grants:
                expires = grant.access_tokens.get(token)
                if expires is not None:
                    return None if grant.revoked or expires <= self.clock() else grant
        return None

    def api(self, path: str, q: dict[str, list[str]], authorization: str | None) -> tuple[int, str]:
        if self.api_delay:
            time.sleep(self.api_delay)  # this request's thread only
        grant = self._bearer(authorization)
        if grant is None:
            with self.lock:
                self.unauthorized += 1
            return 401, json.dumps({"code": "603", "message": "Token is not valid or has expired"})
        if self.fail == "garbage":
            return 200, "<html>Scheduled maintenance</html>"
        if isinstance(self.fail, int):
            return self.fail, json.dumps({"code": "500", "message": f"Failure {self.fail}"})
        data = self._data()
        parts = path[len(API_PREFIX) :].strip("/").split("/")
        if parts == ["accounts"]:
            listed = [_descriptor(a) for a in data]
            page, nxt = _page_of(listed, q, ACCOUNTS_PER_PAGE)
            return 200, json.dumps({"page": nxt, "accounts": page})
        if len(parts) < 2 or parts[0] != "accounts":
            return 404, json.dumps({"code": "404", "message": "Not found"})
        account = next((a for a in data if a["accountId"] == unquote(parts[1])), None)
        if account is None:
            return 404, json.dumps({"code": "701", "message": "Account not found"})
        if len(parts) == 2:
            return 200, json.dumps({k: v for k, v in account.items() if k != "_transactions"})
        if parts[2:] == ["contact"]:
            return 200, json.dumps(CONTACT)
        if parts[2:] == ["transactions"]:
            rows = self._transactions(account, q)
            page, nxt = _page_of(rows, q, TRANSACTIONS_PER_PAGE)
            return 200, json.dumps({"page": nxt, "transactions": page})
        return 404, json.dumps({"code": "404", "message": "Not found"})

    def _transactions(self, account: dict[str, Any], q: dict[str, list[str]]) -> list[Any]:
        aid = account["accountId"]
        first_page = not (q.get("pageKey") or q.get("offset"))
        with self.lock:
            if first_page:
                self.transaction_reads[aid] = self.transaction_reads.get(aid, 0) + 1
            reads = self.transaction_reads.get(aid, 1)
        start = (q.get("startTime") or ["0000-01-01"])[0]
        end = (q.get("endTime") or ["9999-12-31"])[0]
        kept = []
        for t in account["_transactions"](reads):
            posted = t.get("postedTimestamp")
            if posted is None or start <= posted[:10] <= end:
                kept.append(t)
        return kept

    def _data(self) -> list[dict[str, Any]]:
        """Ada's five accounts, dated from the bank's clock."""
        today = self.data_day or self.clock().date()

        def at(days_ago: int, hour: int = 12) -> str:
            day = today - dt.timedelta(days=days_ago)
            return f"{day.isoformat()}T{hour:02d}:00:00.000Z"

        def txn(tid: str, days: int, amount: str, dcm: str, description: str, **extra: Any) -> Any:
            return {
                "transactionId": tid,
                "postedTimestamp": at(days),
                "transactionTimestamp": extra.pop("transactionTimestamp", at(days + 1, 9)),
                "description": description,
                "debitCreditMemo": dcm,
                "status": "POSTED",
                "amount": float(amount),
                **extra,
            }

        def checking(reads: int) -> list[Any]:
            rows = [
                txn("CHK-T01", 40, "2500.00", "CREDIT", "PAYROLL NORTHWIND LLC"),
                txn("CHK-T02", 35, "1250.00", "DEBIT", "ONLINE TRANSFER RENT"),
                txn("CHK-T03", 21, "84.27", "DEBIT", "GROCERY MART #221", payee="Grocery Mart"),
                txn("CHK-T04", 14, "150.00", "DEBIT", "CHECK 1042", checkNumber=1042),
                txn("CHK-T05", 10, "2500.00", "CREDIT", "PAYROLL NORTHWIND LLC"),
                txn("CHK-T06", 6, "12.00", "DEBIT", "MONTHLY SERVICE FEE"),
                txn("CHK-T07", 3, "61.90", "DEBIT", "CITY POWER AND LIGHT"),
                # A memo line: no money moves, so it is not a transaction.
                {**txn("CHK-M01", 2, "0.00", "MEMO", "ADDRESS CHANGED"), "amount": 0},
            ]
            if reads <= 1:
                rows.append(
                    {
                        "transactionId": "CHK-P01",
                        "transactionTimestamp": at(1, 19),
                        "description": "BISTRO ROMA",
                        "debitCreditMemo": "DEBIT",
                        "status": "AUTHORIZATION",
                        "amount": 42.00,
                    }
                )
            else:
                rows.append(
                    txn(
                        "CHK-T08",
                        0,
                        "49.50",  # with the tip
                        "DEBIT",
                        "BISTRO ROMA",
                        transactionTimestamp=at(1, 19),
                    )
                )
            return rows

        return [
            {
                "accountCategory": "DEPOSIT_ACCOUNT",
                "accountId": "acc-chk-1001",
                "accountType": "CHECKING",
                "accountNumberDisplay": "...1001",
                "productName": "Everyday Checking",
                "status": "OPEN",
                "currency": {"currencyCode": "USD"},
                "currentBalance": 3187.44,
                "availableBalance": 3137.44,
                "interestRate": 0.01,
                "_transactions": checking,
            },
            {
                "accountCategory": "LOC_ACCOUNT",
                "accountId": "acc-card-2002",
                "accountType": "CREDITCARD",
                "accountNumberDisplay": "...2002",
                "productName": "Cashback Visa",
                "nickname": "My card",
                "status": "OPEN",
                "currency": {"currencyCode": "USD"},
                "currentBalance": 865.09,
                "availableCredit": 4134.91,
                "creditLine": 5000.00,
                "minimumPaymentAmount": 35.00,
                "nextPaymentDate": (today + dt.timedelta(days=12)).isoformat(),
                "_transactions": lambda reads: [
                    txn("CC-T01", 18, "200.00", "CREDIT", "PAYMENT THANK YOU"),
                    txn("CC-T02", 9, "57.13", "DEBIT", "BOOKSHOP ONLINE"),
                    {
                        **txn("CC-T03", 4, "19.99", "DEBIT", "STREAMING SERVICE"),
                        "status": "PENDING",
                        "postedTimestamp": None,
                    },
                ],
            },
            {
                "accountCategory": "LOAN_ACCOUNT",
                "accountId": "acc-auto-3003",
                "accountType": "AUTOLOAN",
                "accountNumberDisplay": "...3003",
                "productName": "Auto Loan",
                "status": "OPEN",
                "principalBalance": 12450.00,
                "originalPrincipal": 20000.00,
                "interestRate": 4.9,
                "nextPaymentAmount": 389.22,
                "nextPaymentDate": (today + dt.timedelta(days=20)).isoformat(),
                "maturityDate": "2029-06-01",
                "_transactions": lambda reads: [
                    txn("LN-T01", 11, "389.22", "CREDIT", "LOAN PAYMENT"),
                ],
            },
            {
                "accountCategory": "LOAN_ACCOUNT",
                "accountId": "acc-home-3004",
                "accountType": "MORTGAGE",
                "accountNumberDisplay": "...3004",
                "productName": "30-year fixed",
                "status": "OPEN",
                "principalBalance": 241300.55,
                "originalPrincipal": 280000.00,
                "interestRate": 3.25,
                "_transactions": lambda reads: [],
            },
            {
                "accountCategory": "INVESTMENT_ACCOUNT",
                "accountId": "acc-401k-4005",
                "accountType": "401K",
                "accountNumberDisplay": "...4005",
                "productName": "Retirement Savings Plan",
                "status": "OPEN",
                "currentValue": 30218.40,
                "availableCashBalance": 48.37,
                "holdings": [
                    {
                        "holdingId": "h-vtsx",
                        "securityIds": [{"id": "FAKEVTSX1", "idType": "CUSIP"}],
                        "symbol": "VTSX",
                        "holdingName": "Total Market Index Fund",
                        "holdingType": "MUTUALFUND",
                        "units": 120.285,
                        "currentUnitPrice": 190.12,
                        "marketValue": 22868.58,
                        "costBasis": 18000.00,
                    },
                    {
                        "holdingId": "h-bigx",
                        "securityIds": [{"id": "BIGX", "idType": "TICKER"}],
                        "holdingName": "Big Example Corp",
                        "holdingType": "STOCK",
                        "units": 30,
                        "currentUnitPrice": 243.38,
                        "marketValue": 7301.40,
                    },
                ],
                "_transactions": lambda reads: [
                    txn("INV-T01", 8, "18.40", "CREDIT", "DIVIDEND BIGX"),
                ],
            },
        ]


CONTACT = {
    "holders": [
        {"relationship": "PRIMARY", "name": {"first": "Ada", "middle": "Q", "last": "Example"}},
        {"relationship": "SECONDARY", "name": {"first": "Sam", "last": "Example"}},
    ],
    "emails": ["ada@example.com"],
    "addresses": [
        {
            "line1": "1 Sample Street",
            "line2": "Apt 2",
            "city": "Springfield",
            "region": "OR",
            "postalCode": "97477",
            "country": "US",
        }
    ],
    "telephones": [{"type": "CELL", "country": "1", "number": "5555550123"}],
}


def _descriptor(account: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "accountCategory",
        "accountId",
        "accountType",
        "accountNumberDisplay",
        "productName",
        "nickname",
        "status",
        "currency",
    )
    return {k: account[k] for k in keys if k in account}


def _page_of(
    rows: list[Any], q: dict[str, list[str]], size: int
) -> tuple[list[Any], dict[str, Any]]:
    """One page, and FDX's ``page`` with the next offset when there is more."""
    key = (q.get("pageKey") or q.get("offset") or ["0"])[0]
    start = int(key.removeprefix("p"))
    nxt: dict[str, Any] = {"totalElements": len(rows)}
    if start + size < len(rows):
        nxt["nextOffset"] = f"p{start + size}"
    return rows[start : start + size], nxt


def _invalid(description: str) -> dict[str, Any]:
    return {"error": "invalid_grant", "error_description": description}


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _page(heading: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><title>{BANK_NAME}</title></head><body>"
        f"<h1>{BANK_NAME}</h1><p>{heading}</p>{body}</body></html>"
    )


@contextmanager
def serve_fake_fdx_bank() -> Iterator[FakeFdxBank]:
    bank = FakeFdxBank()

    class Handler(BaseHTTPRequestHandler):
        def _send(
            self, status: int, text: str, *, location: str | None = None, ctype: str = ""
        ) -> None:
            body = text.encode()
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            if not ctype:
                ctype = "application/json" if text[:1] in "{[" else "text/html; charset=utf-8"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self) -> tuple[str, dict[str, list[str]]]:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            with bank.lock:
                bank.requests.append(Request(self.command, parts.path, query))
            return parts.path, query

        def _form(self) -> dict[str, str]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

        def do_GET(self) -> None:
            path, query = self._record()
            auth = self.headers.get("Authorization")
            if path == "/.well-known/openid-configuration":
                return self._send(200, json.dumps(bank.discovery()))
            if path == "/authorize":
                status, page, location = bank.authorize_page({k: v[0] for k, v in query.items()})
                return self._send(status, page, location=location)
            if path.startswith(API_PREFIX + "/"):
                return self._send(*bank.api(path, query, auth))
            self._send(404, json.dumps({"error": "not_found"}))

        def do_POST(self) -> None:
            path, _ = self._record()
            form = self._form()
            auth = self.headers.get("Authorization")
            if path == "/authorize/decision":
                status, page, location = bank.decide(form)
                return self._send(status, page, location=location)
            if path == "/token":
                status, body = bank.token(form, auth)
                return self._send(status, json.dumps(body))
            if path == "/revoke":
                return self._send(*bank.revoke_token(form, auth))
            self._send(404, json.dumps({"error": "not_found"}))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with serving(Handler) as port:
        bank.port = port
        yield bank
