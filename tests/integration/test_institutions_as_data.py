"""Institutions operators add for installed connectors: validation with clear
messages, options sealed and masked, updates and imports (all or none), removal, and
the CLI that drives them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from openagg.services import vault
from openagg.services.errors import BadRequest, Conflict, NotFound
from openagg.services.institutions import (
    InstitutionInput,
    add_institution,
    import_institutions,
    list_institutions,
    parse_credential,
    remove_institution,
    update_institution,
)
from openagg.services.lookup import institution_by_code
from tests.conftest import VENV_BIN, Platform, create_client_with_cli, openagg_env
from tests.databases import stored_bytes
from tests.integration.api_helpers import create_member, new_user


def bank(**changes: object) -> InstitutionInput:
    given = InstitutionInput(
        "sandbox",
        "my_bank",
        "My Bank",
        "https://my.bank.test",
        {"base_url": "https://api.my.bank.test", "client_secret": "cs-9f3e1d2c"},
    )
    for key, value in changes.items():
        setattr(given, key, value)
    return given


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"connector": "nope"}, "connector 'nope' is not installed (installed:"),
        ({"code": "My Bank"}, "code 'My Bank': lower-case letters"),
        ({"name": " "}, "name: 1 to 200 characters"),
        ({"url": "ftp://x"}, "url 'ftp://x': an absolute http:// or https:// URL"),
        ({"options": {"bad key": "x"}}, "option 'bad key'"),
        ({"credentials": [parse_credential("PIN:Pin:SECRET")]}, "type must be one of"),
        ({"oauth": True, "credentials": [parse_credential("PIN:Pin")]}, "takes no credentials"),
    ],
)
async def test_a_bad_institution_is_refused_with_a_message(
    platform: Platform, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(BadRequest, match=re.escape(message)):
        await add_institution(platform.rt, bank(**changes))
    assert all(r.code != "my_bank" for r in await list_institutions(platform.rt))


async def test_an_added_institution_is_served_with_sealed_options(platform: Platform) -> None:
    await add_institution(platform.rt, bank())
    with pytest.raises(Conflict):
        await add_institution(platform.rt, bank())

    listed = await platform.http.get("/institutions/my_bank")
    assert listed.status_code == 200 and listed.json()["institution"]["name"] == "My Bank"
    creds = (await platform.http.get("/institutions/my_bank/credentials")).json()
    assert [(c["field_name"], c["field_type"]) for c in creds["credentials"]] == [
        ("LOGIN", "TEXT"),
        ("PASSWORD", "PASSWORD"),
    ]
    # End users can create members there like anywhere else.
    user = await new_user(platform.http)
    await create_member(platform.http, user, "pw", code="my_bank", username="mxuser", expect=202)

    [row] = [r for r in await list_institutions(platform.rt) if r.code == "my_bank"]
    assert row.options == {"base_url": "https://api.my.bank.test", "client_secret": "***"}
    assert b"cs-9f3e1d2c" not in stored_bytes(platform.rt.settings.database_url)
    async with platform.rt.db.read() as s:
        inst = await institution_by_code(s, "my_bank")
    assert inst is not None
    assert vault.open_institution_options(platform.rt, inst)["client_secret"] == "cs-9f3e1d2c"

    with pytest.raises(Conflict, match="has 1 member"):
        await remove_institution(platform.rt, "my_bank")


async def test_update_changes_part_and_keeps_the_guids(platform: Platform) -> None:
    added = await add_institution(platform.rt, bank())
    before = {c["field_name"]: c["guid"] for c in added.credentials}
    await update_institution(
        platform.rt,
        "my_bank",
        name="My New Bank",
        set_options={"token_password": "tp-77aa"},
        remove_options=["base_url"],
        credentials=[parse_credential("LOGIN:User id"), parse_credential("PIN:Pin:PASSWORD")],
    )
    [row] = [r for r in await list_institutions(platform.rt) if r.code == "my_bank"]
    assert row.name == "My New Bank"
    assert row.options == {"client_secret": "***", "token_password": "***"}
    async with platform.rt.db.read() as s:
        inst = await institution_by_code(s, "my_bank")
    assert inst is not None and inst.guid == added.guid
    assert {c["field_name"]: c["guid"] for c in inst.credentials}["LOGIN"] == before["LOGIN"]
    with pytest.raises(BadRequest, match="has no option 'nope'"):
        await update_institution(platform.rt, "my_bank", remove_options=["nope"])
    with pytest.raises(NotFound):
        await update_institution(platform.rt, "no_bank", name="x")

    await remove_institution(platform.rt, "my_bank")
    assert all(r.code != "my_bank" for r in await list_institutions(platform.rt))


async def test_an_import_is_all_or_none(platform: Platform) -> None:
    good = {"connector": "sandbox", "code": "bank_a", "name": "Bank A", "oauth": True}
    bad = {"connector": "sandbox", "code": "bank_b", "name": "Bank B", "colour": "red"}
    with pytest.raises(BadRequest, match="institution 2: unknown fields colour"):
        await import_institutions(platform.rt, [good, bad])
    assert all(r.code != "bank_a" for r in await list_institutions(platform.rt))

    added = await import_institutions(platform.rt, [good])
    again = await import_institutions(
        platform.rt, [{**good, "name": "Bank A2"}, {**good, "code": "bank_c"}]
    )
    assert (added, again) == ((1, 0), (1, 1))
    detail = (await platform.http.get("/institutions/bank_a")).json()["institution"]
    assert detail["name"] == "Bank A2" and detail["supports_oauth"] is True
    assert (await platform.http.get("/institutions/bank_a/credentials")).json()["credentials"] == []


def test_the_cli_adds_imports_lists_and_refuses(tmp_path: Path) -> None:
    env = openagg_env(tmp_path)
    create_client_with_cli(env)

    def openagg(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "openagg"), *args], env=env, capture_output=True, text=True
        )

    added = openagg(
        "institutions", "add", "--connector", "sandbox", "--code", "cli_bank",
        "--name", "CLI Bank", "--option", "api_password=pw-1234",
        "--credential", "PIN:Pin:PASSWORD",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "pw-1234" not in added.stdout + added.stderr
    refused = openagg("institutions", "add", "--connector", "gone", "--code", "x", "--name", "X")
    assert refused.returncode == 1 and "connector 'gone' is not installed" in refused.stderr
    path = tmp_path / "many.json"
    path.write_text(json.dumps([{"connector": "sandbox", "code": "cli_two", "name": "Two"}]))
    imported = openagg("institutions", "import", str(path))
    assert imported.stdout.strip() == "1 added, 0 updated", imported.stderr
    path.write_text("{not json")
    assert "cannot read" in openagg("institutions", "import", str(path)).stderr
    listed = openagg("institutions", "list").stdout
    assert "cli_bank\tsandbox\t0 members\tCLI Bank\tapi_password=***" in listed
    assert "cli_two\tsandbox" in listed and "pw-1234" not in listed
    assert "sandbox\topenagg " in openagg("connectors", "list").stdout

    # What it supports beyond aggregation: said by its operator, checked against the
    # connector (ofx reads no account owners), shown in MX's supports_* fields.
    supports = ["--supports", "account_identification", "--supports", "account_verification"]
    assert openagg("institutions", "update", "cli_bank", *supports).returncode == 0
    both = "\tsupports account_identification,account_verification\n"
    assert both in openagg("institutions", "list").stdout
    assert openagg("institutions", "update", "cli_bank", "--name", "CLI").returncode == 0
    assert both in openagg("institutions", "list").stdout  # kept when not named
    assert openagg("institutions", "update", "cli_bank", "--supports", "none").returncode == 0
    assert "\tsupports " not in openagg("institutions", "list").stdout
    wrong = openagg("institutions", "update", "cli_bank", "--supports", "tax_document")
    assert wrong.returncode == 1 and "one of account_identification" in wrong.stderr
    ofx = openagg(
        "institutions", "add", "--connector", "ofx", "--code", "ofx_bank", "--name", "OFX",
        "--option", "url=https://ofx.example.com", "--option", "org=X", "--option", "fid=1",
        "--supports", "account_identification",
    )  # fmt: skip
    assert ofx.returncode == 1 and "cannot identify account owners" in ofx.stderr
