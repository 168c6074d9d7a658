"""Institutions as data: the ones operators add for installed connectors, beside
those the connectors serve out of the box (``admin.seed_institutions``).

Every process reads institutions from the database when it needs them, so one
added, updated or removed here is seen by running API and worker processes at once.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from openagg.connectors.base import Connector
from openagg.db.models import Institution, Member
from openagg.ofx import writer
from openagg.runtime import Runtime
from openagg.services import vault
from openagg.services.errors import BadRequest, Conflict, NotFound
from openagg.services.lookup import institution_by_code

_CODE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,99}$")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
CREDENTIAL_TYPES = ("TEXT", "PASSWORD", "TOKEN")
# Stable guids for operator-added institutions and their credential fields.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://openagg.dev/institutions")


@dataclass(frozen=True)
class CredentialField:
    field_name: str
    label: str
    type: str = "TEXT"


# What an operator may say an institution supports beyond aggregation (MX's
# ``supports_<name>`` fields): the premium jobs OpenAgg runs (``members.CAPABILITY``).
CAPABILITIES = ("account_identification", "account_verification")

DEFAULT_CREDENTIALS = (
    CredentialField("LOGIN", "Username", "TEXT"),
    CredentialField("PASSWORD", "Password", "PASSWORD"),
)


@dataclass
class InstitutionInput:
    """What an operator says of an institution (``openagg institutions add``)."""

    connector: str
    code: str
    name: str
    url: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    # None: a username and a password (none for OAuth institutions).
    credentials: list[CredentialField] | None = None
    oauth: bool = False
    iso_country_code: str = "US"
    supports: tuple[str, ...] = ()  # of CAPABILITIES


def parse_credential(text: str) -> CredentialField:
    """``FIELD_NAME:LABEL[:TYPE]``."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise BadRequest(f"credential {text!r}: expected FIELD_NAME:LABEL[:TYPE]")
    kind = parts[2].upper() if len(parts) == 3 else "TEXT"
    return CredentialField(parts[0].upper(), parts[1], kind)


def parse_option(text: str) -> tuple[str, str]:
    """``KEY=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep:
        raise BadRequest(f"option {text!r}: expected KEY=VALUE")
    return key, value


def _check(rt: Runtime, given: InstitutionInput) -> None:
    if given.connector not in rt.connectors:
        installed = ", ".join(sorted(rt.connectors)) or "none"
        raise BadRequest(f"connector {given.connector!r} is not installed (installed: {installed})")
    if not _CODE.match(given.code):
        raise BadRequest(
            f"code {given.code!r}: lower-case letters, digits, '_' and '-', at most 100"
        )
    if not given.name.strip() or len(given.name) > 200:
        raise BadRequest("name: 1 to 200 characters")
    if given.url is not None and not re.match(r"^https?://[^\s/]+", given.url):
        raise BadRequest(f"url {given.url!r}: an absolute http:// or https:// URL")
    for key in given.options:
        if not _KEY.match(key):
            raise BadRequest(f"option {key!r}: letters, digits, '_' and '-', at most 64")
    names = [c.field_name for c in given.credentials or []]
    if len(set(names)) != len(names):
        raise BadRequest("credentials: each field name once")
    for c in given.credentials or []:
        if c.type not in CREDENTIAL_TYPES:
            raise BadRequest(
                f"credential {c.field_name}: type must be one of {', '.join(CREDENTIAL_TYPES)}"
            )
    if given.oauth and given.credentials:
        raise BadRequest("an OAuth institution takes no credentials")
    for capability in given.supports:
        if capability not in CAPABILITIES:
            raise BadRequest(f"supports {capability!r}: one of {', '.join(CAPABILITIES)} (or none)")
    if "account_identification" in given.supports and not _reads_owners(
        rt.connectors[given.connector]
    ):
        raise BadRequest(
            f"connector {given.connector!r} cannot identify account owners (it has no owners)"
        )


def _reads_owners(connector: object) -> bool:
    """Whether the connector has an ``owners`` of its own (the base class's finds none)."""
    found = getattr(type(connector), "owners", None)
    return callable(found) and found is not Connector.owners


def _credentials(code: str, fields: list[CredentialField]) -> list[dict[str, Any]]:
    return [
        {
            "guid": f"CRD-{uuid.uuid5(_NAMESPACE, f'{code}:{c.field_name}')}",
            "label": c.label,
            "field_name": c.field_name,
            "field_type": c.type,
            "type": c.type,
            "display_order": n,
        }
        for n, c in enumerate(fields, 1)
    ]


def _profile(given: InstitutionInput, old: dict[str, Any] | None = None) -> dict[str, Any]:
    profile = dict(old or {})
    profile.update(
        url=given.url,
        iso_country_code=given.iso_country_code,
        supports_oauth=given.oauth,
        supports_transaction_history=True,
    )
    for capability in CAPABILITIES:
        profile[f"supports_{capability}"] = capability in given.supports
    for flag in ("supports_account_statement", "supports_tax_document"):  # not served
        profile.setdefault(flag, False)
    return profile


def _apply(rt: Runtime, inst: Institution, given: InstitutionInput) -> None:
    inst.name = given.name.strip()
    inst.connector = given.connector
    inst.profile = _profile(given, inst.profile)
    fields = given.credentials
    if fields is None:
        fields = [] if given.oauth else list(DEFAULT_CREDENTIALS)
    inst.credentials = _credentials(inst.code, fields)
    vault.seal_institution_options(rt, inst, given.options)


def _new(code: str) -> Institution:
    return Institution(
        code=code,
        guid=f"INS-{uuid.uuid5(_NAMESPACE, code)}",
        data_source="default",
        is_retired=False,
        throttle_exempt=False,
    )


async def add_institution(rt: Runtime, given: InstitutionInput) -> Institution:
    _check(rt, given)
    async with rt.db.write() as s:
        if await institution_by_code(s, given.code) is not None:
            raise Conflict(f"institution {given.code!r} exists; use 'institutions update'")
        inst = _new(given.code)
        _apply(rt, inst, given)
        s.add(inst)
    return inst


def current_input(rt: Runtime, inst: Institution) -> InstitutionInput:
    """An institution as an operator would have given it, to change part of it."""
    profile = inst.profile or {}
    return InstitutionInput(
        connector=inst.connector,
        code=inst.code,
        name=inst.name,
        url=profile.get("url"),
        options=vault.open_institution_options(rt, inst),
        credentials=[
            CredentialField(c["field_name"], c["label"], c.get("field_type") or "TEXT")
            for c in inst.credentials
        ],
        oauth=bool(profile.get("supports_oauth")),
        iso_country_code=profile.get("iso_country_code") or "US",
        supports=tuple(c for c in CAPABILITIES if profile.get(f"supports_{c}")),
    )


async def update_institution(
    rt: Runtime,
    code: str,
    *,
    name: str | None = None,
    url: str | None = None,
    set_options: dict[str, str] | None = None,
    remove_options: list[str] | None = None,
    credentials: list[CredentialField] | None = None,
    supports: tuple[str, ...] | None = None,
) -> Institution:
    async with rt.db.write() as s:
        inst = await institution_by_code(s, code)
        if inst is None:
            raise NotFound(f"No institution {code}.")
        given = current_input(rt, inst)
        if name is not None:
            given.name = name
        if url is not None:
            given.url = url
        for key in remove_options or []:
            if key not in given.options:
                raise BadRequest(f"{code} has no option {key!r}")
            del given.options[key]
        given.options.update(set_options or {})
        if credentials is not None:
            given.credentials = credentials
        if supports is not None:
            given.supports = supports
        _check(rt, given)
        _apply(rt, inst, given)
    return inst


_IMPORT_FIELDS = frozenset(
    (
        "connector",
        "code",
        "name",
        "url",
        "options",
        "credentials",
        "oauth",
        "iso_country_code",
        "supports",
    )
)


# An OFX directory entry: the server's url, org and fid, and what some banks need besides.
_OFX_FIELDS = frozenset(
    (
        "name",
        "code",
        "url",
        "org",
        "fid",
        "bankid",
        "brokerid",
        "version",
        "appid",
        "appver",
        "useragent",
    )
)


def code_from_name(name: str) -> str:
    """A stable institution code from a name: `Fake OFX Bank` is `fake_ofx_bank`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:100]


def _from_ofx_entry(item: dict[str, Any], where: str) -> dict[str, Any]:
    """An OFX directory entry as an ordinary import item of the `ofx` connector."""
    unknown = set(item) - _OFX_FIELDS
    if unknown:
        raise BadRequest(f"{where}: unknown fields {', '.join(sorted(unknown))}")
    for key in ("name", "url", "org", "fid"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise BadRequest(f"{where}: {key} is required (a string)")
    if not re.match(r"^https?://[^\s/]+", item["url"]):
        raise BadRequest(f"{where}: url {item['url']!r} is not an http(s) URL")
    version = item.get("version")
    if version is not None and str(version) not in writer.V1_VERSIONS + writer.V2_VERSIONS:
        known = ", ".join(writer.V1_VERSIONS + writer.V2_VERSIONS)
        raise BadRequest(f"{where}: version {version!r} is not one of {known}")
    options = {k: str(v) for k, v in item.items() if k not in ("name", "code") and v is not None}
    return {
        "connector": "ofx",
        "code": item.get("code") or code_from_name(item["name"]),
        "name": item["name"],
        "options": options,
    }


def input_from_json(item: Any, where: str) -> InstitutionInput:
    """One institution of an import file: an object with connector, code, name and
    optional url, options, credentials ([{field_name, label, type}]), oauth,
    iso_country_code, supports (a list of ``CAPABILITIES``); or an OFX directory entry
    (name, url, org, fid and optional code, bankid, brokerid, version, appid, appver,
    useragent)."""
    if not isinstance(item, dict):
        raise BadRequest(f"{where}: an object")
    if "connector" not in item and "org" in item and "fid" in item:
        item = _from_ofx_entry(item, where)
    unknown = set(item) - _IMPORT_FIELDS
    if unknown:
        raise BadRequest(f"{where}: unknown fields {', '.join(sorted(unknown))}")
    try:
        options = item.get("options") or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in options.items()):
            raise BadRequest(f"{where}: options are strings")
        creds = item.get("credentials")
        supports = item.get("supports") or []
        if not isinstance(supports, list) or not all(isinstance(c, str) for c in supports):
            raise BadRequest(f"{where}: supports is a list of strings")
        return InstitutionInput(
            connector=str(item["connector"]),
            code=str(item["code"]),
            name=str(item["name"]),
            url=item.get("url"),
            options=dict(options),
            credentials=None
            if creds is None
            else [
                CredentialField(
                    str(c["field_name"]).upper(), str(c["label"]), c.get("type", "TEXT")
                )
                for c in creds
            ],
            oauth=bool(item.get("oauth", False)),
            iso_country_code=str(item.get("iso_country_code", "US")),
            supports=tuple(supports),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise BadRequest(f"{where}: missing or malformed {exc}") from None


async def import_institutions(rt: Runtime, items: list[Any]) -> tuple[int, int]:
    """Add or update many institutions in one transaction: all or none. Returns
    (added, updated)."""
    given = [input_from_json(item, f"institution {n}") for n, item in enumerate(items, 1)]
    codes = [g.code for g in given]
    if len(set(codes)) != len(codes):
        raise BadRequest("each code once per file")
    for g in given:
        _check(rt, g)
    added = 0
    async with rt.db.write() as s:
        stored = {
            i.code: i
            for i in await s.scalars(select(Institution).where(Institution.code.in_(codes)))
        }
        for g in given:
            inst = stored.get(g.code)
            if inst is None:
                inst = _new(g.code)
                s.add(inst)
                added += 1
            _apply(rt, inst, g)
    return added, len(given) - added


async def remove_institution(rt: Runtime, code: str) -> None:
    async with rt.db.write() as s:
        inst = await institution_by_code(s, code)
        if inst is None:
            raise NotFound(f"No institution {code}.")
        members = await s.scalar(
            select(func.count()).select_from(Member).where(Member.institution_id == inst.id)
        )
        if members:
            raise Conflict(
                f"{code} has {members} member(s); retire it instead "
                f"(openagg institutions retire {code})"
            )
        await s.delete(inst)


@dataclass(frozen=True)
class InstitutionRow:
    code: str
    name: str
    connector: str
    is_retired: bool
    members: int
    options: dict[str, str]  # secret values masked
    supports: tuple[str, ...] = ()  # of CAPABILITIES


async def list_institutions(rt: Runtime) -> list[InstitutionRow]:
    async with rt.db.read() as s:
        counts = dict(
            (
                await s.execute(
                    select(Member.institution_id, func.count()).group_by(Member.institution_id)
                )
            ).all()
        )
        rows = list(await s.scalars(select(Institution).order_by(Institution.code)))
    return [
        InstitutionRow(
            i.code,
            i.name,
            i.connector,
            bool(i.is_retired),
            counts.get(i.id, 0),
            {
                k: "***" if vault.is_secret_option(k) else v
                for k, v in vault.open_institution_options(rt, i).items()
            },
            tuple(c for c in CAPABILITIES if (i.profile or {}).get(f"supports_{c}")),
        )
        for i in rows
    ]


async def institutions_per_connector(rt: Runtime) -> dict[str, int]:
    async with rt.db.read() as s:
        rows = await s.execute(
            select(Institution.connector, func.count()).group_by(Institution.connector)
        )
        return {name: count for name, count in rows.all()}


class MissingConnectors(Exception):
    """Institutions in the database need connectors this process does not have."""


async def check_connectors(rt: Runtime) -> None:
    """Refuse to run with institutions whose connector is not installed: their
    members would fail every job for a reason no retry fixes."""
    async with rt.db.read() as s:
        rows = (
            await s.execute(
                select(Institution.connector, Institution.code)
                .where(Institution.is_retired.is_(False))
                .order_by(Institution.code)
            )
        ).all()
    missing: dict[str, list[str]] = defaultdict(list)
    for connector, code in rows:
        if connector not in rt.connectors:
            missing[connector].append(code)
    if missing:
        lines = [
            f"connector {name!r} is not installed, but institutions use it: {', '.join(codes)}"
            for name, codes in sorted(missing.items())
        ]
        raise MissingConnectors(
            "\n".join(lines) + "\ninstall the connector's package, or retire those institutions "
            "(openagg institutions retire CODE)"
        )
