"""Settings: precedence, derived values, and one clear line per bad value."""

from __future__ import annotations

from datetime import timedelta

import pytest

from aura_livekit_backend.settings import Settings, SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings()
    assert settings.livekit_url == "http://127.0.0.1:7880"
    assert settings.public_url == "ws://127.0.0.1:7880"
    assert settings.token_ttl == timedelta(hours=24)
    assert settings.default_room_topic == "새 회의"
    assert settings.default_max_participants == 20
    assert settings.api_prefix == "/api"
    assert settings.cors_origins == [] and settings.plugins is None


def test_flags_beat_environment_beats_dotenv_beats_defaults(monkeypatch, tmp_path) -> None:
    (tmp_path / ".env").write_text("AURA_PORT=7001\nAURA_WORKERS=3\nAURA_HOST=0.0.0.0\n")
    monkeypatch.setenv("AURA_PORT", "7002")
    monkeypatch.setenv("AURA_WORKERS", "4")
    settings = load_settings(port=7003, workers=None)
    assert settings.port == 7003  # flag
    assert settings.workers == 4  # environment over .env; an absent flag hides nothing
    assert settings.host == "0.0.0.0"  # .env over default
    assert settings.livekit_timeout == 5.0  # default


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("http://lk.local:7880", "ws://lk.local:7880"),
        ("https://lk.example.com/", "wss://lk.example.com"),
        ("wss://lk.example.com/base", "wss://lk.example.com/base"),
    ],
)
def test_public_url_follows_livekit_url(monkeypatch, url: str, public: str) -> None:
    monkeypatch.setenv("LIVEKIT_URL", url)
    assert load_settings().public_url == public


def test_explicit_public_url_wins(monkeypatch) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "http://livekit:7880")
    monkeypatch.setenv("LIVEKIT_PUBLIC_URL", "wss://meet.example.com")
    assert load_settings().public_url == "wss://meet.example.com"


def test_lists_are_comma_separated(monkeypatch) -> None:
    monkeypatch.setenv("AURA_CORS_ORIGINS", "https://a.example, https://b.example,")
    monkeypatch.setenv("AURA_DISABLED_PLUGINS", "rooms")
    settings = load_settings()
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.disabled_plugins == ["rooms"]


def test_token_ttl_accepts_seconds_and_iso_durations(monkeypatch) -> None:
    monkeypatch.setenv("AURA_TOKEN_TTL", "3600")
    assert load_settings().token_ttl == timedelta(hours=1)
    monkeypatch.setenv("AURA_TOKEN_TTL", "PT2H")
    assert load_settings().token_ttl == timedelta(hours=2)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AURA_PORT", "eighty", "AURA_PORT: Input should be a valid integer"),
        ("AURA_PORT", "70000", "AURA_PORT: Input should be less than or equal to 65535"),
        (
            "LIVEKIT_URL",
            "ftp://x",
            "LIVEKIT_URL: must be an http://, https://, ws:// or wss:// URL",
        ),
        ("AURA_TOKEN_TTL", "5", "AURA_TOKEN_TTL: must be at least 60 seconds"),
        ("AURA_API_PREFIX", "api", "AURA_API_PREFIX: must be a path such as /api"),
        ("AURA_LIVEKIT_TIMEOUT", "0", "AURA_LIVEKIT_TIMEOUT: Input should be greater than 0"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_the_secret_never_shows_in_reprs_or_errors(monkeypatch) -> None:
    monkeypatch.setenv("LIVEKIT_API_SECRET", "top-secret-value-top-secret-value")
    monkeypatch.setenv("AURA_PORT", "nope")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "top-secret" not in str(caught.value)
    monkeypatch.delenv("AURA_PORT")
    settings = load_settings()
    assert "top-secret" not in repr(settings) and "top-secret" not in str(settings)
    # A SecretStr, read in clear only by the LiveKit layer's signer.
    assert settings.livekit_api_secret.get_secret_value() == "top-secret-value-top-secret-value"
    assert not hasattr(settings, "secret")


@pytest.mark.parametrize(
    ("key", "secret", "problem"),
    [
        (None, None, "LIVEKIT_API_KEY and LIVEKIT_API_SECRET not set"),
        ("key", None, "LIVEKIT_API_SECRET not set"),
        ("devkey", "secret", "LiveKit's development pair"),
        ("key", "a-real-secret", None),
    ],
)
def test_credential_problems(key, secret, problem) -> None:
    settings = Settings(_env_file=None, livekit_api_key=key, livekit_api_secret=secret)
    found = settings.credential_problem()
    assert found == problem if problem is None else problem in found


def test_weak_secret_is_noticed() -> None:
    assert Settings(_env_file=None, livekit_api_secret="short").secret_is_weak()
    assert not Settings(_env_file=None, livekit_api_secret="x" * 32).secret_is_weak()
