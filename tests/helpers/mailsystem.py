"""Private Postfix and Dovecot instances: one configuration builder and one start/stop for the
tests (tests/mailservers.py, tests/dovecot.py) and the ingest benchmark (bench/ingest.py).

Each instance lives in its own folder (`-c` config directory, its own queue, state and log
files) on loopback ports, next to any system instance. Both need root: they switch to their own
users (postfix; dovecot, dovenull, mail). The folder must not be under pytest's tmp_path: its
0700 parents keep those users out (use `private_folder()`).

Ports: Postfix and Dovecot cannot be told "port 0" and report back (the gateway can: see
helpers.daemon), so ports are picked in advance (`server_port`); when a start fails because
another process took a port meanwhile, the callers pick again and retry (`start_with_retry`).

Why the start and stop are fast (they took 2-3 s each):
- Postfix re-reads a configuration file written less than a second or so ago, sleeping 300 ms
  between reads, until it looks stable (its guard against half-written files): the files are
  back-dated by a minute. `postfix start` also runs its integrity checks (post-install
  create-missing, postsuper) unless the queue holds a `quick-start` file: the queue folders are
  created here, so the checks are skipped.
- Dovecot's master, on SIGTERM, kills its children and then sleeps a fixed second before it
  exits, and `doveadm stop` waits for that and for the log process: we send SIGTERM, wait until
  only the log process is left, then SIGKILL the master (nothing is left to flush).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"
PASSWORD = "secret"  # every Dovecot user's password (static passdb)
_T = TypeVar("_T")

# master.cf (postfix master(5)): the smtpd listener, then the services a relay uses. Services
# nobody asks for cost nothing: master starts them on demand.
_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
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
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# Queue folders (postfix-files(5)): name -> (mode, group); owner is always `postfix`.
_QUEUE_DIRS = {
    **{
        name: (0o700, None)
        for name in (
            "incoming active deferred defer bounce flush hold corrupt saved trace private"
        ).split()
    },
    "public": (0o2710, "postdrop"),
    "maildrop": (0o1730, "postdrop"),
}


def private_folder(prefix: str) -> Path:
    """A fresh folder in /tmp the servers' own users can enter (0755)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


def postfix_main_cf(
    root: Path,
    *,
    hostname: str,
    transports: dict[str, str],
    relay_domains: str = "",
    extra: dict[str, str] | None = None,
) -> str:
    """main.cf (postconf(5)) for a loopback relay: trusts 127.0.0.0/8 (mynetworks), delivers
    each domain of `transports` ({"customer.test": "lmtp:inet:127.0.0.1:24"}) and discards the
    rest; logs to root/postfix.log; `extra` adds or overrides parameters."""
    inline = ", ".join(f"{domain}={t}" for domain, t in transports.items())
    params = {
        "compatibility_level": "3.6",
        "queue_directory": f"{root}/spool",
        "data_directory": f"{root}/data",
        "mail_owner": "postfix",
        "setgid_group": "postdrop",
        "inet_interfaces": "loopback-only",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.0/8",
        "myhostname": hostname,
        "mydestination": "",
        "relay_domains": relay_domains,
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "transport_maps": f"inline:{{ {inline} }}",
        "default_transport": "discard:",
        "maillog_file": f"{root}/postfix.log",
        "maillog_file_prefixes": str(root),
        "smtputf8_enable": "no",
        **(extra or {}),
    }
    return "".join(f"{k} = {v}\n" for k, v in params.items())


def postfix_start(root: Path, smtpd_port: int, main_cf: str) -> None:
    """Write root/etc/{main,master}.cf and the queue, start Postfix; returns once master has
    bound the smtpd port (`postfix start` waits for master's initialisation)."""
    etc, spool = root / "etc", root / "spool"
    for sub in (etc, spool, root / "data"):
        sub.mkdir(exist_ok=True)
    shutil.chown(root / "data", "postfix")
    (etc / "main.cf").write_text(main_cf)
    (etc / "master.cf").write_text(_MASTER_CF.format(port=smtpd_port))
    past = time.time() - 60  # see the module docstring: no re-read loop
    for name in ("main.cf", "master.cf"):
        os.utime(etc / name, (past, past))
    (spool / "pid").mkdir(mode=0o755, exist_ok=True)
    for name, (mode, group) in _QUEUE_DIRS.items():
        (spool / name).mkdir(exist_ok=True)
        os.chmod(spool / name, mode)
        shutil.chown(spool / name, "postfix", group)
    (spool / "quick-start").touch()
    try:
        run([POSTFIX, "-c", str(etc), "start"], "postfix start")
    except RuntimeError as exc:  # master's reason (a port taken...) is in its log, not stdout
        log = root / "postfix.log"
        raise RuntimeError(f"{exc}\n{log.read_text(errors='replace')[-2000:]}") from None


def postfix_stop(root: Path) -> None:
    """`postfix stop` (it waits for master to exit: about 50 ms)."""
    if (root / "etc" / "main.cf").exists():
        run([POSTFIX, "-c", str(root / "etc"), "stop"], "postfix stop", check=False)


def dovecot_conf(
    d: Path,
    *,
    imap_port: int,
    lmtp_port: int = 0,
    imaps_port: int = 0,
    postmaster_domain: str = "customer.test",
) -> str:
    """dovecot.conf for one private instance in folder d: IMAP on imap_port (plaintext login
    allowed on loopback), LMTP on lmtp_port if given, IMAPS on imaps_port if given (then
    d/cert.pem and d/key.pem must exist). Any user logs in with PASSWORD; each user is its own
    maildir in d/mail (owned by `mail`). IDLE pushes news every second (tests wait less)."""
    protocols = "imap lmtp" if lmtp_port else "imap"
    tls = (
        f"ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem\n"
        if imaps_port
        else "ssl = no\n"
    )
    lmtp = (
        f"service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n"
        f"    port = {lmtp_port}\n  }}\n}}\n"
        f"protocol lmtp {{\n  postmaster_address = postmaster@{postmaster_domain}\n}}\n"
        if lmtp_port
        else ""
    )
    return f"""\
protocols = {protocols}
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
instance_name = gwtest-{imap_port}
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 8
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{d}/mail/%u
imap_idle_notify_interval = 1 secs
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={d}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
{lmtp}"""


def dovecot_prepare(d: Path) -> None:
    """The mail folder, owned by the `mail` user Dovecot delivers as."""
    (d / "mail").mkdir(exist_ok=True)
    shutil.chown(d / "mail", "mail", "mail")


def dovecot_start(conf: Path, imap_port: int, within: float = 10.0) -> None:
    """Start Dovecot and wait for its IMAP greeting (`* OK`)."""
    run([DOVECOT, "-c", str(conf)], "dovecot start")
    deadline = time.monotonic() + within
    while True:
        try:
            with socket.create_connection(("127.0.0.1", imap_port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"dovecot did not greet on {imap_port}: see {conf.parent}")
        time.sleep(0.02)


def dovecot_stop(d: Path, within: float = 10.0) -> None:
    """Stop the instance whose base_dir is d/run: SIGTERM, wait until only its log process is
    left (clients are gone, ports closed), then SIGKILL the master (see the module docstring)."""
    try:
        pid = int((d / "run" / "master.pid").read_text())
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        return  # not running
    deadline = time.monotonic() + within
    while _alive(pid) and _children(pid) - {"log"} and time.monotonic() < deadline:
        time.sleep(0.02)
    for child in _children_pids(pid) if _alive(pid) else []:
        _kill(child)
    _kill(pid)
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children_pids(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry))
    return out


def _children(pid: int) -> set[str]:
    """What the master's live children are (the part of their title after the slash)."""
    names = set()
    for child in _children_pids(pid):
        try:
            title = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        names.add(title.rsplit("/", 1)[-1])
    return names


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def run(args: list[str], what: str, *, check: bool = True) -> None:
    """Run a server's control command; RuntimeError with its output when it fails.

    Output goes to a file, not a pipe: the daemons it starts inherit the pipe and keep it open.
    """
    with tempfile.TemporaryFile() as log:
        code = subprocess.run(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=60
        ).returncode
        if code != 0 and check:
            log.seek(0)
            raise RuntimeError(f"{what} failed ({code}): {log.read().decode(errors='replace')}")


def server_port() -> int:
    """A port free now (the kernel's pick for port 0, released), for a server that must be told
    its port before it starts. Another process may take it before the server binds: start such
    a server with start_with_retry."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_with_retry(start: Callable[[], _T], attempts: int = 3) -> _T:
    """Call start() (which picks its ports with server_port) again when a port was taken: the
    race server_port cannot close for Postfix and Dovecot."""
    for attempt in range(attempts):
        try:
            return start()
        except RuntimeError as exc:
            if attempt == attempts - 1 or not _port_clash(str(exc)):
                raise
    raise AssertionError("unreachable")


def _port_clash(text: str) -> bool:
    return "address already in use" in text.lower()
