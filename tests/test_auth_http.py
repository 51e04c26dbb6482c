"""AURA_AUTH=jwt over HTTP: who the caller is, what the body may say, policies, limits.

A real identity provider (:class:`DevIssuer`, real RSA keys, a JWKS over HTTP) shared
by the module; the service built as the console script builds it, against the emulator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from aura_livekit_backend.endpoints import health, rooms, tokens
from aura_livekit_backend.plugin import Decision, Grants, Plugin, PolicyRequest
from aura_livekit_backend.testing.issuer import DevIssuer
from aura_livekit_backend.testing.pytest_plugin import TEST_API_SECRET

AUDIENCE = "aura-http-test"
KEY = "k-0123456789abcdef-backend"
ORIGIN = "https://app.example"
BUILT_INS = {"health": health.plugin, "rooms": rooms.plugin, "tokens": tokens.plugin}


@pytest.fixture(scope="module")
def issuer() -> Iterator[DevIssuer]:
    with DevIssuer(AUDIENCE) as running:
        yield running


@pytest.fixture
def jwt_client(serve, issuer):
    def make(plugins: dict[str, Plugin] | None = None, **fields: Any):
        values = {"auth": "jwt", "auth_issuer": issuer.url, "auth_audience": AUDIENCE}
        return serve(plugins=plugins, **{**values, **fields})

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def livekit_claims(token: str) -> dict[str, Any]:
    """What LiveKit reads from a token the service minted."""
    return jwt.decode(token, TEST_API_SECRET, algorithms=["HS256"], options={"verify_aud": False})


def new_room(client, token: str, **body: Any) -> dict[str, Any]:
    response = client.post("/api/room/create", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "a bearer token is required: send Authorization: Bearer <JWT>"),
        ("", "a bearer token is required: send Authorization: Bearer <JWT>"),
        ("Bearer", "a bearer token is required: send Authorization: Bearer <JWT>"),
        ("Basic YW5uOnB3", "a bearer token is required: send Authorization: Bearer <JWT>"),
        ("Bearer not-a-jwt", "the bearer token is not a well-formed JWT"),
        ("Bearer " + "a.b" * 2300, "the bearer token is not a well-formed JWT"),
    ],
)
def test_without_a_valid_jwt_every_room_and_token_route_is_401(
    jwt_client, authorization, message
) -> None:
    client = jwt_client()
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path, body in [
        ("post", "/api/room/create", {}),
        ("post", "/api/token", {"roomId": "r"}),
        ("post", "/api/room/join", {"roomId": "r"}),
        ("get", "/api/rooms", None),
        ("get", "/api/room/r", None),
    ]:
        kwargs = {"json": body} if body is not None else {}
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 401, (path, response.text)
        assert response.json == {"statusCode": 401, "message": message}
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="aura-livekit-backend"'
    assert client.get("/api/health").status_code == 200
    assert client.get("/docs/openapi.json").status_code == 200


def test_a_token_over_8_kb_never_reaches_the_verifier(jwt_client, issuer) -> None:
    # Sanic refuses request headers over 8 KB in all before any middleware: a 413 in the
    # error shape (the verifier's own 8 KB cap is tested in test_auth_verify.py).
    token = issuer.token("ann", claims={"pad": "x" * 9000})
    response = jwt_client().get("/api/rooms", headers=bearer(token))
    assert response.status_code == 413
    assert response.json == {"statusCode": 413, "message": "Request header exceeds the size limit"}


def test_an_expired_token_is_401_naming_it(jwt_client, issuer) -> None:
    response = jwt_client().get("/api/rooms", headers=bearer(issuer.token("ann", ttl=-120)))
    assert response.status_code == 401
    assert response.json["message"] == "the token has expired"


def test_the_identity_is_the_tokens_and_userName_only_a_display_name(jwt_client, issuer) -> None:
    client = jwt_client()
    ann = issuer.token("ann", name="Ann Lee")
    created = new_room(client, ann, roomTopic="Standup")
    assert (created["identity"], created["userName"]) == ("ann", "Ann Lee")
    minted = livekit_claims(created["token"])
    assert (minted["sub"], minted["name"]) == ("ann", "Ann Lee")
    # createdBy records the creator's identity.
    room = client.get(f"/api/room/{created['roomId']}", headers=bearer(ann)).json
    assert room["createdBy"] == "ann"
    # Joining: no userName needed; one sent changes the name, never the identity.
    bob = issuer.token("bob", name="Bob")
    joined = client.post("/api/token", json={"roomId": created["roomId"]}, headers=bearer(bob))
    assert joined.status_code == 200 and joined.json["identity"] == "bob"
    posing = client.post(
        "/api/room/join",
        json={"roomId": created["sid"], "userName": "ann"},
        headers=bearer(bob),
    )
    assert posing.status_code == 200 and posing.json["identity"] == "bob"
    assert livekit_claims(posing.json["token"])["name"] == "ann"
    assert livekit_claims(posing.json["token"])["sub"] == "bob"


def test_the_duplicate_rule_applies_to_identities(jwt_client, issuer, livekit_emulator) -> None:
    client = jwt_client(duplicate_username="reject")
    ann = issuer.token("ann")
    room = new_room(client, ann)["roomId"]
    livekit_emulator.add_participant(room, "ann", "Ann")
    again = client.post(
        "/api/token", json={"roomId": room, "userName": "Other"}, headers=bearer(ann)
    )
    assert again.status_code == 409
    unique = jwt_client(duplicate_username="unique")
    made = new_room(unique, ann)
    assert made["identity"].startswith("ann#") and len(made["identity"]) == len("ann#") + 8


def test_keys_and_jwts_together_the_matrix(jwt_client, issuer) -> None:
    client = jwt_client(api_keys=KEY)
    key = {"Authorization": f"Bearer {KEY}"}
    # A trusted backend acts for any userName, and must name one.
    made = client.post("/api/room/create", json={"userName": "carol"}, headers=key)
    assert made.status_code == 200 and made.json["identity"] == "carol"
    room = made.json["roomId"]
    assert client.get(f"/api/room/{room}", headers=key).json["createdBy"] == "carol"
    nameless = client.post("/api/token", json={"roomId": room}, headers=key)
    assert nameless.status_code == 400
    assert nameless.json == {"statusCode": 400, "message": "userName is required"}
    # A person acts only as itself, whatever the body says.
    ann = client.post(
        "/api/token",
        json={"roomId": room, "userName": "carol"},
        headers=bearer(issuer.token("ann")),
    )
    assert ann.status_code == 200 and ann.json["identity"] == "ann"
    # Neither: 401 naming both.
    none = client.get("/api/rooms", headers={"Authorization": "Bearer wrong-0123456789abcdef"})
    assert none.status_code == 401
    bare = client.get("/api/rooms")
    assert bare.json["message"].endswith("(or an API key)")


def test_the_openapi_document_says_jwt_and_userName_is_optional(jwt_client) -> None:
    spec = jwt_client(api_keys=KEY).get("/docs/openapi.json").json
    schemes = spec["components"]["securitySchemes"]
    assert schemes["jwt"]["bearerFormat"] == "JWT" and schemes["jwt"]["scheme"] == "bearer"
    assert spec["security"] == [{"jwt": []}, {"apiKey": []}]
    token = spec["paths"]["/api/token"]["post"]
    body = token["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["roomId"]
    assert {"401", "403", "429"} <= set(map(str, token["responses"]))


def test_a_provider_that_is_down_is_503_not_a_hang(jwt_client, issuer) -> None:
    issuer.jwks_fault = "down"
    try:
        client = jwt_client(auth_jwks_timeout=0.5)
        response = client.get("/api/rooms", headers=bearer(issuer.token("ann")), timeout=10)
    finally:
        issuer.jwks_fault = None
    assert response.status_code == 503
    assert response.json == {
        "statusCode": 503,
        "message": "the identity provider's discovery document could not be fetched (HTTP 503)",
    }


# -- policies ---------------------------------------------------------------------


class NoDataInBoardrooms:
    """A plugin's policy: nobody but hosts into rooms whose topic says Board; no data."""

    def __init__(self) -> None:
        self.seen: list[PolicyRequest] = []

    async def decide(self, request: PolicyRequest) -> Decision:
        self.seen.append(request)
        board = request.room is not None and "Board" in request.room.topic
        if board and "host" not in request.caller.claims.get("roles", []):
            return Decision.deny("the board meets privately")
        return Decision.narrow(
            Grants(can_publish_data=False, can_publish_sources={"camera", "microphone"})
        )


class Hidden:
    async def decide(self, request: PolicyRequest) -> Decision:
        return Decision.narrow(Grants(hidden=True, can_publish_sources=frozenset({"microphone"})))


def test_plugin_policies_compose_deny_and_narrow(jwt_client, issuer) -> None:
    first, second = NoDataInBoardrooms(), Hidden()

    def setup(ctx) -> None:
        ctx.add_policy(first)
        ctx.add_policy(second)

    client = jwt_client(plugins={**BUILT_INS, "boardroom": Plugin(setup=setup)})
    host = issuer.token("ann", claims={"roles": ["host"]})
    guest = issuer.token("bob")
    board = new_room(client, host, roomTopic="Board meeting")
    # The creator's token is narrowed too: the policies ran on the create.
    video = livekit_claims(board["token"])["video"]
    assert video["canPublishData"] is False and video["hidden"] is True
    assert video["canPublishSources"] == ["microphone"]  # {camera, microphone} ∩ {microphone}
    assert [r.action for r in first.seen] == ["create"]
    assert first.seen[0].topic == "Board meeting" and first.seen[0].identity == "ann"
    refused = client.post("/api/token", json={"roomId": board["roomId"]}, headers=bearer(guest))
    assert refused.status_code == 403
    assert refused.json == {
        "statusCode": 403,
        "message": "Failed to join room: the board meets privately",
    }
    assert first.seen[-1].room is not None and first.seen[-1].room.name == board["roomId"]
    joined = client.post("/api/token", json={"roomId": board["roomId"]}, headers=bearer(host))
    video = livekit_claims(joined.json["token"])["video"]
    assert (video["canPublish"], video["canSubscribe"], video["canPublishData"]) == (
        True,
        True,
        False,
    )
    assert video["room"] == board["roomId"]


def test_the_built_in_claim_policy_webinar(jwt_client, issuer) -> None:
    client = jwt_client(
        api_keys=KEY,
        auth_create_claim="realm_access.roles:host,admin",
        auth_publish_claim="roles:host,speaker",
    )
    host = issuer.token("ann", claims={"realm_access": {"roles": ["host"]}, "roles": ["host"]})
    viewer = issuer.token("bob", claims={"roles": ["viewer"]})
    made = new_room(client, host)
    assert livekit_claims(made["token"])["video"]["canPublish"] is True
    refused = client.post("/api/room/create", json={}, headers=bearer(viewer))
    assert refused.status_code == 403
    assert refused.json["message"] == (
        "Failed to create room: creating rooms needs the claim realm_access.roles:admin,host"
    )
    watching = client.post("/api/token", json={"roomId": made["roomId"]}, headers=bearer(viewer))
    video = livekit_claims(watching.json["token"])["video"]
    assert (video["canPublish"], video["canPublishData"], video["canSubscribe"]) == (
        False,
        False,
        True,
    )
    # A trusted backend decides for its users: the claim policy lets it through.
    key = {"Authorization": f"Bearer {KEY}"}
    backend = client.post("/api/room/create", json={"userName": "svc"}, headers=key)
    assert backend.status_code == 200
    assert livekit_claims(backend.json["token"])["video"]["canPublish"] is True


def test_browsers_preflight_and_read_errors_cross_origin(jwt_client, issuer) -> None:
    client = jwt_client(cors_origins=ORIGIN, rate_limit_auth_failures="1/minute")
    preflight = client.request(
        "options",
        "/api/token",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert {"authorization", "content-type"} <= {
        h.strip() for h in preflight.headers["access-control-allow-headers"].lower().split(",")
    }
    ok = client.get("/api/rooms", headers={"Origin": ORIGIN, **bearer(issuer.token("ann"))})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    # An error is readable by the page too, with the headers it needs.
    denied = client.get("/api/rooms", headers={"Origin": ORIGIN, "Authorization": "Bearer x"})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == ORIGIN
    exposed = denied.headers["access-control-expose-headers"].lower()
    assert "retry-after" in exposed and "www-authenticate" in exposed
    throttled = client.get("/api/rooms", headers={"Origin": ORIGIN, "Authorization": "Bearer x"})
    assert throttled.status_code == 429
    assert throttled.headers["access-control-allow-origin"] == ORIGIN
    other = client.get(
        "/api/rooms", headers={"Origin": "https://evil.example", **bearer(issuer.token("ann"))}
    )
    assert "access-control-allow-origin" not in other.headers


def test_failed_authentications_are_throttled_per_address(jwt_client, issuer, monkeypatch) -> None:
    moderation_key = "m-0123456789abcdef-moderator"
    monkeypatch.setenv("AURA_MODERATION_API_KEYS", moderation_key)
    client = jwt_client(api_keys=KEY, rate_limit_auth_failures="4/minute")
    good = bearer(issuer.token("ann"))
    assert client.get("/api/rooms", headers=good).status_code == 200
    # API keys, JWTs and the moderation plugin's own keys count alike.
    for headers in (
        {"Authorization": "Bearer wrong-key-0123456789"},
        bearer(issuer.token("ann", ttl=-600)),
        {"Authorization": "Bearer wrong-moderation-key"},
    ):
        path = "/api/room/x/participants" if "moderation" in str(headers) else "/api/rooms"
        assert client.get(path, headers=headers).status_code == 401
    assert client.get("/api/rooms").status_code == 401  # no credentials: counted, not held
    # Over the limit: any credentials, even right ones, are 429 until the window moves on.
    for headers in (good, {"Authorization": f"Bearer {KEY}"}):
        response = client.get("/api/rooms", headers=headers)
        assert response.status_code == 429
        assert response.json["message"].startswith(
            "too many failed authentications from this address; retry in "
        )
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    moderated = client.get(
        "/api/room/x/participants", headers={"Authorization": f"Bearer {moderation_key}"}
    )
    assert moderated.status_code == 429
    # Probes carry no credentials: never held up.
    assert client.get("/api/health").status_code == 200
    spec = client.get("/docs/openapi.json").json
    assert "429" in map(str, spec["paths"]["/api/rooms"]["get"]["responses"])


def test_create_and_join_limits_count_per_identity(jwt_client, issuer) -> None:
    client = jwt_client(rate_limit_join="2/minute", rate_limit_create="1/hour")
    ann, bob = bearer(issuer.token("ann")), bearer(issuer.token("bob"))
    room = client.post("/api/room/create", json={}, headers=ann).json["roomId"]
    again = client.post("/api/room/create", json={}, headers=ann)
    assert again.status_code == 429
    assert again.json["message"].startswith("Failed to create room: too many rooms created; retry")
    assert 1 <= int(again.headers["Retry-After"]) <= 3600
    assert client.post("/api/room/create", json={}, headers=bob).status_code == 200
    for _ in range(2):
        assert client.post("/api/token", json={"roomId": room}, headers=ann).status_code == 200
    over = client.post("/api/room/join", json={"roomId": room}, headers=ann)
    assert over.status_code == 429 and "too many joins" in over.json["message"]
    # The body's userName changes nothing: the count is the identity's.
    posing = client.post("/api/token", json={"roomId": room, "userName": "zed"}, headers=ann)
    assert posing.status_code == 429
    assert client.post("/api/token", json={"roomId": room}, headers=bob).status_code == 200


def test_anonymous_callers_are_counted_by_address(serve) -> None:
    client = serve(rate_limit_create="2/minute")
    for name in ("a", "b"):
        assert client.post("/api/room/create", json={"userName": name}).status_code == 200
    third = client.post("/api/room/create", json={"userName": "c"})
    assert third.status_code == 429 and "Retry-After" in third.headers


def test_no_token_or_key_in_any_log_line_or_reply(jwt_client, issuer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = jwt_client(api_keys=KEY, access_log=True, log_level="DEBUG")
    good, expired = issuer.token("ann"), issuer.token("ann", ttl=-600)
    answers = [
        client.post("/api/room/create", json={}, headers=bearer(good)),
        client.get("/api/rooms", headers=bearer(expired)),
        client.get("/api/rooms", headers={"Authorization": f"Bearer {KEY}x"}),
        client.get("/api/rooms", headers={"Authorization": f"Bearer {KEY}"}),
    ]
    minted = answers[0].json["token"]
    issuer.jwks_fault = "garbage"
    try:
        answers.append(client.get("/api/rooms", headers=bearer(issuer.token("x", kid=None))))
    finally:
        issuer.jwks_fault = None
    replies = " ".join(a.text for a in answers[1:])
    logged = caplog.text
    assert "GET /api/rooms 401" in logged  # the access log did log them
    for secret in (good, expired, KEY, good.split(".")[2], expired.split(".")[1]):
        assert secret not in logged and secret not in replies
    assert minted not in logged
