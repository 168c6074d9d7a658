"""What one use of a connector is given: its context (the institution's options, the
member's stored secrets, a logger that hides them, the platform's HTTP client), and
what it earned. Shared by the engine's jobs and the OAuth steps."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

from openagg import logs
from openagg.connectors.base import Connector, ConnectorContext
from openagg.db.models import Institution
from openagg.runtime import Runtime
from openagg.services import vault


class ConnectorCall:
    def __init__(
        self,
        rt: Runtime,
        member_guid: str,
        sealed_secrets: bytes | None,
        institution: Institution,
        *,
        now: dt.datetime,
        previous_attempts: int = 0,
        end_user_present: bool = False,
        end_user_ip: str | None = None,
    ) -> None:
        """``sealed_secrets``: the member's secrets as ``vault.seal_secrets`` sealed
        them (``members.secrets_enc``, or a revocation job's copy once the member is
        deleted)."""
        self.name = institution.connector
        self.connector: Connector | None = rt.connectors.get(self.name)
        self.stored_secrets = vault.open_sealed_secrets(rt, member_guid, sealed_secrets)
        options = vault.open_institution_options(rt, institution)
        # What the connector's log must never print; credentials and MFA answers
        # join when they are opened (``hide``).
        self._hidden = [v for k, v in options.items() if vault.is_secret_option(k)]
        self.log = logs.Redacting(logging.getLogger(f"openagg.connector.{self.name}"), self.hidden)
        self.ctx = ConnectorContext(
            member_guid=member_guid,
            institution_code=institution.code,
            today=now.date(),
            now=now,
            previous_attempts=previous_attempts,
            options=options,
            secrets=copy.deepcopy(self.stored_secrets),
            log=self.log,
            http=rt.http_for(self.name),
            end_user_present=end_user_present,
            end_user_ip=end_user_ip,
        )

    def hide(self, values: list[str]) -> None:
        self._hidden.extend(values)

    def hidden(self) -> list[str]:
        return [*self._hidden, *logs.secret_strings(self.ctx.secrets)]

    def earned(self) -> dict[str, Any] | None:
        """The connector's secrets when they changed (None: unchanged)."""
        secrets = self.ctx.secrets
        return None if secrets == self.stored_secrets else copy.deepcopy(secrets)
