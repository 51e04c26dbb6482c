"""An identity provider's public keys (its JWKS), fetched over HTTP and cached per worker.

The keys are fetched when a token first needs them, from ``AURA_AUTH_JWKS_URL`` or the
``jwks_uri`` of the issuer's ``/.well-known/openid-configuration``, and kept. A token
signed with a key the set does not hold (a provider rotating its keys) fetches them
again, at most once per :data:`REFETCH_INTERVAL` seconds whatever callers send, so
made-up key ids cannot make the service hammer the provider. Keys older than
:data:`MAX_AGE` are refreshed in the background while the cached ones keep answering.

A provider that is down, slow or answers garbage costs a request at most one
``AURA_AUTH_JWKS_TIMEOUT``: the cached keys keep working; with none cached (or none
that fits) the answer is :class:`~.errors.KeysUnavailable` (503). Concurrent requests
share one fetch. Neither the keys nor the provider's answers are ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from jwt import PyJWK

from .errors import KeysUnavailable, NotAuthenticated

__all__ = ["MAX_AGE", "MAX_JWKS_BYTES", "REFETCH_INTERVAL", "KeySet", "discovery_url"]

logger = logging.getLogger("aura_livekit_backend.auth")

#: Least seconds between two fetches a token's unknown key id (or a failure) may cause.
REFETCH_INTERVAL = 10.0
#: Seconds after which cached keys are refreshed in the background.
MAX_AGE = 300.0
#: The largest JWKS or discovery document read; real ones are a few KB.
MAX_JWKS_BYTES = 512 * 1024

# The curve each EC algorithm needs: a key on another curve never verifies it.
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


def discovery_url(issuer: str) -> str:
    """Where OpenID Connect discovery says an issuer describes itself."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _family_fits(key: PyJWK, algorithm: str) -> bool:
    """Whether ``key`` can verify ``algorithm`` (an RSA key never checks ES256, …)."""
    declared = key._jwk_data.get("alg")
    if declared and declared != algorithm:
        return False
    kty = key.key_type
    if algorithm.startswith(("RS", "PS")):
        return kty == "RSA"
    if algorithm in _CURVES:
        return kty == "EC" and key._jwk_data.get("crv") == _CURVES[algorithm]
    if algorithm == "EdDSA":
        return kty == "OKP"
    return False


def _usable_keys(document: Any) -> dict[str | None, PyJWK]:
    """The signing keys of a JWKS document, by key id; skips what cannot be used."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeysUnavailable("the identity provider's key set is not a JWKS document")
    keys: dict[str | None, PyJWK] = {}
    for entry in document["keys"]:
        # Symmetric ("oct") keys in a public set are never trusted; nor are
        # encryption keys. PyJWK's own errors quote the key: they are not logged.
        if not isinstance(entry, dict) or entry.get("kty") == "oct" or entry.get("use") == "enc":
            continue
        try:
            key = PyJWK(entry)
        except Exception:  # noqa: S112 (an unusable key is skipped, as PyJWKSet does)
            continue
        kid = entry.get("kid")
        keys[kid if isinstance(kid, str) else None] = key
    if not keys:
        raise KeysUnavailable("the identity provider's key set holds no usable signing key")
    return keys


class KeySet:
    """One worker's cache of an identity provider's keys. Built without I/O;
    :meth:`open` in the worker, :meth:`close` on stop."""

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str | None,
        timeout: float,
        refetch_interval: float = REFETCH_INTERVAL,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keys of ``issuer``, from ``jwks_url`` or found through discovery."""
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._timeout = timeout
        self._refetch_interval = refetch_interval
        self._max_age = max_age
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._keys: dict[str | None, PyJWK] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._failure: KeysUnavailable | None = None
        self._inflight: asyncio.Task[None] | None = None
        #: How many times the keys were fetched (for tests and curiosity).
        self.fetches = 0

    async def open(self) -> None:
        """Open the HTTP session; call inside the worker's running event loop."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout), raise_for_status=False
        )

    async def close(self) -> None:
        """Stop a fetch in flight and close the session; safe to call twice."""
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def key_for(self, kid: str | None, algorithm: str) -> Any:
        """The public key (a ``cryptography`` key object) that verifies a token with
        header ``kid`` and ``algorithm``.

        Raises :class:`NotAuthenticated` when the provider has no such key, and
        :class:`KeysUnavailable` when its keys cannot be had to tell.
        """
        now = self._clock()
        keys = self._keys
        if keys is None or (kid not in keys and not (kid is None and len(keys) == 1)):
            keys = await self._refetch(now)
        elif now - self._fetched_at > self._max_age and self._may_fetch(now):
            self._start_fetch()  # in the background: the cached keys answer this one
        key = keys.get(kid) if kid is not None or len(keys) != 1 else next(iter(keys.values()))
        if key is None:
            if kid is None:
                raise NotAuthenticated("the token names no key (kid) and the provider has several")
            raise NotAuthenticated("the token's key (kid) is not one of the identity provider's")
        if not _family_fits(key, algorithm):
            raise NotAuthenticated(f"the token's key cannot verify {algorithm}")
        return key.key

    def _may_fetch(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self._refetch_interval

    async def _refetch(self, now: float) -> dict[str | None, PyJWK]:
        """Fetch now (sharing a fetch in flight), unless one was tried too recently."""
        if self._inflight is None and self._may_fetch(now):
            self._start_fetch()
        if self._inflight is not None:
            # shield: one caller giving up (its request cancelled) must not cancel the
            # fetch the others wait on.
            await asyncio.shield(self._inflight)
        if self._keys is None:
            raise self._failure or KeysUnavailable("the identity provider's keys are not loaded")
        if self._failure is not None and self._attempted_at is not None:
            # The last try failed: a key we lack may be one we could not fetch.
            raise self._failure
        return self._keys

    def _start_fetch(self) -> None:
        self._attempted_at = self._clock()
        self._inflight = asyncio.get_running_loop().create_task(self._fetch())

    async def _fetch(self) -> None:
        try:
            url = self._jwks_url or await self._discover()
            keys = _usable_keys(await self._get_json(url, "key set"))
        except KeysUnavailable as exc:
            logger.warning("identity provider keys: %s; cached keys stay in use", exc)
            self._failure = exc
        else:
            self._keys, self._fetched_at, self._failure = keys, self._clock(), None
        finally:
            self.fetches += 1
            self._inflight = None

    async def _discover(self) -> str:
        document = await self._get_json(discovery_url(self._issuer), "discovery document")
        uri = document.get("jwks_uri") if isinstance(document, dict) else None
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
            raise KeysUnavailable("the issuer's discovery document names no jwks_uri")
        self._jwks_url = uri  # discovery once per worker; the keys themselves refresh
        return uri

    async def _get_json(self, url: str, what: str) -> Any:
        if self._session is None:
            raise RuntimeError("the key set is used before the server started")
        problem = f"the identity provider's {what} could not be fetched"
        try:
            # wait_for as well as the session's timeout: a server trickling bytes
            # resets aiohttp's read timer, never this one.
            return await asyncio.wait_for(self._read(url, what), self._timeout)
        except asyncio.TimeoutError:
            raise KeysUnavailable(f"{problem} (no answer within {self._timeout:g} s)") from None
        except aiohttp.ClientError as exc:
            raise KeysUnavailable(f"{problem} ({type(exc).__name__})") from None

    async def _read(self, url: str, what: str) -> Any:
        assert self._session is not None
        async with self._session.get(url, allow_redirects=False) as response:
            if response.status != 200:
                raise KeysUnavailable(
                    f"the identity provider's {what} could not be fetched (HTTP {response.status})"
                )
            body = await response.content.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise KeysUnavailable(f"the identity provider's {what} is over {MAX_JWKS_BYTES} bytes")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise KeysUnavailable(f"the identity provider's {what} is not JSON") from None
