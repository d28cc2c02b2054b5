"""SFTP connector over paramiko: pinned host keys, timeouts, atomic downloads and uploads.

* Host keys come from a known_hosts file only; an unknown or changed key is refused (a
  ``RejectPolicy``) with a message naming the host and the fingerprint it offered.
* The constructor does no I/O; ``check()`` is the preflight.
* Downloads go to a temporary file beside the target, are hashed while written, fsynced and
  renamed into place: a reader never sees half a file, a failure leaves no file behind.
* Uploads go to a temporary remote name and are renamed when complete: with the OpenSSH
  ``posix-rename@openssh.com`` extension when the server advertises it (one atomic replace), else
  with the SFTP v3 RENAME, which cannot overwrite: the old file is renamed aside, the new one into
  place, then the old one removed (on a failure the old one is put back). A ``.part`` is never left.
* Remote names with ``..``, separators or absolute paths are refused.
"""
from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import posixpath
import secrets
import socket
import stat as statmod
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import paramiko

from dealersync.errors import BadSourceData, ConfigurationError, TransientError
from dealersync.names import check_name

WINDOW_SIZE = 64 * 1024 * 1024  # paramiko's 2 MB default window throttles bulk transfers
MAX_PACKET = 256 * 1024         # fewer, larger SSH packets: paramiko's cost is per packet
BLOCK = 1024 * 1024
log = logging.getLogger("dealersync.sftp")
READ_REQUEST = 128 * 1024       # SFTP read size (OpenSSH serves up to ~256 KB; paramiko asks 32 KB)


@dataclass(frozen=True)
class SftpSettings:
    host: str
    user: str
    known_hosts: Path
    port: int = 22
    key_file: Path | None = None
    password: str | None = None       # taken from a SecretStr by the caller, never logged
    remote_root: str = "/"
    connect_timeout: float = 15.0
    auth_timeout: float = 15.0
    read_timeout: float = 60.0
    keepalive: int = 30

    def __repr__(self) -> str:  # never show the password
        return f"SftpSettings({self.user}@{self.host}:{self.port}, root={self.remote_root!r})"

    @classmethod
    def from_settings(cls, s) -> "SftpSettings":
        if not (s.sftp_host and s.sftp_user and s.sftp_known_hosts):
            raise ConfigurationError("SFTP needs DEALERSYNC_SFTP_HOST, _USER and _KNOWN_HOSTS")
        return cls(host=s.sftp_host, port=s.sftp_port, user=s.sftp_user, known_hosts=Path(s.sftp_known_hosts),
                   key_file=Path(s.sftp_key_file) if s.sftp_key_file else None,
                   password=s.sftp_password.get_secret_value() if s.sftp_password else None,
                   remote_root=s.sftp_remote_root, connect_timeout=s.sftp_connect_timeout,
                   auth_timeout=s.sftp_connect_timeout, read_timeout=s.sftp_read_timeout)


@dataclass(frozen=True)
class RemoteFile:
    name: str
    path: str
    size: int
    mtime: int


class _SFTPClient(paramiko.SFTPClient):
    """paramiko's SFTP client, keeping the extensions the server names in its VERSION packet
    (draft-ietf-secsh-filexfer-02 section 4: the version, then name/data string pairs), which
    paramiko reads and drops. ``extensions`` is None when the packet could not be read that way."""

    extensions: dict[str, bytes] | None = None

    def _send_version(self):
        m = paramiko.Message()
        m.add_int(3)
        self._send_packet(paramiko.sftp.CMD_INIT, m)
        t, data = self._read_packet()
        if t != paramiko.sftp.CMD_VERSION:
            raise paramiko.SFTPError("Incompatible sftp protocol")
        msg = paramiko.Message(data)
        version = msg.get_int()
        try:
            ext = {}
            while msg.get_remainder():
                name = msg.get_string().decode("utf-8", "replace")
                ext[name] = msg.get_string()
            self.extensions = ext
        except Exception:  # noqa: BLE001 - a server's odd packet: the extensions stay unknown
            self.extensions = None
        return version


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class _PinnedPolicy(paramiko.RejectPolicy):
    """Reject unknown hosts, remembering the key offered so the message can name it."""

    def __init__(self):
        self.offered: paramiko.PKey | None = None

    def missing_host_key(self, client, hostname, key):
        self.offered = key
        raise paramiko.SSHException(f"host {hostname} is not in known_hosts (offered {fingerprint(key)})")


def safe_name(name: str) -> str:
    """A remote file name we are willing to act on: no separators, no '..', not absolute, no control
    character (a newline would forge log lines and make a local file with a newline in its name).
    ``BadSourceData`` (reason UNSAFE_REMOTE_NAME) names it escaped."""
    return check_name(name, "remote name", reason="UNSAFE_REMOTE_NAME")


class SftpConnector:
    """Open a session per operation (``with connector.session() as s``); reconnects are cheap
    next to the risk of a stale connection in a job that runs for years."""

    def __init__(self, settings: SftpSettings, client_factory: Callable[[], paramiko.SSHClient] = paramiko.SSHClient):
        self.settings = settings
        self._factory = client_factory

    # ------------------------------------------------------------------ connection
    def session(self) -> "SftpSession":
        s = self.settings
        if not Path(s.known_hosts).is_file():
            raise ConfigurationError(f"known_hosts file {s.known_hosts} does not exist")
        client = self._factory()
        client.load_host_keys(str(s.known_hosts))
        policy = _PinnedPolicy()
        client.set_missing_host_key_policy(policy)
        try:
            client.connect(s.host, port=s.port, username=s.user, password=s.password,
                           key_filename=str(s.key_file) if s.key_file else None, timeout=s.connect_timeout,
                           auth_timeout=s.auth_timeout, banner_timeout=s.connect_timeout,
                           allow_agent=False, look_for_keys=False)
        except paramiko.BadHostKeyException as e:
            client.close()
            raise ConfigurationError(f"host key of {s.host}:{s.port} does not match known_hosts: offered "
                                     f"{fingerprint(e.key)}, expected {fingerprint(e.expected_key)}") from None
        except paramiko.AuthenticationException:
            client.close()
            raise ConfigurationError(f"authentication failed for {s.user}@{s.host}:{s.port}") from None
        except paramiko.SSHException as e:
            client.close()
            if policy.offered is not None:
                raise ConfigurationError(f"host {s.host}:{s.port} is not in {s.known_hosts}; refusing it "
                                         f"(offered {fingerprint(policy.offered)})") from None
            raise TransientError(f"SSH to {s.host}:{s.port} failed: {e}") from None
        except (OSError, EOFError) as e:  # refused, reset, timed out, unreachable
            client.close()
            raise TransientError(f"cannot reach {s.host}:{s.port}: {e}") from None
        transport = client.get_transport()
        transport.set_keepalive(s.keepalive)
        sftp = _SFTPClient.from_transport(transport, window_size=WINDOW_SIZE, max_packet_size=MAX_PACKET)
        sftp.get_channel().settimeout(s.read_timeout)
        return SftpSession(client, sftp, s)

    def check(self) -> dict:
        """Preflight: connect, authenticate, list the remote root."""
        t0 = time.monotonic()
        with self.session() as ses:
            entries = ses.sftp.listdir(self.settings.remote_root)
            key = ses.client.get_transport().get_remote_server_key()
        return {"host": self.settings.host, "port": self.settings.port, "user": self.settings.user,
                "host_key": fingerprint(key), "remote_root": self.settings.remote_root,
                "entries": len(entries), "seconds": round(time.monotonic() - t0, 3)}


class SftpSession:
    def __init__(self, client: paramiko.SSHClient, sftp: paramiko.SFTPClient, settings: SftpSettings):
        self.client, self.sftp, self.settings = client, sftp, settings

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sftp.close()
        finally:
            self.client.close()

    def remote(self, *parts: str) -> str:
        return posixpath.join(self.settings.remote_root, *parts)

    def list(self, folder: str, patterns: list[str]) -> list[RemoteFile]:
        """Regular files in ``folder`` matching any glob, sorted by name."""
        out = []
        try:
            entries = self.sftp.listdir_attr(folder)
        except FileNotFoundError:
            return []
        except PermissionError:
            raise ConfigurationError(f"permission denied listing {folder} on {self.settings.host}") from None
        for a in entries:
            if not statmod.S_ISREG(a.st_mode or 0):
                continue
            if any(fnmatch.fnmatchcase(a.filename, p) for p in patterns):
                try:
                    safe_name(a.filename)
                except BadSourceData as e:
                    log.warning("%s:%s: %s; left alone", self.settings.host, folder, e)
                    continue
                out.append(RemoteFile(a.filename, posixpath.join(folder, a.filename), a.st_size or 0, int(a.st_mtime or 0)))
        return sorted(out, key=lambda f: f.name)

    def exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
            return True
        except FileNotFoundError:
            return False

    def download(self, remote: RemoteFile, local_dir: Path) -> tuple[Path, str]:
        """Download to ``local_dir/<name>`` atomically; returns (path, sha256). On any failure the
        temporary file is removed and nothing appears under the final name."""
        local_dir.mkdir(parents=True, exist_ok=True)
        final = local_dir / safe_name(remote.name)
        tmp = local_dir / f".{remote.name}.part"
        h = hashlib.sha256()
        try:
            with self.sftp.open(remote.path, "rb") as src, open(tmp, "wb") as dst:
                src.MAX_REQUEST_SIZE = READ_REQUEST
                src.prefetch(remote.size)
                while True:
                    block = src.read(BLOCK)
                    if not block:
                        break
                    h.update(block)
                    dst.write(block)
                dst.flush()
                os.fsync(dst.fileno())
            got = tmp.stat().st_size
            if got != remote.size:
                raise TransientError(f"{remote.path}: got {got} bytes, listed {remote.size}; will retry")
            os.replace(tmp, final)
        except PermissionError:
            tmp.unlink(missing_ok=True)
            raise ConfigurationError(f"permission denied reading {remote.path} on {self.settings.host}") from None
        except (socket.timeout, EOFError, paramiko.SSHException, ConnectionError) as e:
            tmp.unlink(missing_ok=True)
            raise TransientError(f"{remote.path}: transfer interrupted ({type(e).__name__}: {e})") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final, h.hexdigest()

    @property
    def has_posix_rename(self) -> bool | None:
        """Whether the server advertised ``posix-rename@openssh.com`` (None: it could not be told)."""
        ext = getattr(self.sftp, "extensions", None)
        return None if ext is None else "posix-rename@openssh.com" in ext

    def upload(self, local: Path, remote_dir: str, name: str | None = None) -> str:
        """Upload ``local`` to ``remote_dir/name`` (default: its own name); returns the remote path.

        The bytes go to ``.<name>.part`` (size checked), then into place: the partner never sees a
        partial file, and a previous report of the same name is removed only once the new one is in
        place (see the module docstring). Whatever fails, no ``.part`` is left behind and the previous
        report is still there. Raises ``ConfigurationError`` (permission denied) or ``TransientError``
        (connection lost, rename refused)."""
        name = safe_name(name or local.name)
        tmp = posixpath.join(remote_dir, f".{name}.part")
        final = posixpath.join(remote_dir, name)
        placed = False
        try:
            self._makedirs(remote_dir)
            self.sftp.put(str(local), tmp, confirm=True)
            self._into_place(tmp, final)
            placed = True
        except PermissionError:
            raise ConfigurationError(f"permission denied writing {remote_dir} on {self.settings.host}") from None
        except (socket.timeout, EOFError, paramiko.SSHException, ConnectionError) as e:
            raise TransientError(f"upload of {local.name} interrupted ({type(e).__name__}: {e})") from None
        except OSError as e:
            raise TransientError(f"upload of {local.name} to {final} on {self.settings.host} failed "
                                 f"({e}); the previous file, if any, is unchanged") from None
        finally:
            if not placed:   # (a lost connection can leave it: the next upload overwrites it)
                self._remove_quietly(tmp)
        return final

    def _into_place(self, tmp: str, final: str) -> None:
        if self.has_posix_rename:
            self.sftp.posix_rename(tmp, final)     # atomic, overwrites
            return
        if self.has_posix_rename is None:              # not advertised in a form we read: try it once
            try:
                self.sftp.posix_rename(tmp, final)
                return
            except OSError as e:
                if e.errno is not None:            # ENOENT, EACCES: not a matter of the extension
                    raise
        if not self.exists(final):
            self.sftp.rename(tmp, final)
            return
        folder, name = posixpath.split(final)
        aside = posixpath.join(folder, f".{name}.old-{secrets.token_hex(4)}")
        self.sftp.rename(final, aside)
        try:
            self.sftp.rename(tmp, final)
        except BaseException:
            try:
                self.sftp.rename(aside, final)
            except Exception as e:  # noqa: BLE001 - say where the old file is, then raise the first error
                log.error("%s: could not put the previous %s back from %s: %s", self.settings.host, final, aside, e)
            raise
        try:
            self.sftp.remove(aside)
        except OSError as e:
            log.warning("%s: the new %s is in place; the previous one stays as %s (%s)",
                        self.settings.host, final, aside, e)

    def _remove_quietly(self, path: str) -> None:
        try:
            self.sftp.remove(path)
        except FileNotFoundError:
            pass
        except Exception as e:  # noqa: BLE001 - the connection may be gone; the error raised says why
            log.warning("%s: could not remove %s: %s", self.settings.host, path, e)

    def _makedirs(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        cur = "/" if path.startswith("/") else ""
        for p in parts:
            cur = posixpath.join(cur, p) if cur else p
            try:
                self.sftp.stat(cur)
            except FileNotFoundError:
                self.sftp.mkdir(cur)
