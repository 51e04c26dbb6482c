"""The console's settings: who may sign in, and for how long."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aura_livekit_backend.plugin import ApiKeys

__all__ = ["ConsoleSettings", "ModerationKeys"]


class ConsoleSettings(BaseSettings):
    """``AURA_CONSOLE_*``. With no keys here, no moderation keys and no identity
    provider, nobody signs in: the console is closed by default."""

    model_config = SettingsConfigDict(env_prefix="AURA_CONSOLE_", frozen=True)

    #: AURA_CONSOLE_KEYS: operators' keys, comma-separated, each at least 16 characters.
    keys: ApiKeys = Field(default_factory=list)
    #: AURA_CONSOLE_ROLES: with AURA_AUTH=jwt, a person whose roles claim holds one of
    #: these signs in (empty: nobody signs in with a JWT).
    roles: str = "console,admin"
    #: AURA_CONSOLE_ROLE_CLAIM: the JWT claim holding the roles (a list, or one string).
    role_claim: str = "roles"
    #: AURA_CONSOLE_SESSION_SECONDS: how long a sign-in lasts.
    session_seconds: int = Field(8 * 3600, ge=60, le=30 * 24 * 3600)
    #: AURA_CONSOLE_SESSION_SECRET: mixed into every session's signature; set the same
    #: value on every replica to sign out everyone by changing it.
    session_secret: SecretStr | None = None
    #: AURA_CONSOLE_PAGE_SIZE: rooms per page.
    page_size: int = Field(50, ge=5, le=500)

    @field_validator("roles", "role_claim")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @property
    def role_names(self) -> frozenset[str]:
        """The roles that may sign in, as a set."""
        return frozenset(role.strip() for role in self.roles.split(",") if role.strip())


class ModerationKeys(BaseSettings):
    """``AURA_MODERATION_API_KEYS``, the moderation plugin's keys: they open the console
    too (whoever may close rooms through the API may do it from the console)."""

    model_config = SettingsConfigDict(env_prefix="AURA_MODERATION_", frozen=True)

    api_keys: ApiKeys = Field(default_factory=list)
