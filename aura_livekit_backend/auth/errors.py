"""What can go wrong deciding who is calling and what they may do, as plain exceptions.

Nothing here knows about HTTP: ``errors.failing_to`` and the access middleware turn
each into its status (401, 403, 429, 503) in the one error shape. Messages are shown
to the caller: they name the problem, never a token, a key or a provider's answer.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "Forbidden",
    "KeysUnavailable",
    "LimitsUnavailable",
    "NameRequired",
    "NotAuthenticated",
    "RateLimited",
]


class AuthError(Exception):
    """Base of every refusal here; ``str(error)`` is the message for the caller."""


class NotAuthenticated(AuthError):
    """No credential, or one the service cannot accept (401)."""


class Forbidden(AuthError):
    """The caller is known, and a policy refuses what it asks (403)."""


class RateLimited(AuthError):
    """Over a rate limit (429); ``retry_after``: whole seconds until it may try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        """``message`` for the caller; ``retry_after`` seconds, at least 1."""
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class KeysUnavailable(AuthError):
    """The identity provider's keys cannot be fetched and none cached fits (503)."""


class LimitsUnavailable(AuthError):
    """The rate-limit store (Redis) cannot answer and limits fail closed (503)."""


class NameRequired(AuthError, ValueError):
    """A caller without a verified identity (an API key, or no authentication) sent
    no userName: there is nobody to mint the token for (400)."""
