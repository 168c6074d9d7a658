"""The OAuth step in the end user's browser: where an ``oauth_window_uri`` leads
(``/oauth/start/<token>``), the one callback every OAuth connector uses
(``/oauth/callback``), and the sandbox bank's stand-in for an institution's consent
page (``/sandbox/oauth/authorize``)."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from openagg.api.http import runtime
from openagg.api.pages import PAGE_HEADERS, client_address, script_json
from openagg.api.routing import Router
from openagg.connectors.sandbox import SANDBOX_OAUTH_AUTHORIZE_PATH, sandbox_authorization_code
from openagg.services import oauth, widget
from openagg.services.errors import ServiceError

router = Router()

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/assets/theme.css"><style>
body {{ padding: 0 1rem; }}
main {{ max-width: 28rem; margin: 12vh auto 0; padding: 1.5rem; background: var(--card);
  border: 1px solid var(--line); border-radius: 12px; }}
h1 {{ font-size: 1.4rem; margin: 0 0 .75rem; }}
form {{ display: flex; gap: .75rem; flex-wrap: wrap; margin-top: 1.25rem; }}
button {{ font: inherit; padding: .6rem 1.1rem; border-radius: 8px; cursor: pointer;
  border: 1px solid var(--line); background: var(--bg); color: var(--fg); }}
button[value="allow"] {{ background: var(--accent); color: var(--accent-fg);
  border-color: var(--accent); }}
</style></head><body>
<main><h1>{heading}</h1><p>{message}</p>{form}</main>{script}</body></html>"""
# Its own files only. The sandbox bank's form may post: its answer redirects through
# the callback to wherever the app asked (``client_redirect_url``), and browsers hold
# a form's redirects to ``form-action`` too.
_FORM_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"].replace(
        "; form-action 'none'", ""
    ),
}
_TELL_WIDGET = (
    '<script type="application/json" id="oa-oauth-complete">{data}</script>'
    '<script type="module" src="/assets/oauth-complete.js"></script>'
)


def _page(
    heading: str,
    message: str,
    status_code: int = 200,
    form: str = "",
    outcome: dict[str, object] | None = None,
) -> HTMLResponse:
    """A page of the OAuth step. With ``outcome`` (MX's ``oauthComplete/*`` message),
    the page posts it to the widget window that opened it, and closes itself
    (``assets/oauth-complete.js``)."""
    return HTMLResponse(
        _PAGE.format(
            title=html.escape(heading),
            heading=html.escape(heading),
            message=html.escape(message),
            form=form,
            script=_TELL_WIDGET.format(data=script_json(outcome)) if outcome else "",
        ),
        status_code=status_code,
        headers=_FORM_HEADERS if form else PAGE_HEADERS,
    )


def _outcome(member_guid: str | None, reason: str | None = None) -> dict[str, object]:
    """The callback page's message to the widget: success, or an error with its reason."""
    metadata: dict[str, object] = {"member_guid": member_guid, "error_reason": reason}
    kind = "error" if reason else "success"
    return {"type": f"oauthComplete/{kind}", "metadata": metadata}


def _base_url(request: Request) -> str:
    return runtime(request).settings.public_url or str(request.base_url).rstrip("/")


@router.get("/oauth/start/{token}")
async def oauth_start(token: str, request: Request) -> Response:
    session = request.query_params.get(widget.OAUTH_SESSION_PARAM)
    try:
        url = await oauth.start(
            runtime(request), token, session, _base_url(request), client_address(request)
        )
    except ServiceError as exc:
        return _page(
            "Sign-in link",
            exc.message,
            exc.status_code,
            outcome=_outcome(None, oauth.error_reason(exc)),
        )
    return RedirectResponse(url, status_code=303)


@router.get(oauth.CALLBACK_PATH)
async def oauth_callback(request: Request) -> Response:
    params = dict(request.query_params)
    try:
        done = await oauth.finish(
            runtime(request), params, _base_url(request), client_address(request)
        )
    except ServiceError as exc:
        # A bad or replayed ``state``: refused, nothing changed.
        return _page(
            "Sign-in link",
            exc.message,
            exc.status_code,
            outcome=_outcome(None, oauth.error_reason(exc)),
        )
    if done.redirect_url:
        # MX's APP referral source: back to the app, with status and member_guid.
        return RedirectResponse(done.redirect_url, status_code=303)
    guid = done.member.guid if done.member else None
    if done.error:
        told = _outcome(guid, done.reason or oauth.SERVER_ERROR)
        return _page("Not connected", f"{done.error} You can close this window.", 400, outcome=told)
    return _page(
        "Access granted",
        "The app is connecting to your accounts. You can close this window.",
        outcome=_outcome(guid),
    )


# --- the sandbox bank's consent page (a real institution hosts its own) ------------

SANDBOX_BANK = "MX Bank (OAuth)"


def _sandbox_redirect_allowed(request: Request, redirect_uri: str) -> bool:
    """Only this platform's callback: the page must not send anyone elsewhere."""
    target = urlsplit(redirect_uri)
    own = urlsplit(_base_url(request))
    return target.netloc == own.netloc and target.path == oauth.CALLBACK_PATH


@router.get(SANDBOX_OAUTH_AUTHORIZE_PATH)
async def sandbox_consent(request: Request) -> Response:
    q = request.query_params
    if not _sandbox_redirect_allowed(request, q.get("redirect_uri", "")):
        return _page(SANDBOX_BANK, "This authorization request is not valid.", 400)
    fields = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(q.get(name, ""))}">'
        for name in ("redirect_uri", "state", "code_challenge")
    )
    form = (
        f'<form method="post" action="{SANDBOX_OAUTH_AUTHORIZE_PATH}">{fields}'
        '<button type="submit" name="decision" value="allow">Authorize access</button> '
        '<button type="submit" name="decision" value="deny">Deny</button></form>'
    )
    return _page(SANDBOX_BANK, "Allow the app to read your accounts?", form=form)


@router.post(SANDBOX_OAUTH_AUTHORIZE_PATH)
async def sandbox_decide(request: Request) -> Response:
    # A plain urlencoded form; parsed here rather than with a multipart dependency.
    form = {
        k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
    }
    redirect_uri, state = form.get("redirect_uri", ""), form.get("state", "")
    if not _sandbox_redirect_allowed(request, redirect_uri):
        return _page(SANDBOX_BANK, "This authorization request is not valid.", 400)
    if form.get("decision") == "allow":
        code = sandbox_authorization_code(form.get("code_challenge", ""))
        answer = {"code": code, "state": state}
    else:
        answer = {"error": "access_denied", "state": state}
    return RedirectResponse(f"{redirect_uri}?{urlencode(answer)}", status_code=303)
