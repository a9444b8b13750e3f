"""What eSMS is asked to do, per kind: the call parameters, named once here and stored as
the job's ``request`` (voicecall.job.records); the eSMS client builds its requests from them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from voicecall.formats.phones import PhoneError, normalize_phone
from voicecall.job.esms_limits import (
    IVR_RANGE,
    MAX_REPEAT_RANGE,
    MAX_RETRY_RANGE,
    OTP_CONTENT_MAX_LEN,
    SOURCE_ID_MAX_LEN,
    SPEED_RANGE,
    TEMPLATE_VARIABLE_MAX_LEN,
    TEMPLATE_VARIABLES_MAX,
    TIME_WAIT_TO_IVR_RANGE_S,
    VARIABLE_SEPARATOR,
    WAIT_RETRY_RANGE_S,
    Voice,
)

CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StrictModel(BaseModel):
    """Unknown fields refused, surrounding whitespace stripped: every request model's base."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def no_control(value: str, what: str = "") -> str:
    if CONTROL.search(value):
        raise ValueError(f"{what}must not contain control characters")
    return value


class OtpParams(StrictModel):
    """A Voice OTP: eSMS reads ``content`` out (SendMultipleMessage_V4, SmsType 8).

    ``content`` is None once the job no longer needs it: the spoken code is erased when eSMS
    has it, and when the job ends without a call.
    """

    kind: Literal["voice_otp"] = "voice_otp"
    content: str | None = Field(
        default=None,
        min_length=1,
        max_length=OTP_CONTENT_MAX_LEN,
        description="The text eSMS reads out (eSMS Content).",
    )
    is_unicode: bool = Field(default=False, description="eSMS IsUnicode: content has diacritics.")
    brandname: str | None = Field(
        default=None, max_length=32, description="eSMS Brandname. Default: ESMS_BRANDNAME."
    )
    sandbox: bool | None = Field(
        default=None, description="eSMS Sandbox (POST form only). Default: ESMS_SANDBOX."
    )
    campaign_id: str | None = Field(
        default=None, max_length=100, description="eSMS campaignid (POST form only)."
    )

    @field_validator("content", "brandname", "campaign_id")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else no_control(value)

    @model_validator(mode="after")
    def _unicode(self) -> OtpParams:
        if self.content and not self.is_unicode and not self.content.isascii():
            raise ValueError("content has non-ASCII characters: set is_unicode to true")
        return self


class RecordParams(StrictModel):
    """A call that plays a recording uploaded on the eSMS account (MakeCallRecord_V2)."""

    kind: Literal["record_call"] = "record_call"
    record_id: str = Field(
        min_length=1,
        max_length=SOURCE_ID_MAX_LEN,
        description="The recording's id on the eSMS account (eSMS TemplateId).",
    )
    number_forward: str | None = Field(
        default=None, description="Where the key press forwards the call (eSMS NumberForward)."
    )
    max_repeat: int | None = Field(
        default=None,
        ge=MAX_REPEAT_RANGE[0],
        le=MAX_REPEAT_RANGE[1],
        description="Plays of the recording per answered call (eSMS MaxRepeat).",
    )
    max_retry: int | None = Field(
        default=None,
        ge=MAX_RETRY_RANGE[0],
        le=MAX_RETRY_RANGE[1],
        description="Redials by eSMS when nobody answers (eSMS MaxRetry).",
    )
    ivr: int | None = Field(
        default=None,
        ge=IVR_RANGE[0],
        le=IVR_RANGE[1],
        description="The key that forwards the call to number_forward (eSMS Ivr).",
    )
    time_wait_to_ivr: int | None = Field(
        default=None,
        ge=TIME_WAIT_TO_IVR_RANGE_S[0],
        le=TIME_WAIT_TO_IVR_RANGE_S[1],
        description="Seconds eSMS waits for the key press (eSMS TimeWaitToIvr).",
    )
    wait_retry: int | None = Field(
        default=None,
        ge=WAIT_RETRY_RANGE_S[0],
        le=WAIT_RETRY_RANGE_S[1],
        description="Seconds between eSMS's redials (eSMS WaitRetry).",
    )

    @field_validator("record_id")
    @classmethod
    def _record_id(cls, value: str) -> str:
        return no_control(value)

    @field_validator("number_forward")
    @classmethod
    def _forward(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_phone(value)
        except PhoneError as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _ivr_needs_forward(self) -> RecordParams:
        if self.ivr is not None and self.number_forward is None:
            raise ValueError("ivr needs number_forward (the number the key press forwards to)")
        return self


class TemplateParams(StrictModel):
    """A text-to-speech call from a script registered on the account (MakeCallTemplate_V2)."""

    kind: Literal["template_call"] = "template_call"
    template_id: str = Field(
        min_length=1,
        max_length=SOURCE_ID_MAX_LEN,
        description="The script's id on the eSMS account (eSMS TemplateId).",
    )
    variables: list[str] = Field(
        default_factory=list,
        max_length=TEMPLATE_VARIABLES_MAX,
        description="The script's variables, in order (eSMS VariableListStr).",
    )
    voice: Voice | None = Field(default=None, description="eSMS Voice.")
    speed: int | None = Field(
        default=None,
        ge=SPEED_RANGE[0],
        le=SPEED_RANGE[1],
        description="-3 very slow, 0 normal, 3 very fast (eSMS Speed).",
    )

    @field_validator("template_id")
    @classmethod
    def _template_id(cls, value: str) -> str:
        return no_control(value)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: list[str]) -> list[str]:
        for index, item in enumerate(value):
            no_control(item, f"variable {index} ")
            if VARIABLE_SEPARATOR in item:
                raise ValueError(
                    f"variable {index} contains '{VARIABLE_SEPARATOR}', eSMS's separator"
                )
            if len(item) > TEMPLATE_VARIABLE_MAX_LEN:
                raise ValueError(f"variable {index} is longer than {TEMPLATE_VARIABLE_MAX_LEN}")
        return value


CallParams = Annotated[OtpParams | RecordParams | TemplateParams, Field(discriminator="kind")]
CallParamsAdapter: TypeAdapter[OtpParams | RecordParams | TemplateParams] = TypeAdapter(CallParams)
