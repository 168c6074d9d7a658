"""The built-in sandbox: MX's test bank (``mxbank``), its OAuth twin and a richer
``sandbox_bank`` whose password picks a scripted scenario.

``mxbank`` copies MX's documented test behaviour (credential guids, username
``mxuser``, magic passwords) so client test suites written against MX's integration
environment run unchanged. ``sandbox_bank`` adds every MFA type, every error class
and a few time-dependent scripts (flaky, slow, pending-to-posted) that exercise the
engine's status policy. See docs/sandbox.md for the table a developer needs.

No scenario ever stores the password: the session ``state`` records only which
scenario and which MFA round the member is in.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import secrets
import struct
import uuid
import zlib
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from openagg.connectors import sandbox_data
from openagg.connectors.base import (
    AccountData,
    Challenge,
    ChallengeOption,
    Connector,
    ConnectorContext,
    ConnectorError,
    HoldingData,
    InstitutionSpec,
    LoginResult,
    OAuthStart,
    OwnerData,
    TransactionData,
)
from openagg.domain.causes import Cause

__all__ = [
    "MXBANK_CODE",
    "MX_BANK_OAUTH_CODE",
    "SANDBOX_BANK_CODE",
    "SANDBOX_INSTITUTIONS",
    "SandboxConnector",
    "challenge_guid",
    "png_data_uri",
]

CONNECTOR_NAME = "sandbox"

MXBANK_CODE = "mxbank"
MX_BANK_OAUTH_CODE = "mx_bank_oauth"
SANDBOX_BANK_CODE = "sandbox_bank"

# Stable namespace for every derived sandbox guid (challenges, options).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://openagg.dev/sandbox")

CORRECT = "correct"
FLAKY_FAILURES = 3


def challenge_guid(institution_code: str, name: str) -> str:
    """A stable ``CRD-`` guid for a sandbox challenge or option, identical on every
    worker and release so scripted test clients can hard-code it."""
    return f"CRD-{uuid.uuid5(_NAMESPACE, f'{institution_code}:{name}')}"


# ---------------------------------------------------------------------------
# Tiny images for IMAGE_DATA / IMAGE_OPTIONS challenges
# ---------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


@lru_cache(maxsize=32)
def png_data_uri(rgb: tuple[int, int, int], size: int = 16) -> str:
    """A valid solid-colour PNG as a data URI, built in code (no binary assets)."""
    row = b"\x00" + bytes(rgb) * size  # filter byte 0, then RGB pixels
    raw = row * size
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_BLUE = (37, 99, 235)
_GREEN = (22, 163, 74)
_ORANGE = (234, 88, 12)
_PURPLE = (147, 51, 234)

# ---------------------------------------------------------------------------
# Institutions
# ---------------------------------------------------------------------------

MXBANK_GUID = "INS-1572a04c-912b-59bf-5841-332c7dfafaef"
MX_BANK_OAUTH_GUID = "INS-68e96dd6-eabd-42d3-9f05-416897f0746c"
SANDBOX_BANK_GUID = "INS-0b7e5d2c-6f1a-4c3e-9a8d-5e2f7c1b4a90"

MXBANK_USERNAME_GUID = "CRD-9f61fb4c-912c-bd1e-b175-ccc7f0275cc1"
MXBANK_PASSWORD_GUID = "CRD-e3d7ea81-aac7-05e9-fbdd-4b493c6e474d"
SANDBOX_USERNAME_GUID = "CRD-3c1f8e2a-7d4b-4f6e-8a1c-2b9d5e7f0a11"
SANDBOX_PASSWORD_GUID = "CRD-8a2d6f4e-1b3c-4e5f-9d7a-6c0b2e4f8a22"


def _login_credentials(username_guid: str, password_guid: str) -> list[dict[str, Any]]:
    return [
        {
            "guid": username_guid,
            "label": "Username",
            "field_name": "LOGIN",
            "field_type": "TEXT",
            "type": "TEXT",
            "display_order": 1,
        },
        {
            "guid": password_guid,
            "label": "Password",
            "field_name": "PASSWORD",
            "field_type": "PASSWORD",
            "type": "PASSWORD",
            "display_order": 2,
        },
    ]


def _logo(name: str) -> str:
    """A logo shipped in openagg/assets (never fetched from the internet): a path the
    API turns into a URL on the platform's public address. One SVG serves both sizes."""
    return f"/assets/logo-{name}.svg"


SANDBOX_INSTITUTIONS: list[InstitutionSpec] = [
    InstitutionSpec(
        code=MXBANK_CODE,
        guid=MXBANK_GUID,
        name="MX Bank",
        connector=CONNECTOR_NAME,
        throttle_exempt=True,  # MX documents that mxbank is never throttled
        credentials=_login_credentials(MXBANK_USERNAME_GUID, MXBANK_PASSWORD_GUID),
        profile={
            "url": "https://www.mx.com",
            "small_logo_url": _logo("mxbank"),
            "medium_logo_url": _logo("mxbank"),
            "forgot_password_url": "https://www.mx.com/forgot_password",
            "forgot_username_url": "https://www.mx.com/forgot_username",
            "trouble_signing_in_url": "https://www.mx.com/trouble_signing_in",
            "instructional_text": (
                "Test institution. Use username <b>mxuser</b>; the password picks the "
                "scenario (any other password connects)."
            ),
            "instructional_text_steps": [
                "Enter username mxuser.",
                "Enter any password, or challenge / options / image for MFA.",
            ],
            "iso_country_code": "US",
            "is_disabled_by_client": False,
            "supports_account_identification": True,
            "supports_account_statement": False,
            "supports_account_verification": True,
            "supports_oauth": False,
            "supports_tax_document": False,
            "supports_transaction_history": True,
        },
    ),
    InstitutionSpec(
        code=MX_BANK_OAUTH_CODE,
        guid=MX_BANK_OAUTH_GUID,
        name="MX Bank (OAuth)",
        connector=CONNECTOR_NAME,
        throttle_exempt=True,
        credentials=[],  # the OAuth step replaces credentials
        profile={
            "url": "https://www.mx.com",
            "small_logo_url": _logo("mxbank"),
            "medium_logo_url": _logo("mxbank"),
            "forgot_password_url": None,
            "forgot_username_url": None,
            "trouble_signing_in_url": None,
            "instructional_text": "Test OAuth institution. Approve access in the OAuth window.",
            "instructional_text_steps": [],
            "iso_country_code": "US",
            "is_disabled_by_client": False,
            "supports_account_identification": True,
            "supports_account_statement": False,
            "supports_account_verification": True,
            "supports_oauth": True,
            "supports_tax_document": False,
            "supports_transaction_history": True,
        },
    ),
    InstitutionSpec(
        code=SANDBOX_BANK_CODE,
        guid=SANDBOX_BANK_GUID,
        name="OpenAgg Sandbox Bank",
        connector=CONNECTOR_NAME,
        throttle_exempt=False,  # follows the normal foreground throttle, unlike mxbank
        credentials=_login_credentials(SANDBOX_USERNAME_GUID, SANDBOX_PASSWORD_GUID),
        profile={
            "url": "https://sandbox-bank.example.com",
            "small_logo_url": _logo("sandbox_bank"),
            "medium_logo_url": _logo("sandbox_bank"),
            "forgot_password_url": "https://sandbox-bank.example.com/forgot-password",
            "forgot_username_url": "https://sandbox-bank.example.com/forgot-username",
            "trouble_signing_in_url": "https://sandbox-bank.example.com/help/sign-in",
            "instructional_text": (
                "OpenAgg test institution. Use username <b>user_good</b>; the password "
                "selects a scenario (pass_good connects)."
            ),
            "instructional_text_steps": [
                "Enter username user_good.",
                "Enter pass_good, or a scenario password such as mfa_text or error_locked.",
            ],
            "iso_country_code": "US",
            "is_disabled_by_client": False,
            "supports_account_identification": True,
            "supports_account_statement": False,
            "supports_account_verification": True,
            "supports_oauth": False,
            "supports_tax_document": False,
            "supports_transaction_history": True,
        },
    ),
]

# ---------------------------------------------------------------------------
# Scripted outcomes
# ---------------------------------------------------------------------------

MXBANK_INVALID = "The login and/or password are invalid."

# mxbank magic passwords -> (cause, institution message), as MX's table describes.
_MXBANK_ERRORS: dict[str, tuple[Cause, str]] = {
    "BAD_REQUEST": (Cause.BAD_REQUEST, "You must fill out the username and password fields."),
    "UNAUTHORIZED": (Cause.BAD_CREDENTIALS, "Invalid credentials."),
    "INVALID": (Cause.BAD_CREDENTIALS, MXBANK_INVALID),
    "LOCKED": (Cause.LOCKED_OUT, "The login and password are valid, but the user is locked."),
    "DISABLED": (
        Cause.BAD_CREDENTIALS,
        "The login and password are valid, but the user is disabled.",
    ),
    "SERVER_ERROR": (Cause.INSTITUTION_ERROR, "Internal server error."),
    "UNAVAILABLE": (Cause.INSTITUTION_UNAVAILABLE, "Service unavailable."),
}
# mxbank passwords that also work as MFA answers to simulate the error mid-challenge.
_MXBANK_ANSWER_ERRORS = ("DISABLED", "SERVER_ERROR", "UNAVAILABLE")

_SANDBOX_ERRORS: dict[str, tuple[Cause, str]] = {
    "error_denied": (Cause.BAD_CREDENTIALS, "The username or password you entered is incorrect."),
    "error_locked": (
        Cause.LOCKED_OUT,
        "Your account has been locked after too many attempts. Please call customer service.",
    ),
    "error_impeded": (
        Cause.USER_ACTION_REQUIRED,
        "Please log in to the website and accept the new terms",
    ),
    "error_impaired": (
        Cause.MISSING_CREDENTIALS,
        "Additional sign-in information is required. Please update your credentials.",
    ),
    "error_failed": (Cause.INSTITUTION_ERROR, "The bank returned an unexpected error."),
    "error_closed": (Cause.ACCOUNT_CLOSED, "This online banking profile has been closed."),
}
SANDBOX_BAD_LOGIN = "The username or password you entered is incorrect."
WRONG_ANSWER = "The answer you provided is incorrect."

# Scenario ids kept in ``state``. They are deliberately not the passwords (state
# must never hold a password, even a test one), so each password maps to an id.
_MXBANK_MFA_SCENARIOS = {"challenge": "MX_TEXT", "options": "MX_OPTIONS", "image": "MX_IMAGE"}

# sandbox_bank MFA passwords -> (scenario id, the challenge type of each round).
_SANDBOX_MFA: dict[str, tuple[str, tuple[str, ...]]] = {
    "mfa_text": ("MFA_TEXT", ("TEXT",)),
    "mfa_token": ("MFA_TOKEN", ("TOKEN",)),
    "mfa_options": ("MFA_OPTIONS", ("OPTIONS",)),
    "mfa_image": ("MFA_IMAGE", ("IMAGE_DATA",)),
    "mfa_image_options": ("MFA_IMAGE_OPTIONS", ("IMAGE_OPTIONS",)),
    "mfa_multi": ("MFA_MULTI", ("TEXT", "OPTIONS")),
}
_SANDBOX_MFA_ROUNDS = dict(_SANDBOX_MFA.values())
# sandbox_bank passwords that log in (some with a twist later) -> scenario id.
_SANDBOX_CONNECTS = {
    "pass_good": "CONNECTED",
    "flaky": "FLAKY",
    "slow": "SLOW",
    "dynamic": "DYNAMIC",
    "error_after_login": "ERROR_AFTER_LOGIN",
}


def _sandbox_challenge(kind: str) -> Challenge:
    """The sandbox_bank challenge for one MFA type; its guid is fixed per type."""
    code = SANDBOX_BANK_CODE
    guid = challenge_guid(code, kind)
    if kind == "TEXT":
        return Challenge(guid, "What is the name of your first pet?", "TEXT", field_name="pet")
    if kind == "TOKEN":
        return Challenge(
            guid,
            "Enter the 6-digit code we sent to (***) ***-0142.",
            "TOKEN",
            field_name="one_time_code",
        )
    if kind == "IMAGE_DATA":
        return Challenge(
            guid,
            "Type the characters shown in the image.",
            "IMAGE_DATA",
            field_name="captcha",
            image_data=png_data_uri(_BLUE),
        )
    if kind == "OPTIONS":
        choices = (
            ("1402 Elm Street", CORRECT),
            ("88 Harbor Drive", "incorrect_1"),
            ("None of the above", "incorrect_2"),
        )
        return Challenge(
            guid,
            "Which of these addresses have you lived at?",
            "OPTIONS",
            field_name="previous_address",
            options=tuple(
                ChallengeOption(label, value, guid=challenge_guid(code, f"OPTIONS:{value}"))
                for label, value in choices
            ),
        )
    if kind == "IMAGE_OPTIONS":
        pictures = (
            ("Green", CORRECT, _GREEN),
            ("Orange", "incorrect_1", _ORANGE),
            ("Purple", "incorrect_2", _PURPLE),
        )
        return Challenge(
            guid,
            "Choose your security image.",
            "IMAGE_OPTIONS",
            field_name="security_image",
            options=tuple(
                ChallengeOption(
                    label,
                    value,
                    guid=challenge_guid(code, f"IMAGE_OPTIONS:{value}"),
                    data_uri=png_data_uri(rgb),
                )
                for label, value, rgb in pictures
            ),
        )
    raise ValueError(f"unknown challenge type {kind}")


def _mxbank_challenge(scenario: str, round_no: int) -> Challenge:
    """mxbank's challenges: plain questions whose right answer is ``correct``."""
    code = MXBANK_CODE
    if scenario == "MX_OPTIONS":
        return Challenge(
            challenge_guid(code, "options"),
            "Choose the correct answer.",
            "OPTIONS",
            field_name="options",
            options=tuple(
                ChallengeOption(v, v, guid=challenge_guid(code, f"options:{v}"))
                for v in (CORRECT, "incorrect")
            ),
        )
    if scenario == "MX_IMAGE":
        return Challenge(
            challenge_guid(code, "image"),
            "Please enter the characters shown in the image.",
            "IMAGE_DATA",
            field_name="image",
            image_data=png_data_uri(_BLUE),
        )
    if round_no == 1:
        return Challenge(
            challenge_guid(code, "challenge:1"),
            "What city were you born in?",
            "TEXT",
            field_name="challenge",
        )
    return Challenge(
        challenge_guid(code, f"challenge:{round_no}"),
        "What was the make of your first car?",
        "TEXT",
        field_name="challenge",
    )


def _credential(credentials: dict[str, str], *names: str) -> str:
    """Look a credential up by field name, tolerating case (``LOGIN`` or ``login``)."""
    by_upper = {k.upper(): v for k, v in credentials.items()}
    for name in names:
        value = by_upper.get(name)
        if value:
            return value
    return ""


def _connected(code: str, scenario: str, round_no: int = 0) -> LoginResult:
    return LoginResult(
        state={
            "institution_code": code,
            "scenario": scenario,
            "round": round_no,
            "authenticated": True,
        }
    )


def _challenged(code: str, scenario: str, round_no: int, challenge: Challenge) -> LoginResult:
    return LoginResult(
        state={
            "institution_code": code,
            "scenario": scenario,
            "round": round_no,
            "authenticated": False,
            "question_guids": [challenge.guid],
        },
        challenges=[challenge],
    )


# ---------------------------------------------------------------------------
# The connector
# ---------------------------------------------------------------------------


# The sandbox bank's consent page (api/routes/oauth.py serves it) and its codes: the
# code carries the PKCE challenge, so only the verifier's holder can redeem it.
SANDBOX_OAUTH_AUTHORIZE_PATH = "/sandbox/oauth/authorize"
_ACCESS_TOKEN_PREFIX = "sbx-at-"
OAUTH_NOT_GRANTED = "Access to MX Bank (OAuth) was not granted or was revoked; reconnect."


def sandbox_authorization_code(code_challenge: str) -> str:
    return f"sbx-code.{code_challenge}"


# A little longer than MX's DELAYED threshold (60 s), so a slow login shows DELAYED.
SLOW_SECONDS = 62.0


def create_connector(options: dict[str, str]) -> SandboxConnector:
    """The entry point's factory. Options (``OPENAGG_CONNECTOR_SANDBOX_<KEY>``):
    ``latency_ms`` added to every simulated bank call, ``slow_seconds`` for the
    ``slow`` scenario's login."""
    try:
        return SandboxConnector(
            latency_ms=int(options.get("latency_ms", "0")),
            slow_seconds=float(options.get("slow_seconds", SLOW_SECONDS)),
        )
    except ValueError as exc:
        raise ValueError(f"sandbox connector options: {exc}") from None


class SandboxConnector(Connector):
    """Serves the three sandbox institutions from generated, deterministic data.

    ``latency_ms`` is added to every simulated bank call so load tests see realistic
    concurrency; ``slow_seconds`` is how long the ``slow`` scenario's login takes.
    """

    def __init__(self, latency_ms: int = 0, slow_seconds: float = 5.0) -> None:
        self.latency_ms = latency_ms
        self.slow_seconds = slow_seconds

    def institutions(self) -> list[InstitutionSpec]:
        return list(SANDBOX_INSTITUTIONS)

    async def _bank_call(self) -> None:
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000)

    # -- login and MFA --------------------------------------------------------

    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        await self._bank_call()
        code = ctx.institution_code
        if code == MX_BANK_OAUTH_CODE:
            if not str(ctx.secrets.get("access_token", "")).startswith(_ACCESS_TOKEN_PREFIX):
                raise ConnectorError(Cause.BAD_CREDENTIALS, OAUTH_NOT_GRANTED)
            return _connected(code, "OAUTH")
        username = _credential(credentials, "LOGIN", "USERNAME")
        password = _credential(credentials, "PASSWORD")
        if code == MXBANK_CODE:
            return self._mxbank_login(username, password)
        if code == SANDBOX_BANK_CODE:
            return await self._sandbox_login(ctx, username, password)
        raise ConnectorError(Cause.INTERNAL_ERROR, f"Unknown sandbox institution {code!r}.")

    def _mxbank_login(self, username: str, password: str) -> LoginResult:
        if not username or not password:
            raise ConnectorError(
                Cause.MISSING_CREDENTIALS, "Both the username and the password are required."
            )
        if username != "mxuser":
            raise ConnectorError(Cause.BAD_CREDENTIALS, MXBANK_INVALID)
        if password in _MXBANK_ERRORS:
            raise ConnectorError(*_MXBANK_ERRORS[password])
        if password in _MXBANK_MFA_SCENARIOS:
            scenario = _MXBANK_MFA_SCENARIOS[password]
            return _challenged(MXBANK_CODE, scenario, 1, _mxbank_challenge(scenario, 1))
        return _connected(MXBANK_CODE, "CONNECTED")

    async def _sandbox_login(
        self, ctx: ConnectorContext, username: str, password: str
    ) -> LoginResult:
        if not username or not password:
            raise ConnectorError(
                Cause.MISSING_CREDENTIALS, "Please enter both your username and password."
            )
        if username != "user_good":
            raise ConnectorError(Cause.BAD_CREDENTIALS, SANDBOX_BAD_LOGIN)
        if password in _SANDBOX_ERRORS:
            raise ConnectorError(*_SANDBOX_ERRORS[password])
        if password in _SANDBOX_MFA:
            scenario, rounds = _SANDBOX_MFA[password]
            return _challenged(SANDBOX_BANK_CODE, scenario, 1, _sandbox_challenge(rounds[0]))
        if password not in _SANDBOX_CONNECTS:
            raise ConnectorError(Cause.BAD_CREDENTIALS, SANDBOX_BAD_LOGIN)
        scenario = _SANDBOX_CONNECTS[password]
        if scenario == "FLAKY" and ctx.previous_attempts < FLAKY_FAILURES:
            raise ConnectorError(
                Cause.INSTITUTION_UNAVAILABLE,
                "Online banking is temporarily unavailable. Please try again later.",
            )
        if scenario == "SLOW":
            await asyncio.sleep(self.slow_seconds)
        return _connected(SANDBOX_BANK_CODE, scenario)

    async def answer(
        self, ctx: ConnectorContext, state: dict[str, Any], answers: dict[str, str]
    ) -> LoginResult:
        await self._bank_call()
        code = state.get("institution_code")
        scenario = str(state.get("scenario", ""))
        round_no = int(state.get("round", 0))
        expected = state.get("question_guids") or []
        if code != ctx.institution_code or state.get("authenticated") or not expected:
            raise ConnectorError(Cause.MFA_EXPIRED, "There is no challenge waiting for an answer.")
        given = answers.get(expected[0], "").strip()

        if code == MXBANK_CODE:
            if given in _MXBANK_ANSWER_ERRORS:
                raise ConnectorError(*_MXBANK_ERRORS[given])
            if scenario == "MX_TEXT" and round_no == 1 and given == "challenge":
                # Old Atrium behaviour: a second challenge round.
                return _challenged(code, scenario, 2, _mxbank_challenge(scenario, 2))
            if given == CORRECT:
                return _connected(code, scenario, round_no)
            raise ConnectorError(Cause.MFA_WRONG_ANSWER, WRONG_ANSWER)

        if code == SANDBOX_BANK_CODE and scenario in _SANDBOX_MFA_ROUNDS:
            rounds = _SANDBOX_MFA_ROUNDS[scenario]
            if given != CORRECT:
                raise ConnectorError(Cause.MFA_WRONG_ANSWER, WRONG_ANSWER)
            if round_no < len(rounds):
                nxt = _sandbox_challenge(rounds[round_no])
                return _challenged(code, scenario, round_no + 1, nxt)
            return _connected(code, scenario, round_no)

        raise ConnectorError(Cause.MFA_EXPIRED, "There is no challenge waiting for an answer.")

    # -- OAuth (MX Bank (OAuth)) ----------------------------------------------

    async def oauth_start(
        self, ctx: ConnectorContext, redirect_uri: str, state: str, code_challenge: str
    ) -> OAuthStart:
        # The sandbox bank's consent page is served by the platform itself, next to
        # its callback.
        base = redirect_uri.rsplit("/oauth/callback", 1)[0]
        query = urlencode(
            {
                "client_id": ctx.institution_code,
                "redirect_uri": redirect_uri,
                "state": state,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            }
        )
        return OAuthStart(f"{base}{SANDBOX_OAUTH_AUTHORIZE_PATH}?{query}")

    async def oauth_finish(
        self, ctx: ConnectorContext, params: dict[str, str], redirect_uri: str, code_verifier: str
    ) -> None:
        await self._bank_call()
        digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        if params.get("code") != sandbox_authorization_code(challenge):
            raise ConnectorError(Cause.BAD_CREDENTIALS, "The authorization code is not valid.")
        ctx.secrets["access_token"] = _ACCESS_TOKEN_PREFIX + secrets.token_hex(16)

    # -- data -----------------------------------------------------------------

    @staticmethod
    def _require_session(ctx: ConnectorContext, state: dict[str, Any]) -> None:
        if not state.get("authenticated") or state.get("institution_code") != ctx.institution_code:
            raise ConnectorError(Cause.INTERNAL_ERROR, "The sandbox session is not logged in.")

    @staticmethod
    def _profile(ctx: ConnectorContext) -> sandbox_data.MemberProfile:
        return sandbox_data.member_profile(ctx.member_guid, ctx.institution_code, ctx.today)

    async def accounts(self, ctx: ConnectorContext, state: dict[str, Any]) -> list[AccountData]:
        await self._bank_call()
        self._require_session(ctx, state)
        if state.get("scenario") == "ERROR_AFTER_LOGIN":
            raise ConnectorError(
                Cause.DATA_ERROR, "The bank returned account data that could not be read."
            )
        return sandbox_data.accounts_for(self._profile(ctx))

    async def transactions(
        self,
        ctx: ConnectorContext,
        state: dict[str, Any],
        account: AccountData,
        from_date: dt.date,
        to_date: dt.date,
    ) -> list[TransactionData]:
        await self._bank_call()
        self._require_session(ctx, state)
        profile = self._profile(ctx)
        found = sandbox_data.transactions_for(
            profile, account.external_id, ctx.today, from_date, to_date
        )
        if state.get("scenario") == "DYNAMIC" and account.type == "CHECKING":
            moving = sandbox_data.dynamic_transactions(
                profile, ctx.today, first_pull=ctx.previous_attempts == 0
            )
            found.extend(t for t in moving if from_date <= t.date <= to_date)
        return _not_after(found, _now(ctx))

    async def holdings(
        self, ctx: ConnectorContext, state: dict[str, Any], account: AccountData
    ) -> list[HoldingData]:
        await self._bank_call()
        self._require_session(ctx, state)
        return sandbox_data.holdings_for(self._profile(ctx), account.external_id)

    async def owners(
        self, ctx: ConnectorContext, state: dict[str, Any], account: AccountData
    ) -> list[OwnerData]:
        await self._bank_call()
        self._require_session(ctx, state)
        return sandbox_data.owners_for(self._profile(ctx), account.external_id)


def _now(ctx: ConnectorContext) -> dt.datetime:
    if ctx.now is not None:
        return ctx.now
    return dt.datetime.combine(ctx.today, dt.time.max, dt.UTC)


def _not_after(found: list[TransactionData], now: dt.datetime) -> list[TransactionData]:
    """The sandbox makes a whole day at once; a time of today that is still to come is
    stamped ``now``, so nothing is dated in the future (the day's items and balances
    stay the same at every hour)."""
    for t in found:
        if t.transacted_at is not None and t.transacted_at > now:
            t.transacted_at = now
        if t.posted_at is not None and t.posted_at > now:
            t.posted_at = now
    return found
