#!/usr/bin/env python3
"""Start real JMAP Calendars servers (Debian's Cyrus IMAP) on loopback, for tests and demos.

Two dialects are provided side by side:

* ``cyrus-3.6``  — Cyrus 3.6 (Debian 12 "bookworm"): Cyrus's own calendars capability
  (``https://cyrusimap.org/ns/jmap/calendars``, ``jsevent``, ``calendarId``).
* ``cyrus-3.10`` — Cyrus 3.10 (Debian 13 "trixie"): the IETF JMAP Calendars capability
  (``urn:ietf:params:jmap:calendars``, ``Event``, ``calendarIds``).

Each runs from the host's packages when the host is that Debian release, otherwise from a minimal
chroot built with mmdebstrap. A built chroot is cached under ``$XDG_CACHE_HOME/jmapsyncd`` and
rebuilt when missing or stale; nothing depends on the cache being there.

Every instance keeps its configuration and data in its own folder, listens on 127.0.0.1 only,
authenticates with HTTP Basic against its own sasldb, and is stopped by PID. The script only uses
the standard library so that it runs before the project is installed.

Usage::

    scripts/jmap-server install            # apt packages and chroots, nothing started
    scripts/jmap-server start [DIALECT…]   # idempotent; prints one line per server
    scripts/jmap-server status [--json]
    scripts/jmap-server adduser NAME [--dialect D] [--password P]
    scripts/jmap-server stop
"""

from __future__ import annotations

import argparse
import contextlib
import imaplib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from dataclasses import asdict, dataclass
from pathlib import Path

APT_PACKAGES = ["cyrus-imapd", "cyrus-common", "cyrus-caldav", "cyrus-admin", "sasl2-bin"]
CHROOT_PACKAGES = ["cyrus-imapd", "cyrus-caldav", "cyrus-admin", "sasl2-bin", "tzdata"]
MIRROR = os.environ.get("JMAPSYNCD_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Bump when the chroot recipe changes so cached chroots are rebuilt.
CHROOT_RECIPE = "1"
ADMIN = "admin"
DEFAULT_PASSWORD = "secret"
DEFAULT_USERS = ("alice", "bob")
SERVERNAME = "localhost"


@dataclass(frozen=True)
class Dialect:
    name: str
    suite: str  # the Debian release that ships this Cyrus
    http_port: int
    imap_port: int


DIALECTS = {
    "cyrus-3.6": Dialect("cyrus-3.6", "bookworm", 18036, 18136),
    "cyrus-3.10": Dialect("cyrus-3.10", "trixie", 18310, 18410),
}


@dataclass(frozen=True)
class ServerInfo:
    dialect: str
    url: str  # the JMAP session URL
    http_port: int
    imap_port: int
    pid: int
    root: str  # "/" on the host, else the chroot
    base: str  # instance folder, as seen from inside ``root``
    admin_password: str


def log(msg: str) -> None:
    print(f"jmap-server: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def state_dir() -> Path:
    return Path(os.environ.get("JMAPSYNCD_SERVER_DIR", "/tmp/jmapsyncd-servers"))


def cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "jmapsyncd"


def host_suite() -> str:
    try:
        fields = dict(
            line.split("=", 1)
            for line in Path("/etc/os-release").read_text().splitlines()
            if "=" in line
        )
    except OSError:
        return ""
    return fields.get("VERSION_CODENAME", "").strip('"')


def uses_host(dialect: Dialect) -> bool:
    return host_suite() == dialect.suite


# --------------------------------------------------------------------------- install


def apt_install(packages: list[str]) -> None:
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    log(f"installing {' '.join(missing)} from Debian's packages")
    # Package scripts must not start system services (a system Cyrus would take ports and time).
    policy = Path("/usr/sbin/policy-rc.d")
    had_policy = policy.exists()
    if not had_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=env)
        run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            env=env,
            stdout=subprocess.DEVNULL,
        )
    finally:
        if not had_policy:
            policy.unlink(missing_ok=True)


def _dpkg_installed(package: str) -> bool:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return out.returncode == 0 and "install ok installed" in out.stdout


def chroot_path(dialect: Dialect) -> Path:
    return cache_dir() / f"cyrus-{dialect.suite}"


def ensure_chroot(dialect: Dialect) -> Path:
    """Build (or reuse) a minimal chroot of ``dialect.suite`` holding Cyrus."""
    root = chroot_path(dialect)
    marker = root / ".jmapsyncd-recipe"
    if marker.exists() and marker.read_text().strip() == CHROOT_RECIPE:
        return root
    apt_install(["mmdebstrap"])
    root.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".build-{dialect.suite}-", dir=root.parent))
    build.rmdir()  # mmdebstrap wants to create it
    log(f"building a {dialect.suite} chroot with Cyrus (about a minute, cached afterwards)")
    no_services = (
        'mkdir -p "$1/usr/sbin"; printf "#!/bin/sh\\nexit 101\\n" > "$1/usr/sbin/policy-rc.d"; '
        'chmod +x "$1/usr/sbin/policy-rc.d"'
    )
    cmd = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--include=" + ",".join(CHROOT_PACKAGES),
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--aptopt=Acquire::Check-Valid-Until false",
        f"--setup-hook={no_services}",
        dialect.suite,
        str(build),
        MIRROR,
    ]
    try:
        run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(build, ignore_errors=True)
        raise SystemExit(f"jmap-server: mmdebstrap failed:\n{exc.stderr}") from exc
    (build / ".jmapsyncd-recipe").write_text(CHROOT_RECIPE + "\n")
    if root.exists():
        shutil.rmtree(root)
    build.rename(root)  # atomic: a half-built chroot is never mistaken for a good one
    return root


def install(dialects: list[Dialect]) -> None:
    for d in dialects:
        if uses_host(d):
            apt_install(APT_PACKAGES)
        else:
            ensure_chroot(d)


# --------------------------------------------------------------------------- config files

SENDMAIL = r"""#!/bin/sh
# Cyrus sends iMIP mail by speaking SMTP to "sendmail -bs": answer promptly and discard.
printf '220 localhost ESMTP discard\r\n'
while IFS= read -r line; do
  case "$line" in
    [Dd][Aa][Tt][Aa]*)
      printf '354 go ahead\r\n'
      while IFS= read -r body; do
        case "$body" in .|.$(printf '\r')) break ;; esac
      done
      printf '250 discarded\r\n' ;;
    [Qq][Uu][Ii][Tt]*) printf '221 bye\r\n'; exit 0 ;;
    *) printf '250 ok\r\n' ;;
  esac
done
"""


def imapd_conf(base: str, dialect: Dialect) -> str:
    lines = {
        "configdirectory": f"{base}/conf",
        "partition-default": f"{base}/spool",
        "defaultpartition": "default",
        "sievedir": f"{base}/sieve",
        "proc_path": f"{base}/proc",
        "mboxname_lockpath": f"{base}/lock",
        "lmtpsocket": f"{base}/conf/socket/lmtp",
        "idlesocket": f"{base}/conf/socket/idle",
        "notifysocket": f"{base}/conf/socket/notify",
        "servername": SERVERNAME,
        "defaultdomain": "example.com",
        "admins": ADMIN,
        "allowplaintext": "yes",
        "sasl_pwcheck_method": "auxprop",
        "sasl_auxprop_plugin": "sasldb",
        "sasl_sasldb_path": f"{base}/sasldb2",
        "sasl_mech_list": "PLAIN LOGIN",
        "httpmodules": "caldav carddav jmap",
        "conversations": "yes",
        "jmap_nonstandard_extensions": "yes" if dialect.name == "cyrus-3.6" else "no",
        "search_engine": "xapian",
        "defaultsearchtier": "t1",
        "t1searchpartition-default": f"{base}/search",
        "sync_log": "yes",
        "sync_log_channels": "squatter",
        "httpkeepalive": "0",
        # How often Cyrus looks for changes to push on its EventSource (default 60 s): a test
        # server should push within a second.
        "jmap_pushpoll": "1",
        "sendmail": f"{base}/bin/sendmail",
        "autocreate_quota": "0",
        "syslog_prefix": f"jmapsyncd-{dialect.name}",
    }
    return "".join(f"{k}: {v}\n" for k, v in lines.items())


def cyrus_conf(base: str, dialect: Dialect) -> str:
    conf = f"{base}/imapd.conf"
    return f"""START {{
  recover cmd="ctl_cyrusdb -r -C {conf}"
}}
SERVICES {{
  imap cmd="imapd -C {conf}" listen="127.0.0.1:{dialect.imap_port}" prefork=0
  http cmd="httpd -C {conf}" listen="127.0.0.1:{dialect.http_port}" prefork=1
}}
EVENTS {{
}}
DAEMON {{
  squatter cmd="squatter -R -C {conf}"
}}
"""


# --------------------------------------------------------------------------- instances


class Instance:
    """One Cyrus server: where its files are and how to run commands for it."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.host = uses_host(dialect)
        self.root = Path("/") if self.host else chroot_path(dialect)
        # Inside a chroot the data must live inside it; on the host, under the state folder.
        if self.host:
            self.base = str(state_dir() / dialect.name)
        else:
            self.base = f"/srv/jmapsyncd/{dialect.name}"
        self.info_file = state_dir() / f"{dialect.name}.json"

    def outside(self, inside: str) -> Path:
        """The host path of a path inside this instance's root."""
        return self.root / inside.lstrip("/") if not self.host else Path(inside)

    def ids(self) -> tuple[int, int]:
        """uid of ``cyrus`` and gid of ``mail`` as this instance's root knows them."""
        uid = gid = -1
        for line in (self.root / "etc/passwd").read_text().splitlines():
            parts = line.split(":")
            if parts[0] == "cyrus":
                uid = int(parts[2])
        for line in (self.root / "etc/group").read_text().splitlines():
            parts = line.split(":")
            if parts[0] == "mail":
                gid = int(parts[2])
        if uid < 0 or gid < 0:
            raise SystemExit(f"jmap-server: no cyrus user in {self.root}")
        return uid, gid

    def cmd(self, argv: list[str], *, as_cyrus: bool = False) -> list[str]:
        if self.host:
            if as_cyrus:
                uid, gid = self.ids()
                return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]
            return argv
        if as_cyrus:
            uid, gid = self.ids()
            return ["chroot", f"--userspec={uid}:{gid}", str(self.root), *argv]
        return ["chroot", str(self.root), *argv]

    def read_info(self) -> ServerInfo | None:
        try:
            return ServerInfo(**json.loads(self.info_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @property
    def session_url(self) -> str:
        return f"http://127.0.0.1:{self.dialect.http_port}/.well-known/jmap"

    def running(self) -> ServerInfo | None:
        info = self.read_info()
        if info is None or not _alive(info.pid):
            return None
        return info if _answers(self.session_url, ADMIN, info.admin_password) else None

    def prepare(self) -> None:
        """Write a fresh configuration and empty data folders."""
        top = self.outside(self.base)
        if top.exists():
            shutil.rmtree(top)
        for sub in ("conf/socket", "conf/proc", "spool", "sieve", "proc", "lock", "search", "bin"):
            (top / sub).mkdir(parents=True, exist_ok=True)
        (top / "imapd.conf").write_text(imapd_conf(self.base, self.dialect))
        (top / "cyrus.conf").write_text(cyrus_conf(self.base, self.dialect))
        sendmail = top / "bin/sendmail"
        sendmail.write_text(SENDMAIL)
        sendmail.chmod(0o755)
        uid, gid = self.ids()
        for path in [top, *top.rglob("*")]:
            os.chown(path, uid, gid)
        # Cyrus must be able to reach its folder through every parent.
        parent = top.parent
        while parent != parent.parent:
            parent.chmod(parent.stat().st_mode | 0o011)
            if parent in (Path("/tmp"), self.root):
                break
            parent = parent.parent

    def set_password(self, user: str, password: str) -> None:
        run(
            self.cmd(
                ["saslpasswd2", "-p", "-c", "-f", f"{self.base}/sasldb2", "-u", SERVERNAME, user]
            ),
            input=password,
        )
        uid, gid = self.ids()
        os.chown(self.outside(f"{self.base}/sasldb2"), uid, gid)

    def start(self) -> ServerInfo:
        info = self.running()
        if info is not None:
            return info
        self.stop()
        self.prepare()
        admin_password = b64encode(os.urandom(12)).decode().rstrip("=")
        self.set_password(ADMIN, admin_password)
        pidfile = f"{self.base}/master.pid"
        log_path = state_dir() / f"{self.dialect.name}.log"
        master = [
            "/usr/lib/cyrus/bin/master",
            "-C",
            f"{self.base}/imapd.conf",
            "-M",
            f"{self.base}/cyrus.conf",
            "-p",
            pidfile,
        ]
        t0 = time.monotonic()
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                self.cmd(master, as_cyrus=True),
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the shell that started it; stopped by PID
            )
        info = ServerInfo(
            dialect=self.dialect.name,
            url=self.session_url,
            http_port=self.dialect.http_port,
            imap_port=self.dialect.imap_port,
            pid=proc.pid,
            root=str(self.root),
            base=self.base,
            admin_password=admin_password,
        )
        self.info_file.write_text(json.dumps(asdict(info), indent=2))
        self.info_file.chmod(0o600)
        deadline = time.monotonic() + 60
        while not _answers(self.session_url, ADMIN, admin_password):
            if proc.poll() is not None:
                raise SystemExit(
                    f"jmap-server: {self.dialect.name} exited with {proc.returncode}; "
                    f"see {log_path} and syslog"
                )
            if time.monotonic() > deadline:
                raise SystemExit(f"jmap-server: {self.dialect.name} did not answer within 60 s")
            time.sleep(0.05)
        log(f"{self.dialect.name} ready in {time.monotonic() - t0:.2f}s at {self.session_url}")
        for user in DEFAULT_USERS:
            self.adduser(user, DEFAULT_PASSWORD)
        return info

    def adduser(self, user: str, password: str) -> None:
        """Create a user with a mailbox and a calendar home (idempotent)."""
        info = self.read_info()
        if info is None:
            raise SystemExit(f"jmap-server: {self.dialect.name} is not running")
        self.set_password(user, password)
        # HTTP login alone does not create a user; an IMAP login does (autocreate_quota).
        with imaplib.IMAP4("127.0.0.1", self.dialect.imap_port) as imap:
            imap.login(user, password)
            imap.logout()
        # The first authenticated JMAP request creates the calendar home.
        deadline = time.monotonic() + 20
        while not _answers(self.session_url, user, password, need_account=True):
            if time.monotonic() > deadline:
                raise SystemExit(f"jmap-server: user {user} has no JMAP account")
            time.sleep(0.1)

    def stop(self) -> None:
        info = self.read_info()
        pids: list[int] = []
        if info is not None:
            pids.append(info.pid)
            pidfile = self.outside(f"{self.base}/master.pid")
            with contextlib.suppress(OSError, ValueError):
                pids.append(int(pidfile.read_text().split()[0]))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        if not self.host:
            _kill_rooted_in(self.root)
        self.info_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _kill_rooted_in(root: Path) -> None:
    """End leftover processes whose root is ``root`` (only those: never others)."""
    target = root.resolve()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if Path(os.readlink(proc / "root")).resolve() == target:
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def _answers(url: str, user: str, password: str, *, need_account: bool = False) -> bool:
    token = b64encode(f"{user}:{password}".encode()).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    if not isinstance(body, dict) or "apiUrl" not in body:
        return False
    return not need_account or bool(body.get("accounts"))


# --------------------------------------------------------------------------- CLI


def _selected(names: list[str]) -> list[Dialect]:
    if not names or names == ["all"]:
        return list(DIALECTS.values())
    unknown = [n for n in names if n not in DIALECTS]
    if unknown:
        raise SystemExit(f"jmap-server: unknown dialect {unknown}; choose from {list(DIALECTS)}")
    return [DIALECTS[n] for n in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jmap-server", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install packages and build chroots").add_argument(
        "dialects", nargs="*"
    )
    p_start = sub.add_parser("start", help="start servers (idempotent)")
    p_start.add_argument("dialects", nargs="*")
    p_status = sub.add_parser("status", help="show running servers")
    p_status.add_argument("--json", action="store_true")
    sub.add_parser("stop", help="stop servers").add_argument("dialects", nargs="*")
    p_add = sub.add_parser("adduser", help="create a user on running servers")
    p_add.add_argument("name")
    p_add.add_argument("--password", default=DEFAULT_PASSWORD)
    p_add.add_argument("--dialect", action="append", default=[])
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        raise SystemExit("jmap-server: must run as root (it installs packages and runs Cyrus)")
    state_dir().mkdir(parents=True, exist_ok=True)
    state_dir().chmod(0o711)

    if args.command == "install":
        install(_selected(args.dialects))
    elif args.command == "start":
        dialects = _selected(args.dialects)
        install(dialects)
        for d in dialects:
            info = Instance(d).start()
            print(f"{info.dialect} {info.url} users={','.join(DEFAULT_USERS)} password=secret")
    elif args.command == "status":
        infos = [i for d in DIALECTS.values() if (i := Instance(d).running()) is not None]
        if args.json:
            shown = [{k: v for k, v in asdict(i).items() if k != "admin_password"} for i in infos]
            print(json.dumps(shown, indent=2))
        else:
            for i in infos:
                print(f"{i.dialect} {i.url} pid={i.pid}")
        return 0 if infos else 3
    elif args.command == "stop":
        for d in _selected(args.dialects):
            Instance(d).stop()
    elif args.command == "adduser":
        for d in _selected(args.dialect):
            Instance(d).adduser(args.name, args.password)
    return 0


if __name__ == "__main__":
    sys.exit(main())
