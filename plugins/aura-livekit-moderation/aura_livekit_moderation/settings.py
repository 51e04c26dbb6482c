"""The plugin's own setting: which API keys may moderate."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from aura_livekit_backend.plugin import ApiKeys

__all__ = ["ModerationSettings"]


class ModerationSettings(BaseSettings):
    """``AURA_MODERATION_API_KEYS``: comma-separated keys, each at least 16 characters,
    as the core's ``AURA_API_KEYS``; empty switches moderation off."""

    model_config = SettingsConfigDict(env_prefix="AURA_MODERATION_", frozen=True)

    api_keys: ApiKeys = Field(default_factory=list)
