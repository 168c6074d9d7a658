"""Request bodies as MX's spec declares them (the inputs of the use cases). Unknown keys
are refused with a 400 that names them, so a typo never silently does nothing."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL cannot store NUL in text and SQLite would: refuse it on both.
        if _has_nul(data):
            raise ValueError("text may not contain NUL (\\u0000) characters")
        return data


class UserFields(Strict):
    email: StrictStr | None = None
    id: StrictStr | None = None
    is_disabled: StrictBool | None = None
    metadata: StrictStr | None = None


class UserBody(Strict):
    user: UserFields


class CredentialValue(Strict):
    guid: StrictStr = Field(min_length=1)
    value: StrictStr


UseCase = Literal["MONEY_MOVEMENT", "PFM"]


class MemberCreateFields(Strict):
    institution_code: StrictStr = Field(min_length=1)
    credentials: list[CredentialValue] | None = None
    id: StrictStr | None = None
    metadata: StrictStr | None = None
    is_oauth: StrictBool | None = None
    skip_aggregation: StrictBool | None = None
    background_aggregation_is_disabled: StrictBool | None = None
    use_cases: list[UseCase] | None = None


class MemberCreateBody(Strict):
    member: MemberCreateFields
    client_redirect_url: StrictStr | None = None
    enable_app2app: StrictBool | None = None
    referral_source: Literal["BROWSER", "APP"] | None = None
    ui_message_webview_url_scheme: StrictStr | None = None


class MemberUpdateFields(Strict):
    credentials: list[CredentialValue] | None = None
    id: StrictStr | None = None
    metadata: StrictStr | None = None
    skip_aggregation: StrictBool | None = None
    background_aggregation_is_disabled: StrictBool | None = None
    use_cases: list[UseCase] | None = None


class MemberUpdateBody(Strict):
    member: MemberUpdateFields


class ResumeFields(Strict):
    challenges: list[CredentialValue] = Field(min_length=1)


class ResumeBody(Strict):
    member: ResumeFields
