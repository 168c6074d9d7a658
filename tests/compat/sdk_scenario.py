"""Drive OpenAgg with MX's official Python SDK (``mx-platform-python``, unmodified).

Run by the SDK's own interpreter (pydantic 1), never by the project venv: it imports
only the standard library and ``mx_platform_python``.

    python sdk_scenario.py HOST CLIENT_ID API_KEY SCENARIO

Prints one JSON line of facts to stdout. Any exception, including a pydantic
``ValidationError`` raised inside the SDK, ends the run with a traceback on stderr
and a non-zero exit code.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import mx_platform_python as mx
from mx_platform_python import ApiException

V1 = "application/vnd.mx.api.v1+json"
POLL_SECONDS = 0.2
POLL_TIMEOUT = 30.0
MXBANK = "mxbank"
SANDBOX_BANK = "sandbox_bank"


class ScenarioError(AssertionError):
    """A step did not behave as the scenario expects."""


def check(condition: bool, message: str) -> None:
    """Fail the scenario (non-zero exit) when ``condition`` is false."""
    if not condition:
        raise ScenarioError(message)


class Session:
    """The SDK's tag APIs over one ``ApiClient``, plus small helpers."""

    def __init__(self, client: mx.ApiClient) -> None:
        self.users = mx.UsersApi(client)
        self.institutions = mx.InstitutionsApi(client)
        self.members = mx.MembersApi(client)
        self.accounts = mx.AccountsApi(client)
        self.transactions = mx.TransactionsApi(client)
        self.holdings = mx.InvestmentHoldingsApi(client)
        self._credential_guids: dict[str, dict[str, str]] = {}

    # -- users -------------------------------------------------------------------

    def create_user(self, label: str) -> Any:
        """A fresh user with a unique partner id and e-mail."""
        tag = f"{label}-{uuid.uuid4().hex[:10]}"
        body = mx.UserCreateRequestBody(
            user=mx.UserCreateRequest(
                id=f"partner-{tag}",
                email=f"{tag}@example.com",
                metadata=json.dumps({"scenario": label}),
                is_disabled=False,
            )
        )
        user = self.users.create_user(body).user
        check(user is not None and bool(user.guid), "create_user returned no user")
        return user

    # -- members -----------------------------------------------------------------

    def credentials(self, institution_code: str, username: str, password: str) -> list[Any]:
        """CredentialRequests for an institution's LOGIN and PASSWORD fields."""
        if institution_code not in self._credential_guids:
            listed = self.institutions.list_institution_credentials(institution_code)
            self._credential_guids[institution_code] = {
                c.field_name: c.guid for c in listed.credentials or []
            }
        guids = self._credential_guids[institution_code]
        return [
            mx.CredentialRequest(guid=guids["LOGIN"], value=username),
            mx.CredentialRequest(guid=guids["PASSWORD"], value=password),
        ]

    def create_member(
        self,
        user_guid: str,
        institution_code: str,
        username: str,
        password: str,
        *,
        skip_aggregation: bool | None = None,
    ) -> tuple[int, Any]:
        """Create a member; returns (status code, MemberResponse)."""
        body = mx.MemberCreateRequestBody(
            member=mx.MemberCreateRequest(
                institution_code=institution_code,
                credentials=self.credentials(institution_code, username, password),
                skip_aggregation=skip_aggregation,
            )
        )
        resp = self.members.create_member_with_http_info(user_guid, body)
        check(resp.data is not None, f"create_member ({resp.status_code}) returned no body")
        return resp.status_code, resp.data.member

    def wait_for(self, member_guid: str, user_guid: str, want: str, *, idle: bool = True) -> Any:
        """Poll read_member_status until ``want`` (and, if ``idle``, not aggregating)."""
        deadline = time.monotonic() + POLL_TIMEOUT
        seen: list[str | None] = []
        while True:
            status = self.members.read_member_status(member_guid, user_guid).member
            check(status is not None, "read_member_status returned no member")
            if not seen or seen[-1] != status.connection_status:
                seen.append(status.connection_status)
            if status.connection_status == want and (not idle or not status.is_being_aggregated):
                return status
            if time.monotonic() > deadline:
                raise ScenarioError(
                    f"member {member_guid} never reached {want} (idle={idle}); statuses seen: "
                    f"{seen}, is_being_aggregated={status.is_being_aggregated}"
                )
            time.sleep(POLL_SECONDS)

    def answer_challenges(self, member_guid: str, user_guid: str, answer: str) -> dict[str, Any]:
        """List the member's challenges and resume with ``answer`` (or the option whose
        value is ``answer``); returns facts about the round."""
        listed = self.members.list_member_challenges_with_http_info(member_guid, user_guid)
        check(listed.status_code == 200, f"list_member_challenges gave {listed.status_code}")
        check(listed.data is not None, "list_member_challenges returned no body")
        challenges = listed.data.challenges or []
        check(len(challenges) > 0, "CHALLENGED member lists no challenges")
        answers = []
        for c in challenges:
            value = answer
            choices = list(c.options or []) + list(c.image_options or [])
            if choices:
                picked = [o for o in choices if o.value == answer]
                check(bool(picked), f"challenge {c.guid} has no option with value {answer!r}")
                value = picked[0].value
            answers.append(mx.CredentialRequest(guid=c.guid, value=value))
        body = mx.MemberResumeRequestBody(member=mx.MemberResumeRequest(challenges=answers))
        resumed = self.members.resume_aggregation_with_http_info(member_guid, user_guid, body)
        check(resumed.data is not None, f"resume_aggregation ({resumed.status_code}) no body")
        first = challenges[0]
        return {
            "challenges_status": listed.status_code,
            "challenge_count": len(challenges),
            "challenge_guid": first.guid,
            "challenge_type": first.type,
            "challenge_label": first.label,
            "has_options": bool(first.options or first.image_options),
            "has_image_data": bool(first.image_data),
            "resume_status": resumed.status_code,
            "resume_connection_status": resumed.data.member.connection_status,
        }

    def delete_user(self, user_guid: str) -> int:
        """Delete a user; returns the status code."""
        return self.users.delete_user_with_http_info(V1, user_guid).status_code


def api_error_status(call: Callable[[], Any]) -> int | None:
    """The status of the ApiException ``call`` raises, or None if it succeeds."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return None


# --- scenarios -------------------------------------------------------------------


def scenario_full(s: Session) -> dict[str, Any]:
    """The whole aggregation journey through every core SDK call."""
    out: dict[str, Any] = {}
    user = s.create_user("full")
    u = user.guid
    out["user_guid"] = u

    # Institutions: filters arrive as True/False (capitalised by the SDK).
    found = s.institutions.list_institutions(
        name="MX Bank",
        iso_country_code=["US", "CA"],
        supports_account_verification=True,
        supports_account_statement=False,
        records_per_page=10,
    )
    out["institution_search_codes"] = [i.code for i in found.institutions or []]
    out["institution_search_per_page"] = found.pagination.per_page
    excluded = s.institutions.list_institutions(supports_account_statement=True)
    out["statement_filter_codes"] = [i.code for i in excluded.institutions or []]
    everything = s.institutions.list_institutions()
    out["institution_total"] = everything.pagination.total_entries
    inst = s.institutions.read_institution(MXBANK).institution
    out["institution"] = {
        "code": inst.code,
        "name": inst.name,
        "supports_account_verification": inst.supports_account_verification,
    }
    creds = s.institutions.list_institution_credentials(MXBANK)
    out["credential_fields"] = sorted(c.field_name for c in creds.credentials or [])

    # Create and connect.
    code, member = s.create_member(u, MXBANK, "mxuser", "any-password")
    m = member.guid
    out["create_status"] = code
    out["create_is_being_aggregated"] = member.is_being_aggregated
    status = s.wait_for(m, u, "CONNECTED")
    out["connected_status"] = status.connection_status
    out["has_processed_accounts"] = status.has_processed_accounts
    out["member_credentials"] = len(s.members.list_member_credentials(m, u).credentials or [])

    listed = s.members.list_members(u)
    out["member_count"] = len(listed.members or [])
    read = s.members.read_member(m, u).member
    out["read_member"] = {
        "guid": read.guid,
        "connection_status": read.connection_status,
        "is_being_aggregated": read.is_being_aggregated,
        "institution_code": read.institution_code,
        "successfully_aggregated_at": read.successfully_aggregated_at,
    }

    # Accounts.
    user_accounts = s.accounts.list_user_accounts(u).accounts or []
    member_accounts = s.accounts.list_member_accounts(u, m).accounts or []
    out["user_account_count"] = len(user_accounts)
    out["member_account_count"] = len(member_accounts)
    check(len(user_accounts) > 0, "no accounts after CONNECTED")
    account = s.accounts.read_account(user_accounts[0].guid, u).account
    out["read_account_guid_matches"] = account.guid == user_accounts[0].guid
    by_member = s.accounts.read_account_by_member(user_accounts[0].guid, m, u).account
    out["read_account_by_member_guid_matches"] = by_member.guid == user_accounts[0].guid

    # Transactions at all three levels, windowed and paged.
    today = dt.date.today()
    window = {
        "from_date": (today - dt.timedelta(days=90)).isoformat(),
        "to_date": (today + dt.timedelta(days=5)).isoformat(),
        "records_per_page": 10,
    }
    tx_user = s.transactions.list_transactions(u, **window)
    tx_member = s.transactions.list_transactions_by_member(m, u, **window)
    with_tx = [a for a in user_accounts if a.type in ("CHECKING", "CREDIT_CARD")] or user_accounts
    tx_account = s.transactions.list_transactions_by_account(with_tx[0].guid, u, **window)
    out["transactions"] = {
        "user_page": len(tx_user.transactions or []),
        "user_total": tx_user.pagination.total_entries,
        "user_per_page": tx_user.pagination.per_page,
        "member_total": tx_member.pagination.total_entries,
        "account_total": tx_account.pagination.total_entries,
    }
    check(bool(tx_user.transactions), "no transactions listed")
    first_tx = tx_user.transactions[0]
    page2 = s.transactions.list_transactions(u, page=2, **window)
    enriched = s.transactions.list_transactions_by_member(
        m, u, includes="repeating_transactions,merchants,classifications,geolocations"
    )
    out["transactions"]["with_includes"] = len(enriched.transactions or [])
    out["transactions"]["page2_current_page"] = page2.pagination.current_page
    one = s.transactions.read_transaction(u, first_tx.guid)
    out["read_transaction_type"] = type(one).__name__
    out["read_transaction_items"] = len(getattr(one, "transactions", None) or [])

    # Holdings at all three levels.
    h_user = s.holdings.list_holdings(u).investment_holdings or []
    h_member = s.holdings.list_holdings_by_member(m, u).investment_holdings or []
    out["holding_count"] = len(h_user)
    out["member_holding_count"] = len(h_member)
    check(len(h_user) > 0, "no holdings listed")
    h_account = s.holdings.list_holdings_by_account(h_user[0].account_guid, u)
    out["account_holding_count"] = len(h_account.investment_holdings or [])
    holding = s.holdings.read_holding(h_user[0].guid, u).investment_holding
    out["read_holding_guid_matches"] = holding.guid == h_user[0].guid

    # Premium jobs, one at a time.
    jobs: dict[str, Any] = {}
    r = s.members.check_balances_with_http_info(m, u)
    jobs["check_balances"] = r.status_code
    s.wait_for(m, u, "CONNECTED")
    r = s.members.identify_member_with_http_info(m, u)
    jobs["identify_member"] = r.status_code
    s.wait_for(m, u, "CONNECTED")
    owners = s.accounts.list_account_owners_by_member(m, u)
    jobs["account_owner_count"] = len(owners.account_owners or [])
    r = s.members.verify_member_with_http_info(m, u)
    jobs["verify_member"] = r.status_code
    jobs["verify_has_body"] = r.data is not None and r.data.member is not None
    s.wait_for(m, u, "CONNECTED")
    numbers = s.accounts.list_account_numbers_by_member(m, u)
    jobs["account_number_count"] = len(numbers.account_numbers or [])
    out["jobs"] = jobs

    # Users.
    updated = s.users.update_user(
        u,
        mx.UserUpdateRequestBody(
            user=mx.UserUpdateRequest(metadata=json.dumps({"updated": True}), is_disabled=False)
        ),
    ).user
    out["updated_metadata"] = updated.metadata
    by_id = s.users.list_users(id=user.id, is_disabled=False)
    out["list_users_by_id"] = [x.guid for x in by_id.users or []]
    by_email = s.users.list_users(email=user.email, records_per_page=10)
    out["list_users_by_email"] = [x.guid for x in by_email.users or []]
    disabled = s.users.list_users(is_disabled=True)
    out["list_users_disabled_guids"] = [x.guid for x in disabled.users or []]

    # Clean up.
    out["delete_member_status"] = s.members.delete_member_with_http_info(m, u).status_code
    out["read_deleted_member_error"] = api_error_status(lambda: s.members.read_member(m, u))
    out["delete_user_status"] = s.delete_user(u)
    out["read_deleted_user_error"] = api_error_status(lambda: s.users.read_user(u))
    return out


def scenario_mfa(s: Session) -> dict[str, Any]:
    """Each mxbank MFA password answered with ``correct``, plus a two-round flow."""
    out: dict[str, Any] = {}
    user = s.create_user("mfa")
    u = user.guid
    for password in ("challenge", "options", "image"):
        code, member = s.create_member(u, MXBANK, "mxuser", password)
        m = member.guid
        s.wait_for(m, u, "CHALLENGED", idle=False)
        facts = s.answer_challenges(m, u, "correct")
        facts["create_status"] = code
        facts["final_status"] = s.wait_for(m, u, "CONNECTED").connection_status
        after = s.members.list_member_challenges_with_http_info(m, u)
        facts["challenges_after_status"] = after.status_code
        out[password] = facts

    # Two rounds: "challenge" as the first answer asks a second question.
    multi_user = s.create_user("mfa-multi")
    mu = multi_user.guid
    _, member = s.create_member(mu, MXBANK, "mxuser", "challenge")
    m = member.guid
    s.wait_for(m, mu, "CHALLENGED", idle=False)
    first = s.answer_challenges(m, mu, "challenge")
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:  # wait for the *second* challenge, not the first one still showing
        status = s.members.read_member_status(m, mu).member
        guids = [c.guid for c in status.challenges or []]
        if (
            status.connection_status == "CHALLENGED"
            and guids
            and guids[0] != first["challenge_guid"]
        ):
            break
        check(
            status.connection_status in ("CHALLENGED", "RESUMED"),
            f"after the first answer the member is {status.connection_status}",
        )
        check(time.monotonic() < deadline, "the second challenge never came")
        time.sleep(POLL_SECONDS)
    second = s.answer_challenges(m, mu, "correct")
    out["multi"] = {
        "first": first,
        "second": second,
        "final_status": s.wait_for(m, mu, "CONNECTED").connection_status,
    }
    s.delete_user(mu)
    s.delete_user(u)
    return out


def scenario_denied_then_update(s: Session) -> dict[str, Any]:
    """A DENIED member can't be aggregated (422) until its credentials are updated."""
    out: dict[str, Any] = {}
    u = s.create_user("denied").guid
    code, member = s.create_member(u, MXBANK, "mxuser", "INVALID")
    m = member.guid
    out["create_status"] = code
    out["denied_status"] = s.wait_for(m, u, "DENIED").connection_status
    read = s.members.read_member(m, u).member
    out["denied_message"] = read.connection_status_message
    out["aggregate_error"] = api_error_status(lambda: s.members.aggregate_member(m, u))

    body = mx.MemberUpdateRequestBody(
        member=mx.MemberUpdateRequest(credentials=s.credentials(MXBANK, "mxuser", "password"))
    )
    updated = s.members.update_member_with_http_info(m, u, body)
    check(updated.data is not None, f"update_member ({updated.status_code}) returned no body")
    out["update_status"] = updated.status_code
    out["update_connection_status"] = updated.data.member.connection_status
    out["update_is_being_aggregated"] = updated.data.member.is_being_aggregated
    out["final_status"] = s.wait_for(m, u, "CONNECTED").connection_status
    s.delete_user(u)
    return out


def _member_snapshot(member: Any) -> dict[str, Any]:
    return {
        "connection_status": member.connection_status,
        "aggregated_at": member.aggregated_at,
        "successfully_aggregated_at": member.successfully_aggregated_at,
    }


def scenario_throttle(s: Session) -> dict[str, Any]:
    """sandbox_bank throttles a second aggregate; mxbank never does."""
    out: dict[str, Any] = {}
    u = s.create_user("throttle").guid

    _, sandbox_member = s.create_member(u, SANDBOX_BANK, "user_good", "pass_good")
    sm = sandbox_member.guid
    s.wait_for(sm, u, "CONNECTED")
    before = _member_snapshot(s.members.read_member(sm, u).member)
    r = s.members.aggregate_member_with_http_info(sm, u)
    check(r.data is not None and r.data.member is not None, f"aggregate gave {r.status_code}")
    time.sleep(0.5)  # a job, had one wrongly started, would show up by now
    after = _member_snapshot(s.members.read_member(sm, u).member)
    out["sandbox"] = {
        "aggregate_status": r.status_code,
        "is_being_aggregated": r.data.member.is_being_aggregated,
        "response": _member_snapshot(r.data.member),
        "before": before,
        "after": after,
    }

    _, mx_member = s.create_member(u, MXBANK, "mxuser", "pass")
    mm = mx_member.guid
    s.wait_for(mm, u, "CONNECTED")
    r = s.members.aggregate_member_with_http_info(mm, u, include_holdings=False)
    check(r.data is not None and r.data.member is not None, f"aggregate gave {r.status_code}")
    out["mxbank"] = {
        "aggregate_status": r.status_code,
        "is_being_aggregated": r.data.member.is_being_aggregated,
        "final_status": s.wait_for(mm, u, "CONNECTED").connection_status,
    }
    s.delete_user(u)
    return out


def scenario_skip_aggregation(s: Session) -> dict[str, Any]:
    """skip_aggregation creates without a job (200, CREATED, not aggregating)."""
    out: dict[str, Any] = {}
    u = s.create_user("skip").guid
    code, member = s.create_member(u, MXBANK, "mxuser", "pass", skip_aggregation=True)
    m = member.guid
    out["create_status"] = code
    out["connection_status"] = member.connection_status
    out["is_being_aggregated"] = member.is_being_aggregated
    status = s.members.read_member_status(m, u).member
    out["status_after"] = status.connection_status
    out["status_is_being_aggregated"] = status.is_being_aggregated
    r = s.members.aggregate_member_with_http_info(m, u)
    out["aggregate_status"] = r.status_code
    out["final_status"] = s.wait_for(m, u, "CONNECTED").connection_status
    s.delete_user(u)
    return out


def scenario_read_transaction(s: Session) -> dict[str, Any]:
    """read_transaction as the SDK sees it (run against either configured shape)."""
    u = s.create_user("read-tx").guid
    _, member = s.create_member(u, MXBANK, "mxuser", "pass")
    s.wait_for(member.guid, u, "CONNECTED")
    listed = s.transactions.list_transactions(u, records_per_page=10).transactions or []
    check(bool(listed), "no transactions listed")
    resp = s.transactions.read_transaction_with_http_info(u, listed[0].guid)
    items = (resp.data.transactions if resp.data is not None else None) or []
    out = {
        "status": resp.status_code,
        "type": type(resp.data).__name__,
        "items": len(items),
        "guid_matches": bool(items) and items[0].guid == listed[0].guid,
        "amount_matches": bool(items) and items[0].amount == listed[0].amount,
    }
    s.delete_user(u)
    return out


PLUGIN_BANK = "test_bank"  # served by tests/connector_plugin, added with the CLI


def scenario_plugin_bank(s: Session) -> dict[str, Any]:
    """A member at an institution of a plugin connector: connect, then a second job
    (a credential update), and the data."""
    out: dict[str, Any] = {}
    u = s.create_user("plugin").guid
    out["institution_name"] = s.institutions.read_institution(PLUGIN_BANK).institution.name
    code, member = s.create_member(u, PLUGIN_BANK, "ada", "correct-horse-9")
    m = member.guid
    out["create_status"] = code
    out["first_status"] = s.wait_for(m, u, "CONNECTED").connection_status
    again = s.credentials(PLUGIN_BANK, "ada", "correct-horse-9")
    body = mx.MemberUpdateRequestBody(member=mx.MemberUpdateRequest(credentials=again))
    updated = s.members.update_member_with_http_info(m, u, body)
    out["update_status"] = updated.status_code
    out["update_is_being_aggregated"] = updated.data.member.is_being_aggregated
    out["second_status"] = s.wait_for(m, u, "CONNECTED").connection_status
    listed = s.transactions.list_transactions_by_member(m, u).transactions or []
    out["transactions"] = sorted((t.id, t.status, t.amount) for t in listed)
    s.delete_user(u)
    return out


# Served by the fake OFX bank of tests/integration/fake_ofx_bank.py, added with the CLI.
OFX_BANKS = {"v2": "fake_ofx_bank", "v1": "ofx_v1", "v1only": "ofx_v1only"}
OFX_MFA_ANSWERS = {"first pet": "Rex", "code we sent": "123456"}


def scenario_ofx_bank(s: Session) -> dict[str, Any]:
    """Members at OFX Direct Connect institutions: connected with their data, a second
    aggregation, one MFA round through resume, a denied login with the bank's words."""
    out: dict[str, Any] = {}
    u = s.create_user("ofx").guid
    code, member = s.create_member(u, OFX_BANKS["v2"], "ada", "good")
    m = member.guid
    out["create_status"] = code
    out["first_status"] = s.wait_for(m, u, "CONNECTED").connection_status
    accounts = s.accounts.list_user_accounts(u, records_per_page=100).accounts or []
    out["accounts"] = sorted((a.id, a.type, a.balance) for a in accounts)
    listed = s.transactions.list_transactions_by_member(m, u, records_per_page=100).transactions
    out["transactions"] = sorted(
        (t.id, t.type, t.amount, t.check_number_string) for t in listed or []
    )
    held = s.holdings.list_holdings_by_member(m, u).investment_holdings or []
    out["holdings"] = sorted((h.symbol, h.quantity) for h in held)
    # A second aggregation (the credentials again) adds nothing.
    again = s.credentials(OFX_BANKS["v2"], "ada", "good")
    body = mx.MemberUpdateRequestBody(member=mx.MemberUpdateRequest(credentials=again))
    s.members.update_member(m, u, body)
    out["second_status"] = s.wait_for(m, u, "CONNECTED").connection_status
    listed = s.transactions.list_transactions_by_member(m, u, records_per_page=100).transactions
    out["transactions_after"] = len(listed or [])

    _, member = s.create_member(u, OFX_BANKS["v2"], "ada", "mfa")
    s.wait_for(member.guid, u, "CHALLENGED", idle=False)
    challenges = s.members.list_member_challenges(member.guid, u).challenges or []
    out["mfa_labels"] = sorted(c.label for c in challenges)
    answers = [
        mx.CredentialRequest(
            guid=c.guid, value=next(v for k, v in OFX_MFA_ANSWERS.items() if k in c.label)
        )
        for c in challenges
    ]
    resume = mx.MemberResumeRequestBody(member=mx.MemberResumeRequest(challenges=answers))
    s.members.resume_aggregation(member.guid, u, resume)
    out["mfa_status"] = s.wait_for(member.guid, u, "CONNECTED").connection_status

    _, member = s.create_member(u, OFX_BANKS["v2"], "ada", "wrong#9q")
    out["denied_status"] = s.wait_for(member.guid, u, "DENIED").connection_status
    out["denied_message"] = s.members.read_member(member.guid, u).member.connection_status_message

    for version in ("v1", "v1only"):
        _, member = s.create_member(u, OFX_BANKS[version], "ada", "good")
        out[f"{version}_status"] = s.wait_for(member.guid, u, "CONNECTED").connection_status
    s.delete_user(u)
    return out


FDX_BANK = "fake_fdx"


def _consent(url: str) -> tuple[int, str]:
    """The end user's browser at an FDX bank: follow the link to the consent page,
    press its first button (Allow), follow the bank back to the platform's callback.
    The standard library follows the redirects."""
    import html
    import re
    import urllib.parse
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as page:
        text, where = page.read().decode(), page.geturl()
    form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', text, re.S)
    check(form is not None, f"no consent form at {where}")
    assert form is not None
    fields: dict[str, str] = {}
    for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2)):
        fields.setdefault(html.unescape(name), html.unescape(value))
    data = urllib.parse.urlencode(fields).encode()
    target = urllib.parse.urljoin(where, html.unescape(form.group(1)))
    with urllib.request.urlopen(target, data=data, timeout=30) as back:
        return back.status, back.read().decode()


def scenario_fdx_bank(s: Session) -> dict[str, Any]:
    """An OAuth member at an FDX bank: PENDING with its link, consent at the bank,
    CONNECTED with accounts, paged transactions and holdings; then a second
    aggregation through the SDK."""
    out: dict[str, Any] = {}
    u = s.create_user("fdx").guid
    body = mx.MemberCreateRequestBody(
        member=mx.MemberCreateRequest(institution_code=FDX_BANK, credentials=[], is_oauth=True)
    )
    resp = s.members.create_member_with_http_info(u, body)
    member = resp.data.member
    out["create"] = [resp.status_code, member.connection_status, bool(member.oauth_window_uri)]
    link = mx.WidgetsApi(s.members.api_client).request_o_auth_window_uri(member.guid, u)
    out["consent"] = _consent(link.member.oauth_window_uri)
    out["first_status"] = s.wait_for(member.guid, u, "CONNECTED").connection_status
    accounts = s.accounts.list_user_accounts(u, records_per_page=100).accounts or []
    out["accounts"] = sorted((a.name, a.type, a.subtype, a.balance) for a in accounts)
    listed = s.transactions.list_transactions_by_member(member.guid, u, records_per_page=100)
    out["transactions"] = sorted(
        (t.id, t.type, t.amount, t.status) for t in listed.transactions or []
    )
    held = s.holdings.list_holdings_by_member(member.guid, u).investment_holdings or []
    out["holdings"] = sorted((h.symbol, h.holding_type, h.quantity) for h in held)
    s.members.aggregate_member(member.guid, u)
    out["second_status"] = s.wait_for(member.guid, u, "CONNECTED").connection_status
    again = s.transactions.list_transactions_by_member(member.guid, u, records_per_page=100)
    out["transactions_after"] = sorted(t.id for t in again.transactions or [])
    return out


def scenario_managed_data(s: Session) -> dict[str, Any]:
    """All 16 managed-data operations, and managed data in the ordinary lists."""
    md = mx.ManagedDataApi(s.members.api_client)
    out: dict[str, Any] = {}
    u = s.create_user("managed").guid
    institutions = md.list_managed_institutions(records_per_page=100).institutions or []
    out["institution_codes"] = sorted(i.code for i in institutions)
    member = md.create_managed_member(
        u,
        mx.ManagedMemberCreateRequestBody(
            member=mx.ManagedMemberCreateRequest(
                institution_code=MXBANK, id="partner-m-1", name="My managed bank", metadata="m"
            )
        ),
    ).member
    m = member.guid
    out["member"] = [member.name, member.id, member.is_managed_by_user, member.connection_status]
    out["managed_members"] = [x.guid for x in md.list_managed_members(u).members or []] == [m]
    updated = md.update_managed_member(
        m,
        u,
        mx.ManagedMemberUpdateRequestBody(member=mx.ManagedMemberUpdateRequest(name="Renamed")),
    ).member
    out["member_renamed"] = md.read_managed_member(m, u).member.name == updated.name == "Renamed"
    account = md.create_managed_account(
        m,
        u,
        mx.ManagedAccountCreateRequestBody(
            account=mx.ManagedAccountCreateRequest(
                balance=1000.5,
                id="acct-1",
                name="Managed checking",
                type="CHECKING",
                account_number="1234567890",
                apr=1.5,
                currency_code="USD",
            )
        ),
    ).account
    a = account.guid
    out["account"] = [account.id, account.name, account.type, account.balance, account.apr]
    md.update_managed_account(
        a,
        m,
        u,
        mx.ManagedAccountUpdateRequestBody(account=mx.ManagedAccountUpdateRequest(balance=900.25)),
    )
    out["account_balance"] = md.read_managed_account(a, m, u).account.balance
    out["managed_accounts"] = len(md.list_managed_accounts(m, u).accounts or [])
    created = md.create_managed_transaction(
        a,
        m,
        u,
        mx.ManagedTransactionCreateRequestBody(
            transaction=mx.ManagedTransactionCreateRequest(
                amount="61.11",
                description="Whole Foods",
                status="POSTED",
                posted_at="2026-03-02T12:00:00Z",
                transacted_at="2026-03-01T12:00:00Z",
                type="DEBIT",
                id="txn-1",
                memo="groceries",
            )
        ),
    ).transaction
    t = created.guid
    out["transaction"] = [
        created.id,
        created.amount,
        created.type,
        created.transacted_at,
        created.memo,
    ]
    md.update_managed_transaction(
        a,
        m,
        t,
        u,
        mx.ManagedTransactionUpdateRequestBody(
            transaction=mx.ManagedTransactionUpdateRequest(description="Whole Foods Market")
        ),
    )
    out["transaction_description"] = md.read_managed_transaction(a, m, t, u).transaction.description
    listed = md.list_managed_transactions(a, m, u, from_date="2026-01-01", to_date="2026-12-31")
    out["managed_transactions"] = len(listed.transactions or [])
    # The ordinary lists show managed data too.
    out["in_members"] = m in [x.guid for x in s.members.list_members(u).members or []]
    out["in_accounts"] = a in [x.guid for x in s.accounts.list_user_accounts(u).accounts or []]
    everything = s.transactions.list_transactions(u, from_date="2026-01-01").transactions or []
    out["in_transactions"] = t in [x.guid for x in everything]
    out["aggregate_error"] = api_error_status(lambda: s.members.aggregate_member(m, u))
    md.delete_managed_transaction(a, m, t, u)
    out["after_transaction_delete"] = len(md.list_managed_transactions(a, m, u).transactions or [])
    md.delete_managed_account(a, m, u)
    out["after_account_delete"] = len(md.list_managed_accounts(m, u).accounts or [])
    md.delete_managed_member(m, V1, u)
    out["after_member_delete"] = len(md.list_managed_members(u).members or [])
    s.delete_user(u)
    return out


SCENARIOS: dict[str, Callable[[Session], dict[str, Any]]] = {
    "managed_data": scenario_managed_data,
    "ofx_bank": scenario_ofx_bank,
    "fdx_bank": scenario_fdx_bank,
    "plugin_bank": scenario_plugin_bank,
    "full": scenario_full,
    "mfa": scenario_mfa,
    "denied_then_update": scenario_denied_then_update,
    "throttle": scenario_throttle,
    "skip_aggregation": scenario_skip_aggregation,
    "read_transaction": scenario_read_transaction,
}


EB_BANK = "fake_pankki"


def _hand_over(step: str, url: str) -> None:
    """Give the test an ``oauth_window_uri`` to follow (one JSON line on stdout) and
    wait until it says, on stdin, that the end user is back from the bank."""
    print(json.dumps({"step": step, "oauth_window_uri": url}), flush=True)
    answer = sys.stdin.readline().strip()
    check(answer == "done", f"the test answered {answer!r} after {step}")


def _eb_snapshot(s: Session, member_guid: str, u: str) -> dict[str, Any]:
    accounts = s.accounts.list_member_accounts(u, member_guid, records_per_page=100).accounts
    txns = s.transactions.list_transactions_by_member(member_guid, u, records_per_page=100)
    return {
        "accounts": sorted(
            (a.guid, a.name, a.type, a.balance, a.currency_code) for a in accounts or []
        ),
        "transactions": sorted(
            (t.guid, t.id, t.type, t.amount, t.status, t.description)
            for t in txns.transactions or []
        ),
    }


def scenario_enablebanking_bank(s: Session) -> dict[str, Any]:
    """An OAuth member at an Enable Banking ASPSP: PENDING with its link, which the
    test follows through the bank's consent page; CONNECTED with accounts and
    transactions; then re-authorized in place through a fresh link (the test follows
    it too): the same member, accounts and transactions."""
    out: dict[str, Any] = {}
    u = s.create_user("enablebanking").guid
    body = mx.MemberCreateRequestBody(
        member=mx.MemberCreateRequest(institution_code=EB_BANK, credentials=[], is_oauth=True)
    )
    resp = s.members.create_member_with_http_info(u, body)
    member = resp.data.member
    out["create"] = [resp.status_code, member.connection_status, member.is_oauth]
    read = s.members.read_member(member.guid, u).member
    check(bool(read.oauth_window_uri), "the PENDING OAuth member has no oauth_window_uri")
    _hand_over("consent", read.oauth_window_uri)
    out["first_status"] = s.wait_for(member.guid, u, "CONNECTED").connection_status
    out["first"] = _eb_snapshot(s, member.guid, u)

    widgets = mx.WidgetsApi(s.members.api_client)
    renewal = widgets.request_o_auth_window_uri(member.guid, u).member
    out["renewal_link"] = [renewal.guid, renewal.oauth_window_uri != read.oauth_window_uri]
    _hand_over("renewal", renewal.oauth_window_uri)
    out["second_status"] = s.wait_for(member.guid, u, "CONNECTED").connection_status
    out["second"] = _eb_snapshot(s, member.guid, u)
    out["members"] = [m.guid for m in s.members.list_members(u).members or []]
    out["member_guid"] = member.guid
    return out


SCENARIOS["enablebanking_bank"] = scenario_enablebanking_bank


def main(argv: list[str]) -> int:
    """Run one scenario; print its facts as one JSON line."""
    if len(argv) != 5 or argv[4] not in SCENARIOS:
        print(f"usage: {argv[0]} HOST CLIENT_ID API_KEY {{{','.join(SCENARIOS)}}}", file=sys.stderr)
        return 2
    host, client_id, api_key, name = argv[1:]
    config = mx.Configuration(host=host, username=client_id, password=api_key)
    try:
        with mx.ApiClient(config) as client:
            result = SCENARIOS[name](Session(client))
    except Exception as exc:
        traceback.print_exc()
        if isinstance(exc, ApiException):
            print(f"ApiException status={exc.status} body={exc.body!r}", file=sys.stderr)
        return 1
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
