"""The JWT verifier and the key set, on the real PyJWT path, against a real JWKS over HTTP.

Keys are generated here (RSA, EC, Ed25519); the provider is a
:class:`~aura_livekit_backend.testing.issuer.DevIssuer` on 127.0.0.1, shared by the
module. Nothing of the verifier is mocked.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from aura_livekit_backend.auth.errors import KeysUnavailable, NotAuthenticated
from aura_livekit_backend.auth.jwks import KeySet
from aura_livekit_backend.auth.verify import Verifier
from aura_livekit_backend.settings import Settings
from aura_livekit_backend.testing.issuer import DevIssuer, SigningKey

AUDIENCE = "aura-test"
SECRET = "an-app-session-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {
        "rsa": SigningKey.rsa("rsa-1"),
        "ec": SigningKey.ec("ec-1"),
        "ed": SigningKey.ed25519("ed-1"),
    }


@pytest.fixture(scope="module")
def issuer(keys: dict[str, SigningKey]) -> Iterator[DevIssuer]:
    with DevIssuer(AUDIENCE, keys=list(keys.values())) as running:
        yield running


@pytest.fixture(autouse=True)
def healthy(issuer: DevIssuer) -> Iterator[None]:
    """Each test starts with every key published and the provider well."""
    issuer.published = [kid for kid in ("rsa-1", "ec-1", "ed-1")]
    issuer.jwks_fault = None
    yield
    issuer.jwks_fault = None


def settings_for(issuer: DevIssuer, **fields: Any) -> Settings:
    values: dict[str, Any] = {
        "auth": "jwt",
        "auth_issuer": issuer.url,
        "auth_audience": AUDIENCE,
        "auth_leeway": 0,
    }
    values.update(fields)
    return Settings(_env_file=None, **values)


def run(settings: Settings, check: Callable[[Verifier, KeySet | None], Awaitable[Any]], **kw):
    """Run ``check(verifier, key_set)`` in a fresh loop with an open key set."""

    async def main() -> Any:
        keyset = None
        if any(not a.startswith("HS") for a in settings.jwt_algorithms):
            keyset = KeySet(
                issuer=settings.auth_issuer,
                jwks_url=settings.auth_jwks_url,
                timeout=settings.auth_jwks_timeout,
                **kw,
            )
            await keyset.open()
        try:
            return await check(Verifier(settings, keyset), keyset)
        finally:
            if keyset is not None:
                await keyset.close()

    return asyncio.run(main())


def verify(issuer: DevIssuer, token: str, **fields: Any):
    settings = settings_for(issuer, **fields)
    return run(settings, lambda verifier, _: verifier.verify(token, address="127.0.0.1"))


def refused(issuer: DevIssuer, token: str, **fields: Any) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        verify(issuer, token, **fields)
    return str(caught.value)


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize("kind", ["rsa", "ec", "ed"])
def test_a_good_token_of_each_key_type_is_the_caller(issuer, kind) -> None:
    kid = {"rsa": "rsa-1", "ec": "ec-1", "ed": "ed-1"}[kind]
    caller = verify(issuer, issuer.token("ann", name="Ann", kid=kid, claims={"roles": ["host"]}))
    assert (caller.identity, caller.name, caller.trusted) == ("ann", "Ann", False)
    assert caller.claims["roles"] == ["host"] and caller.verified and not caller.anonymous
    with pytest.raises(TypeError):
        caller.claims["roles"] = []  # read-only


def test_keys_come_from_discovery_or_the_configured_url(issuer) -> None:
    token = issuer.token("ann")
    before = dict(issuer.fetches)
    assert verify(issuer, token).identity == "ann"
    assert issuer.fetches["discovery"] == before.get("discovery", 0) + 1
    assert verify(issuer, token, auth_jwks_url=issuer.jwks_url).identity == "ann"
    assert issuer.fetches["discovery"] == before.get("discovery", 0) + 1  # not asked again


def test_the_display_name_falls_back_to_preferred_username_then_the_identity(issuer) -> None:
    assert verify(issuer, issuer.token("u1", claims={"preferred_username": "ann"})).name == "ann"
    assert verify(issuer, issuer.token("u1")).name == "u1"
    # An unusable name claim is passed over, not a refusal.
    assert verify(issuer, issuer.token("u1", name="bad\x07name")).name == "u1"
    caller = verify(issuer, issuer.token("u1", claims={"email": "a@x"}), auth_name_claim="email")
    assert caller.name == "a@x"
    other = verify(issuer, issuer.token("u1", claims={"oid": "o-9"}), auth_identity_claim="oid")
    assert other.identity == "o-9"


def _none_token() -> str:
    now = int(time.time())
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'x', 'exp': now + 60})}."


def _hs_with_public_key(key: SigningKey, issuer: DevIssuer) -> str:
    """The classic confusion attack: HS256 keyed with the provider's public key (PEM)."""
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": now + 60}
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": key.kid})
    payload = _b64(claims)
    import hashlib
    import hmac

    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


BAD_TOKENS: list[tuple[str, Callable[[DevIssuer, dict[str, SigningKey]], str], str]] = [
    ("garbage", lambda i, k: "not-a-jwt", "not a well-formed JWT"),
    ("two parts", lambda i, k: "abc.def", "not a well-formed JWT"),
    ("header not json", lambda i, k: "e30x.e30.e30", "not a well-formed JWT"),
    ("expired", lambda i, k: i.token("ann", ttl=-60), "has expired"),
    (
        "not yet valid",
        lambda i, k: i.token("ann", claims={"nbf": int(time.time()) + 3600}),
        "not valid yet",
    ),
    ("wrong issuer", lambda i, k: i.token("ann", claims={"iss": "https://evil"}), "issuer"),
    ("wrong audience", lambda i, k: i.token("ann", claims={"aud": "someone-else"}), "audience"),
    ("no audience", lambda i, k: i.token("ann", claims={"aud": None}), "no aud claim"),
    ("no expiry", lambda i, k: i.token("ann", claims={"exp": None}), "no exp claim"),
    (
        "bad signature",
        lambda i, k: i.token("ann").rsplit(".", 1)[0] + "." + i.token("bob").rsplit(".", 1)[1],
        "signature does not verify",
    ),
    (
        "signed by a key the provider does not hold under that kid",
        lambda i, k: jwt.encode(
            jwt.decode(i.token("ann"), options={"verify_signature": False}),
            SigningKey.rsa().private,
            algorithm="RS256",
            headers={"kid": "rsa-1"},
        ),
        "signature does not verify",
    ),
    ("alg none", lambda i, k: _none_token(), "algorithm is not accepted"),
    ("HS256 with the public key", lambda i, k: _hs_with_public_key(k["rsa"], i), "not accepted"),
    (
        "an RS256 token naming the EC key",
        lambda i, k: jwt.encode(
            jwt.decode(i.token("ann"), options={"verify_signature": False}),
            SigningKey.rsa().private,
            algorithm="RS256",
            headers={"kid": "ec-1"},
        ),
        "cannot verify RS256",
    ),
    ("unknown kid", lambda i, k: i.token("ann", headers={"kid": "nobody"}), "kid"),
    ("over 8 KB", lambda i, k: i.token("ann", claims={"pad": "x" * 9000}), "longer than 8192"),
    ("no identity", lambda i, k: i.token(None), "no sub claim"),
    ("empty identity", lambda i, k: i.token(""), "sub claim is empty"),
    ("identity not text", lambda i, k: i.token("x", claims={"sub": 42}), "empty or not text"),
    ("identity over 128", lambda i, k: i.token("a" * 129), "over 128 characters"),
    ("identity with a control character", lambda i, k: i.token("ann\x00"), "control"),
    ("identity with a bidi override", lambda i, k: i.token("ann\u202e"), "invisible"),
]


@pytest.mark.parametrize(
    ("make", "problem"), [(m, p) for _, m, p in BAD_TOKENS], ids=[n for n, _, _ in BAD_TOKENS]
)
def test_every_bad_token_is_refused_naming_the_problem(issuer, keys, make, problem) -> None:
    token = make(issuer, keys)
    message = refused(issuer, token)
    assert problem in message
    assert token not in message and "eyJ" not in message


def test_hs256_works_only_with_the_shared_secret(issuer) -> None:
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "app-user", "exp": now + 60}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    assert verify(issuer, token, auth_jwt_secret=SECRET).identity == "app-user"
    # Issuer and audience are still checked.
    wrong = jwt.encode({**claims, "aud": "x"}, SECRET, algorithm="HS256")
    assert "audience" in refused(issuer, wrong, auth_jwt_secret=SECRET)
    # Another secret: a bad signature. No secret configured: HS256 is not accepted.
    forged = jwt.encode(claims, "another-secret-0123456789abcdef-xyz", algorithm="HS256")
    assert "signature" in refused(issuer, forged, auth_jwt_secret=SECRET)
    assert "not accepted" in refused(issuer, token)
    # With a secret alone, asymmetric tokens are not accepted unless listed.
    assert "not accepted" in refused(issuer, issuer.token("ann"), auth_jwt_secret=SECRET)
    both = {"auth_jwt_secret": SECRET, "auth_algorithms": "HS256,RS256"}
    assert verify(issuer, issuer.token("ann"), **both).identity == "ann"
    assert verify(issuer, token, **both).identity == "app-user"


def test_the_allow_list_is_honoured(issuer) -> None:
    token = issuer.token("ann", kid="ec-1")
    assert "not accepted" in refused(issuer, token, auth_algorithms="RS256")
    assert verify(issuer, token, auth_algorithms="ES256").identity == "ann"


def test_leeway_allows_clock_skew(issuer) -> None:
    token = issuer.token("ann", ttl=-5)
    assert "expired" in refused(issuer, token)
    assert verify(issuer, token, auth_leeway=30).identity == "ann"


# -- the key set: rotation, bounded refetch, a sick provider -----------------------


def test_an_unknown_kid_refetches_once_per_interval(issuer) -> None:
    rotated = SigningKey.ec("ec-rotated")
    issuer.add_key(rotated, publish=False)
    settings = settings_for(issuer, auth_jwks_url=issuer.jwks_url)
    now = [1000.0]

    async def check(verifier: Verifier, keyset: KeySet) -> None:
        assert (await verifier.verify(issuer.token("ann"))).identity == "ann"
        assert keyset.fetches == 1
        # Made-up kids within the interval: no fetch at all, each a 401.
        for n in range(20):
            with pytest.raises(NotAuthenticated):
                await verifier.verify(issuer.token("eve", headers={"kid": f"made-up-{n}"}))
        assert keyset.fetches == 1
        # The provider rotates; once the interval has passed, the new kid is fetched.
        issuer.published.append("ec-rotated")
        now[0] += 10
        assert (await verifier.verify(issuer.token("bob", kid="ec-rotated"))).identity == "bob"
        assert keyset.fetches == 2
        # Known keys keep working throughout.
        assert (await verifier.verify(issuer.token("ann", kid="ed-1"))).identity == "ann"
        assert keyset.fetches == 2
        # Keys past their age are refreshed in the background; the request does not wait.
        now[0] += 301
        assert (await verifier.verify(issuer.token("ann"))).identity == "ann"
        await asyncio.sleep(0.5)
        assert keyset.fetches == 3

    run(settings, check, refetch_interval=10, clock=lambda: now[0])
    issuer.published.remove("ec-rotated")


def test_concurrent_requests_share_one_fetch(issuer) -> None:
    settings = settings_for(issuer, auth_jwks_url=issuer.jwks_url)

    async def check(verifier: Verifier, keyset: KeySet) -> None:
        tokens = [issuer.token(f"user-{n}") for n in range(20)]
        callers = await asyncio.gather(*(verifier.verify(t) for t in tokens))
        assert [c.identity for c in callers] == [f"user-{n}" for n in range(20)]
        assert keyset.fetches == 1

    run(settings, check)


@pytest.mark.parametrize("fault", ["down", "slow", "garbage"])
def test_a_sick_provider_keeps_cached_keys_working_and_never_hangs(issuer, fault) -> None:
    issuer.slow_seconds = 10
    settings = settings_for(issuer, auth_jwks_url=issuer.jwks_url, auth_jwks_timeout=0.3)

    async def check(verifier: Verifier, keyset: KeySet) -> None:
        assert (await verifier.verify(issuer.token("ann"))).identity == "ann"
        issuer.jwks_fault = fault
        # Cached keys: still verified, whatever the provider does.
        assert (await verifier.verify(issuer.token("bob", kid="ec-1"))).identity == "bob"
        # A kid it lacks: one fetch, bounded by the timeout; then 503, not 401.
        with pytest.raises(KeysUnavailable) as caught:
            await asyncio.wait_for(
                verifier.verify(issuer.token("eve", headers={"kid": "new"})), timeout=5
            )
        assert "could not be fetched" in str(caught.value) or "JSON" in str(caught.value)
        assert keyset.fetches == 2

    run(settings, check, refetch_interval=0)


@pytest.mark.parametrize("fault", ["down", "slow", "garbage"])
def test_no_cached_keys_and_a_sick_provider_is_503_at_once_within_the_interval(
    issuer, fault
) -> None:
    issuer.jwks_fault = fault
    issuer.slow_seconds = 10
    settings = settings_for(issuer, auth_jwks_timeout=0.3)

    async def check(verifier: Verifier, keyset: KeySet) -> None:
        for _ in range(5):
            with pytest.raises(KeysUnavailable):
                await asyncio.wait_for(verifier.verify(issuer.token("ann")), timeout=5)
        assert keyset.fetches == 1  # one try; the rest answered at once
        issuer.jwks_fault = None

    run(settings, check, refetch_interval=3600)


def test_a_key_set_without_usable_keys_is_refused() -> None:
    from aura_livekit_backend.auth.jwks import _usable_keys

    for document in ({}, {"keys": "x"}, {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}, []):
        with pytest.raises(KeysUnavailable):
            _usable_keys(document)


def test_no_token_key_or_jwks_body_is_logged(issuer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    token = issuer.token("ann")
    expired = issuer.token("ann", ttl=-60)
    settings = settings_for(issuer, auth_jwks_url=issuer.jwks_url, auth_jwks_timeout=0.3)

    async def check(verifier: Verifier, keyset: KeySet) -> None:
        await verifier.verify(token)
        with pytest.raises(NotAuthenticated):
            await verifier.verify(expired)
        issuer.jwks_fault = "garbage"
        with pytest.raises(KeysUnavailable):
            await verifier.verify(issuer.token("x", headers={"kid": "new"}))

    run(settings, check, refetch_interval=0)
    logged = caplog.text
    assert "identity provider keys" in logged  # the garbage was reported…
    assert "not a key set" not in logged  # …without its body
    jwk = issuer.keys["rsa-1"].public_jwk()
    for secret in (token, expired, jwk["n"], token.split(".")[1]):
        assert secret not in logged
