"""A plain SFTP v3 server on 127.0.0.1 for the tests: paramiko's ``SFTPServer`` over a folder, with no
``posix-rename@openssh.com`` (paramiko advertises only ``check-file``, and this interface refuses the
POSIX rename as unsupported), and a RENAME that never overwrites (draft-ietf-secsh-filexfer-02
section 6.5: "it is an error if there already exists a file with the name specified by newpath") —
as many servers outside OpenSSH behave.

    server = start_sftp_v3(root)          # root: the folder that is "/" remotely
    ... SftpSettings(host="127.0.0.1", port=server.port, user=server.user, password=server.password,
                     known_hosts=server.known_hosts, remote_root="/") ...
    server.fail_renames_to.add("report.xlsx")   # the next RENAME to that name fails
    server.close()

``renames`` records every rename asked for (old, new) in order, so a test can check the sequence.
"""
from __future__ import annotations

import os
import posixpath
import socket
import tempfile
import threading
from pathlib import Path

import paramiko
from paramiko.sftp import SFTP_FAILURE, SFTP_OK, SFTP_OP_UNSUPPORTED


class _Handle(paramiko.SFTPHandle):
    def stat(self):
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)

    def chattr(self, attr):
        return SFTP_OK


class RootedSFTP(paramiko.SFTPServerInterface):
    """The SFTP operations on ``root`` (remote paths are relative to it; ``..`` cannot leave it)."""

    def __init__(self, server, *args, state: "SftpV3Server", **kwargs):
        super().__init__(server, *args, **kwargs)
        self.state = state

    def _real(self, path: str) -> str:
        return str(self.state.root) + self.canonicalize(path)

    def canonicalize(self, path):
        return posixpath.normpath("/" + (path or "/")).replace("//", "/")

    def list_folder(self, path):
        real = self._real(path)
        try:
            out = []
            for name in os.listdir(real):
                a = paramiko.SFTPAttributes.from_stat(os.stat(os.path.join(real, name)))
                a.filename = name
                out.append(a)
            return out
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)

    def stat(self, path):
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(self._real(path)))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)

    lstat = stat

    def open(self, path, flags, attr):
        real = self._real(path)
        try:
            fd = os.open(real, flags, 0o644)
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)
        if flags & os.O_WRONLY:
            mode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            mode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            mode = "rb"
        h = _Handle(flags)
        h.filename = real
        h.readfile = h.writefile = os.fdopen(fd, mode)
        return h

    def remove(self, path):
        try:
            os.remove(self._real(path))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)
        return SFTP_OK

    def rename(self, oldpath, newpath):
        """SFTP v3 RENAME: an error when ``newpath`` exists; fails once for a name in ``fail_renames_to``."""
        self.state.renames.append((self.canonicalize(oldpath), self.canonicalize(newpath)))
        if os.path.basename(newpath) in self.state.fail_renames_to:
            self.state.fail_renames_to.discard(os.path.basename(newpath))
            return SFTP_FAILURE
        old, new = self._real(oldpath), self._real(newpath)
        try:
            os.link(old, new)   # as OpenSSH's server does for RENAME: fails when ``new`` exists
            os.unlink(old)
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)
        return SFTP_OK

    def posix_rename(self, oldpath, newpath):
        return SFTP_OP_UNSUPPORTED

    def mkdir(self, path, attr):
        try:
            os.mkdir(self._real(path))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)
        return SFTP_OK

    def rmdir(self, path):
        try:
            os.rmdir(self._real(path))
        except OSError as e:
            return paramiko.SFTPServer.convert_errno(e.errno)
        return SFTP_OK

    def chattr(self, path, attr):
        return SFTP_OK


class _Auth(paramiko.ServerInterface):
    def __init__(self, user: str, password: str):
        self.user, self.password = user, password

    def get_allowed_auths(self, username):
        return "password"

    def check_auth_password(self, username, password):
        ok = username == self.user and password == self.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED if kind == "session" else paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class SftpV3Server:
    """Serves ``root`` on 127.0.0.1:``port`` until ``close()``; one thread per connection."""

    user = "v3user"
    password = "v3-test-pw"

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.renames: list[tuple[str, str]] = []
        self.fail_renames_to: set[str] = set()
        self.host_key = paramiko.ECDSAKey.generate()
        self.base = Path(tempfile.mkdtemp(prefix="dealersync-sftpv3-"))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.known_hosts = self.base / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {self.host_key.get_name()} "
                                    f"{self.host_key.get_base64()}\n")
        self._transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._accept, name="sftp-v3", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(self.host_key)
            t.set_subsystem_handler("sftp", paramiko.SFTPServer, RootedSFTP, state=self)
            self._transports.append(t)
            try:
                t.start_server(server=_Auth(self.user, self.password))
            except (paramiko.SSHException, EOFError, OSError):
                t.close()

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)   # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.sock.close()
        for t in self._transports:
            t.close()
        self._thread.join(5)
        for p in sorted(self.base.iterdir()):
            p.unlink()
        self.base.rmdir()


def start_sftp_v3(root: Path) -> SftpV3Server:
    return SftpV3Server(root)
