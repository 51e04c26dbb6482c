"""The plugin's own setting: which API keys may moderate."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["ModerationSettings"]


class ModerationSettings(BaseSettings):
    """``AURA_MODERATION_API_KEYS``: comma-separated keys; empty switches moderation off."""

    model_config = SettingsConfigDict(
        env_prefix="AURA_MODERATION_", env_file=".env", extra="ignore", frozen=True
    )

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value
