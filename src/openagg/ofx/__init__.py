"""OpenAgg's OFX codec: reads what banks really send (OFX 1.x SGML and 2.x XML,
answers and statement files, with their quirks) and writes well-formed requests.

``parse(data)`` gives a typed `Document` (warnings list what a strict reader would
have refused); `OFXError` is raised only for a document no OFX reader could understand
and names the line and element. ``writer`` builds requests.
"""

from openagg.ofx import models, writer
from openagg.ofx.models import (
    AccountInfo,
    AccountRef,
    Balance,
    Document,
    InvestmentTransaction,
    MFAChallenge,
    Position,
    Security,
    SecurityId,
    Signon,
    Statement,
    StatementError,
    Status,
    Transaction,
)
from openagg.ofx.parsing import parse
from openagg.ofx.reader import OFXError
from openagg.ofx.values import BadValue, parse_amount, parse_date, parse_datetime

__all__ = [
    "AccountInfo",
    "AccountRef",
    "BadValue",
    "Balance",
    "Document",
    "InvestmentTransaction",
    "MFAChallenge",
    "OFXError",
    "Position",
    "Security",
    "SecurityId",
    "Signon",
    "Statement",
    "StatementError",
    "Status",
    "Transaction",
    "models",
    "parse",
    "parse_amount",
    "parse_date",
    "parse_datetime",
    "writer",
]
