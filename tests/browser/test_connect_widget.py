"""The Connect widget in headless Chromium, embedded in a host page on another origin:
full flows against a live server, the exact postMessage events in order, and a
screenshot of every screen (see conftest)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser.conftest import (
    DemoServer,
    DemoWidget,
    Widget,
    artifacts_dir,
    institution,
    new_user,
    sign_in,
    widget_url,
)
from tests.conftest import LiveServer, start_live_server

CREATED, DENIED, CHALLENGED, REJECTED, CONNECTED, UPDATED, RESUMED = 0, 2, 3, 4, 6, 15, 18
LOAD = {"mx": True, "type": "mx/load", "metadata": {}}
USERNAMES = {"mxbank": "mxuser", "sandbox_bank": "user_good"}
GOOD_PASSWORD = {"mxbank": "any password", "sandbox_bank": "pass_good"}


def answer_all(w: Widget, answer: str) -> None:
    """Answer every challenge on the MFA screen: type it, or choose the option with it."""
    for field in w.frame.locator('input[type="text"]').all():
        field.fill(answer)
    for radio in w.frame.locator(f'input[type="radio"][value="{answer}"]').all():
        radio.check()
    w.frame.get_by_role("button", name="Continue").click()


def member_of(w: Widget) -> str:
    update = next(e for e in w.events(1) if e["type"] == "mx/connect/memberStatusUpdate")
    guid = update["metadata"]["member_guid"]
    assert isinstance(guid, str) and guid.startswith("MBR-")
    return guid


def status(w: Widget, guid: str, value: int) -> dict[str, Any]:
    return w.event("memberStatusUpdate", member_guid=guid, connection_status=value)


def inst_ref(api: httpx.Client, code: str) -> dict[str, str]:
    return {"code": code, "guid": institution(api, code)["guid"]}


def test_mxbank_success_by_keyboard(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    w = open_widget(user)
    w.screen("search")
    search = w.frame.locator("#oa-search")
    search.focus()
    w.page.keyboard.type("mx bank")
    w.frame.get_by_text("2 institutions").wait_for()
    w.page.keyboard.press("Tab")  # "Upload a statement file", under the search field
    w.page.keyboard.press("Tab")  # the first result
    w.page.keyboard.press("Enter")
    w.screen("enterCreds")
    w.page.keyboard.press("Tab")
    w.page.keyboard.type("mxuser")
    w.page.keyboard.press("Tab")
    w.page.keyboard.type("any password")
    w.page.keyboard.press("Enter")
    w.screen("connected")
    shown = w.frame.locator(".oa-accounts .oa-name").all_inner_texts()
    w.frame.get_by_role("button", name="Done").click()

    mx = institution(api, "mxbank")
    guid = member_of(w)
    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="search"),
            w.event("institutionSearch", query="mx bank"),
            w.event(
                "selectedInstitution",
                code="mxbank",
                guid=mx["guid"],
                name=mx["name"],
                url=mx["url"],
            ),
            w.step("search", "enterCreds"),
            w.event("enterCredentials", institution={"code": "mxbank", "guid": mx["guid"]}),
            status(w, guid, CREATED),
            w.step("enterCreds", "connecting"),
            status(w, guid, CONNECTED),
            w.event("memberConnected", member_guid=guid),
            w.step("connecting", "connected"),
            w.event("connected/primaryAction"),
        ]
    )
    m = api.get(f"/users/{user}/members/{guid}").json()["member"]
    assert m["connection_status"] == "CONNECTED"
    assert m["background_aggregation_is_disabled"] is False
    accounts = api.get(f"/users/{user}/members/{guid}/accounts").json()["accounts"]
    assert shown == [a["name"] for a in accounts] and len(shown) == 6


MFA_FLOWS = [
    ("mxbank", "challenge", 1),
    ("mxbank", "options", 1),
    ("mxbank", "image", 1),
    ("sandbox_bank", "mfa_text", 1),
    ("sandbox_bank", "mfa_token", 1),
    ("sandbox_bank", "mfa_options", 1),
    ("sandbox_bank", "mfa_image", 1),
    ("sandbox_bank", "mfa_image_options", 1),
    ("sandbox_bank", "mfa_multi", 2),
]


@pytest.mark.parametrize(("code", "password", "rounds"), MFA_FLOWS)
def test_mfa(api: httpx.Client, open_widget: Any, code: str, password: str, rounds: int) -> None:
    user = new_user(api)
    w = open_widget(user, current_institution_code=code)
    sign_in(w, USERNAMES[code], password)
    for _ in range(rounds):
        w.screen("mfa")
        answer_all(w, "correct")
    w.screen("connected")

    guid = member_of(w)
    expected = [
        LOAD,
        w.event("loaded", initial_step="enterCreds"),
        w.event("enterCredentials", institution=inst_ref(api, code)),
        status(w, guid, CREATED),
        w.step("enterCreds", "connecting"),
    ]
    for _ in range(rounds):
        expected += [
            status(w, guid, CHALLENGED),
            w.step("connecting", "mfa"),
            w.event("submitMFA", member_guid=guid),
            status(w, guid, RESUMED),
            w.step("mfa", "connecting"),
        ]
    expected += [
        status(w, guid, CONNECTED),
        w.event("memberConnected", member_guid=guid),
        w.step("connecting", "connected"),
    ]
    w.assert_events(expected)


def test_wrong_answer_then_retry(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    w = open_widget(user, current_institution_code="mxbank", disable_institution_search=True)
    sign_in(w, "mxuser", "challenge")
    w.screen("mfa")
    answer_all(w, "Paris")
    error = w.screen("loginError")
    assert "wasn't accepted" in error.inner_text()
    # Search is disabled: no way back to it.
    assert w.frame.get_by_role("button", name="Connect a different institution").count() == 0
    w.frame.get_by_role("button", name="Try again").click()
    w.screen("mfa")

    guid = member_of(w)
    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="enterCreds"),
            w.event("enterCredentials", institution=inst_ref(api, "mxbank")),
            status(w, guid, CREATED),
            w.step("enterCreds", "connecting"),
            status(w, guid, CHALLENGED),
            w.step("connecting", "mfa"),
            w.event("submitMFA", member_guid=guid),
            status(w, guid, RESUMED),
            w.step("mfa", "connecting"),
            status(w, guid, REJECTED),
            w.step("connecting", "loginError"),
            w.step("loginError", "connecting"),
            status(w, guid, CHALLENGED),
            w.step("connecting", "mfa"),
        ]
    )


def test_denied_then_update_credentials(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    w = open_widget(user, current_institution_code="mxbank")
    sign_in(w, "mxuser", "INVALID")
    error = w.screen("loginError")
    assert "credentials weren't accepted" in error.inner_text()
    w.frame.get_by_role("button", name="Update credentials").click()
    w.screen("enterCreds")
    w.frame.get_by_label("Username").fill("mxuser")
    w.frame.get_by_label("Password").fill("the right one")
    w.frame.get_by_role("button", name="Update and connect").click()
    w.screen("connected")

    guid = member_of(w)
    ref = inst_ref(api, "mxbank")
    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="enterCreds"),
            w.event("enterCredentials", institution=ref),
            status(w, guid, CREATED),
            w.step("enterCreds", "connecting"),
            status(w, guid, DENIED),
            w.step("connecting", "loginError"),
            w.step("loginError", "enterCreds"),
            w.event("updateCredentials", member_guid=guid, institution=ref),
            status(w, guid, UPDATED),
            w.step("enterCreds", "connecting"),
            status(w, guid, CONNECTED),
            w.event("memberConnected", member_guid=guid),
            w.step("connecting", "connected"),
        ]
    )


def test_verification_mode_dark_and_narrow(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    w = open_widget(user, mode="verification", color_scheme="dark")
    w.page.set_viewport_size({"width": 360, "height": 740})
    search = w.screen("search")
    assert "verify" in search.inner_text()
    background = w.frame.locator("body").evaluate("(b) => getComputedStyle(b).backgroundColor")
    assert background == "rgb(13, 17, 23)"
    w.frame.get_by_role("button", name="OpenAgg Sandbox Bank").click()
    sign_in(w, "user_good", "pass_good")
    connected = w.screen("connected")
    assert "verified" in connected.inner_text()

    guid = member_of(w)
    m = api.get(f"/users/{user}/members/{guid}").json()["member"]
    assert m["background_aggregation_is_disabled"] is True
    numbers = api.get(f"/users/{user}/members/{guid}/account_numbers").json()
    assert numbers["account_numbers"]
    # Verification pulls no transactions unless include_transactions says so.
    assert api.get(f"/users/{user}/members/{guid}/transactions").json()["transactions"] == []


def test_current_member_guid_resumes_mfa(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    creds = api.get("/institutions/mxbank/credentials").json()["credentials"]
    values = {"LOGIN": "mxuser", "PASSWORD": "challenge"}
    body = {
        "member": {
            "institution_code": "mxbank",
            "credentials": [{"guid": c["guid"], "value": values[c["field_name"]]} for c in creds],
        }
    }
    guid = api.post(f"/users/{user}/members", json=body).json()["member"]["guid"]
    deadline = time.monotonic() + 10
    while (
        api.get(f"/users/{user}/members/{guid}/status").json()["member"]["connection_status"]
        != "CHALLENGED"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    w = open_widget(user, current_member_guid=guid)
    w.screen("mfa")
    answer_all(w, "correct")
    w.screen("connected")
    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="mfa"),
            status(w, guid, CHALLENGED),
            w.event("submitMFA", member_guid=guid),
            status(w, guid, RESUMED),
            w.step("mfa", "connecting"),
            status(w, guid, CONNECTED),
            w.event("memberConnected", member_guid=guid),
            w.step("connecting", "connected"),
        ]
    )


def test_delete_connection(api: httpx.Client, open_widget: Any) -> None:
    user = new_user(api)
    w = open_widget(user, current_institution_code="mxbank")
    sign_in(w, "mxuser", "good")
    w.screen("connected")
    w.frame.get_by_role("button", name="Remove this connection").click()
    w.screen("deleteMember")
    w.frame.get_by_role("button", name="Remove", exact=True).click()
    w.screen("deleted")
    w.frame.get_by_role("button", name="Connect an institution").click()
    w.screen("search")

    guid = member_of(w)
    assert api.get(f"/users/{user}/members/{guid}").status_code == 404
    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="enterCreds"),
            w.event("enterCredentials", institution=inst_ref(api, "mxbank")),
            status(w, guid, CREATED),
            w.step("enterCreds", "connecting"),
            status(w, guid, CONNECTED),
            w.event("memberConnected", member_guid=guid),
            w.step("connecting", "connected"),
            w.step("connected", "deleteMember"),
            w.event("memberDeleted", member_guid=guid),
            w.step("deleteMember", "deleted"),
            w.event("backToSearch"),
            w.step("deleted", "search"),
        ]
    )


def test_used_url_shows_clear_page(api: httpx.Client, page: Any, request: Any) -> None:
    url = widget_url(api, new_user(api))
    assert page.goto(url).status == 200
    again = page.goto(url)
    assert again.status == 410
    assert page.get_by_role("heading").inner_text() == "This link can't be used"
    assert "already used" in page.get_by_role("alert").inner_text()
    page.screenshot(path=str(artifacts_dir(request) / "01-linkError.png"))


def test_expired_url(browser: Any, tmp_path_factory: pytest.TempPathFactory, request: Any) -> None:
    short = start_live_server(tmp_path_factory.mktemp("expiry"), OPENAGG_WIDGET_URL_TTL_SECONDS="1")
    try:
        with httpx.Client(base_url=short.url, auth=(short.client_id, short.api_key)) as api:
            url = widget_url(api, new_user(api))
        time.sleep(1.2)
        context = browser.new_context()
        page = context.new_page()
        response = page.goto(url)
        assert response.status == 410
        assert "expired" in page.get_by_role("alert").inner_text()
        page.screenshot(path=str(artifacts_dir(request) / "01-expired.png"))
        context.close()
    finally:
        short.stop()


def test_mobile_webview_navigates(api: httpx.Client, open_webview: Any) -> None:
    """In a WebView the widget navigates to <scheme>://… instead of posting messages: a
    whole MX Bank connection with a security question, every navigation in order."""
    user = new_user(api)
    w = open_webview(user)
    w.screen("search")
    w.frame.locator("#oa-search").fill("mx bank")
    w.frame.get_by_text("2 institutions").wait_for()
    w.frame.locator(".oa-institution").first.click()
    sign_in(w, "mxuser", "challenge")
    w.screen("mfa")
    answer_all(w, "correct")
    w.screen("connected")
    w.frame.get_by_role("button", name="Done").click()

    mx = institution(api, "mxbank")
    guid = member_of(w)
    w.assert_events(
        [
            LOAD,
            w.event("loaded", initial_step="search"),
            w.event("institutionSearch", query="mx bank"),
            w.event(
                "selectedInstitution",
                code="mxbank",
                guid=mx["guid"],
                name=mx["name"],
                url=mx["url"],
            ),
            w.step("search", "enterCreds"),
            w.event("enterCredentials", institution={"code": "mxbank", "guid": mx["guid"]}),
            status(w, guid, CREATED),
            w.step("enterCreds", "connecting"),
            status(w, guid, CHALLENGED),
            w.step("connecting", "mfa"),
            w.event("submitMFA", member_guid=guid),
            status(w, guid, RESUMED),
            w.step("mfa", "connecting"),
            status(w, guid, CONNECTED),
            w.event("memberConnected", member_guid=guid),
            w.step("connecting", "connected"),
            w.event("connected/primaryAction"),
        ]
    )
    # The URLs themselves: <scheme>://<namespace>/<event>?metadata=<URL-encoded JSON>.
    assert w.navigations[0] == "myapp://load?metadata=%7B%7D"
    assert w.navigations[-1] == "myapp://connect/connected/primaryAction?metadata=" + quote(
        json.dumps({"user_guid": user, "session_guid": w.session_guid}, separators=(",", ":")),
        safe="-_.!~*'()",  # what encodeURIComponent leaves alone
    )
    # Every navigation was handed over and cancelled: the page is still the widget's.
    assert w.page.url.startswith(f"{str(api.base_url).rstrip('/')}/connect/")


def test_demo_page(demo_server: DemoServer, page: Any, request: Any) -> None:
    """`openagg serve --demo`'s /demo: it gets a widget URL for the demo client's user,
    embeds it, and lists every event; a whole MX Bank connection in its iframe."""
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(f"{demo_server.url}/demo")
    w = DemoWidget(page, "", artifacts_dir(request))
    w.screen("search", timeout=5_000)
    loaded = next(e for e in w.events(2) if e["type"] == "mx/connect/loaded")
    w.user_guid = loaded["metadata"]["user_guid"]
    w.frame.locator("#oa-search").fill("mx bank")
    w.frame.get_by_text("2 institutions").wait_for()
    w.frame.locator(".oa-institution").first.click()
    sign_in(w, "mxuser", "any password")
    w.screen("connected")
    w.frame.get_by_role("button", name="Done").click()

    with httpx.Client(
        base_url=demo_server.url,
        auth=(demo_server.client_id, demo_server.api_key),
        headers={"Accept": "application/vnd.mx.api.v1+json"},
        timeout=10,
    ) as api:
        mx = institution(api, "mxbank")
        guid = member_of(w)
        w.assert_events(
            [
                LOAD,
                w.event("loaded", initial_step="search"),
                w.event("institutionSearch", query="mx bank"),
                w.event(
                    "selectedInstitution",
                    code="mxbank",
                    guid=mx["guid"],
                    name=mx["name"],
                    url=mx["url"],
                ),
                w.step("search", "enterCreds"),
                w.event("enterCredentials", institution={"code": "mxbank", "guid": mx["guid"]}),
                status(w, guid, CREATED),
                w.step("enterCreds", "connecting"),
                status(w, guid, CONNECTED),
                w.event("memberConnected", member_guid=guid),
                w.step("connecting", "connected"),
                w.event("connected/primaryAction"),
            ]
        )
        page.screenshot(path=str(w.shots / f"{w.count + 1:02d}-demo-events.png"), full_page=True)
        # The connection belongs to the demo client's "demo-user".
        user = api.get(f"/users/{w.user_guid}").json()["user"]
        assert user["id"] == "demo-user"
        member = api.get(f"/users/{w.user_guid}/members/{guid}").json()["member"]
        assert member["connection_status"] == "CONNECTED"


def test_demo_is_off_by_default(server: LiveServer) -> None:
    """Without `--demo` (or OPENAGG_WIDGET_DEMO=1) there is no /demo."""
    assert httpx.get(f"{server.url}/demo").status_code == 404
    r = httpx.post(
        f"{server.url}/demo/widget_url",
        json={"widget_url": {"widget_type": "connect_widget"}},
    )
    assert r.status_code == 404
