"""calshare.config.load_settings: defaults < calshare.toml < CALSHARE_* variables; errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from calshare.config import Settings, describe_options, load_settings
from calshare.errors import ConfigError
from calshare.levels import Level
from tests.conftest import CliResult

# The example of docs/design.md, "Configuration", copied as written.
DESIGN_EXAMPLE = """\
[mail]
domain = "share.example.org"          # token addresses: share+/accept+/decline+/bounces+
from = "Calendar <calendar@share.example.org>"
lang = "en"                           # or "nb"
[relay]                               # absent: write outgoing mail to var/maildir
host = "127.0.0.1"
port = 25
security = "none"                     # "starttls" or "tls"
username = ""
password = ""
[policy]
sharing = true
internal_domains = ["example.org"]
external_max_level = "titles"         # "none" refuses sharing outside internal_domains
publish_max_level = "free-busy"       # "none" forbids publishing
groups = ["all@example.org", "*-team@example.org"]
invitation_days = 14
[http]
base_url = "http://127.0.0.1:8080"
[working_hours]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "08:00"
end = "17:00"
"""


def write(tmp_path: Path, text: str, name: str = "calshare.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | str | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env or {})
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# --- loading


def test_defaults_load_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./calshare.toml here
    settings = load_settings(None, env={})
    assert settings == Settings()
    assert settings.source == "built-in defaults"
    assert settings.relay is None
    assert settings.mail.domain == "share.example.org"
    assert settings.mail.lang == "en"
    assert settings.policy.sharing is True
    assert settings.policy.external_max_level is Level.TITLES
    assert settings.policy.publish_max_level is Level.FREE_BUSY
    assert settings.policy.invitation_days == 14
    assert settings.working_hours.days == ("mon", "tue", "wed", "thu", "fri")
    assert settings.import_.max_bytes == 20 * 1024 * 1024
    assert isinstance(settings.import_.timeout_seconds, float)


def test_design_example_loads_with_the_right_types(tmp_path: Path) -> None:
    path = write(tmp_path, DESIGN_EXAMPLE)
    settings = load_settings(path, env={})

    assert settings.source == str(path)
    assert settings.mail.domain == "share.example.org"
    assert settings.mail.from_address == "Calendar <calendar@share.example.org>"
    assert settings.mail.lang == "en"

    relay = settings.relay
    assert relay is not None
    assert relay.host == "127.0.0.1"
    assert relay.port == 25 and type(relay.port) is int
    assert relay.security == "none"
    assert (relay.username, relay.password) == ("", "")

    policy = settings.policy
    assert policy.sharing is True
    assert policy.internal_domains == ("example.org",)
    assert isinstance(policy.external_max_level, Level)
    assert policy.external_max_level is Level.TITLES
    assert policy.publish_max_level is Level.FREE_BUSY
    assert policy.groups == ("all@example.org", "*-team@example.org")
    assert policy.invitation_days == 14 and type(policy.invitation_days) is int

    assert settings.http.base_url == "http://127.0.0.1:8080"
    assert settings.working_hours.days == ("mon", "tue", "wed", "thu", "fri")
    assert (settings.working_hours.start, settings.working_hours.end) == ("08:00", "17:00")


def test_every_key_of_the_design_example_is_a_documented_option() -> None:
    documented = {name for name, *_ in describe_options()}
    section = ""
    for line in DESIGN_EXAMPLE.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line:
            assert f"{section}.{line.split('=', 1)[0].strip()}" in documented


def test_every_option_has_an_environment_name() -> None:
    for name, env, _default, help_text in describe_options():
        section, key = name.split(".", 1)
        assert env == f"CALSHARE_{section}_{key}".upper()
        assert help_text


def test_relay_is_none_when_its_section_is_absent(tmp_path: Path) -> None:
    text = DESIGN_EXAMPLE.replace("[relay]", "[relay_gone]").split("[relay_gone]")[0]
    path = write(tmp_path, text + "[policy]\nsharing = false\n")
    settings = load_settings(path, env={})
    assert settings.relay is None
    assert settings.policy.sharing is False


def test_values_are_normalised(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[mail]\ndomain = "Bücher.Example"\nfrom = "Cal <Calendar@Share.Example.ORG>"\n'
        '[policy]\ninternal_domains = ["Example.ORG"]\nexternal_max_level = "DETAILS"\n'
        'publish_max_level = "none"\n'
        '[working_hours]\ndays = ["Monday", "tue"]\nstart = "8:30"\nend = "16:00"\n'
        '[relay]\nsecurity = "STARTTLS"\n',
    )
    settings = load_settings(path, env={})
    assert settings.mail.domain == "xn--bcher-kva.example"
    assert settings.mail.from_address == "Cal <calendar@share.example.org>"
    assert settings.policy.internal_domains == ("example.org",)
    assert settings.policy.external_max_level is Level.DETAILS
    assert settings.policy.publish_max_level is None
    assert settings.working_hours.days == ("mon", "tue")
    assert settings.working_hours.start == "08:30"
    assert settings.relay is not None and settings.relay.security == "starttls"


def test_config_file_found_through_calshare_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[mail]\nlang = "nb"\n', "elsewhere.toml")
    settings = load_settings(None, env={"CALSHARE_CONFIG": str(path)})
    assert settings.mail.lang == "nb"
    assert settings.source == str(path)


def test_calshare_toml_in_the_working_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, '[mail]\nlang = "nb"\n')
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, env={}).mail.lang == "nb"


def test_explicit_path_wins_over_calshare_config(tmp_path: Path) -> None:
    explicit = write(tmp_path, '[mail]\nlang = "nb"\n', "explicit.toml")
    other = write(tmp_path, '[mail]\nlang = "en"\n', "other.toml")
    settings = load_settings(explicit, env={"CALSHARE_CONFIG": str(other)})
    assert settings.mail.lang == "nb"


# --- CALSHARE_* variables


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, DESIGN_EXAMPLE)
    settings = load_settings(
        path,
        env={
            "CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "none",
            "CALSHARE_RELAY_PORT": "2525",
            "CALSHARE_POLICY_INTERNAL_DOMAINS": "a.org, b.org",
            "CALSHARE_POLICY_SHARING": "false",
            "CALSHARE_MAIL_FROM": "Kalender <kalender@a.org>",
            "CALSHARE_IMPORT_TIMEOUT_SECONDS": "2.5",
            "CALSHARE_DB": "/somewhere/else.db",  # ours, but not a setting: allowed
        },
    )
    assert settings.policy.external_max_level is None
    assert settings.relay is not None and settings.relay.port == 2525
    assert settings.relay.host == "127.0.0.1"  # the rest of [relay] still from the file
    assert settings.policy.internal_domains == ("a.org", "b.org")
    assert settings.policy.sharing is False
    assert settings.mail.from_address == "Kalender <kalender@a.org>"
    assert settings.import_.timeout_seconds == 2.5
    assert settings.policy.publish_max_level is Level.FREE_BUSY  # untouched


def test_a_relay_variable_alone_makes_the_relay_present() -> None:
    settings = load_settings(None, env={"CALSHARE_RELAY_PORT": "2525"})
    assert settings.relay is not None
    assert (settings.relay.host, settings.relay.port) == ("127.0.0.1", 2525)
    assert settings.relay.security == "none"


def test_variables_that_are_not_ours_are_ignored() -> None:
    settings = load_settings(None, env={"HOME": "/root", "CALSHAREX": "1", "PATH": "/bin"})
    assert settings == Settings()


# --- clear errors


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param(
            '[mail]\nform = "a@example.org"\n',
            ["unknown key 'form'", "[mail]", "did you mean 'from'"],
            id="unknown-key",
        ),
        pytest.param(
            "[relay]\nprot = 25\n",
            ["unknown key 'prot'", "[relay]", "did you mean 'port'"],
            id="unknown-key-relay",
        ),
        pytest.param(
            '[mial]\ndomain = "example.org"\n',
            ["unknown section [mial]", "did you mean 'mail'"],
            id="unknown-section",
        ),
        pytest.param(
            "[frobnicate]\nx = 1\n",
            ["unknown section [frobnicate]"],
            id="unknown-section-no-hint",
        ),
        pytest.param(
            "[relay]\nport = 70000\n",
            ["[relay] port", "70000", "not a port number"],
            id="port-too-big",
        ),
        pytest.param("[relay]\nport = 0\n", ["[relay] port", "not a port number"], id="port-0"),
        pytest.param(
            '[relay]\nport = "x"\n', ["[relay] port", "'x'", "not a port number"], id="port-x"
        ),
        pytest.param(
            "[relay]\nport = true\n", ["[relay] port", "not a port number"], id="port-bool"
        ),
        pytest.param(
            '[mail]\nfrom = "not an address"\n',
            ["[mail] from", "not an address", "not an email address"],
            id="bad-from",
        ),
        pytest.param(
            '[mail]\nfrom = "Calendar <calendar@localhost>"\n',
            ["[mail] from", "localhost"],
            id="from-single-label",
        ),
        pytest.param(
            '[policy]\nexternal_max_level = "everything"\n',
            ["[policy] external_max_level", "'everything'", "free-busy", "titles", "details"],
            id="bad-level",
        ),
        pytest.param(
            '[policy]\npublish_max_level = "full"\n',
            ["[policy] publish_max_level", "'full'", "none"],
            id="bad-publish-level",
        ),
        pytest.param(
            '[mail]\ndomain = \nlang = "en"\n',
            ["not valid TOML", "line 2"],
            id="bad-toml",
        ),
        pytest.param(
            '[working_hours]\nstart = "17:00"\nend = "08:00"\n',
            ["[working_hours]", "start 17:00", "before end 08:00"],
            id="start-after-end",
        ),
        pytest.param(
            '[working_hours]\nstart = "09:00"\nend = "09:00"\n',
            ["[working_hours]", "before end"],
            id="start-equals-end",
        ),
        pytest.param(
            '[working_hours]\nstart = "25:00"\n',
            ["[working_hours] start", "not a time of day"],
            id="bad-time",
        ),
        pytest.param(
            '[working_hours]\ndays = ["mon", "funday"]\n',
            ["[working_hours] days", "funday"],
            id="bad-weekday",
        ),
        pytest.param('[mail]\nlang = "de"\n', ["[mail] lang", "'de'", "en, nb"], id="bad-lang"),
        pytest.param(
            '[relay]\nsecurity = "ssl"\n',
            ["[relay] security", "none, starttls, tls"],
            id="bad-security",
        ),
        pytest.param(
            '[policy]\nsharing = "maybe"\n', ["[policy] sharing", "true or false"], id="bad-bool"
        ),
        pytest.param(
            '[policy]\ninternal_domains = "example.org"\ngroups = ["not-an-address"]\n',
            ["[policy] groups", "not-an-address"],
            id="bad-group",
        ),
        pytest.param(
            '[http]\nbase_url = "ftp://example.org"\n',
            ["[http] base_url", "http(s) URL"],
            id="bad-base-url",
        ),
        pytest.param("mail = 3\n", ["[mail] table"], id="section-not-a-table"),
        pytest.param(
            '[calendars]\ndefault_tz = "Mars/Olympus"\n',
            ["[calendars] default_tz", "Mars/Olympus"],
            id="bad-zone",
        ),
        pytest.param(
            "[import]\nmax_bytes = 10\n", ["[import] max_bytes", "out of range"], id="tiny-limit"
        ),
    ],
)
def test_bad_file_gives_a_clear_error(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        pytest.param(
            {"CALSHARE_RELAY_PROT": "25"},
            ["CALSHARE_RELAY_PROT", "did you mean 'CALSHARE_RELAY_PORT'"],
            id="typo",
        ),
        pytest.param({"CALSHARE_WHATEVER": "1"}, ["CALSHARE_WHATEVER", "unknown"], id="unknown"),
        pytest.param(
            {"CALSHARE_RELAY_PORT": "x"},
            ["environment CALSHARE_RELAY_PORT", "not a port number"],
            id="bad-port",
        ),
        pytest.param(
            {"CALSHARE_RELAY_PORT": "70000"},
            ["CALSHARE_RELAY_PORT", "70000"],
            id="port-too-big",
        ),
        pytest.param(
            {"CALSHARE_POLICY_EXTERNAL_MAX_LEVEL": "all"},
            ["CALSHARE_POLICY_EXTERNAL_MAX_LEVEL", "'all'", "not a level"],
            id="bad-level",
        ),
        pytest.param(
            {"CALSHARE_MAIL_FROM": "calendar@"},
            ["CALSHARE_MAIL_FROM", "calendar@"],
            id="bad-from",
        ),
        pytest.param(
            {"CALSHARE_WORKING_HOURS_START": "18:00"},
            ["start 18:00", "before end 17:00"],
            id="start-after-default-end",
        ),
    ],
)
def test_bad_environment_gives_a_clear_error(env: dict[str, str], fragments: list[str]) -> None:
    message = config_error(None, env)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "calshare.toml"
    message = config_error(missing)
    assert str(missing) in message
    assert "does not exist" in message


def test_missing_file_named_by_calshare_config_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "gone.toml"
    message = config_error(None, {"CALSHARE_CONFIG": str(missing)})
    assert str(missing) in message


def test_directory_as_config_is_an_error(tmp_path: Path) -> None:
    message = config_error(tmp_path)
    assert "directory" in message


def test_config_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[mail]\nfrom = "Kåre <k@example.org>"\n'.encode("latin-1"))
    message = config_error(path)
    assert str(path) in message


def test_config_error_is_also_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a port number"):
        load_settings(write(tmp_path, "[relay]\nport = 70000\n"), env={})


# --- through the command line


Cli = Callable[..., CliResult]


@pytest.mark.parametrize(
    "where", ["before-command", "after-command", "environment"], ids=lambda where: where
)
def test_cli_with_a_bad_config_prints_one_line(
    cli: Cli, tmp_path: Path, db_path: Path, where: str
) -> None:
    bad = write(tmp_path, "[relay]\nport = 70000\n", "bad.toml")
    if where == "before-command":
        result = cli("--config", str(bad), "calendar", "list")
    elif where == "after-command":
        result = cli("calendar", "list", "--config", str(bad))
    else:
        result = cli("calendar", "list", env={"CALSHARE_CONFIG": str(bad)})
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("calshare: error: ")
    assert "bad.toml" in lines[0] and "[relay] port" in lines[0]
    assert not db_path.exists(), "a bad configuration should stop before the store is opened"


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        pytest.param(("--config", "missing.toml"), {}, "does not exist", id="missing-file"),
        pytest.param(("--config", "syntax.toml"), {}, "not valid TOML", id="bad-toml"),
        pytest.param((), {"CALSHARE_RELAY_PROT": "1"}, "CALSHARE_RELAY_PORT", id="bad-variable"),
    ],
)
def test_cli_config_errors(
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    env: dict[str, str],
    fragment: str,
) -> None:
    write(tmp_path, "[mail\nlang = 'en'\n", "syntax.toml")
    monkeypatch.chdir(tmp_path)
    result = cli(*args, "calendar", "list", env=env)
    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("calshare: error: ")
    assert fragment in lines[0]


def test_cli_uses_a_good_config(cli: Cli, tmp_path: Path) -> None:
    good = write(tmp_path, '[calendars]\ndefault_tz = "Europe/Oslo"\n', "good.toml")
    result = cli("--config", str(good), "calendar", "add", "work", "--owner", "a@example.org")
    assert result.code == 0, result.err
    assert "Europe/Oslo" in result.out


def test_a_bad_secret_is_not_echoed(tmp_path: Path) -> None:
    config = tmp_path / "calshare.toml"
    config.write_text('[relay]\npassword = ["hunter2-secret"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={})
    assert "[relay] password" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_an_empty_relay_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="host name"):
        load_settings(None, env={"CALSHARE_RELAY_HOST": " "})


def test_require_auth_needs_the_trusted_peers_that_may_vouch(tmp_path: Path) -> None:
    """A client reaching `serve --smtp` directly writes any Authentication-Results it likes:
    requiring them is only meaningful with the mail server in front named."""
    auth = {"CALSHARE_INBOX_REQUIRE_AUTH": "dmarc", "CALSHARE_INBOX_AUTHSERV_ID": "mx.example.org"}
    message = config_error(None, auth)
    assert "trusted_peers" in message
    path = write(
        tmp_path,
        '[inbox]\nrequire_auth = "dkim"\nauthserv_id = "mx.example.org"\n'
        'trusted_peers = ["127.0.0.1", "::1", "10.1.0.0/16", "192.0.2.7/24"]\n',
    )
    assert load_settings(path, env={}).inbox.trusted_peers == (
        "127.0.0.1/32",
        "::1/128",
        "10.1.0.0/16",
        "192.0.2.0/24",
    )
    env = {**auth, "CALSHARE_INBOX_TRUSTED_PEERS": "127.0.0.1, ::1"}
    assert load_settings(None, env=env).inbox.trusted_peers == ("127.0.0.1/32", "::1/128")
    bad = config_error(None, {**auth, "CALSHARE_INBOX_TRUSTED_PEERS": "mx.example.org"})
    assert "CALSHARE_INBOX_TRUSTED_PEERS" in bad and "IP address or network" in bad
