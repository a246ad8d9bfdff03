"""A private Postfix instance for tests (postfix -c DIR), and bounded waits on its log."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

import pytest

POSTFIX = Path("/usr/sbin/postfix")
SENDMAIL = Path("/usr/sbin/sendmail")
POSTCONF = Path("/usr/sbin/postconf")
WAIT = 30.0  # seconds: a bound on every wait, never a pause
T = TypeVar("T")

# Postfix's services, none of them chrooted (the queue is a temporary directory, not
# a chroot jail) and none listening on the network: mail arrives through postdrop.
MASTER_CF = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def wait_for(check: Callable[[], T | None], what: str, explain: Callable[[], str]) -> T:
    """Poll ``check`` until it returns something, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"after {WAIT:.0f} s still waiting for {what}\n{explain()}")
        time.sleep(0.05)


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path.name}: no such file)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last lines of {path.name}:\n" + "\n".join(text)


@dataclass
class Postfix:
    """A private Postfix instance: ``postfix -c CONFIG_DIR``."""

    root: Path  # config (etc/), queue (spool/) and maillog
    data_dir: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "etc"

    @property
    def maillog(self) -> Path:
        return self.root / "maillog"

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(POSTFIX), "-c", str(self.config_dir), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def master_pid(self) -> int | None:
        try:
            return int((self.root / "spool" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def start(self) -> None:
        for args in (("check",), ("start",)):
            done = self.command(*args)
            if done.returncode != 0:
                pytest.fail(
                    f"postfix {' '.join(args)} failed ({done.returncode}): "
                    f"{done.stdout}{done.stderr}\n{tail(self.maillog)}"
                )
        wait_for(
            lambda: True if self.master_pid() and self.command("status").returncode == 0 else None,
            "the Postfix master to run",
            lambda: tail(self.maillog),
        )

    def stop(self) -> None:
        """``postfix stop``; ``postfix abort`` and then SIGKILL of its master if it lingers."""
        pid = self.master_pid()
        if pid is None:
            return
        self.command("stop")
        for _ in range(2):
            if _gone_within(pid, 15.0):
                return
            self.command("abort")
        os.kill(pid, signal.SIGKILL)  # the master this test started, by its pid

    def sendmail(self, message: EmailMessage, envelope_from: str) -> None:
        """``sendmail -C CONFIG_DIR -f FROM -t < message``: recipients from its To header."""
        done = subprocess.run(
            [str(SENDMAIL), "-C", str(self.config_dir), "-f", envelope_from, "-t"],
            input=bytes(message),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, (done.stdout, done.stderr, tail(self.maillog))

    def deliveries(self, recipient: str) -> list[str]:
        """Postfix's log lines of delivery attempts to ``recipient`` (LMTP or discard)."""
        if not self.maillog.exists():
            return []
        marker = f" to=<{recipient}>,"
        return [
            line
            for line in self.maillog.read_text(errors="replace").splitlines()
            if marker in line and " status=" in line
        ]

    def final(self, recipient: str, count: int = 1) -> list[str]:
        """The first ``count`` delivery lines for ``recipient`` that are not deferrals."""
        lines = [line for line in self.deliveries(recipient) if "status=deferred" not in line]
        return lines[:count] if len(lines) >= count else []


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` has exited (or is a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def require_postfix() -> None:
    """Fail, not skip: CI installs Postfix through the Makefile, so its absence is a bug."""
    for program in (POSTFIX, SENDMAIL, POSTCONF):
        if not program.is_file():
            pytest.fail(
                f"{program} is missing: install Debian's postfix package "
                "(`make test` does, through the Makefile's system-packages target)"
            )
    if os.geteuid() != 0:
        pytest.fail("a private Postfix instance needs root (its master starts as root)")
