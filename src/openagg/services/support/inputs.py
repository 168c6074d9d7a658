"""Request bodies of the support ticket endpoints, and an engineer's prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, StrictStr

from openagg.domain.tickets import (
    Channel,
)
from openagg.services.inputs import CredentialValue, Strict


class Agent(Strict):
    id: StrictStr = Field(min_length=1, max_length=255)
    name: StrictStr = Field(min_length=1, max_length=255)


class TicketCreateFields(Strict):
    channel: Channel
    description: StrictStr = Field(min_length=1, max_length=4000)
    account_guids: list[StrictStr] | None = Field(default=None, max_length=100)
    special_instructions: StrictStr | None = Field(default=None, max_length=4000)
    agent: Agent | None = None


class TicketCreateBody(Strict):
    support_ticket: TicketCreateFields


class TicketReopenFields(Strict):
    channel: Channel | None = None  # the ticket's own channel when omitted
    description: StrictStr | None = Field(default=None, max_length=4000)
    special_instructions: StrictStr | None = Field(default=None, max_length=4000)
    agent: Agent | None = None


class TicketReopenBody(Strict):
    support_ticket: TicketReopenFields


class AdditionalLoginInfoFields(Strict):
    additional_login_info: list[CredentialValue] = Field(min_length=1, max_length=20)


class AdditionalLoginInfoBody(Strict):
    support_ticket: AdditionalLoginInfoFields


PromptType = Literal["TEXT", "TOKEN", "OPTIONS"]


@dataclass(frozen=True)
class Prompt:
    """One question an engineer asks the end user (shaped like an MFA challenge)."""

    label: str
    type: PromptType = "TEXT"
    options: tuple[str, ...] = ()
