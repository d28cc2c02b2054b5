"""A real OpenSSH ``sshd`` on 127.0.0.1 for the SFTP tests, and a TCP proxy that can cut a
connection after N bytes. With ``CI=true`` a missing sshd fails the tests instead of skipping."""
from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

USER = "dsftp"
PASSWORD = "Dsftp-test-pw-1"


def _need(what: str):
    """Skip the calling test (fail it under ``CI=true``); outside pytest, raise ``RuntimeError``."""
    try:
        import pytest  # lazy: the launcher also serves bench/, which runs without pytest
    except ImportError:
        raise RuntimeError(what) from None
    if IN_CI:
        pytest.fail(what)
    pytest.skip(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path, kind: str = "ed25519") -> Path:
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)] + (["-b", "2048"] if kind == "rsa" else [])
    subprocess.run(args, check=True, capture_output=True)
    return path


def ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    if os.geteuid() != 0:
        _need("the SFTP tests create a local user and need root")
    # parallel test workers each start an sshd: one of them creates the user, the others wait for it
    with open(os.path.join(tempfile.gettempdir(), "dealersync-sshd-user.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return pwd.getpwnam(USER)
        except KeyError:
            pass
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", USER], check=True, capture_output=True)
        subprocess.run(["chpasswd"], input=f"{USER}:{PASSWORD}", text=True, check=True, capture_output=True)
        return pwd.getpwnam(USER)


@dataclass
class Sshd:
    port: int
    base: Path
    root: Path              # the user's remote root (absolute path on the server)
    known_hosts: Path
    user_key: Path
    user_rsa_key: Path
    host_pub: str
    proc: subprocess.Popen

    def write_remote(self, rel: str, data: bytes, mode: int = 0o644) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.chmod(p, mode)
        u = pwd.getpwnam(USER)
        os.chown(p.parent, u.pw_uid, u.pw_gid)
        os.chown(p, u.pw_uid, u.pw_gid)
        return p


def _spawn(binary: str, base: Path, port: int, host_key: Path, auth: Path) -> subprocess.Popen | None:
    """sshd on ``port``, once it accepts connections; None when the port was taken meanwhile."""
    cfg = base / "sshd_config"
    cfg.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile {base}/sshd.pid
AuthorizedKeysFile {auth}
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
StrictModes no
PermitRootLogin no
AllowUsers {USER}
Subsystem sftp internal-sftp
LogLevel ERROR
""")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([binary, "-D", "-e", "-f", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for _ in range(100):
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace")
            if "Address already in use" in out:
                return None
            raise RuntimeError(f"sshd exited: {out}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc


def start_sshd() -> Sshd:
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(binary):
        _need("OpenSSH sshd is not installed (.ci/run installs Debian's openssh-server)")
    u = ensure_user()
    base = Path(tempfile.mkdtemp(prefix="dealersync-sshd-", dir="/tmp"))
    os.chmod(base, 0o755)
    host_key = keygen(base / "host_ed25519")
    user_key = keygen(base / "user_ed25519")
    user_rsa = keygen(base / "user_rsa", "rsa")
    auth = base / "authorized_keys"
    auth.write_text(Path(f"{user_key}.pub").read_text() + Path(f"{user_rsa}.pub").read_text())
    os.chmod(auth, 0o644)
    root = base / "root"
    root.mkdir()
    os.chown(root, u.pw_uid, u.pw_gid)
    for _ in range(5):   # the free port can be taken by another process before sshd binds it
        port = free_port()
        proc = _spawn(binary, base, port, host_key, auth)
        if proc is not None:
            break
    else:
        raise RuntimeError("sshd could not bind a free loopback port in 5 attempts")
    host_pub = Path(f"{host_key}.pub").read_text().split()[:2]
    kh = base / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    return Sshd(port, base, root, kh, user_key, user_rsa, " ".join(host_pub), proc)


def stop_sshd(s: Sshd) -> None:
    s.proc.terminate()
    try:
        s.proc.wait(5)
    except subprocess.TimeoutExpired:
        s.proc.kill()
    shutil.rmtree(s.base, ignore_errors=True)


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the sshd; the connections numbered in ``cut`` (1-based) are
    closed after ``after_bytes`` bytes from the server (a dropped line mid-transfer)."""

    def __init__(self, target_port: int, after_bytes: int, cut=(1,)):
        self.target, self.after, self.cut = target_port, after_bytes, set(cut)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            cut = self.connections in self.cut
            s = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(c, s, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(s, c, self.after if cut else None), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, limit):
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                sent += len(data)
                if limit is not None and sent >= limit:
                    break
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self.sock.close()
