"""The service's settings: one typed object, read from the environment.

LiveKit's own variables keep LiveKit's names (``LIVEKIT_URL``, ``LIVEKIT_API_KEY``,
``LIVEKIT_API_SECRET``, ``LIVEKIT_PUBLIC_URL``) so one ``.env`` serves LiveKit's
tools and this service alike; everything else is ours and starts with ``AURA_``
(not ``SANIC_``: Sanic copies every ``SANIC_*`` variable into its own config).

Precedence: values passed to :class:`Settings` (the console script's flags) beat
the environment, which beats a ``.env`` file in the working directory, which beats
the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = [
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "ApiKeys",
    "Settings",
    "SettingsError",
    "load_settings",
    "read_plugin_settings",
]

#: The credentials ``livekit-server --dev`` starts with; never fit for production.
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"  # noqa: S105 (public knowledge, refused outside --dev)

#: PyJWT (and common sense) want an HMAC secret of at least 32 bytes.
MIN_SECRET_BYTES = 32
#: Shorter API keys are guessable; generate them with ``openssl rand -hex 24``.
MIN_API_KEY_LENGTH = 16

_ENV_PREFIX = "AURA_"

#: The JWT algorithms AURA_AUTH accepts by default: asymmetric only, so no token can be
#: forged with a public key; ``none`` is never among them.
ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
#: Every algorithm AURA_AUTH_ALGORITHMS may name.
JWT_ALGORITHMS = (*ASYMMETRIC_ALGORITHMS, "HS256", "HS384", "HS512")


def _livekit(name: str) -> Any:
    """Bind a field to LiveKit's own variable name instead of an ``AURA_`` one."""
    return AliasChoices(name, name.lower())


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _check_keys(value: list[SecretStr]) -> list[SecretStr]:
    for key in value:
        # Never name the key: this message is printed at start-up.
        if len(key.get_secret_value()) < MIN_API_KEY_LENGTH:
            raise ValueError(f"every key must be at least {MIN_API_KEY_LENGTH} characters")
        if any(c.isspace() for c in key.get_secret_value()):
            raise ValueError("a key must not contain whitespace")
    return value


CommaList = Annotated[list[str], NoDecode]
#: API keys from one variable, comma-separated: each at least 16 characters, no
#: whitespace, kept as ``SecretStr``. The core's ``AURA_API_KEYS`` and any plugin's keys.
ApiKeys = Annotated[
    list[SecretStr], NoDecode, BeforeValidator(_split_commas), AfterValidator(_check_keys)
]


class SettingsError(Exception):
    """A setting has a value the service cannot run with.

    The message names the environment variable, never the value: the value may be a
    secret.
    """


class Settings(BaseSettings):
    """Everything the service can be told, with its environment variable."""

    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    livekit_url: str = Field(
        "http://127.0.0.1:7880",
        validation_alias=_livekit("LIVEKIT_URL"),
        description="Where the service calls LiveKit's server API (http, https, ws or wss).",
    )
    livekit_api_key: str | None = Field(
        None, validation_alias=_livekit("LIVEKIT_API_KEY"), description="LiveKit API key."
    )
    livekit_api_secret: SecretStr | None = Field(
        None,
        validation_alias=_livekit("LIVEKIT_API_SECRET"),
        description="LiveKit API secret; never printed or logged.",
    )
    livekit_public_url: str | None = Field(
        None,
        validation_alias=_livekit("LIVEKIT_PUBLIC_URL"),
        description="The URL clients connect to; defaults to LIVEKIT_URL with http→ws, https→wss.",
    )
    livekit_timeout: float = Field(
        5.0, gt=0, le=120, description="Seconds one LiveKit call may take before a 503."
    )

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=1, le=65535, description="Port to bind.")
    workers: int = Field(1, ge=1, le=256, description="Worker processes.")
    api_prefix: str = Field("/api", description="Path every plugin's routes live under.")
    token_ttl: timedelta = Field(
        timedelta(hours=24),
        description="Lifetime of a minted token: seconds, or ISO 8601 such as PT24H.",
    )
    default_room_topic: str = Field(
        "새 회의", min_length=1, max_length=200, description="Topic of a room created without one."
    )
    default_max_participants: int = Field(
        20, ge=1, description="maxParticipants of a room created without one."
    )
    max_participants_cap: int = Field(
        1000, ge=1, description="The largest maxParticipants a client may ask for."
    )
    api_keys: ApiKeys = Field(
        default_factory=list,
        description="Keys callers must send as Authorization: Bearer <key>, comma-separated; "
        "empty: anyone who reaches the service may call it.",
    )
    # -- identity: who is calling (aura_livekit_backend.auth) --------------------------
    auth: Literal["none", "api-key", "jwt"] | None = Field(
        None,
        description="How callers prove who they are: none, api-key (AURA_API_KEYS) or jwt "
        "(an identity provider's tokens). Unset: api-key when AURA_API_KEYS is set, else none.",
    )
    auth_issuer: str | None = Field(
        None, description="jwt: the identity provider's issuer URL (the tokens' iss claim)."
    )
    auth_audience: str | None = Field(
        None, description="jwt: the audience the tokens must name (their aud claim)."
    )
    auth_jwks_url: str | None = Field(
        None,
        description="jwt: where the provider's public keys are; unset: the jwks_uri of "
        "<issuer>/.well-known/openid-configuration.",
    )
    auth_algorithms: CommaList | None = Field(
        None,
        description="jwt: signature algorithms accepted, comma-separated; default every "
        "asymmetric one (RS*, PS*, ES*, EdDSA), or HS256 when AURA_AUTH_JWT_SECRET is set.",
    )
    auth_jwt_secret: SecretStr | None = Field(
        None,
        description="jwt: a shared secret (at least 32 bytes) for HS256 tokens your own app "
        "signs; never printed or logged.",
    )
    auth_leeway: float = Field(
        30.0, ge=0, le=300, description="jwt: seconds of clock skew allowed on exp, nbf and iat."
    )
    auth_identity_claim: str = Field(
        "sub", min_length=1, description="jwt: the claim that is the caller's identity."
    )
    auth_name_claim: str = Field(
        "name",
        min_length=1,
        description="jwt: the claim that is the display name (then preferred_username, "
        "then the identity).",
    )
    auth_jwks_timeout: float = Field(
        3.0, gt=0, le=30, description="jwt: seconds one fetch of the provider's keys may take."
    )
    auth_create_claim: str | None = Field(
        None,
        description="Only callers whose claim holds one of these values create rooms: "
        "claim:value,value (e.g. roles:host,admin).",
    )
    auth_publish_claim: str | None = Field(
        None,
        description="Only callers whose claim holds one of these values publish; everyone "
        "else joins subscribe-only: claim:value,value (e.g. roles:host,speaker).",
    )
    rate_limit_create: str | None = Field(
        None,
        description="Room creations per caller, e.g. 10/minute (limits' notation); unset: none.",
    )
    rate_limit_join: str | None = Field(
        None, description="Joins (tokens) per caller, e.g. 60/minute; unset: no limit."
    )
    rate_limit_auth_failures: str | None = Field(
        "30/minute",
        description="Failed authentications per client address before it gets 429s; "
        "empty: no limit.",
    )
    rate_limit_fail: Literal["open", "closed"] = Field(
        "open",
        description="When Redis cannot be reached: open (no limit applies) or closed (503).",
    )
    redis_url: SecretStr | None = Field(
        None,
        description="redis:// or rediss:// URL: rate limits shared by every worker and "
        "replica; unset: counted in each worker's memory.",
    )
    duplicate_username: Literal["allow", "reject", "unique"] = Field(
        "allow",
        description="A join whose userName is already connected in the room: allow it "
        "(LiveKit disconnects the first), reject it (409), or give every token a unique "
        "identity (the userName stays the display name).",
    )
    allowed_agents: CommaList = Field(
        default_factory=list,
        description="Agent names callers may ask for (room_config.agents, room agents), "
        "comma-separated; empty: none.",
    )
    token_source_path: str = Field(
        "/livekit/token",
        pattern=r"^/[A-Za-z0-9/_.-]{1,100}$",
        description="Path (under the API prefix) of LiveKit's client token endpoint.",
    )
    token_source_new_rooms: bool = Field(
        True,
        description="The token endpoint creates a fresh room when room_name is absent; "
        "false: room_name is required (400).",
    )
    token_source_create_missing: bool = Field(
        False,
        description="The token endpoint creates a named room that does not exist; false: 404.",
    )
    cors_origins: CommaList = Field(
        default_factory=list,
        description="Origins allowed to call from a browser, comma-separated; empty: none.",
    )
    plugins: CommaList | None = Field(
        None, description="If set, only these plugins are enabled, comma-separated."
    )
    disabled_plugins: CommaList = Field(
        default_factory=list, description="Plugins not to enable, comma-separated."
    )
    docs: bool = Field(True, description="Serve the OpenAPI document and its /docs page.")
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest request body; more is a 413."
    )
    room_list_cache_seconds: float = Field(
        1.0, ge=0, le=60, description="How long a worker reuses one listing of every room."
    )
    sid_cache_size: int = Field(
        10_000, ge=0, description="Room sids each worker remembers, to join by sid in one call."
    )
    readiness_cache_seconds: float = Field(
        2.0, ge=0, le=60, description="How long a worker reuses its last LiveKit readiness check."
    )
    metrics: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve /metrics on this port (from the main process) instead of the API's.",
    )
    log_format: Literal["text", "json"] = Field("text", description="Log lines as text or JSON.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="The service's log level."
    )
    access_log: bool = Field(False, description="Log one line per request (costs throughput).")
    forwarded_secret: SecretStr | None = Field(
        None, description="Trust RFC 7239 Forwarded headers carrying secret=<this>."
    )
    real_ip_header: str | None = Field(
        None, description="A header a trusted proxy sets to the client's address."
    )
    proxies_count: int | None = Field(
        None, ge=0, le=10, description="Trusted proxies in front: read X-Forwarded-For that deep."
    )
    dev: bool = Field(False, description="Development mode: LiveKit's dev credentials allowed.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "cors_origins",
        "plugins",
        "disabled_plugins",
        "auth_algorithms",
        "allowed_agents",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("livekit_url", "livekit_public_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in {"http", "https", "ws", "wss"} or not rest:
            raise ValueError("must be an http://, https://, ws:// or wss:// URL")
        return value.rstrip("/")

    @field_validator("api_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and (not value.startswith("/") or "//" in value or " " in value):
            raise ValueError("must be a path such as /api (or empty for the root)")
        return value

    @field_validator("token_ttl", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        # The environment holds strings; pydantic reads "3600" as a malformed ISO duration.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value

    @field_validator("token_ttl")
    @classmethod
    def _check_ttl(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 60:
            raise ValueError("must be at least 60 seconds")
        return value

    @field_validator("auth_algorithms")
    @classmethod
    def _check_algorithms(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for name in value:
            if name.lower() == "none":
                raise ValueError("'none' is never accepted: a token must be signed")
            if name not in JWT_ALGORITHMS:
                raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(JWT_ALGORITHMS)}")
        if not value:
            raise ValueError("name at least one algorithm")
        return value

    @field_validator("rate_limit_create", "rate_limit_join", "rate_limit_auth_failures")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from limits import parse_many  # imported here: only the settings that use it pay

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                "must be a rate such as 10/minute or 100/hour;5/second (limits' notation)"
            ) from None
        return value.strip()

    @field_validator("auth_create_claim", "auth_publish_claim", "events_claim")
    @classmethod
    def _check_claim_rule(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        claim, _, values = value.strip().rpartition(":")
        if not claim or not [v for v in values.split(",") if v.strip()]:
            raise ValueError("must be claim:value,value such as roles:host,admin")
        return value.strip()

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        # Never echo the URL: it may carry a password.
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("auth_issuer", "auth_jwks_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in {"http", "https"} or not rest:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _check_auth(self) -> Settings:
        mode = self.auth
        if mode == "api-key" and not self.api_keys:
            raise ValueError("AURA_AUTH=api-key needs AURA_API_KEYS")
        if mode == "none" and self.api_keys:
            raise ValueError("AURA_AUTH=none, but AURA_API_KEYS is set: unset one of them")
        if mode != "jwt":
            for name, value in (
                ("AURA_AUTH_ISSUER", self.auth_issuer),
                ("AURA_AUTH_JWKS_URL", self.auth_jwks_url),
                ("AURA_AUTH_JWT_SECRET", self.auth_jwt_secret),
            ):
                if value:
                    raise ValueError(f"{name} is set, but only AURA_AUTH=jwt uses it")
            return self
        # With --dev and no issuer, the console script starts a development issuer.
        if not (self.dev and not self.auth_issuer):
            missing = [
                name
                for name, value in (
                    ("AURA_AUTH_ISSUER", self.auth_issuer),
                    ("AURA_AUTH_AUDIENCE", self.auth_audience),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"AURA_AUTH=jwt needs {' and '.join(missing)}")
        secret = self.auth_jwt_secret.get_secret_value() if self.auth_jwt_secret else ""
        if secret and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"AURA_AUTH_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        symmetric = [a for a in self.jwt_algorithms if a.startswith("HS")]
        if symmetric and not secret:
            raise ValueError(
                f"AURA_AUTH_ALGORITHMS names {symmetric[0]} but AURA_AUTH_JWT_SECRET is unset"
            )
        if secret and not symmetric:
            raise ValueError(
                "AURA_AUTH_JWT_SECRET is set but AURA_AUTH_ALGORITHMS names no HS algorithm"
            )
        return self

    @property
    def auth_mode(self) -> Literal["none", "api-key", "jwt"]:
        """AURA_AUTH, or what AURA_API_KEYS alone means: api-key when keys are set."""
        if self.auth is not None:
            return self.auth
        return "api-key" if self.api_keys else "none"

    @property
    def jwt_algorithms(self) -> list[str]:
        """The algorithms a JWT may be signed with (never ``none``)."""
        if self.auth_algorithms is not None:
            return list(self.auth_algorithms)
        return ["HS256"] if self.auth_jwt_secret else list(ASYMMETRIC_ALGORITHMS)

    @property
    def public_url(self) -> str:
        """The LiveKit URL handed to clients: LIVEKIT_PUBLIC_URL, or LIVEKIT_URL as ws(s)."""
        if self.livekit_public_url:
            return self.livekit_public_url
        scheme, _, rest = self.livekit_url.partition("://")
        return {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme) + "://" + rest

    def credential_problem(self) -> str | None:
        """Why these credentials must not serve production traffic, or None if they may."""
        missing = [
            name
            for name, value in (
                ("LIVEKIT_API_KEY", self.livekit_api_key),
                ("LIVEKIT_API_SECRET", self.livekit_api_secret),
            )
            if not value
        ]
        if missing:
            return (
                f"{' and '.join(missing)} not set: set LiveKit's API credentials, "
                "or run with --dev for local development"
            )
        if self.livekit_api_key == DEV_API_KEY and self._secret() == DEV_API_SECRET:
            return (
                "LIVEKIT_API_KEY/LIVEKIT_API_SECRET are LiveKit's development pair "
                f"({DEV_API_KEY}/…): use real credentials, or run with --dev"
            )
        return None

    def _secret(self) -> str:
        # Only to judge it here; the LiveKit layer's signer is its one other reader.
        return self.livekit_api_secret.get_secret_value() if self.livekit_api_secret else ""

    def secret_is_weak(self) -> bool:
        """True when the secret is shorter than HMAC-SHA256 wants."""
        return len(self._secret().encode()) < MIN_SECRET_BYTES

    # How long and how many connections a client may hold (http_limits.py).
    request_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds a request's line, headers and body may take to arrive, from its "
        "first byte (a new connection's first request: from when it opens), however slowly "
        "they trickle in; later is a 408.",
    )
    keep_alive_timeout: float = Field(
        75.0,
        gt=0,
        le=3600,
        description="Seconds an idle connection is kept between requests; keep it above the "
        "idle timeout of a load balancer in front.",
    )
    max_connections: int | None = Field(
        None,
        ge=1,
        description="Open connections per worker; at the cap the longest-idle one is closed, "
        "or the new one answered 503 if none is idle. Default: the open-file limit less 256 "
        "(at most 10,000).",
    )
    # The event stream (event_feed.py, endpoints/events.py).
    events_buffer: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Entries a live reader of the event log may have waiting; one further "
        "behind is dropped from its worker's feed and caught up from the log.",
    )
    events_heartbeat: float = Field(
        15.0,
        gt=0,
        le=30,
        description="Seconds between two heartbeats (comment lines) on an idle event stream; "
        "at most 30, well inside Sanic's 60 s response timeout and proxies' idle timeouts.",
    )
    events_send_timeout: float = Field(
        10.0,
        gt=0,
        le=300,
        description="Seconds an event stream's client may take to accept a write; a client "
        "that stopped reading is disconnected then.",
    )
    events_claim: str | None = Field(
        "roles:events,admin",
        description="AURA_AUTH=jwt: claim:value,value a person's token must hold to read "
        "GET /events; empty: only API keys may.",
    )


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    alias = (
        Settings.model_fields[field].validation_alias if field in Settings.model_fields else None
    )
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return _ENV_PREFIX + field.upper()


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a bad value into one :class:`SettingsError` line.

    ``overrides`` (the console script's flags) win over the environment; ``None``
    values are dropped so an absent flag does not hide the environment.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(
    exc: ValidationError, name_of: Callable[[str], str] = env_name
) -> str:
    """One line naming each bad field's environment variable (``name_of``) and the problem."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = error["loc"]
        message = error["msg"].removeprefix("Value error, ")
        if not loc:
            # A rule across settings (model_validator): the message names the variables.
            lines.append(message)
            continue
        field = str(loc[0])
        name = field if field.isupper() else name_of(field)
        lines.append(f"{name}: {message}")
    return "; ".join(lines)


S = TypeVar("S", bound=BaseSettings)


def read_plugin_settings(model: type[S], plugin: str) -> S:
    """A plugin's settings ``model``, read under its ``env_prefix`` or ``AURA_<PLUGIN>_``.

    Raises :class:`SettingsError` with one line naming each bad variable.
    """
    prefix = model.model_config.get("env_prefix") or (
        f"{_ENV_PREFIX}{plugin.upper().replace('-', '_')}_"
    )
    config = {"env_prefix": prefix, "env_file": ".env", "extra": "ignore"}
    # A subclass of model made at run time: type() says only "a class".
    configured = cast(
        "type[S]",
        type(model.__name__, (model,), {"model_config": {**model.model_config, **config}}),
    )
    try:
        # An instance of a subclass: isinstance(…, model) holds, as the plugin expects.
        return configured()
    except ValidationError as exc:
        raise SettingsError(
            describe_validation_error(exc, lambda field: prefix + field.upper())
        ) from None
