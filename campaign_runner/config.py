"""YAML file + environment -> one validated, frozen :class:`Settings`.

Every key is documented in ``config.example.yaml``. Unknown keys are errors, because a
misspelt ``daily_limit`` silently falling back to a default is how accounts get restricted.
The API key comes from ``SENDPILOT_API_KEY`` first and the file second; it is held in a
:class:`Secret` so that no repr, log line or traceback can show it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaign_runner.errors import ConfigError
from campaign_runner.hours import WorkingHours, parse_days, parse_hours, parse_zone

API_KEY_ENV = "SENDPILOT_API_KEY"
# The webhook signing secret(s): several, separated by commas or spaces, during a rotation.
WEBHOOK_SECRET_ENV = "SENDPILOT_WEBHOOK_SECRET"
CONFIG_ENV = "CAMPAIGN_RUNNER_CONFIG"
DATABASE_ENV = "CAMPAIGN_RUNNER_DATABASE"
DEFAULT_CONFIG_NAME = "campaign-runner.yaml"
DEFAULT_BASE_URL = "https://api.sendpilot.ai/v1"


class Secret:
    """A string that never shows itself: ``str()`` and ``repr()`` give ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ApiSettings:
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 30.0
    api_key: Secret | None = None


@dataclass(frozen=True)
class SenderSettings:
    id: str
    daily_limit: int
    # Whether the LinkedIn account is Premium (only Premium senders deliver notes). The
    # API does not document this; None means "not known".
    premium: bool | None = None
    # Invitations per rolling week (7 windows); None: pacing.default_weekly_limit.
    weekly_limit: int | None = None
    # A new account starts low: its daily limit is `start`, raised by `step` for each
    # window in which it sent, up to daily_limit. None: no warm-up.
    warmup: Warmup | None = None
    # Its own working hours, where they differ from pacing.hours/days/timezone.
    hours: WorkingHours | None = None


@dataclass(frozen=True)
class Warmup:
    start: int
    step: int

    def limit(self, daily_limit: int, windows_sent: int) -> int:
        """The day's limit after ``windows_sent`` windows with invitations."""
        return min(daily_limit, self.start + self.step * windows_sent)


@dataclass(frozen=True)
class PacingSettings:
    # The period over which each sender's capacity is spread and renewed.
    window_seconds: float = 86400.0
    concurrency: int = 4
    # Fraction of each interval added or removed at random, so that invitations do not
    # leave at a machine-like cadence.
    jitter: float = 0.0
    # Used for senders that the config does not list but the API reports.
    default_daily_limit: int = 25
    # LinkedIn's binding limit is weekly: a sender without its own weekly_limit gets this,
    # or its daily limit where that is higher (a week below a day would contradict it).
    default_weekly_limit: int = 100
    # When invitations may leave (pacing.hours, .days, .timezone): by default always.
    hours: WorkingHours = field(default_factory=WorkingHours)


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 5
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0


@dataclass(frozen=True)
class WorkspaceSettings:
    # Where the workspace ledger lives: an SQLite file path or a postgresql:// URL. None:
    # one SQLite file per workspace in the user's data directory.
    database: str | None = None


@dataclass(frozen=True)
class WebhookSettings:
    # The secrets a webhook signature may be made with (from the environment only, never
    # from a file that could be shared): the old and the new one while SendPilot rotates.
    secrets: tuple[Secret, ...] = ()


@dataclass(frozen=True)
class CampaignSettings:
    # Do-not-contact lists (CSV or XLSX: profile URLs and/or a `company` column).
    exclude: tuple[Path, ...] = ()
    # The note for rows without one of their own: `{column}` and `{column|fallback}`
    # filled from the row (campaign_runner.notes). Checked when the config is read.
    note_template: str | None = None


@dataclass(frozen=True)
class Settings:
    api: ApiSettings = field(default_factory=ApiSettings)
    senders: tuple[SenderSettings, ...] = ()
    pacing: PacingSettings = field(default_factory=PacingSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    workspace: WorkspaceSettings = field(default_factory=WorkspaceSettings)
    campaign: CampaignSettings = field(default_factory=CampaignSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    source: Path | None = None
    warnings: tuple[str, ...] = ()

    def sender(self, sender_id: str) -> SenderSettings | None:
        return next((s for s in self.senders if s.id == sender_id), None)

    def daily_limit(self, sender_id: str) -> int:
        """The sender's configured daily limit, or the default for unlisted senders."""
        configured = self.sender(sender_id)
        return configured.daily_limit if configured else self.pacing.default_daily_limit

    def working_hours(self, sender_id: str) -> WorkingHours:
        """When the sender's invitations may leave: its own hours, else pacing's."""
        configured = self.sender(sender_id)
        if configured is not None and configured.hours is not None:
            return configured.hours
        return self.pacing.hours

    def weekly_limit(self, sender_id: str) -> int:
        """The sender's weekly limit: its own, else the default, never below its day's."""
        configured = self.sender(sender_id)
        if configured is not None and configured.weekly_limit is not None:
            return configured.weekly_limit
        return max(self.pacing.default_weekly_limit, self.daily_limit(sender_id))

    def require_api_key(self) -> Secret:
        """The API key, or a :class:`ConfigError` saying where it is looked for."""
        if self.api.api_key is None:
            raise ConfigError(
                "environment", API_KEY_ENV, "is not set (nor api.api_key in the config)"
            )
        return self.api.api_key


def find_config(explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The config file to use: ``--config``, then ``$CAMPAIGN_RUNNER_CONFIG``, then
    ``./campaign-runner.yaml`` if it exists, else none (defaults and environment only)."""
    if explicit is not None:
        return explicit
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


def load_settings(path: Path | None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Read and validate the config at ``path`` (or defaults when ``None``)."""
    raw: Any = {}
    source = str(path) if path is not None else "<defaults>"
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(path, None, "file not found") from None
        except OSError as exc:
            raise ConfigError(path, None, f"cannot read ({exc.strerror})") from None
        import yaml  # here, so that commands that read no config start faster

        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(path, None, f"not valid YAML{line}") from None
    reader = _Reader(source)
    top = reader.mapping(raw, "", {"api", "senders", "pacing", "retry", "workspace", "campaign"})
    api_raw = reader.mapping(top.get("api", {}), "api", {"base_url", "timeout_seconds", "api_key"})
    warnings: list[str] = []
    key = environ.get(API_KEY_ENV) or None
    file_key = reader.string(api_raw, "api.api_key", None)
    if key is None and file_key:
        key = file_key
        if path is not None and _readable_by_others(path):
            warnings.append(
                f"{path}: api.api_key is stored in a file that other users can read; "
                f"prefer the {API_KEY_ENV} environment variable or chmod 600"
            )
    base_url = reader.string(api_raw, "api.base_url", DEFAULT_BASE_URL) or DEFAULT_BASE_URL
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(source, "api.base_url", "must start with http:// or https://")
    api = ApiSettings(
        base_url=base_url.rstrip("/"),
        timeout_seconds=reader.number(api_raw, "api.timeout_seconds", 30.0, minimum=0.001),
        api_key=Secret(key) if key else None,
    )
    pacing_raw = reader.mapping(
        top.get("pacing", {}),
        "pacing",
        {
            "window_seconds",
            "concurrency",
            "jitter",
            "default_daily_limit",
            "default_weekly_limit",
            "hours",
            "days",
            "timezone",
        },
    )
    default_hours = _working_hours(reader, pacing_raw, "pacing", None)
    assert default_hours is not None
    pacing = PacingSettings(
        window_seconds=reader.number(pacing_raw, "pacing.window_seconds", 86400.0, minimum=0.001),
        concurrency=int(reader.number(pacing_raw, "pacing.concurrency", 4, minimum=1, whole=True)),
        jitter=reader.number(pacing_raw, "pacing.jitter", 0.0, minimum=0.0, maximum=1.0),
        default_daily_limit=int(
            reader.number(pacing_raw, "pacing.default_daily_limit", 25, minimum=0, whole=True)
        ),
        default_weekly_limit=int(
            reader.number(pacing_raw, "pacing.default_weekly_limit", 100, minimum=0, whole=True)
        ),
        hours=default_hours,
    )
    retry_raw = reader.mapping(
        top.get("retry", {}),
        "retry",
        {"max_attempts", "base_delay_seconds", "max_delay_seconds"},
    )
    retry = RetrySettings(
        max_attempts=int(reader.number(retry_raw, "retry.max_attempts", 5, minimum=1, whole=True)),
        base_delay_seconds=reader.number(retry_raw, "retry.base_delay_seconds", 1.0, minimum=0.0),
        max_delay_seconds=reader.number(retry_raw, "retry.max_delay_seconds", 60.0, minimum=0.0),
    )
    workspace_raw = reader.mapping(top.get("workspace", {}), "workspace", {"database"})
    database = environ.get(DATABASE_ENV) or reader.string(workspace_raw, "workspace.database", None)
    campaign_raw = reader.mapping(top.get("campaign", {}), "campaign", {"exclude", "note_template"})
    return Settings(
        api=api,
        senders=_senders(reader, top.get("senders", []), default_hours),
        pacing=pacing,
        retry=retry,
        workspace=WorkspaceSettings(database=database or None),
        campaign=CampaignSettings(
            exclude=_paths(reader, campaign_raw, "campaign.exclude", path),
            note_template=_note_template(reader, campaign_raw),
        ),
        webhooks=WebhookSettings(secrets=webhook_secrets(environ.get(WEBHOOK_SECRET_ENV, ""))),
        source=path,
        warnings=tuple(warnings),
    )


def webhook_secrets(text: str) -> tuple[Secret, ...]:
    """The secrets in ``text``, separated by commas or white space (none contain either:
    SendPilot's are hex or ``whsec_`` and base64), each once, in order."""
    parts = text.replace(",", " ").split()
    return tuple(Secret(part) for part in dict.fromkeys(parts))


def _paths(reader: _Reader, raw: dict[str, Any], key: str, config: Path | None) -> tuple[Path, ...]:
    """A list of file paths; relative ones are relative to the config file's folder."""
    value = raw.get(key.rsplit(".", 1)[-1])
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(reader.source, key, "must be a list of file paths")
    base = config.parent if config is not None else Path()
    return tuple(base / Path(v).expanduser() for v in value)


def _note_template(reader: _Reader, raw: dict[str, Any]) -> str | None:
    """The template as written (an empty one is none), parsed now so that a broken one is
    a config error naming the key, before any spreadsheet is read."""
    key = "campaign.note_template"
    value = raw.get("note_template")
    if value is not None and not isinstance(value, str):
        # YAML reads an unquoted `{first_name} ...` as a mapping: say what to do.
        raise ConfigError(reader.source, key, 'must be a string (quote it: "Hi {first_name}")')
    if not value:
        return None
    from campaign_runner.notes import parse_template

    parse_template(value, reader.source, key)
    return value


def _working_hours(
    reader: _Reader, raw: dict[str, Any], where: str, default: WorkingHours | None
) -> WorkingHours | None:
    """hours/days/timezone under ``where``; those left out come from ``default`` (None
    when ``default`` is given and ``where`` names none of them: nothing of its own)."""
    given = {k: raw.get(k) for k in ("hours", "days", "timezone") if raw.get(k) is not None}
    if default is not None and not given:
        return None
    base = default or WorkingHours()
    try:
        start, end = (
            parse_hours(str(given["hours"]), f"{where}.hours")
            if "hours" in given
            else (base.start, base.end)
        )
        days = parse_days(str(given["days"]), f"{where}.days") if "days" in given else base.days
        zone = (
            parse_zone(str(given["timezone"]), f"{where}.timezone")
            if "timezone" in given
            else base.zone
        )
    except ValueError as exc:
        key, _, problem = str(exc).partition(": ")
        raise ConfigError(reader.source, key, problem) from None
    return WorkingHours(start, end, days, zone)


def _senders(reader: _Reader, raw: Any, default_hours: WorkingHours) -> tuple[SenderSettings, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(reader.source, "senders", "must be a list of {id, daily_limit}")
    senders: list[SenderSettings] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"senders[{i}]"
        entry = reader.mapping(
            item,
            where,
            {"id", "daily_limit", "weekly_limit", "premium", "warmup", "hours", "days", "timezone"},
        )
        sender_id = reader.string(entry, f"{where}.id", None)
        if not sender_id:
            raise ConfigError(reader.source, f"{where}.id", "is required")
        if sender_id in seen:
            raise ConfigError(reader.source, f"{where}.id", f"{sender_id!r} is listed twice")
        seen.add(sender_id)
        limit = reader.number(entry, f"{where}.daily_limit", None, minimum=0, whole=True)
        weekly = None
        if entry.get("weekly_limit") is not None:
            weekly = int(reader.number(entry, f"{where}.weekly_limit", None, minimum=0, whole=True))
            if weekly < limit:
                raise ConfigError(
                    reader.source,
                    f"{where}.weekly_limit",
                    f"{weekly} is below the daily_limit {int(limit)}: a week cannot hold "
                    "less than a day",
                )
        premium = entry.get("premium")
        if premium is not None and not isinstance(premium, bool):
            raise ConfigError(reader.source, f"{where}.premium", "must be true or false")
        warmup = None
        if entry.get("warmup") is not None:
            ramp = reader.mapping(entry["warmup"], f"{where}.warmup", {"start", "step"})
            warmup = Warmup(
                start=int(
                    reader.number(ramp, f"{where}.warmup.start", None, minimum=0, whole=True)
                ),
                step=int(reader.number(ramp, f"{where}.warmup.step", None, minimum=0, whole=True)),
            )
        senders.append(
            SenderSettings(
                id=sender_id,
                daily_limit=int(limit),
                premium=premium,
                weekly_limit=weekly,
                warmup=warmup,
                hours=_working_hours(reader, entry, where, default_hours),
            )
        )
    return tuple(senders)


def _readable_by_others(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


@dataclass(frozen=True)
class _Reader:
    """Typed access to raw YAML values, raising ``file: key: problem`` errors."""

    source: str

    def mapping(self, value: Any, key: str, allowed: set[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(self.source, key or None, "must be a mapping of keys to values")
        for name in value:
            if name not in allowed:
                full = f"{key}.{name}" if key else str(name)
                known = ", ".join(sorted(allowed))
                raise ConfigError(self.source, full, f"unknown key (known here: {known})")
        return value

    def string(self, raw: dict[str, Any], key: str, default: str | None) -> str | None:
        value = raw.get(key.rsplit(".", 1)[-1], default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigError(self.source, key, "must be a string")
        return str(value)

    def number(
        self,
        raw: dict[str, Any],
        key: str,
        default: float | None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        whole: bool = False,
    ) -> float:
        value = raw.get(key.rsplit(".", 1)[-1], default)
        if value is None:
            raise ConfigError(self.source, key, "is required")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.source, key, f"must be a number, not {value!r}")
        if whole and value != int(value):
            raise ConfigError(self.source, key, f"must be a whole number, not {value!r}")
        if minimum is not None and value < minimum:
            raise ConfigError(self.source, key, f"must be at least {minimum:g}, not {value!r}")
        if maximum is not None and value > maximum:
            raise ConfigError(self.source, key, f"must be at most {maximum:g}, not {value!r}")
        return float(value)
