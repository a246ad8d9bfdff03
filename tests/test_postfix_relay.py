"""A real Postfix as calshare's relay, one that wants a fully-qualified HELO name.

Issue 10: calshare greeted its relay with ``socket.getfqdn()`` (often ``localhost``);
a Postfix with ``reject_non_fqdn_helo_hostname`` answered 504, and calshare marked
the invitation failed for good and the share ``undeliverable``, for its own
misconfiguration. Here a private Postfix instance (``postfix -c CONFIG_DIR``, as in
tests/support/postfix.py) listens on 127.0.0.1 with ``smtpd_helo_required = yes`` and
``smtpd_helo_restrictions = reject_non_fqdn_helo_hostname`` and relays what it
accepts to an aiosmtpd sink. Twice: with Postfix's default ``smtpd_delay_reject = yes``
(the 504 comes at RCPT, looking like a refusal of the recipient) and with ``no`` (at
EHLO itself).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.support.net import free_port
from tests.support.postfix import MASTER_CF, Postfix, require_postfix, tail, wait_for
from tests.support.relay import Relay, Sink, running_relay

pytestmark = pytest.mark.network

Cli = Callable[..., CliResult]
INVITEE = "bob@example.org"
DOMAIN = "share.example.org"  # the default [mail] domain: the default HELO name


def main_cf(postfix: Postfix, sink_port: int, delay_reject: bool) -> str:
    root = postfix.root
    return f"""\
compatibility_level = 3.6
queue_directory = {root / "spool"}
data_directory = {postfix.data_dir}
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-calshare-relay-test
maillog_file = {root / "maillog"}
maillog_file_prefixes = {root}
myhostname = relay.calshare.test
mydomain = calshare.test
myorigin = $myhostname
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_helo_required = yes
smtpd_helo_restrictions = reject_non_fqdn_helo_hostname
smtpd_delay_reject = {"yes" if delay_reject else "no"}
relayhost = [127.0.0.1]:{sink_port}
smtputf8_enable = no
biff = no
"""


@dataclass
class RelaySystem:
    postfix: Postfix
    port: int  # where Postfix's smtpd listens
    sink: Relay  # where Postfix relays to

    def env(self, **more: str) -> dict[str, str]:
        return {
            "CALSHARE_RELAY_HOST": "127.0.0.1",
            "CALSHARE_RELAY_PORT": str(self.port),
        } | more


@pytest.fixture(params=[True, False], ids=["reject-at-rcpt", "reject-at-ehlo"])
def relay_system(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RelaySystem]:
    require_postfix()
    # the data directory where the postfix user can reach it (see test_postfix_lmtp.py)
    reachable = Path(tempfile.mkdtemp(prefix="calshare-postfix-relay-"))
    postfix = Postfix(tmp_path / "postfix", reachable / "data")
    try:
        reachable.chmod(0o755)
        with running_relay(Sink()) as sink:
            port = free_port()
            postfix.config_dir.mkdir(parents=True)
            (postfix.root / "spool").mkdir()
            (postfix.config_dir / "main.cf").write_text(main_cf(postfix, sink.port, request.param))
            (postfix.config_dir / "master.cf").write_text(
                MASTER_CF
                + f"127.0.0.1:{port} inet n - n - - smtpd\n"
                + "smtp      unix  -       -       n       -       -       smtp\n"
            )
            postfix.start()
            yield RelaySystem(postfix, port, sink)
    finally:
        try:
            postfix.stop()
        finally:
            shutil.rmtree(reachable, ignore_errors=True)


def outbox(cli: Cli, env: dict[str, str]) -> list[dict[str, object]]:
    listed = cli("outbox", "--json", env=env)
    assert listed.code == 0, listed.err
    result = listed.json()
    assert isinstance(result, list)
    return result


def share_status(cli: Cli, env: dict[str, str]) -> str:
    listed = cli("shares", "--json", env=env)
    assert listed.code == 0, listed.err
    ((share,),) = [listed.json()]
    return str(share["status"])


def test_postfix_wanting_an_fqdn_gets_one_and_a_bad_name_is_the_operators_problem(
    cli: Cli, relay_system: RelaySystem
) -> None:
    added = cli("calendar", "add", "project", "--owner", "Ann Demo <ann@example.org>")
    assert added.code == 0, added.err
    misconfigured = relay_system.env(CALSHARE_RELAY_HELO_NAME="localhost")
    shared = cli("share", "project", INVITEE, "--level", "titles", "--json", env=misconfigured)
    assert shared.code == 0, shared.err
    message_id = shared.json()["message_id"]

    # A non-FQDN name: Postfix answers 504; the mail waits, the share stays invited.
    flushed = cli("outbox", "flush", env=misconfigured)

    explain = f"{flushed.err}\n{tail(relay_system.postfix.maillog)}"
    assert flushed.code == 1, explain
    assert "Sent 0 to the relay; 1 to retry later; 0 failed" in flushed.out, explain
    assert "Helo command rejected" in flushed.err, explain
    (waiting,) = outbox(cli, misconfigured)
    assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
    error = str(waiting["last_error"])
    assert "504" in error and "Helo command rejected" in error, error
    assert "refused calshare itself" in error and "helo_name" in error, error
    assert share_status(cli, misconfigured) == "invited"
    rejected = wait_for(
        lambda: (
            [
                line
                for line in relay_system.postfix.maillog.read_text(errors="replace").splitlines()
                if "<localhost>: Helo command rejected" in line
            ]
            or None
        ),
        "Postfix to log the rejected HELO",
        lambda: tail(relay_system.postfix.maillog),
    )
    assert "504 5.5.2" in rejected[0], rejected
    assert relay_system.sink.sink.deliveries == []

    # The default name (mail.domain) is an FQDN: Postfix takes the mail and relays it.
    fixed = relay_system.env()
    again = cli("outbox", "flush", "--force", env=fixed)
    assert again.code == 0, f"{again.err}\n{tail(relay_system.postfix.maillog)}"
    assert "Sent 1 to the relay; 0 to retry later; 0 failed" in again.out
    (delivery,) = wait_for(
        lambda: list(relay_system.sink.sink.deliveries) or None,
        "Postfix to relay the invitation to the sink",
        lambda: tail(relay_system.postfix.maillog),
    )
    assert delivery.message_id == message_id
    assert delivery.rcpt_tos == [INVITEE]
    # Postfix wrote the name calshare greeted it with into its Received header
    received = " ".join(str(delivery.message["Received"]).split())
    assert received.startswith(f"from {DOMAIN} (localhost [127.0.0.1])"), received
    assert outbox(cli, fixed) == []
    assert share_status(cli, fixed) == "invited"  # until Bob answers
