"""Well-formed OFX requests: v1 (SGML; versions 102, 103, 151, 160) with unclosed
leaves as servers of that age expect, and v2 (XML; 200 to 220)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from openagg.ofx.models import AccountRef

V1_VERSIONS = ("102", "103", "151", "160")
V2_VERSIONS = ("200", "201", "202", "203", "210", "211", "220")

# A request aggregate: (tag, children); a leaf is (tag, text).
Node = tuple[str, "str | list[Node]"]

# Which message set wraps each transaction request, in the order OFX lists them.
_MESSAGE_SETS = (
    ("SIGNUPMSGSRQV1", ("ACCTINFOTRNRQ",)),
    ("BANKMSGSRQV1", ("STMTTRNRQ",)),
    ("CREDITCARDMSGSRQV1", ("CCSTMTTRNRQ",)),
    ("LOANMSGSRQV1", ("LOANSTMTTRNRQ",)),
    ("INVSTMTMSGSRQV1", ("INVSTMTTRNRQ",)),
    ("SECLISTMSGSRQV1", ("SECLISTTRNRQ",)),
)


def major_of(version: str) -> int:
    if version in V1_VERSIONS:
        return 1
    if version in V2_VERSIONS:
        return 2
    raise ValueError(
        f"unknown OFX version {version!r}: use one of {', '.join(V1_VERSIONS + V2_VERSIONS)}"
    )


def has_clientuid(version: str) -> bool:
    """CLIENTUID came with OFX 1.0.3 and 2.0.3."""
    return version not in ("102", "200", "201", "202")


@dataclass
class SignonRequest:
    userid: str
    password: str
    org: str | None = None
    fid: str | None = None
    appid: str = "QWIN"
    appver: str = "2700"
    clientuid: str | None = None
    language: str = "ENG"
    # MFA answers by phrase id, sent on every signon after a challenge (MFACHALLENGEA).
    mfa_answers: Mapping[str, str] = field(default_factory=dict)


def ofx_datetime(when: dt.datetime | dt.date) -> str:
    if isinstance(when, dt.datetime):
        when = when.astimezone(dt.UTC)
        return when.strftime("%Y%m%d%H%M%S") + ".000[0:GMT]"
    return when.strftime("%Y%m%d")


def account_list(trnuid: str, since: dt.date = dt.date(1990, 1, 1)) -> Node:
    return (
        "ACCTINFOTRNRQ",
        [("TRNUID", trnuid), ("ACCTINFORQ", [("DTACCTUP", ofx_datetime(since))])],
    )


def mfa_challenge(trnuid: str, now: dt.datetime) -> Node:
    """Asks for the questions after a 3000; goes in the signon message set."""
    return (
        "MFACHALLENGETRNRQ",
        [("TRNUID", trnuid), ("MFACHALLENGERQ", [("DTCLIENT", ofx_datetime(now))])],
    )


def statement(trnuid: str, account: AccountRef, start: dt.date | None, end: dt.date | None) -> Node:
    """The statement request for the account's kind, with transactions from ``start``
    to ``end`` (both inclusive as days); investment requests ask for positions and
    balances too."""
    window: list[Node] = []
    if start is not None:
        window.append(("DTSTART", ofx_datetime(start)))
    if end is not None:
        # DTEND is exclusive: the day after ``end`` includes all of ``end``.
        window.append(("DTEND", ofx_datetime(end + dt.timedelta(days=1))))
    window.append(("INCLUDE", "Y"))
    inctran: Node = ("INCTRAN", window)
    if account.kind == "BANK":
        bank: list[Node] = [("BANKID", account.bank_id or "")]
        if account.branch_id:
            bank.append(("BRANCHID", account.branch_id))
        bank += [("ACCTID", account.account_id), ("ACCTTYPE", account.account_type or "CHECKING")]
        return ("STMTTRNRQ", [("TRNUID", trnuid), ("STMTRQ", [("BANKACCTFROM", bank), inctran])])
    if account.kind == "CREDITCARD":
        body: list[Node] = [("CCACCTFROM", [("ACCTID", account.account_id)]), inctran]
        return ("CCSTMTTRNRQ", [("TRNUID", trnuid), ("CCSTMTRQ", body)])
    if account.kind == "LOAN":
        loan: list[Node] = [("ACCTID", account.account_id)]
        if account.account_type:
            loan.append(("LOANACCTTYPE", account.account_type))
        body = [("LOANACCTFROM", loan), inctran]
        return ("LOANSTMTTRNRQ", [("TRNUID", trnuid), ("LOANSTMTRQ", body)])
    if account.kind == "INVESTMENT":
        body = [
            (
                "INVACCTFROM",
                [("BROKERID", account.broker_id or ""), ("ACCTID", account.account_id)],
            ),
            inctran,
            ("INCOO", "N"),
            ("INCPOS", [("INCLUDE", "Y")]),
            ("INCBAL", "Y"),
        ]
        return ("INVSTMTTRNRQ", [("TRNUID", trnuid), ("INVSTMTRQ", body)])
    raise ValueError(f"no statement request for accounts of kind {account.kind!r}")


def request(
    version: str,
    signon: SignonRequest,
    messages: Sequence[Node] = (),
    *,
    now: dt.datetime | None = None,
    file_uid: str | None = None,
) -> bytes:
    """A whole request document: header, signon, then each message in its message set."""
    major = major_of(version)
    now = now or dt.datetime.now(dt.UTC)
    sonrq: list[Node] = [
        ("DTCLIENT", ofx_datetime(now)),
        ("USERID", signon.userid),
        ("USERPASS", signon.password),
        ("LANGUAGE", signon.language),
    ]
    if signon.org or signon.fid:
        fi: list[Node] = []
        if signon.org:
            fi.append(("ORG", signon.org))
        if signon.fid:
            fi.append(("FID", signon.fid))
        sonrq.append(("FI", fi))
    sonrq += [("APPID", signon.appid), ("APPVER", signon.appver)]
    if signon.clientuid and has_clientuid(version):
        sonrq.append(("CLIENTUID", signon.clientuid))
    for phrase_id, answer in signon.mfa_answers.items():
        sonrq.append(("MFACHALLENGEA", [("MFAPHRASEID", phrase_id), ("MFAPHRASEA", answer)]))
    signon_set: list[Node] = [("SONRQ", sonrq)]
    signon_set += [m for m in messages if m[0] == "MFACHALLENGETRNRQ"]
    body: list[Node] = [("SIGNONMSGSRQV1", signon_set)]
    for set_tag, members in _MESSAGE_SETS:
        chosen = [m for m in messages if m[0] in members]
        if chosen:
            body.append((set_tag, chosen))
    known = {"MFACHALLENGETRNRQ"} | {t for _, members in _MESSAGE_SETS for t in members}
    unknown = [m[0] for m in messages if m[0] not in known]
    if unknown:
        raise ValueError(f"no message set for {', '.join(unknown)}")
    uid = file_uid or uuid.uuid4().hex.upper()
    root: Node = ("OFX", body)
    if major == 1:
        text = "".join(_render(root, close_leaves=False))
        header = (
            "OFXHEADER:100\r\nDATA:OFXSGML\r\n"
            f"VERSION:{version}\r\nSECURITY:NONE\r\n"
            + (
                "ENCODING:USASCII\r\nCHARSET:1252\r\n"
                if _fits_cp1252(text)
                else "ENCODING:UTF-8\r\nCHARSET:NONE\r\n"
            )
            + f"COMPRESSION:NONE\r\nOLDFILEUID:NONE\r\nNEWFILEUID:{uid}\r\n\r\n"
        )
        whole = header + text
        return whole.encode("cp1252") if _fits_cp1252(text) else whole.encode("utf-8")
    header = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\r\n'
        f'<?OFX OFXHEADER="200" VERSION="{version}" SECURITY="NONE" OLDFILEUID="NONE"'
        f' NEWFILEUID="{uid}"?>\r\n'
    )
    return (header + "".join(_render(root, close_leaves=True))).encode("utf-8")


def _fits_cp1252(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render(node: Node, close_leaves: bool) -> list[str]:
    """SGML (leaves left unclosed, as v1 servers expect) or XML (every element closed)."""
    tag, content = node
    if isinstance(content, str):
        closer = f"</{tag}>" if close_leaves else ""
        return [f"<{tag}>{_escape(content)}{closer}\r\n"]
    out = [f"<{tag}>\r\n"]
    for child in content:
        out += _render(child, close_leaves)
    out.append(f"</{tag}>\r\n")
    return out
