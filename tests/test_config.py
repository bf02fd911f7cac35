"""YAML + environment -> Settings: campaign_runner.config."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaign_runner.config import (
    API_KEY_ENV,
    CONFIG_ENV,
    DEFAULT_BASE_URL,
    WEBHOOK_SECRET_ENV,
    Secret,
    Settings,
    find_config,
    load_settings,
)
from campaign_runner.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
KEY = "sp_live_TOPSECRET_1234567890"


def config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "campaign-runner.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, environ={})
    assert settings == Settings()
    assert settings.api.base_url == DEFAULT_BASE_URL
    assert settings.api.api_key is None
    assert settings.pacing.window_seconds == 86400
    assert settings.senders == ()


def test_the_example_config_loads() -> None:
    settings = load_settings(ROOT / "config.example.yaml", environ={})
    assert [(s.id, s.daily_limit) for s in settings.senders] == [
        ("sender_abc123", 25),
        ("sender_def456", 20),
    ]
    assert settings.sender("sender_def456") is not None
    assert settings.sender("nobody") is None
    assert settings.pacing.jitter == 0.1
    assert settings.warnings == ()


def test_values_are_read(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "api:\n  base_url: http://127.0.0.1:8080/v1/\n  timeout_seconds: 2.5\n"
        "pacing:\n  window_seconds: 60\n  concurrency: 2\n"
        "retry:\n  max_attempts: 3\n",
    )
    settings = load_settings(path, environ={})
    assert settings.api.base_url == "http://127.0.0.1:8080/v1"  # trailing slash dropped
    assert settings.api.timeout_seconds == 2.5
    assert settings.pacing.window_seconds == 60
    assert settings.pacing.concurrency == 2
    assert settings.retry.max_attempts == 3
    assert settings.source == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pacing:\n  daily_limt: 5\n", "pacing.daily_limt: unknown key (known here: "),
        (
            "sender:\n  - id: x\n",
            "sender: unknown key (known here: api, campaign, pacing, retry, senders, workspace)",
        ),
        ("api: just-a-string\n", "api: must be a mapping of keys to values"),
        ("- a\n- b\n", "must be a mapping of keys to values"),
        ("api:\n  timeout_seconds: soon\n", "api.timeout_seconds: must be a number, not 'soon'"),
        ("api:\n  timeout_seconds: true\n", "api.timeout_seconds: must be a number, not True"),
        ("api:\n  timeout_seconds: 0\n", "api.timeout_seconds: must be at least 0.001, not 0"),
        ("api:\n  base_url: api.sendpilot.ai\n", "api.base_url: must start with http://"),
        ("api:\n  base_url: [1]\n", "api.base_url: must be a string"),
        ("pacing:\n  jitter: 2\n", "pacing.jitter: must be at most 1, not 2"),
        ("pacing:\n  concurrency: 1.5\n", "pacing.concurrency: must be a whole number, not 1.5"),
        ("pacing:\n  concurrency: 0\n", "pacing.concurrency: must be at least 1, not 0"),
        ("retry:\n  max_attempts: -1\n", "retry.max_attempts: must be at least 1, not -1"),
        ("senders: sender_abc\n", "senders: must be a list of {id, daily_limit}"),
        ("senders:\n  - daily_limit: 5\n", "senders[0].id: is required"),
        ("senders:\n  - id: a\n", "senders[0].daily_limit: is required"),
        (
            "senders:\n  - id: a\n    daily_limit: -3\n",
            "senders[0].daily_limit: must be at least 0",
        ),
        (
            "senders:\n  - id: a\n    daily_limit: 5\n  - id: a\n    daily_limit: 6\n",
            "senders[1].id: 'a' is listed twice",
        ),
        (
            "senders:\n  - id: a\n    daily_limit: 5\n    limit: 3\n",
            "senders[0].limit: unknown key",
        ),
        ("api:\n  base_url: [unclosed\n", "not valid YAML at line"),
    ],
)
def test_invalid_config_says_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_empty_config_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, ""), environ={}).senders == ()


# -- the API key ------------------------------------------------------------------------


def test_environment_key_wins_over_the_file(tmp_path: Path) -> None:
    path = config(tmp_path, "api:\n  api_key: from-the-file\n", mode=0o644)
    settings = load_settings(path, environ={API_KEY_ENV: KEY})
    assert settings.api.api_key == Secret(KEY)
    # The file's key is not used, so its permissions do not matter.
    assert settings.warnings == ()


def test_file_key_is_used_without_the_environment(tmp_path: Path) -> None:
    path = config(tmp_path, f"api:\n  api_key: {KEY}\n")
    for environ in ({}, {API_KEY_ENV: ""}):
        settings = load_settings(path, environ=environ)
        assert settings.api.api_key is not None
        assert settings.api.api_key.reveal() == KEY
        assert settings.warnings == ()


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o640, True), (0o604, True)])
def test_key_in_a_file_others_can_read_is_warned_about(
    tmp_path: Path, mode: int, warned: bool
) -> None:
    path = config(tmp_path, f"api:\n  api_key: {KEY}\n", mode=mode)
    settings = load_settings(path, environ={})
    assert bool(settings.warnings) == warned
    for warning in settings.warnings:
        assert str(path) in warning and "api.api_key" in warning
        assert API_KEY_ENV in warning and "chmod 600" in warning
        assert KEY not in warning


def test_secret_never_shows_the_key(tmp_path: Path) -> None:
    secret = Secret(KEY)
    assert str(secret) == repr(secret) == "Secret('***')"
    assert f"{secret}" == "Secret('***')"
    assert secret.reveal() == KEY
    assert secret == Secret(KEY) and secret != Secret("other") and secret != KEY
    assert hash(secret) == hash(Secret(KEY))
    settings = load_settings(config(tmp_path, ""), environ={API_KEY_ENV: KEY})
    assert KEY not in repr(settings)
    assert KEY not in str(settings.api)


def test_config_errors_never_show_the_key(tmp_path: Path) -> None:
    path = config(tmp_path, f"api:\n  api_key: {KEY}\n  timeout_seconds: x\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert KEY not in str(caught.value)


# -- finding the file -------------------------------------------------------------------


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    explicit = tmp_path / "explicit.yaml"
    assert find_config(explicit, environ={CONFIG_ENV: "env.yaml"}) == explicit
    assert find_config(None, environ={CONFIG_ENV: "env.yaml"}) == Path("env.yaml")
    assert find_config(None, environ={}) is None
    (tmp_path / "campaign-runner.yaml").write_text("", encoding="utf-8")
    assert find_config(None, environ={}) == Path("campaign-runner.yaml")


def test_weekly_limits_default_to_the_pacing_default_but_never_below_a_day(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "senders:\n"
        "  - {id: a, daily_limit: 20}\n"
        "  - {id: b, daily_limit: 150}\n"
        "  - {id: c, daily_limit: 10, weekly_limit: 40}\n"
        "pacing: {default_weekly_limit: 90}\n",
        encoding="utf-8",
    )
    settings = load_settings(path, environ={})
    assert [settings.weekly_limit(s) for s in ("a", "b", "c", "unlisted")] == [90, 150, 40, 90]


def test_a_weekly_limit_below_the_daily_one_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("senders:\n  - {id: a, daily_limit: 20, weekly_limit: 10}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"senders\[0\]\.weekly_limit: 10 is below the daily"):
        load_settings(path, environ={})


def test_workspace_database_from_config_or_environment(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "workspace: {database: team.sqlite3}\ncampaign: {exclude: [dnc.csv, /abs/list.xlsx]}\n",
        encoding="utf-8",
    )
    settings = load_settings(path, environ={})
    assert settings.workspace.database == "team.sqlite3"
    assert settings.campaign.exclude == (tmp_path / "dnc.csv", Path("/abs/list.xlsx"))
    url = "postgresql://team@db.internal/campaigns"
    assert load_settings(path, environ={"CAMPAIGN_RUNNER_DATABASE": url}).workspace.database == url
    assert load_settings(None, environ={}).workspace.database is None


def test_the_note_template_is_read_as_written(tmp_path: Path) -> None:
    text = "campaign:\n  note_template: 'Hi {first_name}, at {company|your company} #AI'\n"
    settings = load_settings(config(tmp_path, text), environ={})
    assert settings.campaign.note_template == "Hi {first_name}, at {company|your company} #AI"
    assert load_settings(None, environ={}).campaign.note_template is None
    empty = config(tmp_path, "campaign:\n  note_template: ''\n")
    assert load_settings(empty, environ={}).campaign.note_template is None


def test_the_example_note_template_loads_when_uncommented(tmp_path: Path) -> None:
    example = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    assert "  # note_template: '" in example
    path = config(tmp_path, example.replace("  # note_template: '", "  note_template: '"))
    settings = load_settings(path, environ={})
    assert settings.campaign.note_template == (
        "Hi {first_name}, loved your work at {company|your company}!"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "campaign:\n  note_template: 'Hi {first_name'\n",
            "campaign.note_template: '{' at character 4 is never closed (write '{{' for a brace)",
        ),
        (
            "campaign:\n  note_template: 'Hi {{first_name}}'\n",
            "campaign.note_template: its text holds {first_name}, which would be sent as written",
        ),
        (
            "campaign:\n  note_template: {first_name}\n",
            'campaign.note_template: must be a string (quote it: "Hi {first_name}")',
        ),
        (
            "campaign:\n  note_templat: x\n",
            "campaign.note_templat: unknown key (known here: exclude, note_template)",
        ),
    ],
)
def test_a_broken_note_template_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    path = config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value).startswith(f"{path}: {message}")


def test_a_warmup_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "senders:\n  - {id: a, daily_limit: 20, warmup: {start: 5, step: 2}}\n", encoding="utf-8"
    )
    (sender,) = load_settings(path, environ={}).senders
    assert sender.warmup is not None
    assert [sender.warmup.limit(20, n) for n in (0, 1, 7, 8, 30)] == [5, 7, 19, 20, 20]
    path.write_text(
        "senders:\n  - {id: a, daily_limit: 20, warmup: {start: 5, stpe: 2}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"senders\[0\]\.warmup\.stpe: unknown key"):
        load_settings(path, environ={})


def test_working_hours_are_read_with_sender_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "pacing: {hours: '09:00-18:00', days: mon-fri, timezone: Europe/Berlin}\n"
        "senders:\n"
        "  - {id: a, daily_limit: 20}\n"
        "  - {id: b, daily_limit: 20, hours: '10:00-12:00', timezone: America/New_York}\n",
        encoding="utf-8",
    )
    settings = load_settings(path, environ={})
    a, b = settings.working_hours("a"), settings.working_hours("b")
    assert (a.start.hour, a.end.hour, sorted(a.days)) == (9, 18, [0, 1, 2, 3, 4])
    assert getattr(a.zone, "key", None) == "Europe/Berlin"
    assert (b.start.hour, b.end.hour, sorted(b.days)) == (10, 12, [0, 1, 2, 3, 4])
    assert getattr(b.zone, "key", None) == "America/New_York"
    assert a.open_fraction == 9 / 24


@pytest.mark.parametrize(
    ("pacing", "message"),
    [
        ("{hours: '9-18'}", r"pacing\.hours: '9-18' is not a span like '09:00-18:00'"),
        ("{hours: '09:00-25:00'}", r"pacing\.hours: '09:00-25:00' holds a time that does not"),
        ("{days: 'mon-fir'}", r"pacing\.days: 'mon-fir': days are mon, tue"),
        ("{timezone: Mars/Olympus}", r"pacing\.timezone: 'Mars/Olympus' is not an IANA timezone"),
    ],
)
def test_bad_working_hours_say_where(tmp_path: Path, pacing: str, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"pacing: {pacing}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("value", "secrets"),
    [
        ("", ()),
        ("whsec_abc", ("whsec_abc",)),
        ("whsec_old,whsec_new", ("whsec_old", "whsec_new")),
        (" whsec_old , whsec_new\nplain,,whsec_old ", ("whsec_old", "whsec_new", "plain")),
    ],
)
def test_webhook_secrets_come_from_the_environment_several_at_once(
    value: str, secrets: tuple[str, ...]
) -> None:
    settings = load_settings(None, environ={WEBHOOK_SECRET_ENV: value})
    assert tuple(s.reveal() for s in settings.webhooks.secrets) == secrets
    assert "whsec" not in repr(settings)


def test_webhook_secrets_are_not_read_from_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="webhooks: unknown key"):
        load_settings(config(tmp_path, "webhooks:\n  secret: whsec_abc\n"), environ={})
