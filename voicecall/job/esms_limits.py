"""eSMS parameter rules shared by the job contract (producer) and the eSMS client (worker).

The documents give names and meanings but no bounds; these are voicecall's documented
choices, kept in one place so intake and the client refuse exactly the same values.
"""

from __future__ import annotations

from enum import StrEnum

REQUEST_ID_MAX_LEN = 50  # eSMS rejects longer RequestIds
MAX_RETRY_RANGE = (0, 5)  # redials by eSMS when nobody answers
MAX_REPEAT_RANGE = (1, 5)  # plays of the recording per answered call
WAIT_RETRY_RANGE_S = (30, 3600)  # seconds between eSMS redials
TIME_WAIT_TO_IVR_RANGE_S = (1, 60)  # seconds eSMS waits for a key press
IVR_RANGE = (0, 9)  # the key that triggers forwarding
SPEED_RANGE = (-3, 3)  # -3 very slow, 0 normal, 3 very fast
OTP_CONTENT_MAX_LEN = 160  # characters read out; an OTP message is short
VARIABLE_SEPARATOR = "||"  # VariableListStr joins template variables with this
TEMPLATE_VARIABLES_MAX = 20
TEMPLATE_VARIABLE_MAX_LEN = 200
SOURCE_ID_MAX_LEN = 50  # recording and template ids


class Voice(StrEnum):
    """MakeCallTemplate_V2 voices."""

    MALE = "male"  # northern male
    FEMALE = "female"  # northern female
    HATIEUMAI = "hatieumai"  # southern female
    NGOCLAM = "ngoclam"  # Hue female
