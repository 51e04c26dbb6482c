"""Sign-in sessions: signed, expiring cookies, and the CSRF token bound to each.

The service is stateless (many workers, many replicas), so a session lives only in its
cookie: ``1.<expires>.<kind>.<subject>.<nonce>.<mac>``. ``kind`` is ``key`` (signed in
with a console or moderation key; ``subject`` is a fingerprint of that key) or ``jwt``
(signed in through the identity provider; ``subject`` is the person's identity,
base64url). The MAC is HMAC-SHA256 under a key derived from the LiveKit API secret
(every replica has it), ``AURA_CONSOLE_SESSION_SECRET`` if set, and — for a key
session — the very key signed in with: forging one takes that key, and removing a key
from the settings ends every session it opened.

The CSRF token of a session is an HMAC of its cookie: a page carries it in every form,
and an action without it (or with another session's) is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["COOKIE", "Session", "Sessions"]

#: The session cookie's name.
COOKIE = "aura_console"
_VERSION = "1"
_LABEL = b"aura-livekit-console session v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _octets(text: str) -> bytes:
    """``text`` as bytes, whatever a client sent (lone surrogates included)."""
    return text.encode("utf-8", "surrogatepass")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in operator."""

    #: ``key`` or ``jwt``.
    kind: str
    #: Who: a key's fingerprint, or the person's identity.
    subject: str
    #: Unix seconds after which the session is over.
    expires: int
    #: The cookie's value (the CSRF token is derived from it).
    cookie: str

    @property
    def who(self) -> str:
        """How the page names the operator."""
        return f"key {self.subject[:8]}" if self.kind == "key" else self.subject


class Sessions:
    """Makes and checks session cookies and CSRF tokens."""

    def __init__(
        self,
        *,
        secret: bytes,
        keys: Iterable[str],
        lifetime: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Sign with ``secret`` (server-wide); ``keys`` are the keys that may sign in;
        sessions last ``lifetime`` seconds."""
        self._secret = hmac.new(secret, _LABEL, hashlib.sha256).digest()
        self._lifetime = lifetime
        self._clock = clock
        # fingerprint -> the key's own MAC key
        self._keys: dict[str, bytes] = {}
        for key in keys:
            if key:
                self._keys[self._fingerprint(key)] = self._mac_key(b"key:" + key.encode())

    def __bool__(self) -> bool:
        """True when at least one key may sign in."""
        return bool(self._keys)

    def _fingerprint(self, key: str) -> str:
        # Keyed: the fingerprint tells nothing about the key without the server secret.
        return hmac.new(self._secret, b"fingerprint:" + key.encode(), hashlib.sha256).hexdigest()[
            :16
        ]

    def _mac_key(self, what: bytes) -> bytes:
        return hmac.new(self._secret, what, hashlib.sha256).digest()

    def match_key(self, given: str) -> str | None:
        """The fingerprint of ``given`` when it is one of the keys, else None.

        Compared in constant time against every key.
        """
        fingerprint = self._fingerprint(given)
        found = None
        for known in self._keys:
            if hmac.compare_digest(known, fingerprint):
                found = known
        return found

    def open(self, kind: str, subject: str, *, not_after: float | None = None) -> Session:
        """A new session for ``subject`` (a key's fingerprint, or an identity), ending
        after the lifetime or at ``not_after`` (a JWT's expiry), whichever is first."""
        expires = int(self._clock()) + self._lifetime
        if not_after is not None:
            expires = min(expires, int(not_after))
        encoded = subject if kind == "key" else _b64(subject.encode())
        payload = f"{_VERSION}.{expires}.{kind}.{encoded}.{secrets.token_urlsafe(12)}"
        cookie = f"{payload}.{self._sign(kind, subject, payload)}"
        return Session(kind, subject, expires, cookie)

    def _sign(self, kind: str, subject: str, payload: str) -> str:
        key = self._keys[subject] if kind == "key" else self._mac_key(b"jwt")
        return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())

    def check(self, cookie: str | None) -> Session | None:
        """The session ``cookie`` carries, or None when it is missing, forged, from a
        removed key, or expired."""
        if not cookie or len(cookie) > 1024:
            return None
        parts = cookie.split(".")
        if len(parts) != 6 or parts[0] != _VERSION:
            return None
        _, expires_text, kind, encoded, _nonce, mac = parts
        if not expires_text.isdigit():
            return None
        if kind == "key":
            if encoded not in self._keys:
                return None
            subject = encoded
        elif kind == "jwt":
            try:
                subject = _unb64(encoded).decode()
            except (ValueError, UnicodeDecodeError):
                return None
        else:
            return None
        payload = cookie.rpartition(".")[0]
        if not hmac.compare_digest(self._sign(kind, subject, payload).encode(), _octets(mac)):
            return None
        expires = int(expires_text)
        if expires <= self._clock():
            return None
        return Session(kind, subject, expires, cookie)

    def csrf_token(self, session: Session) -> str:
        """The token every action of ``session`` must carry."""
        digest = hmac.new(self._mac_key(b"csrf"), session.cookie.encode(), hashlib.sha256)
        return _b64(digest.digest())

    def csrf_ok(self, session: Session, given: str | None) -> bool:
        """Whether ``given`` is ``session``'s CSRF token (constant time)."""
        return bool(given) and hmac.compare_digest(
            self.csrf_token(session).encode(), _octets(str(given))
        )
