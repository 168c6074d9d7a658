"""MX's SDK against a live server with the fake Enable Banking API as an institution:
an OAuth member created with ``is_oauth``, its ``oauth_window_uri`` followed through
the bank's consent page (by this test, as the end user's browser), CONNECTED with
accounts and transactions; then re-authorized in place through a fresh link while
the bank gives the new consent new account uids for the same IBANs: the same member,
the same account guids, no duplicated transactions."""

from __future__ import annotations

import html
import json
import queue
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.compat.test_sdk import SCENARIO_TIMEOUT, SCRIPT, sdk  # noqa: F401  (the sdk fixture)
from tests.conftest import LiveServer, start_live_server
from tests.integration import fake_enablebanking
from tests.integration.fake_enablebanking import (
    CURRENT_IBAN,
    SAVINGS_IBAN,
    FakeEnableBanking,
    add_with_cli,
)

CODE = "fake_pankki"  # the scenario's EB_BANK
# The fake bank's fixtures (its key, the bank on a loopback port), for these tests.
key, bank = fake_enablebanking.key, fake_enablebanking.bank


def consent(url: str) -> httpx.Response:
    """The end user's browser, in plain HTTP: the member's link, the bank's consent
    page, its Allow button, and back to the platform's callback: its answer."""
    with httpx.Client(timeout=30) as browser:
        start = browser.get(url)
        assert start.status_code == 303, start.text
        page = browser.get(start.headers["location"])
        assert page.status_code == 200 and "Allow" in page.text, page.text
        form = re.search(r'<form method="post" action="([^"]+)">', page.text)
        assert form is not None, page.text
        fields = {
            k: html.unescape(v)
            for k, v in re.findall(r'type="hidden" name="(\w+)" value="([^"]*)"', page.text)
        }
        decided = browser.post(
            page.url.join(html.unescape(form.group(1))), data={**fields, "decision": "allow"}
        )
        assert decided.status_code == 303, decided.text
        return browser.get(decided.headers["location"])


def run_interactive(
    sdk: Path,  # noqa: F811
    server: LiveServer,
    name: str,
    on_link: Any,
    log: Path,
) -> tuple[dict[str, Any], list[str]]:
    """Run a scenario that hands links over on stdout and waits for "done" on stdin;
    ``on_link(step, url)`` plays the end user. The scenario's facts, and the steps."""
    with log.open("w") as err:
        proc = subprocess.Popen(
            [str(sdk), str(SCRIPT), server.url, server.client_id, server.api_key, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=SCRIPT.parent,
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    steps: list[str] = []
    last = ""
    try:
        while True:
            try:
                line = lines.get(timeout=SCENARIO_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"scenario {name} said nothing for {SCENARIO_TIMEOUT}s")
            if line is None:
                break
            if not line.strip():
                continue
            last = line
            said = json.loads(line)
            if "oauth_window_uri" in said and "step" in said:
                steps.append(said["step"])
                on_link(said["step"], said["oauth_window_uri"])
                assert proc.stdin is not None
                proc.stdin.write("done\n")
                proc.stdin.flush()
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, f"scenario {name} exited {code}\nstderr:\n{log.read_text()}"
    result: dict[str, Any] = json.loads(last)
    return result, steps


def test_mx_sdk_connects_and_reauthorizes_an_oauth_member_at_an_enable_banking_aspsp(
    sdk: Path,  # noqa: F811  (the fixture imported above)
    bank: FakeEnableBanking,
    key: rsa.RSAPrivateKey,
    tmp_path: Path,
) -> None:
    server = start_live_server(
        tmp_path,
        OPENAGG_CONNECTOR_ALLOW_PRIVATE_ADDRESSES="true",
        OPENAGG_FOREGROUND_THROTTLE_SECONDS="0",  # the renewal's aggregation runs at once
    )
    uids: dict[str, set[str]] = {}

    def end_user(step: str, url: str) -> None:
        if step == "renewal":
            bank.new_uids = True  # the bank's new consent: new uids for the same IBANs
        before = set(bank.sessions)
        done = consent(url)
        assert done.status_code == 200 and "Access granted" in done.text, done.text
        [session] = set(bank.sessions) - before
        uids[step] = set(bank.sessions[session].accounts)
        assert sorted(bank.sessions[session].accounts.values()) == sorted(
            [CURRENT_IBAN, SAVINGS_IBAN]
        )

    try:
        add_with_cli(server.env, bank, key, CODE)
        r, steps = run_interactive(
            sdk, server, "enablebanking_bank", end_user, tmp_path / "scenario.err"
        )
    finally:
        server.stop()

    assert steps == ["consent", "renewal"]
    assert r["create"] == [200, "PENDING", True]
    assert (r["first_status"], r["second_status"]) == ("CONNECTED", "CONNECTED")
    first, second = r["first"], r["second"]
    assert sorted((a[2], a[3], a[4]) for a in first["accounts"]) == [
        ("CHECKING", 3158.71, "EUR"),
        ("SAVINGS", 12201.15, "EUR"),
    ]
    assert len(first["transactions"]) == 9
    card = [t for t in first["transactions"] if t[5].endswith("CUR-P1")]
    assert [(t[2], t[3], t[4]) for t in card] == [("DEBIT", 23.4, "PENDING")]
    salary = [t for t in first["transactions"] if t[5].endswith("CUR-1")]
    assert [(t[2], t[3], t[4]) for t in salary] == [("CREDIT", 2450.0, "POSTED")]

    # Re-authorized: a fresh link for the same member, new uids at the bank ...
    assert r["renewal_link"] == [r["member_guid"], True]
    assert uids["consent"].isdisjoint(uids["renewal"])
    read = {q.path.split("/")[2] for q in bank.requests if q.path.endswith("/balances")}
    assert uids["renewal"] <= read
    # ... onto the same member, the same accounts, each transaction once.
    assert r["members"] == [r["member_guid"]]
    assert [a[0] for a in second["accounts"]] == [a[0] for a in first["accounts"]]
    assert len(second["transactions"]) == 9
    assert [t[0] for t in second["transactions"]] == [t[0] for t in first["transactions"]]
    assert len({t[1] for t in second["transactions"]}) == 9
    card = [t for t in second["transactions"] if t[5].endswith("CUR-P1")]
    assert [t[4] for t in card] == ["POSTED"]  # the card payment booked, the same row
    assert not bank.jwt_rejections
