"""The eSMS requests of a job: each endpoint's builder (worker.esms.params) called with the
account's credentials, its time zone and the settings' defaults (method, sandbox, brandname).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from voicecall.config.settings import Settings
from voicecall.job.params import OtpParams, RecordParams, TemplateParams
from worker.esms import params
from worker.esms.errors import InvalidParameter
from worker.esms.params import Credentials, EsmsRequest, Voice


class Requests:
    """Request building, for both eSMS clients."""

    _settings: Settings
    _creds: Credentials
    _zone: ZoneInfo

    def voice_otp_request(
        self,
        *,
        phone: str,
        content: str,
        request_id: str,
        callback_url: str | None = None,
        send_date: datetime | None = None,
        is_unicode: bool = False,
        brandname: str | None = None,
        sandbox: bool | None = None,
        campaign_id: str | None = None,
        method: Literal["post", "get"] | None = None,
    ) -> EsmsRequest:
        """Voice OTP (SmsType 8). Method, sandbox and brandname default to the settings.

        ``Sandbox`` and ``campaignid`` exist only on the POST form: a call asking for either
        goes by POST unless ``method="get"`` is passed explicitly (then InvalidParameter).
        """
        use_sandbox = self._settings.esms_sandbox if sandbox is None else sandbox
        if method is None:
            post_only = use_sandbox or campaign_id is not None
            method = "post" if post_only else self._settings.esms_otp_method
        return params.voice_otp(
            self._creds,
            phone=phone,
            content=content,
            request_id=request_id,
            zone=self._zone,
            callback_url=callback_url,
            send_date=send_date,
            is_unicode=is_unicode,
            brandname=self._settings.esms_brandname if brandname is None else brandname,
            sandbox=use_sandbox,
            campaign_id=campaign_id,
            method=method,
        )

    def call_record_request(
        self,
        *,
        phone: str,
        record_id: str,
        request_id: str,
        callback_url: str | None = None,
        send_date: datetime | None = None,
        number_forward: str | None = None,
        max_repeat: int | None = None,
        max_retry: int | None = None,
        ivr: int | None = None,
        time_wait_to_ivr: int | None = None,
        wait_retry: int | None = None,
    ) -> EsmsRequest:
        """MakeCallRecord_V2: call ``phone`` and play the recording ``record_id``."""
        return params.make_call_record(
            self._creds,
            phone=phone,
            record_id=record_id,
            request_id=request_id,
            zone=self._zone,
            callback_url=callback_url,
            send_date=send_date,
            number_forward=number_forward,
            max_repeat=max_repeat,
            max_retry=max_retry,
            ivr=ivr,
            time_wait_to_ivr=time_wait_to_ivr,
            wait_retry=wait_retry,
        )

    def call_template_request(
        self,
        *,
        phone: str,
        template_id: str,
        variables: Sequence[str],
        request_id: str,
        callback_url: str | None = None,
        send_date: datetime | None = None,
        voice: Voice | str | None = None,
        speed: int | None = None,
    ) -> EsmsRequest:
        """MakeCallTemplate_V2: call ``phone`` and read the template with ``variables``."""
        return params.make_call_template(
            self._creds,
            phone=phone,
            template_id=template_id,
            variables=variables,
            request_id=request_id,
            zone=self._zone,
            callback_url=callback_url,
            send_date=send_date,
            voice=voice,
            speed=speed,
        )

    def send_request(
        self,
        call: OtpParams | RecordParams | TemplateParams,
        *,
        phone: str,
        request_id: str,
        callback_url: str | None,
        send_date: datetime | None,
    ) -> EsmsRequest:
        """The send request for a job's typed parameters: one match on their type. The
        parameters' names are the builders' own (voicecall.job.params names each one once)."""
        common: dict[str, Any] = {
            "phone": phone,
            "request_id": request_id,
            "callback_url": callback_url,
            "send_date": send_date,
        }
        options = call.model_dump(exclude={"kind"}, exclude_none=True)
        match call:
            case OtpParams(content=str()):
                return self.voice_otp_request(**common, **options)
            case OtpParams():
                raise InvalidParameter("Content", "is gone: the job no longer holds its OTP code")
            case RecordParams():
                return self.call_record_request(**common, **options)
            case TemplateParams():
                return self.call_template_request(**common, **options)
