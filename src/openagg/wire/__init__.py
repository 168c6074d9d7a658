"""The MX Platform API v20111101 wire format, and the only place that knows it.

Pure functions that turn model objects into plain dicts ready for JSON encoding.
Each dict carries exactly the properties the v20111101 OpenAPI file declares for
the response schema (every one present, ``None`` when we have no value, nothing
undeclared), with exactly the declared JSON types: MX's Python SDK rejects a
float in an integer field or a string in a number field, and the Java SDK rejects
unknown keys.

Conventions:

* timestamps: ``YYYY-MM-DDTHH:MM:SSZ`` (UTC); dates: ``YYYY-MM-DD``;
* money: the models keep integer cents; the wire gets ``cents / 100`` as a float
  (true division of ints is correctly rounded, so 1234567 -> 12345.67 exactly as
  JSON prints it);
* these functions never raise on odd values in free-form JSON columns
  (``Account.details``, ``Institution.profile``...): a value that cannot be coerced
  to the declared type is sent as ``null`` rather than failing a whole list.

One module per resource family (``scalars`` holds what they share). ``simplefin`` is
the other wire format OpenAgg serves, SimpleFIN's; callers import it by name. The package sits
just above ``domain`` and ``db``: it imports nothing from ``services``, ``engine`` or
``api``, so the services can build wire bodies (webhooks, tickets) without importing
the HTTP face. Callers write ``from openagg import wire`` and ``wire.member(...)``.
"""

from __future__ import annotations

from openagg.wire.accounts import account, account_number, account_owner
from openagg.wire.holdings import holding
from openagg.wire.institutions import credential, institution
from openagg.wire.members import challenge, member, member_status
from openagg.wire.paging import pagination
from openagg.wire.scalars import iso, iso_date
from openagg.wire.support import support_ticket, support_ticket_event, webhook_support_ticket
from openagg.wire.transactions import (
    CLASSIFICATION_PARENT_CLASSES,
    TRANSACTION_INCLUDES,
    TRANSACTION_ROW,
    parse_includes,
    transaction,
    transactions_from_rows,
)
from openagg.wire.users import user
from openagg.wire.webhooks import (
    unix,
    webhook_accounts_updated,
    webhook_aggregation,
    webhook_attempt,
    webhook_connection_status,
    webhook_consent_expiring,
    webhook_data_updated,
    webhook_delivery,
    webhook_endpoint,
    webhook_member,
)
from openagg.wire.widget import connect_widget_url, widget_url

__all__ = [
    "CLASSIFICATION_PARENT_CLASSES",
    "TRANSACTION_INCLUDES",
    "TRANSACTION_ROW",
    "account",
    "account_number",
    "account_owner",
    "challenge",
    "connect_widget_url",
    "credential",
    "holding",
    "institution",
    "iso",
    "iso_date",
    "member",
    "member_status",
    "pagination",
    "parse_includes",
    "support_ticket",
    "support_ticket_event",
    "transaction",
    "transactions_from_rows",
    "unix",
    "user",
    "webhook_accounts_updated",
    "webhook_aggregation",
    "webhook_attempt",
    "webhook_connection_status",
    "webhook_consent_expiring",
    "webhook_data_updated",
    "webhook_delivery",
    "webhook_endpoint",
    "webhook_member",
    "webhook_support_ticket",
    "widget_url",
]
