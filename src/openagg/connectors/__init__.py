"""Connectors: how OpenAgg talks to institutions. The public API for connector
authors; see docs/connectors.md for a complete example and the guarantees."""

from openagg.connectors.base import (
    CONSENT_EXPIRES_AT,
    AccountData,
    Challenge,
    ChallengeOption,
    Connector,
    ConnectorContext,
    ConnectorError,
    HoldingData,
    InstitutionSpec,
    LoginResult,
    OAuthStart,
    OwnerData,
    PullResult,
    PullWindow,
    TransactionData,
)
from openagg.domain.causes import Cause

__all__ = [
    "CONSENT_EXPIRES_AT",
    "AccountData",
    "Cause",
    "Challenge",
    "ChallengeOption",
    "Connector",
    "ConnectorContext",
    "ConnectorError",
    "HoldingData",
    "InstitutionSpec",
    "LoginResult",
    "OAuthStart",
    "OwnerData",
    "PullResult",
    "PullWindow",
    "TransactionData",
]
