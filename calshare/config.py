"""Settings: one typed schema, read from defaults < calshare.toml < CALSHARE_* variables.

The schema is the dataclasses below: each field's metadata names its parser and
help text, so parsing, validation and the documentation come from one place.
The settings object is built once at start and passed in; nothing reads it globally.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calshare.addresses import normalize_address, normalize_domain, parse_mailbox
from calshare.errors import AddressError, ConfigError, LevelError
from calshare.levels import Level
from calshare.netguard import folder_prefix

ENV_PREFIX = "CALSHARE_"
# Variables that are not settings of a section but still ours.
ENV_GENERAL = frozenset({"CALSHARE_DB", "CALSHARE_CONFIG"})
# CALSHARE_SOURCE_USERNAME_<CALENDAR> and CALSHARE_SOURCE_PASSWORD_<CALENDAR>: a CalDAV
# source's credentials, for a calendar named so (see env_calendar_key).
ENV_SOURCE_CREDENTIALS = ("CALSHARE_SOURCE_USERNAME_", "CALSHARE_SOURCE_PASSWORD_")
DEFAULT_CONFIG_NAME = "calshare.toml"

Parser = Callable[[Any], Any]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


# --- value parsers: take a TOML value or an environment string, return the typed value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a string")
    return value


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
    raise ValueError(f"{value!r} is not true or false")


def _integer(low: int, high: int) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{value!r} is not a whole number")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range ({low}–{high})")
        return value

    return parse


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise ValueError(f"{value!r} is not a number of seconds between 0 and 3600")
    return float(value)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``15m``, ``1h30m``, ``90s``, ``1d`` or a bare number of seconds.

    Raises ValueError with a message that shows the accepted forms.
    """
    value = text.strip().lower().replace(" ", "")
    if value.isdigit():
        return int(value)
    parts = re.findall(r"(\d+)([smhd])", value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        raise ValueError(f"{text!r} is not a duration like 15m, 1h or 1h30m")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


def _duration(low: int, high: int) -> Parser:
    def parse(value: Any) -> int:
        seconds = value if isinstance(value, int) and not isinstance(value, bool) else None
        if seconds is None:
            seconds = parse_duration(_text(value))
        if not low <= seconds <= high:
            raise ValueError(f"{value!r} is out of range ({low} s – {high} s)")
        return seconds

    return parse


def _ratio(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number between 0 and 1") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{value!r} is not a number between 0 and 1")
    return float(value)


def _port(value: Any) -> int:
    try:
        return int(_integer(1, 65535)(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a port number (1–65535)") from None


def _choice(*allowed: str) -> Parser:
    def parse(value: Any) -> str:
        text = _text(value).strip().lower()
        if text not in allowed:
            raise ValueError(f"{value!r} is not one of: {', '.join(allowed)}")
        return text

    return parse


def _enum(kind: type[StrEnum]) -> Parser:
    """One of an enum's values, any case: the enum member, so a typo is caught here."""
    allowed = [member.value for member in kind]

    def parse(value: Any) -> StrEnum:
        return kind(_choice(*allowed)(value))

    return parse


class RelaySecurity(StrEnum):
    """How the outbox talks to its relay: plain, STARTTLS upgrade, or TLS from the start."""

    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class RequireAuth(StrEnum):
    """What the mail server's Authentication-Results must show for an answer to count."""

    NONE = "none"
    DMARC = "dmarc"
    DKIM = "dkim"


def _level_or_none(value: Any) -> Level | None:
    text = _text(value).strip().lower()
    if text == "none":
        return None
    try:
        return Level.parse(text)
    except LevelError:
        names = ", ".join([*(level.value for level in Level), "none"])
        raise ValueError(f"{value!r} is not a level; use one of: {names}") from None


def _domain(value: Any) -> str:
    try:
        return normalize_domain(_text(value))
    except AddressError as exc:
        raise ValueError(str(exc)) from None


def _mailbox(value: Any) -> str:
    try:
        return str(parse_mailbox(_text(value)))
    except AddressError as exc:
        raise ValueError(str(exc)) from None


def _address_pattern(value: Any) -> str:
    """An address, or a glob like ``*-team@example.org`` (only the local part may glob)."""
    text = _text(value).strip()
    local, at, domain = text.rpartition("@")
    if not at or not local:
        raise ValueError(f"{value!r} is not an address or pattern like *-team@example.org")
    try:
        if any(char in local for char in "*?["):
            return f"{local.lower()}@{normalize_domain(domain)}"
        return normalize_address(text)
    except AddressError as exc:
        raise ValueError(str(exc)) from None


def _webdav_folder(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a URL")
    return folder_prefix(value)


def _list(item: Parser) -> Parser:
    def parse(value: Any) -> tuple[Any, ...]:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            raise ValueError(f"{value!r} is not a list")
        return tuple(item(element) for element in value)

    return parse


def _weekday(value: Any) -> str:
    text = _text(value).strip().lower()[:3]
    if text not in WEEKDAYS:
        raise ValueError(f"{value!r} is not a weekday (mon … sun)")
    return text


def _clock_time(value: Any) -> str:
    text = _text(value).strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if (
        not match
        or int(match[1]) > 24
        or int(match[2]) > 59
        or (int(match[1]) == 24 and int(match[2]))
    ):
        raise ValueError(f"{value!r} is not a time of day like 08:00")
    return f"{int(match[1]):02d}:{match[2]}"


def _timezone(value: Any) -> str:
    text = _text(value).strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone name like Europe/Oslo") from None
    return text


def _base_url(value: Any) -> str:
    text = _text(value).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL like https://calendar.example.org")
    return text


def _origin(value: Any) -> str:
    """A web origin like https://intranet.example.org (scheme, host, port; no path)."""
    text = _text(value).strip().lower()
    parts = urlsplit(text)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or any(char in text for char in " ;,'\"*")
    ):
        raise ValueError(f"{value!r} is not an origin like https://intranet.example.org")
    return f"{parts.scheme}://{parts.netloc}"


def _hostname(value: Any) -> str:
    text = _text(value).strip()
    if not text or any(char.isspace() for char in text) or "/" in text:
        raise ValueError(f"{value!r} is not a host name or address")
    return text


_HELO = r"\[(?:IPv6:)?[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"


def _helo_name(value: Any) -> str:
    """A host name or an address literal like [192.0.2.1]; empty for the default."""
    text = _text(value).strip()
    if text and not re.fullmatch(_HELO, text):
        raise ValueError(f"{value!r} is not a host name like mail.example.org")
    return text


def _network(value: Any) -> str:
    """An IP address or network (127.0.0.1, ::1, 10.0.0.0/8), in canonical form."""
    text = _text(value).strip()
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network like 10.0.0.0/8") from None


def _file_or_empty(value: Any) -> str:
    text = _text(value).strip()
    if text and not Path(text).is_file():
        raise ValueError(f"{text!r} is not a file")
    return text


def _option(
    default: Any, parse: Parser, help: str, key: str | None = None, *, secret: bool = False
) -> Any:
    """A setting. A secret one is never echoed in error messages."""
    metadata = {"parse": parse, "help": help, "key": key, "secret": secret}
    return field(default=default, metadata=metadata)


# --- the schema


@dataclass(frozen=True)
class MailSettings:
    domain: str = _option(
        "share.example.org", _domain, "domain of the share+/accept+/decline+/bounces+ addresses"
    )
    from_address: str = _option(
        "Calendar <calendar@share.example.org>", _mailbox, "From of every mail we send", "from"
    )
    lang: str = _option("en", _choice("en", "nb"), "default language of mails: en or nb")
    notify_unshare: bool = _option(
        True, _boolean, "tell a former invitee when an owner stops sharing with them"
    )


@dataclass(frozen=True)
class RelaySettings:
    host: str = _option("127.0.0.1", _hostname, "SMTP relay host")
    port: int = _option(25, _port, "SMTP relay port")
    security: RelaySecurity = _option(
        RelaySecurity.NONE, _enum(RelaySecurity), "none, starttls or tls"
    )
    username: str = _option("", _text, "AUTH user name (empty: no AUTH)")
    password: str = _option("", _text, "AUTH password", secret=True)
    ca_file: str = _option(
        "",
        _file_or_empty,
        "PEM file of CAs to trust for the relay's certificate (empty: the system's)",
    )
    helo_name: str = _option(
        "",
        _helo_name,
        "fully-qualified name calshare greets the relay with in EHLO "
        "(empty: inbox.hostname if set, else mail.domain)",
    )


@dataclass(frozen=True)
class PolicySettings:
    sharing: bool = _option(True, _boolean, "whether calendars may be shared at all")
    internal_domains: tuple[str, ...] = _option(
        ("example.org",), _list(_domain), "domains whose people count as internal"
    )
    external_max_level: Level | None = _option(
        Level.TITLES, _level_or_none, "highest level for people outside internal_domains"
    )
    publish_max_level: Level | None = _option(
        Level.FREE_BUSY, _level_or_none, "highest level for anonymous publishing"
    )
    groups: tuple[str, ...] = _option(
        (), _list(_address_pattern), "group addresses or patterns that cannot be shared with"
    )
    invitation_days: int = _option(14, _integer(1, 365), "days an invitation stays valid")


@dataclass(frozen=True)
class HttpSettings:
    base_url: str = _option("http://127.0.0.1:8080", _base_url, "public base URL of links in mails")
    feed_days_back: int = _option(30, _integer(0, 3660), "days of the past a feed holds")
    feed_days_ahead: int = _option(
        365, _integer(1, 3660), "days ahead the published page serves (feeds keep series whole)"
    )
    feed_max_age_seconds: int = _option(
        300, _integer(0, 86400), "Cache-Control max-age of feeds (calendar apps may cache)"
    )
    feed_refresh_minutes: int = _option(
        60, _integer(5, 10080), "REFRESH-INTERVAL asked of subscribing calendar apps"
    )
    header_timeout_seconds: float = _option(
        15.0, _seconds, "time a client has to send its request headers; also the idle keep-alive"
    )
    embed_origins: tuple[str, ...] = _option(
        (), _list(_origin), "sites that may frame published pages (?embed=1); none by default"
    )


@dataclass(frozen=True)
class WorkingHours:
    days: tuple[str, ...] = _option(
        ("mon", "tue", "wed", "thu", "fri"), _list(_weekday), "working days"
    )
    start: str = _option("08:00", _clock_time, "start of the working day")
    end: str = _option("17:00", _clock_time, "end of the working day")


@dataclass(frozen=True)
class CalendarSettings:
    default_tz: str = _option(
        "UTC", _timezone, "zone of a calendar added without --tz whose source names none"
    )
    index_past_days: int = _option(
        31, _integer(0, 36500), "recurrences indexed this far back at import; queries extend it"
    )
    index_future_days: int = _option(
        366, _integer(1, 36500), "recurrences indexed this far ahead at import; queries extend it"
    )
    index_limit_years: int = _option(
        10, _integer(1, 200), "series are indexed at most this far from now; beyond, queried live"
    )
    max_occurrences_per_series: int = _option(
        50_000,
        _integer(100, 10_000_000),
        "occurrences one series may have in a span being indexed (walking its rule there may"
        " take 10 times as many); a series with more is skipped at import, cut short in queries",
    )
    max_occurrences_per_import: int = _option(
        250_000,
        _integer(1000, 100_000_000),
        "occurrences one import (or one query's expansion) may produce in all;"
        " an import over it fails and changes nothing",
    )
    max_import_seconds: float = _option(
        60.0,
        _seconds,
        "an import whose reading and expansion take longer fails and changes nothing",
    )
    max_timezone_transitions: int = _option(
        500,
        _integer(10, 1_000_000),
        "a VTIMEZONE with more STANDARD/DAYLIGHT parts and RDATEs than this is refused at import",
    )


@dataclass(frozen=True)
class ImportSettings:
    max_bytes: int = _option(
        20 * 1024 * 1024, _integer(1024, 1 << 34), "largest calendar file or download accepted"
    )
    timeout_seconds: float = _option(30.0, _seconds, "give up on a calendar URL after this long")


@dataclass(frozen=True)
class OutboxSettings:
    maildir: str = _option(
        "var/maildir", _text, "where mail goes when no [relay] is configured (a Maildir)"
    )
    retry_base_seconds: int = _option(
        60, _integer(1, 86400), "first wait after a temporary failure; doubles each time"
    )
    retry_max_seconds: int = _option(3600, _integer(1, 86400), "longest wait between attempts")
    give_up_hours: int = _option(
        96, _integer(1, 24 * 30), "a mail still not accepted after this long has failed"
    )
    batch: int = _option(100, _integer(1, 10000), "mails claimed by the sender at a time")


@dataclass(frozen=True)
class InboxSettings:
    hostname: str = _option("calshare.localhost", _hostname, "the name the listener greets with")
    operators: tuple[str, ...] = _option(
        (), _list(_address_pattern), "addresses besides the token ones that RCPT accepts"
    )
    max_message_bytes: int = _option(
        10 * 1024 * 1024, _integer(1024, 1 << 30), "larger messages are refused at DATA (552)"
    )
    max_line_length: int = _option(
        4096, _integer(1000, 1 << 20), "longest line accepted, in bytes (RFC 5321 says 1000)"
    )
    max_recipients: int = _option(20, _integer(1, 1000), "recipients per message")
    command_timeout_seconds: int = _option(
        60, _integer(5, 3600), "a client silent this long (between commands or within DATA) is cut"
    )
    read_timeout_seconds: float = _option(
        10.0, _seconds, "a message not parsed and classified in this time is stored unread"
    )
    readers: int = _option(2, _integer(1, 64), "worker processes reading inbound messages")
    commit_timeout_seconds: float = _option(
        10.0, _seconds, "if the database cannot store a message this fast, answer 451"
    )
    keep_raw_days: int = _option(14, _integer(0, 3650), "days raw inbound messages are kept")
    tls_cert: str = _option("", _file_or_empty, "PEM certificate for STARTTLS (empty: no STARTTLS)")
    tls_key: str = _option("", _file_or_empty, "PEM private key for STARTTLS")
    require_auth: RequireAuth = _option(
        RequireAuth.NONE, _enum(RequireAuth), "what Authentication-Results must show to count"
    )
    authserv_id: str = _option(
        "", _text, "the authserv-id of your own mail server's Authentication-Results"
    )
    trusted_peers: tuple[str, ...] = _option(
        (),
        _list(_network),
        "addresses/networks of the mail server in front; only its Authentication-Results count",
    )


@dataclass(frozen=True)
class WebDavSettings:
    username: str = _option("", _text, "WebDAV basic-auth user for publish --webdav (empty: none)")
    password: str = _option("", _text, "WebDAV basic-auth password", secret=True)
    timeout_seconds: float = _option(30.0, _seconds, "give up on a WebDAV request after this long")


@dataclass(frozen=True)
class Credential:
    """A user name and password for a CalDAV source: for one calendar, or every one on a host.

    The password is kept out of repr, so no log or traceback of the settings shows it.
    """

    name: str  # a calendar name or a host name
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class SourcesSettings:
    interval: int = _option(
        900, _duration(60, 7 * 86400), "how often a calendar's source is read (15m, 1h…)"
    )
    minimum_interval: int = _option(
        300, _duration(60, 86400), "shortest interval a calendar may ask for with --every"
    )
    notify_after: int = _option(
        86400, _duration(0, 365 * 86400), "a source failing this long is reported to its owner"
    )
    shrink_ratio: float = _option(
        0.5, _ratio, "a fetch with fewer than this share of the events held is refused"
    )
    jitter: float = _option(
        0.1, _ratio, "each calendar's interval is moved by up to this share, so they spread out"
    )
    max_backoff: int = _option(
        6 * 3600, _duration(60, 7 * 86400), "longest wait between attempts after failures"
    )
    workers: int = _option(8, _integer(1, 64), "sources fetched at the same time in a round")
    credentials: tuple[Credential, ...] = field(default=(), metadata={"internal": True})


@dataclass(frozen=True)
class OwnersSettings:
    """Who may sign in to the owner console, how long a sign-in lasts, and what owners'
    sources may reach."""

    allow: tuple[str, ...] = _option(
        (),
        _list(_address_pattern),
        "addresses or patterns (*@example.org) that may sign in and add calendars of their "
        "own; owners of calendars may always sign in (default: nobody else)",
    )
    idle_minutes: int = _option(
        120, _integer(5, 24 * 60), "minutes without a request after which a sign-in ends"
    )
    max_hours: int = _option(
        24, _integer(1, 24 * 30), "hours after which a sign-in ends, however busy"
    )
    links_per_address: int = _option(
        5, _integer(1, 1000), "sign-in links one address can be sent per hour"
    )
    links_per_client: int = _option(
        20, _integer(1, 100000), "sign-in links one client (IP address) can ask for per hour"
    )
    private_sources: bool = _option(
        False,
        _boolean,
        "whether sources owners add from the console may be on loopback, private or "
        "link-local addresses (the operator's CLI may always)",
    )
    webdav_folders: tuple[str, ...] = _option(
        (),
        _list(_webdav_folder),
        "WebDAV folders (URL prefixes) owners may publish into from the console, with the "
        "[webdav] credentials; none: the console offers no WebDAV copy (the CLI may use any)",
    )
    mails_per_hour: int = _option(
        200,
        _integer(1, 1_000_000),
        "mails (invitations, level notices, copies of a calendar) one owner's console "
        "actions may queue per hour; a Share or Send over it queues nothing",
    )


@dataclass(frozen=True)
class Settings:
    mail: MailSettings = field(default_factory=MailSettings)
    relay: RelaySettings | None = None
    policy: PolicySettings = field(default_factory=PolicySettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    working_hours: WorkingHours = field(default_factory=WorkingHours)
    calendars: CalendarSettings = field(default_factory=CalendarSettings)
    import_: ImportSettings = field(default_factory=ImportSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    inbox: InboxSettings = field(default_factory=InboxSettings)
    webdav: WebDavSettings = field(default_factory=WebDavSettings)
    sources: SourcesSettings = field(default_factory=SourcesSettings)
    owners: OwnersSettings = field(default_factory=OwnersSettings)
    source: str = "built-in defaults"


# section name in TOML -> (attribute on Settings, dataclass)
SECTIONS: dict[str, tuple[str, type]] = {
    "mail": ("mail", MailSettings),
    "relay": ("relay", RelaySettings),
    "policy": ("policy", PolicySettings),
    "http": ("http", HttpSettings),
    "working_hours": ("working_hours", WorkingHours),
    "calendars": ("calendars", CalendarSettings),
    "import": ("import_", ImportSettings),
    "outbox": ("outbox", OutboxSettings),
    "inbox": ("inbox", InboxSettings),
    "webdav": ("webdav", WebDavSettings),
    "sources": ("sources", SourcesSettings),
    "owners": ("owners", OwnersSettings),
}


def _settings_fields(section_class: type) -> list[Any]:
    """The fields that are settings (not ones filled in another way, like credentials)."""
    return [f for f in fields(section_class) if "parse" in f.metadata]


def _keys(section_class: type) -> dict[str, str]:
    """TOML key -> dataclass attribute, for one section."""
    return {(f.metadata["key"] or f.name): f.name for f in _settings_fields(section_class)}


def env_name(section: str, key: str) -> str:
    return f"{ENV_PREFIX}{section}_{key}".upper()


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Configuration file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"Configuration file {path} is a directory") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read configuration file {path}: {exc}") from None


def find_config(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """--config, else CALSHARE_CONFIG, else ./calshare.toml if there is one."""
    if explicit:
        return Path(explicit)
    if env.get("CALSHARE_CONFIG"):
        return Path(env["CALSHARE_CONFIG"])
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_settings(
    config_path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings once: defaults, then the TOML file, then CALSHARE_* variables."""
    env = os.environ if env is None else env
    path = find_config(str(config_path) if config_path else None, env)
    document = _read_toml(path) if path else {}
    where = str(path) if path else "built-in defaults"

    credentials = _credentials(document, env, where)
    raw: dict[str, dict[str, tuple[Any, str]]] = {}
    for section, content in document.items():
        if section not in SECTIONS:
            hint = _did_you_mean(section, list(SECTIONS))
            raise ConfigError(f"{where}: unknown section [{section}]{hint}")
        if not isinstance(content, dict):
            raise ConfigError(f"{where}: {section} must be a [{section}] table")
        known = _keys(SECTIONS[section][1])
        for key, value in content.items():
            if key not in known:
                hint = _did_you_mean(key, list(known))
                raise ConfigError(f"{where}: unknown key {key!r} in [{section}]{hint}")
            raw.setdefault(section, {})[key] = (value, f"{where}: [{section}] {key}")

    valid_env = {
        env_name(section, key): (section, key)
        for section, (_, cls) in SECTIONS.items()
        for key in _keys(cls)
    }
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_GENERAL:
            continue
        if name.startswith(ENV_SOURCE_CREDENTIALS):
            continue  # read by _credentials
        if name not in valid_env:
            hint = _did_you_mean(name, [*valid_env, *ENV_GENERAL])
            raise ConfigError(f"unknown setting in the environment: {name}{hint}")
        section, key = valid_env[name]
        raw.setdefault(section, {})[key] = (value, f"environment {name}")

    built: dict[str, Any] = {}
    for section, (attribute, cls) in SECTIONS.items():
        if section == "relay" and section not in raw:
            built[attribute] = None  # no relay: mail goes to the local Maildir
            continue
        values: dict[str, Any] = {}
        if section == "sources":
            values["credentials"] = credentials
        for f in _settings_fields(cls):
            key = f.metadata["key"] or f.name
            if key in raw.get(section, {}):
                value, origin = raw[section][key]
                try:
                    values[f.name] = f.metadata["parse"](value)
                except ValueError as exc:
                    why = "is not valid (the value is secret, so not shown)"
                    raise ConfigError(f"{origin}: {why if f.metadata['secret'] else exc}") from None
        built[attribute] = cls(**values)

    settings = Settings(**built, source=where)
    _check_consistency(settings)
    return settings


def env_calendar_key(calendar: str) -> str:
    """How a calendar's name appears in CALSHARE_SOURCE_PASSWORD_<NAME>: upper case, _ for
    anything but letters and digits (``team-rota`` -> ``TEAM_ROTA``)."""
    return re.sub(r"[^A-Z0-9]", "_", calendar.upper())


def _credentials(
    document: dict[str, Any], env: Mapping[str, str], where: str
) -> tuple[Credential, ...]:
    """``[sources.credentials."NAME"]`` tables (removed from ``document``) and the
    CALSHARE_SOURCE_USERNAME_/PASSWORD_ variables. Errors never quote a password."""
    found: list[Credential] = []
    section = document.get("sources")
    table = section.pop("credentials", {}) if isinstance(section, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError(f'{where}: [sources] credentials must be [sources.credentials."NAME"]')
    for name, entry in table.items():
        if not isinstance(entry, dict) or set(entry) - {"username", "password"}:
            raise ConfigError(
                f'{where}: [sources.credentials."{name}"] takes only username and password'
            )
        username, password = entry.get("username", ""), entry.get("password", "")
        if not isinstance(username, str) or not isinstance(password, str):
            raise ConfigError(
                f'{where}: [sources.credentials."{name}"] username and password are strings'
            )
        found.append(Credential(str(name).lower(), username, password))
    names: dict[str, dict[str, str]] = {}
    for variable, value in env.items():
        for prefix, part in zip(ENV_SOURCE_CREDENTIALS, ("username", "password"), strict=True):
            if variable.startswith(prefix) and variable != prefix:
                names.setdefault(variable[len(prefix) :], {})[part] = value
    for key, entry in names.items():
        found.insert(
            0, Credential(f"env:{key}", entry.get("username", ""), entry.get("password", ""))
        )
    return tuple(found)


def find_credential(
    settings: Settings,
    calendar: str,
    host: str,
    *,
    owner: str | None = None,
    shared_name: bool = False,
    guarded: bool = False,
) -> Credential | None:
    """A CalDAV source's credentials: the config's for ``OWNER/CALENDAR``, else the
    environment's for the calendar, else the config's for the calendar, else the config's
    for the host.

    Owners are tenants: once another owner has a calendar of the same name
    (``shared_name``), credentials kept for the name alone are not used, so a calendar an
    owner adds under someone else's calendar's name never gets their password; name
    them ``"OWNER/CALENDAR"`` then.

    A ``guarded`` source (an owner added it from the console) gets only the credential
    kept for ``OWNER/CALENDAR``: the owner typed its URL, so a password kept for a
    calendar's name or a host would go to whatever server they named. Those are for
    the sources the operator sets.
    """
    by_owner = (f"{owner}/{calendar}".lower(),) if owner else ()
    if guarded:
        wanted: tuple[str, ...] = by_owner
    else:
        by_name = () if shared_name else (f"env:{env_calendar_key(calendar)}", calendar.lower())
        wanted = (*by_owner, *by_name, host.lower())
    for name in wanted:
        for credential in settings.sources.credentials:
            if credential.name == name:
                return credential
    return None


def _check_consistency(settings: Settings) -> None:
    inbox = settings.inbox
    if bool(inbox.tls_cert) != bool(inbox.tls_key):
        raise ConfigError(f"{settings.source}: [inbox] tls_cert and tls_key go together")
    if inbox.require_auth != RequireAuth.NONE and not inbox.authserv_id:
        raise ConfigError(
            f"{settings.source}: [inbox] require_auth needs authserv_id, the name your mail "
            "server writes in Authentication-Results"
        )
    if inbox.require_auth != RequireAuth.NONE and not inbox.trusted_peers:
        raise ConfigError(
            f"{settings.source}: [inbox] require_auth needs trusted_peers, the addresses of "
            'the mail server in front of calshare (e.g. ["127.0.0.1"]): a client that '
            "talks to calshare directly can write any Authentication-Results it likes"
        )
    sources = settings.sources
    if sources.interval < sources.minimum_interval:
        raise ConfigError(
            f"{settings.source}: [sources] interval ({sources.interval} s) is shorter than "
            f"minimum_interval ({sources.minimum_interval} s)"
        )
    hours = settings.working_hours
    if hours.start >= hours.end:
        raise ConfigError(
            f"{settings.source}: [working_hours] start {hours.start} must be before end {hours.end}"
        )


def describe_options() -> list[tuple[str, str, Any, str]]:
    """(TOML name, environment variable, default, help) for every option: for docs and tests."""
    rows = []
    for section, (_, cls) in SECTIONS.items():
        for f in _settings_fields(cls):
            key = f.metadata["key"] or f.name
            rows.append((f"{section}.{key}", env_name(section, key), f.default, f.metadata["help"]))
    return rows
