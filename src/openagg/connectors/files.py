"""The institution of statement files that name no institution OpenAgg knows.

Members at it hold managed data (an imported file, or what the partner writes
through MX's managed-data API); the engine never runs a job for them, so this
connector's login only says so if it is ever reached."""

from __future__ import annotations

from openagg.connectors.base import (
    Connector,
    ConnectorContext,
    ConnectorError,
    InstitutionSpec,
    LoginResult,
)
from openagg.domain.causes import Cause

CONNECTOR_NAME = "files"
STATEMENT_FILE_CODE = "statement_file"
STATEMENT_FILE_GUID = "INS-5a6f3b0e-0c1f-4d7e-9a3e-6f1c2b7d8e90"


def create_connector(options: dict[str, str]) -> FilesConnector:
    return FilesConnector()


class FilesConnector(Connector):
    async def login(self, ctx: ConnectorContext, credentials: dict[str, str]) -> LoginResult:
        raise ConnectorError(Cause.INTERNAL_ERROR, "Statement files are imported, not aggregated.")

    def institutions(self) -> list[InstitutionSpec]:
        return [
            InstitutionSpec(
                code=STATEMENT_FILE_CODE,
                guid=STATEMENT_FILE_GUID,
                name="Statement file",
                connector=CONNECTOR_NAME,
                credentials=[],
                profile={
                    "url": None,
                    "instructional_text": "Upload a statement file downloaded from your bank.",
                    "supports_oauth": False,
                    "supports_transaction_history": False,
                    "supports_account_identification": False,
                    "supports_account_statement": False,
                    "supports_account_verification": False,
                    "supports_tax_document": False,
                    "iso_country_code": "US",
                    "is_favorite": False,
                },
            )
        ]
