"""The one error shape: every error the service answers is ``{"statusCode", "message"}``.

Handlers raise :class:`ApiError` for what the client got wrong, and wrap LiveKit
calls in :func:`failing_to`, which turns the gateway's HTTP-free exceptions into
the status codes the API documents. :class:`JsonErrorHandler` renders everything
else, Sanic's own 404/405/413 included, in the same shape, and keeps tracebacks
in the log.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus

from sanic import Request
from sanic.exceptions import MethodNotAllowed, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

from .auth.errors import (
    AuthError,
    Forbidden,
    KeysUnavailable,
    LimitsUnavailable,
    NameRequired,
    NotAuthenticated,
    RateLimited,
)
from .livekit.errors import (
    IdentityTaken,
    LiveKitError,
    LiveKitUnavailable,
    ParticipantNotFound,
    RoomFull,
    RoomLimitFixed,
    RoomNotFound,
)

__all__ = ["REALM", "ApiError", "JsonErrorHandler", "auth_failure", "error_body", "failing_to"]

#: The realm every 401's ``WWW-Authenticate`` names.
REALM = "aura-livekit-backend"


class ApiError(SanicException):
    """An error answered to the client as ``{"statusCode": status, "message": message}``.

    The message is shown to whoever called: it must never contain a secret or a token.
    """

    quiet = True

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, status_code=status)


def error_body(status: int, message: str) -> dict[str, object]:
    """The body of every error answer."""
    return {"statusCode": status, "message": message}


def auth_failure(exc: AuthError, action: str | None = None) -> ApiError:
    """The answer to a refusal of :mod:`.auth`: 400, 401, 403, 429 or 503.

    ``action`` prefixes the message as :func:`failing_to` does (``Failed to join room:
    …``); a 401 names the bearer scheme, a 429 says when to retry (``Retry-After``).
    """
    message = str(exc)
    if isinstance(exc, NameRequired):
        return ApiError(400, message)
    if action and not isinstance(exc, NotAuthenticated):
        message = f"Failed to {action}: {message}"
    if isinstance(exc, NotAuthenticated):
        error = ApiError(401, message)
        error.headers = {"WWW-Authenticate": f'Bearer realm="{REALM}"'}
    elif isinstance(exc, Forbidden):
        error = ApiError(403, message)
    elif isinstance(exc, RateLimited):
        error = ApiError(429, message)
        error.headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, (KeysUnavailable, LimitsUnavailable)):
        error = ApiError(503, message)
    else:
        error = ApiError(403, message)
    return error


@contextmanager
def failing_to(action: str) -> Iterator[None]:
    """Answer LiveKit failures inside the block as the API documents them.

    ``action`` completes the message, as the API has always worded it:
    ``failing_to("join room")`` gives ``"Failed to join room: Room not found"`` (404),
    ``"Failed to join room: LiveKit is unavailable …"`` (503) or a 502 when LiveKit
    answered with an error the service did not expect. A participant that is not
    there is a 404 too; raising a room's participant limit a 400; the join rules'
    refusals (a full room, a userName connected already) are 409s; the caller's
    (:func:`auth_failure`): a policy's 403, a rate limit's 429, no userName a 400.
    """
    try:
        yield
    except AuthError as exc:
        raise auth_failure(exc, action) from None
    except RoomNotFound:
        raise ApiError(404, f"Failed to {action}: Room not found") from None
    except RoomFull:
        raise ApiError(409, f"Failed to {action}: Room is full") from None
    except IdentityTaken:
        raise ApiError(409, f"Failed to {action}: userName is already in the room") from None
    except ParticipantNotFound:
        raise ApiError(404, f"Failed to {action}: Participant not found") from None
    except RoomLimitFixed as exc:
        raise ApiError(400, f"maxParticipants: {exc}") from None
    except LiveKitUnavailable as exc:
        raise ApiError(503, f"Failed to {action}: {exc}") from None
    except LiveKitError as exc:
        raise ApiError(502, f"Failed to {action}: {exc}") from None


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at ``request.path``."""
    allowed = []
    for method in _METHODS:
        try:
            request.app.router.get(request.path, method, request.headers.get("host"))
        except SanicException:
            continue
        allowed.append(method)
    return allowed


class JsonErrorHandler(ErrorHandler):
    """Renders every uncaught exception as the common JSON error shape."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        """Answer ``exception``: its own status and message if Sanic knows it, else a bare 500."""
        if isinstance(exception, SanicException):
            status = exception.status_code
            message = str(exception) or HTTPStatus(status).phrase
            headers = exception.headers or {}
        else:
            status, message, headers = 500, "", {}
        if isinstance(exception, MethodNotAllowed) and "Allow" not in headers and request:
            # Sanic names the allowed methods for static paths only; RFC 9110 wants
            # them on every 405.
            headers = {**headers, "Allow": ", ".join(_allowed_methods(request))}
        if status == 500 and not isinstance(exception, ApiError):
            # Unexpected: the traceback goes to the log, never to the client.
            if request is not None:
                self.log(request, exception)
            message = "Internal server error"
        # A message may quote bytes a client sent that are not UTF-8 (surrogates once
        # decoded); JSON cannot carry them, and failing here would be a bare 500.
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        return json(error_body(status, message), status=status, headers=headers)
