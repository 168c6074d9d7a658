"""/users/{user_guid}/imports: statement files into managed members (an OpenAgg
extension, docs/imports.md)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from fastapi import Depends, Request
from fastapi.responses import Response

from openagg.api.http import current_client, mx, query_int, runtime
from openagg.api.routing import Router
from openagg.db.models import Client, Import
from openagg.services import imports
from openagg.services.errors import BadRequest, NotFound, ServiceError
from openagg.statements.csv_reader import CsvOptions

router = Router()
BASE = "/users/{user_guid}/imports"
CSV_OPTIONS = (
    "date_column",
    "description_column",
    "amount_column",
    "debit_column",
    "credit_column",
    "date_format",
    "decimal_separator",
    "encoding",
)


class TooLarge(ServiceError):
    status_code = 413


def import_body(record: Import, member_guid: str) -> dict[str, Any]:
    return {
        "import": {
            "guid": record.guid,
            "member_guid": member_guid,
            "format": record.format,
            "filename": record.filename,
            "created_at": record.created_at.isoformat().replace("+00:00", "Z"),
            **record.summary,
        }
    }


async def _read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` (never buffered whole)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"The file is larger than {limit} bytes (OPENAGG_IMPORT_MAX_BYTES).")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"The file is larger than {limit} bytes (OPENAGG_IMPORT_MAX_BYTES).")
        chunks.append(chunk)
    return b"".join(chunks)


def _file_of(body: bytes, content_type: str) -> tuple[bytes, str | None]:
    """The raw body, or the ``file`` field of a multipart/form-data body."""
    if not content_type.lower().startswith("multipart/form-data"):
        return body, None
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body
    )
    if not message.is_multipart():
        raise BadRequest(
            "A multipart/form-data body without parts: send the file in a 'file' field."
        )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            return (payload if isinstance(payload, bytes) else b""), part.get_filename()
    raise BadRequest("The multipart/form-data body has no 'file' field.")


async def read_upload(request: Request) -> tuple[bytes, str | None]:
    """The uploaded file and the name a form upload gave it (also the widget's)."""
    body = await _read_limited(request, runtime(request).settings.import_max_bytes)
    return _file_of(body, request.headers.get("content-type", ""))


@router.post(BASE)
async def create_import(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    rt = runtime(request)
    data, sent_name = await read_upload(request)
    params = request.query_params
    csv_given = {k: params[k] for k in CSV_OPTIONS if params.get(k)}
    skip = query_int(request, "skip_rows")
    if csv_given.get("decimal_separator") not in (None, ".", ","):
        raise BadRequest("decimal_separator: '.' or ','")
    options = imports.ImportOptions(
        format=params.get("format") or None,
        filename=params.get("filename") or sent_name,
        member_guid=params.get("member_guid") or None,
        csv=CsvOptions(**csv_given, skip_rows=skip or 0) if csv_given or skip else None,
    )
    record, member = await imports.import_file(rt, client, user_guid, data, options)
    return mx(import_body(record, member.guid), status_code=201)


@router.get(BASE)
async def list_imports(
    user_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    _, rows = await imports.list_imports(runtime(request), client, user_guid)
    return mx({"imports": [import_body(i, g)["import"] for i, g in rows]})


@router.get(BASE + "/{import_guid}")
async def read_import(
    user_guid: str, import_guid: str, request: Request, client: Client = Depends(current_client)
) -> Response:
    _, rows = await imports.list_imports(runtime(request), client, user_guid)
    for record, member_guid in rows:
        if record.guid == import_guid:
            return mx(import_body(record, member_guid))
    raise NotFound()
