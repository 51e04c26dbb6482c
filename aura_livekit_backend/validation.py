"""How a JSON request body becomes a typed, validated pydantic model.

sanic-ext's own ``@validate`` answers a bad body with pydantic's multi-line report,
input values included; the API promises one line naming the field instead, so
:func:`json_body` validates the body itself and documents it for OpenAPI in the
same breath.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from functools import wraps
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field, ValidationError, ValidationInfo
from sanic import Request
from sanic.exceptions import BadRequest
from sanic_ext import openapi
from sanic_ext.extensions.openapi.types import Schema

from .errors import ApiError
from .schemas import json_content

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_ROOM_ID",
    "MAX_TOPIC",
    "MAX_USER_NAME",
    "DescriptionText",
    "ParticipantLimit",
    "RequiredTopicText",
    "RoomIdText",
    "TopicText",
    "UserNameText",
    "check_text",
    "describe",
    "json_body",
    "path_parameter",
    "path_text",
]

#: LiveKit's own limit on a room name.
MAX_ROOM_ID = 256
MAX_USER_NAME = 128
MAX_TOPIC = 200
MAX_DESCRIPTION = 2000
#: The context key :data:`ParticipantLimit` reads its cap from (``json_body(context=…)``).
PARTICIPANT_CAP = "max_participants_cap"

M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[Any]]

# Zero-width joiners hold emoji sequences together; every other format character
# (zero-width spaces, bidi overrides) only serves to make two names look alike.
_ALLOWED_FORMAT = {"\u200d"}


def check_text(value: str, *, multiline: bool = False) -> str:
    """Refuse control characters and invisible format characters in ``value``.

    With ``multiline``, newlines and tabs are allowed (a description).
    """
    for char in value:
        category = unicodedata.category(char)
        if multiline and char in "\n\t":
            continue
        if category in ("Cc", "Cs", "Co") or (category == "Cf" and char not in _ALLOWED_FORMAT):
            raise ValueError(
                f"must not contain control or invisible characters (U+{ord(char):04X})"
            )
    return value


def _refused_class(*, multiline: bool) -> str:
    """A regex character class body: every character :func:`check_text` refuses.

    BMP characters are written as ``\\uXXXX`` escapes, the rest as themselves, as
    Python's ``re`` (and JavaScript's with the ``u`` flag) reads them.
    """
    refused = set(range(0x20)) | set(range(0x7F, 0xA0)) | _FORMAT_CHARACTERS
    if multiline:
        refused -= {ord("\n"), ord("\t")}
    runs: list[tuple[int, int]] = []
    for code in sorted(refused):
        if runs and runs[-1][1] == code - 1:
            runs[-1] = (runs[-1][0], code)
        else:
            runs.append((code, code))
    runs += [(0xD800, 0xDFFF), (0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]

    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in runs)


# Cc, Cs and Co are fixed blocks; Cf is scattered, and lives only in planes 0, 1 and
# 14, so scanning those finds all of it (13 ms, once per process).
_FORMAT_CHARACTERS = {
    code
    for plane in (range(0x10000), range(0x10000, 0x20000), range(0xE0000, 0xE1000))
    for code in plane
    if unicodedata.category(chr(code)) == "Cf" and chr(code) not in _ALLOWED_FORMAT
}
_REFUSED = {multiline: _refused_class(multiline=multiline) for multiline in (False, True)}


def _text_schema(limit: int, *, required: bool, multiline: bool) -> dict[str, Any]:
    """What :func:`_text_rule` enforces, as JSON Schema keywords (for OpenAPI only)."""
    refused = _REFUSED[multiline]
    pattern = f"^[^{refused}]*[^{refused}\\s][^{refused}]*$" if required else f"^[^{refused}]*$"
    return {"minLength": 1 if required else 0, "maxLength": limit, "pattern": pattern}


def _text_check(
    limit: int, *, required: bool = False, multiline: bool = False
) -> Callable[[str], str]:
    def check(value: str) -> str:
        if required and not value.strip():
            raise ValueError("must not be empty or blank")
        if len(value) > limit:
            raise ValueError(f"must be at most {limit} characters")
        return check_text(value, multiline=multiline)

    return check


def _text_rule(limit: int, *, required: bool = False, multiline: bool = False) -> AfterValidator:
    return AfterValidator(_text_check(limit, required=required, multiline=multiline))


def _participant_limit(value: int, info: ValidationInfo) -> int:
    cap = (info.context or {}).get(PARTICIPANT_CAP, 1000)
    if not 1 <= value <= cap:
        raise ValueError(f"must be between 1 and {cap}")
    return value


def _text(limit: int, *, required: bool = False, multiline: bool = False) -> Any:
    """A string type checked by :func:`_text_rule`, its rules documented for OpenAPI."""
    schema = _text_schema(limit, required=required, multiline=multiline)
    rule = _text_rule(limit, required=required, multiline=multiline)
    return Annotated[str, rule, Field(json_schema_extra=schema)]


#: A user name: 1 to 128 characters, not blank, no control or invisible characters.
UserNameText = _text(MAX_USER_NAME, required=True)
#: A room's name or sid: 1 to 256 characters, not blank, no control characters.
RoomIdText = _text(MAX_ROOM_ID, required=True)
#: A room topic: at most 200 characters on one line.
TopicText = _text(MAX_TOPIC)
#: A topic that must be given: 1 to 200 characters, not blank.
RequiredTopicText = _text(MAX_TOPIC, required=True)
#: A room description: at most 2,000 characters, lines and tabs allowed.
DescriptionText = _text(MAX_DESCRIPTION, multiline=True)
#: A participant limit: 1 to the cap in the validation context (AURA_MAX_PARTICIPANTS_CAP);
#: documented as at least 1, since the cap is a setting.
ParticipantLimit = Annotated[
    int, AfterValidator(_participant_limit), Field(json_schema_extra={"minimum": 1})
]


def path_text(name: str, value: str, limit: int = MAX_ROOM_ID) -> str:
    """A path parameter checked like :data:`RoomIdText`, or a 400 naming it."""
    try:
        return _text_check(limit, required=True)(value)
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


def path_parameter(
    name: str, description: str, limit: int = MAX_ROOM_ID
) -> openapi.definitions.Parameter:
    """The OpenAPI description of a path parameter that :func:`path_text` checks."""
    schema = Schema(type="string", **_text_schema(limit, required=True, multiline=False))
    return openapi.definitions.Parameter(
        name, schema, location="path", description=description, required=True
    )


def describe(exc: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        if error["type"] == "missing":
            parts.append(f"{field} is required")
        elif error["type"] == "extra_forbidden":
            parts.append(f"{field} is not a known field")
        else:
            parts.append(f"{field}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def parse_json(request: Request, model: type[M], context: Mapping[str, Any] | None = None) -> M:
    """The request's JSON body as ``model``, or a 400 :class:`ApiError` naming the problem.

    The Content-Type is not checked: clients of the original service send JSON under
    whatever curl or their library puts there.
    """
    if not request.body.strip():
        raise ApiError(400, "Request body is empty: send a JSON object")
    try:
        request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "Request body is not UTF-8 text") from None
    try:
        data = request.json
    except BadRequest:
        # Also JSON nested deeper than the parser recurses, and integers longer than
        # Python reads (4,300 digits): both only come from someone probing.
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        raise ApiError(400, describe(exc)) from None


def json_body(
    model: type[BaseModel],
    *,
    context: Mapping[str, Any] | None = None,
    optional: bool = False,
) -> Callable[[Handler], Handler]:
    """Validate the JSON body as ``model``, pass it as ``body=``, and document it in OpenAPI.

    ``context`` reaches the model's validators as ``info.context`` (settings-driven limits).
    ``optional``: no body at all reads as ``{}`` (LiveKit's token endpoint allows it).
    """

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def validated(request: Request, *args: Any, **kwargs: Any) -> Any:
            if optional and not request.body.strip():
                kwargs["body"] = model.model_validate({}, context=dict(context or {}))
            else:
                kwargs["body"] = parse_json(request, model, context)
            return await handler(request, *args, **kwargs)

        content = json_content(model, mode="validation")
        return openapi.body(content, required=not optional)(validated)

    return decorate
