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
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sanic import Request
from sanic.exceptions import BadRequest
from sanic_ext import openapi

from .errors import ApiError

__all__ = ["check_text", "describe", "json_body"]

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
    """The request's JSON body as ``model``, or a 400 :class:`ApiError` naming the problem."""
    try:
        data = request.json
    except BadRequest:
        raise ApiError(400, "Request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        raise ApiError(400, describe(exc)) from None


def json_body(
    model: type[BaseModel], *, context: Mapping[str, Any] | None = None
) -> Callable[[Handler], Handler]:
    """Validate the JSON body as ``model``, pass it as ``body=``, and document it in OpenAPI.

    ``context`` reaches the model's validators as ``info.context`` (settings-driven limits).
    """

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def validated(request: Request, *args: Any, **kwargs: Any) -> Any:
            kwargs["body"] = parse_json(request, model, context)
            return await handler(request, *args, **kwargs)

        return openapi.body({"application/json": model}, required=True)(validated)

    return decorate
