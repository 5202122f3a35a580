"""Fresh Tapis access tokens from tapis-agent, for Python scripts and Jupyter.

tapis-agent keeps the refresh tokens of your Tapis tenants in memory and
refreshes access tokens ahead of expiry. This package asks it for the
current token over its Unix socket, the way the tapis-token helper does::

    import tapis_agent
    tapis_agent.login("designsafe")                # once per agent: asks for the password
    t = tapis_agent.tapipy_client("designsafe")    # a tapipy client that never sends an expired token
    headers = tapis_agent.headers("designsafe")    # {"X-Tapis-Token": "..."}
    token = tapis_agent.token("designsafe", min_valid=2 * 3600)
    tapis_agent.status()                           # a table in Jupyter

    import requests
    requests.get(url, auth=tapis_agent.TapisAgentAuth("designsafe"))

The socket is found as tapis-token finds it: $TAPIS_AGENT_SOCK, else
$XDG_RUNTIME_DIR/tapis-agent/agent.sock, else on macOS
~/Library/Application Support/tapis-agent/agent.sock, else
/tmp/tapis-agent-$UID/agent.sock.
Its directory must belong to you and be closed to group and others; any
other directory is refused, since whoever can write to it could stand in
for the agent.

Failures raise TapisAgentError, or one of its subclasses, carrying the
agent's error code (e.g. "login_required") and a hint naming the Python
call to make next. Branch on the class or on .code, never on the message.

Install the wheel that make python builds into the kernel's environment
(pip install dist/tapis_agent-*.whl). Standard library only; Python 3.8 or
newer; tapipy is imported only by the calls that build tapipy clients.
Every call opens its own connection, so the package is safe to use from
several threads.
"""

import atexit
import datetime
import http.client
import json
import os
import socket
import stat
import struct
import sys
import threading
import urllib.parse
import weakref
from typing import Any, Dict, Optional, Union

from . import _frame, _lease
from ._status import Status, _parse_time
from ._token import Token, human
from ._version import __version__

__all__ = [
    "AgentNotRunning",
    "BadCredentials",
    "Client",
    "KeptConnection",
    "LeaseFileError",
    "LoginRequired",
    "MinValidUnsatisfiable",
    "SocketDirUnsafe",
    "SocketNotYours",
    "Status",
    "TapisAgentAuth",
    "TapisAgentError",
    "Token",
    "UnknownTenant",
    "UpstreamUnavailable",
    "connect_tapis",
    "default_socket_path",
    "headers",
    "login",
    "logout",
    "socket_path",
    "status",
    "tapipy_client",
    "token",
    "token_info",
]

#: Header that carries a Tapis access token.
HEADER = "X-Tapis-Token"

#: Seconds a token call may take. The agent bounds its own upstream work a
#: little below this, so a slow refresh ends with the agent's answer.
TOKEN_TIMEOUT = 60.0

#: Seconds any other call may take.
DEFAULT_TIMEOUT = 30.0

#: Seconds a login may take; a device-code login's wait is one call.
LOGIN_TIMEOUT = 300.0

# Answers larger than this are refused: a status of thousands of tenants
# stays far below it.
_MAX_ANSWER = 4 << 20

# Error codes of the socket API (ipc/api.go). CODE_AGENT_UNREACHABLE and
# CODE_BAD_ANSWER are produced here, never by the agent.
CODE_LOGIN_REQUIRED = "login_required"
CODE_UNKNOWN_TENANT = "unknown_tenant"
CODE_UPSTREAM_UNAVAILABLE = "upstream_unavailable"
CODE_BAD_CREDENTIALS = "bad_credentials"
CODE_UNSATISFIABLE = "min_valid_unsatisfiable"
CODE_DEVICE_EXPIRED = "device_code_expired"
CODE_BAD_REQUEST = "bad_request"
CODE_CLIENT_NEEDED = "client_needed"
CODE_AGENT_UNREACHABLE = "agent_unreachable"
CODE_BAD_ANSWER = "bad_answer"
CODE_TIMEOUT = "timeout"

_START_HINT = (
    'tapis_agent.login("TENANT") starts an agent and logs in; or start one in a terminal: '
    'eval "$(tapis-agent start)", or set os.environ["TAPIS_AGENT_SOCK"] to its socket'
)


class TapisAgentError(Exception):
    """An error answered by tapis-agent, or met while asking it.

    code is the agent's error code ("login_required", "unknown_tenant",
    "upstream_unavailable", "bad_request", ...) or one of the local codes
    "agent_unreachable", "bad_answer" and "timeout". message says what went
    wrong, hint (possibly empty) what to do next, status is the HTTP status
    of the agent's answer (0 when no answer was used).
    """

    def __init__(self, code: str, message: str, hint: str = "", status: int = 0) -> None:
        super().__init__(code, message, hint)
        self.code = code
        self.message = message
        self.hint = hint or ""
        self.status = status

    def __str__(self):
        if self.hint:
            return "%s (hint: %s)" % (self.message, self.hint)
        return self.message


class AgentNotRunning(TapisAgentError):
    """No agent answers: the socket is missing, refuses connections, or the
    connection broke before an answer arrived."""


class SocketDirUnsafe(AgentNotRunning):
    """The socket's directory is not a directory of yours closed to group
    and others, so the socket in it cannot be trusted."""


class SocketNotYours(SocketDirUnsafe):
    """The socket, a directory on its way, or the process serving it is
    not yours or root's: another user could have put it there to collect
    what is sent to "the agent". Nothing was sent."""


#: The way out of a socket path that another user controls.
_PRIVATE_HINT = (
    'use a socket of your own: set TAPIS_AGENT_SOCK to a path in a directory only you can write, '
    'e.g. export TAPIS_AGENT_SOCK="$HOME/.tapis-agent/$(hostname)/agent.sock" (or set XDG_RUNTIME_DIR), '
    'then start the agent: eval "$(tapis-agent start)"'
)


class LeaseFileError(AgentNotRunning):
    """No agent answers, and the lease file of the batch job this runs in
    cannot serve: it is missing, not yours, or its token has lapsed or
    lives less than asked (tapis-token lease keeps it on the login node)."""


class LoginRequired(TapisAgentError):
    """The tenant has no usable session: tapis_agent.login(tenant) logs in
    (in a terminal: tapis-token login TENANT)."""


class UnknownTenant(TapisAgentError):
    """The tenant is neither configured in the agent nor logged in: a
    misspelt name, most often. tapis_agent.status() lists the tenants."""


class UpstreamUnavailable(TapisAgentError):
    """Tapis failed and the agent holds no token valid long enough."""


class BadCredentials(TapisAgentError):
    """Tapis refused the username or password of a login."""


class MinValidUnsatisfiable(TapisAgentError):
    """The tenant issues tokens that live less than the min_valid asked.
    lifetime is the tenant's token lifetime in seconds, or None when it
    could not be learnt."""

    lifetime = None  # type: Optional[int]


#: What min_valid takes: seconds, a timedelta, or None for the default.
MinValid = Union[int, float, datetime.timedelta, None]

_CLASSES = {
    CODE_LOGIN_REQUIRED: LoginRequired,
    CODE_UNKNOWN_TENANT: UnknownTenant,
    CODE_UPSTREAM_UNAVAILABLE: UpstreamUnavailable,
    CODE_BAD_CREDENTIALS: BadCredentials,
    CODE_UNSATISFIABLE: MinValidUnsatisfiable,
}


def default_socket_path() -> str:
    """Return the well-known socket path, ignoring $TAPIS_AGENT_SOCK:
    $XDG_RUNTIME_DIR/tapis-agent/agent.sock, else on macOS
    ~/Library/Application Support/tapis-agent/agent.sock, else
    /tmp/tapis-agent-$UID/agent.sock. Except on macOS it is never under
    $HOME, which on HPC systems is an NFS share seen by every login node."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime:
        return os.path.join(runtime, "tapis-agent", "agent.sock")
    home = os.environ.get("HOME", "")
    if sys.platform == "darwin" and os.path.isabs(home):
        return os.path.join(home, "Library", "Application Support", "tapis-agent", "agent.sock")
    return "/tmp/tapis-agent-%d/agent.sock" % os.getuid()


def socket_path() -> str:
    """Return the agent's socket path: $TAPIS_AGENT_SOCK if set, else
    default_socket_path(). It is read at every call, so setting the
    variable in a running notebook takes effect at once."""
    return os.environ.get("TAPIS_AGENT_SOCK", "") or default_socket_path()


def check_dir(path: str) -> None:
    """Raise SocketDirUnsafe unless path is a directory (not a symlink)
    owned by the current user with no group or other permission bits, as
    tmux requires of its socket directory, and as the agent and tapis-token
    check it. Raise AgentNotRunning when it does not exist."""
    _check_dir(path, os.getuid())


def _check_dir(path, uid):
    """check_dir for the user uid."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE,
            "no tapis-agent: socket directory %s does not exist" % path,
            _START_HINT,
        ) from None
    except OSError as e:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE, "checking socket directory %s: %s" % (path, e), _START_HINT
        ) from None
    perm = stat.S_IMODE(st.st_mode)
    if not stat.S_ISDIR(st.st_mode):
        raise SocketDirUnsafe(
            CODE_AGENT_UNREACHABLE,
            "socket directory %s is not a directory (mode %s)" % (path, stat.filemode(st.st_mode)),
            "remove it or set TAPIS_AGENT_SOCK",
        )
    if st.st_uid != uid:
        # Another user made it first (in /tmp, say): not yours to remove.
        raise SocketNotYours(
            CODE_AGENT_UNREACHABLE,
            "socket directory %s is owned by uid %d (mode %04o), not by you (uid %d)"
            % (path, st.st_uid, perm, uid),
            _PRIVATE_HINT,
        )
    if perm & 0o077:
        raise SocketDirUnsafe(
            CODE_AGENT_UNREACHABLE,
            "socket directory %s has mode %04o, open to other users" % (path, perm),
            "run: chmod 0700 %s" % path,
        )
    _check_ancestors(os.path.abspath(path), uid)


def _check_ancestors(path, uid):
    """Raise SocketNotYours unless every directory above path is owned by
    you or root and, unless sticky (as /tmp is), writable by no one else,
    as ssh and tmux require; a symlink on the way must be yours or root's
    and lead to such a directory. Anyone who could write one of them could
    put another socket in the agent's place."""
    # Every call of a token client walks this: one lstat per directory,
    # and little else.
    d = os.path.dirname(path)
    while True:
        try:
            st = os.lstat(d)
            if st.st_mode & 0o170000 == stat.S_IFLNK:
                _check_above(d, st, uid)
                st = os.stat(d)
        except OSError as e:
            raise AgentNotRunning(
                CODE_AGENT_UNREACHABLE, "checking the directories above the socket: %s" % e, _START_HINT
            ) from None
        _check_above(d, st, uid)
        parent = os.path.dirname(d)
        if parent == d:
            return
        d = parent


def _check_above(d, st, uid):
    """Raise SocketNotYours unless st, of d above the socket, is owned by
    uid or root and, if a directory others may write, sticky."""
    if st.st_uid != uid and st.st_uid != 0:
        raise SocketNotYours(
            CODE_AGENT_UNREACHABLE,
            "directory %s above the socket is owned by uid %d, neither you (uid %d) nor root" % (d, st.st_uid, uid),
            _PRIVATE_HINT,
        )
    mode = st.st_mode
    if mode & 0o022 and not mode & stat.S_ISVTX and stat.S_ISDIR(mode):
        raise SocketNotYours(
            CODE_AGENT_UNREACHABLE,
            "directory %s above the socket has mode %04o: others may write it, and it is not sticky"
            % (d, stat.S_IMODE(mode)),
            _PRIVATE_HINT,
        )


def _dial(path, timeout, uid, first):
    """Return a stream socket connected to the agent at path, with timeout
    set, having sent first on it. Both exchanges, HTTP and the token frame,
    connect here. A symlink at path, a socket of another user's and a
    socket another user's process serves are refused (SocketNotYours)
    before anything is sent."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    held = -1
    try:
        s.settimeout(timeout)
        held = _connect_nofollow(s, path, uid)
        _check_peer(s, path, uid)
        if first:
            _send_first(s, first)
    except BaseException:
        s.close()
        raise
    finally:
        if held >= 0:
            os.close(held)
    return s


def _send_first(s, data):
    """Send data on s, just connected: at once, without the wait for
    room that a socket with a timeout makes first. The agent reads a
    request that is there when it accepts the connection without
    sleeping again, and a token call costs one wake-up less."""
    try:
        n = os.write(s.fileno(), data)
    except BlockingIOError:
        n = 0
    if n < len(data):
        s.sendall(data[n:])


def _open(path, timeout, first=b""):
    """Check the socket's directory, connect to the agent at path and send
    first (see check_dir, _dial), raising the client's errors: both
    exchanges, HTTP and the token frame, start here."""
    uid = os.getuid()
    _check_dir(os.path.dirname(path) or ".", uid)
    try:
        return _dial(path, timeout, uid, first)
    except (FileNotFoundError, ConnectionRefusedError) as e:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE, "no tapis-agent answers at %s: %s" % (path, e.strerror or e), _START_HINT
        ) from None
    except socket.timeout:
        raise TapisAgentError(
            CODE_TIMEOUT, "connecting to tapis-agent at %s timed out after %gs" % (path, timeout)
        ) from None
    except (BrokenPipeError, ConnectionResetError) as e:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE, "tapis-agent at %s closed the connection: %s" % (path, e.strerror or e), _START_HINT
        ) from None
    except OSError as e:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE, "connecting to tapis-agent at %s: %s" % (path, e), _START_HINT
        ) from None


def _check_socket(path, st, uid):
    """Raise unless st, of path, is a socket of uid's, not a symlink."""
    if stat.S_ISLNK(st.st_mode):
        raise SocketNotYours(
            CODE_AGENT_UNREACHABLE, "refusing %s: it is a symlink, not the agent's socket; nothing was sent" % path,
            _PRIVATE_HINT,
        )
    if not stat.S_ISSOCK(st.st_mode):
        raise ConnectionRefusedError(111, "%s is not a socket" % path)
    if st.st_uid != uid:
        raise SocketNotYours(
            CODE_AGENT_UNREACHABLE,
            "refusing the socket %s: it is owned by uid %d, not by you; nothing was sent" % (path, st.st_uid),
            _PRIVATE_HINT,
        )


def _connect_nofollow(s, path, uid):
    """Connect s to the socket at path without following a symlink there:
    on Linux through an O_PATH file of the socket itself, so that what was
    checked is what is connected; elsewhere to path, checked just before.
    Return that file's descriptor, for the caller to close, or -1."""
    o_path = getattr(os, "O_PATH", 0)
    if not o_path:
        _check_socket(path, os.lstat(path), uid)
        s.connect(path)
        return -1
    fd = os.open(path, o_path | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _check_socket(path, os.fstat(fd), uid)
        try:
            s.connect("/proc/self/fd/%d" % fd)
        except FileNotFoundError:
            s.connect(path)  # no /proc to connect through
    except BaseException:
        os.close(fd)
        raise
    return fd


# struct ucred (pid, uid, gid) of SO_PEERCRED, where the system has it.
_SO_PEERCRED = getattr(socket, "SO_PEERCRED", None)
_UCRED = struct.Struct("3i")


def _peer_uid(s):
    """Return the uid of the process at the other end of s, as the kernel
    recorded it when the connection was made."""
    if _SO_PEERCRED is not None:
        _pid, uid, _gid = _UCRED.unpack(s.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, _UCRED.size))
        return uid
    if sys.platform == "darwin" or sys.platform.startswith("freebsd"):
        # LOCAL_PEERCRED (1) at level SOL_LOCAL (0): struct xucred, whose
        # cr_uid follows cr_version.
        raw = s.getsockopt(0, 1, 76)
        _version, uid = struct.unpack_from("Ii", raw)
        return uid
    raise OSError("peer credentials are not supported on this system")


def _check_peer(s, path, uid):
    """Raise SocketNotYours unless the process serving s runs as uid."""
    try:
        peer = _peer_uid(s)
    except OSError as e:
        raise SocketNotYours(
            CODE_AGENT_UNREACHABLE,
            "refusing the socket %s: cannot tell who serves it (%s); nothing was sent" % (path, e),
            _PRIVATE_HINT,
        ) from None
    if peer != uid:
        raise SocketNotYours(
            CODE_AGENT_UNREACHABLE,
            "refusing the socket %s: it is served by uid %d, not by you (uid %d), so it is not your agent; nothing was sent"
            % (path, peer, uid),
            _PRIVATE_HINT,
        )


def _read_answer(conn, path, timeout):
    """Read one answer frame from conn, the agent's at path; b"" when the
    agent closed the connection first."""
    answer = b""
    try:
        while not answer.endswith(b"\n") and len(answer) <= _frame.MAX_ANSWER:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    except socket.timeout:
        raise TapisAgentError(CODE_TIMEOUT, "tapis-agent at %s did not answer within %gs" % (path, timeout)) from None
    except OSError as e:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE, "tapis-agent at %s closed the connection: %s" % (path, e), _START_HINT
        ) from None
    return answer


class KeptConnection:
    """A connection to the agent kept open for token after token, for a
    caller that asks before every call of its own, as an agent-backed
    tapipy client does: the checks of the socket's directories, of the
    socket and of the process serving it, made on connecting, and the
    connection itself are paid once instead of at every call. It connects
    again, with the same checks, when the agent has closed it (idle for a
    minute, restarted), when the socket path changes, and in a child
    process after fork. Safe to share between threads: one asks at a
    time. Pass it to Client.token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock = None  # type: Optional[socket.socket]
        self._pid = 0
        self._path = ""
        _KEPT.add(self)

    def close(self) -> None:
        """Close the connection, if open; the next call connects again."""
        with self._lock:
            self._drop()

    def _drop(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _forked(self):
        """In a child after fork: forget the parent's connection, whose
        answers are the parent's, and its lock, which another thread may
        have held."""
        self._lock = threading.Lock()
        if self._sock is not None:
            self._sock.close()  # the child's copy only
            self._sock = None

    def _ask(self, path, req, timeout):
        """Send req on the kept connection to path and return the answer
        frame; b"" when a new connection was closed without one."""
        with self._lock:
            while True:
                fresh = self._sock is None or self._path != path or self._pid != os.getpid()
                if fresh:
                    self._drop()
                    self._sock = _open(path, timeout, req)
                    self._path, self._pid = path, os.getpid()
                else:
                    if self._sock.gettimeout() != timeout:
                        self._sock.settimeout(timeout)
                    try:
                        _send_first(self._sock, req)
                    except OSError:
                        self._drop()  # closed by the agent: connect again
                        continue
                try:
                    answer = _read_answer(self._sock, path, timeout)
                except AgentNotRunning:
                    self._drop()
                    if fresh:
                        raise
                    continue  # reset by the agent: connect again
                except BaseException:
                    self._drop()
                    raise
                if answer.endswith(b"\n"):
                    return answer
                self._drop()
                if fresh:
                    return answer
                # The agent closed it while idle, or went away: a token
                # request may be asked again, on a new connection.


# Every KeptConnection, for a child process to forget them after fork.
_KEPT = weakref.WeakSet()  # type: weakref.WeakSet[KeptConnection]
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [k._forked() for k in list(_KEPT)])

# The connection that agent-backed tapipy clients and TapisAgentAuth share:
# one per process, however many of them a notebook makes.
_SHARED_KEPT = KeptConnection()
atexit.register(_SHARED_KEPT.close)


class Client:
    """Client of one tapis-agent socket.

    path is the socket path; None means socket_path() at each call. timeout
    (seconds) bounds connecting and every wait for the agent's answer; None
    means TOKEN_TIMEOUT for tokens and DEFAULT_TIMEOUT otherwise. A
    Client holds no connection and no token: it is safe to share between
    threads, and every call asks the agent afresh.
    """

    def __init__(self, path: Optional[str] = None, timeout: Optional[float] = None) -> None:
        self.path = path
        self.timeout = timeout

    def token_info(self, tenant: Optional[str] = None, min_valid: MinValid = None) -> Dict[str, Any]:
        """Return the agent's answer for tenant's token as a dict: tenant,
        base_url, username, access_token, expires_at (RFC 3339 text) and
        expires_in (seconds left). The token stays valid for at least
        min_valid (seconds, or a datetime.timedelta); None lets the agent
        choose, as tapis-token does: 60 seconds, or half the tenant's
        token lifetime when that is shorter. The agent refreshes first if
        needed. tenant None means the agent's default tenant.

        Raises MinValidUnsatisfiable, with the tenant's token lifetime,
        when min_valid is longer than its tokens live."""
        secs = _seconds(min_valid)
        try:
            info = self._frame_token(tenant, secs)
        except AgentNotRunning as e:
            info = self._leased(e, tenant, secs)
        except TapisAgentError as e:
            raise self._explain(e, tenant, secs) from None
        info["expires_at"] = _frame.rfc3339(info.pop("expires_at_unix"))
        return info

    def token(self, tenant: Optional[str] = None, min_valid: MinValid = None, kept: Optional[KeptConnection] = None) -> Token:
        """Return tenant's access token, valid for at least min_valid
        seconds, as a Token: a str whose repr() names the tenant and the
        time left instead of the JWT. See token_info. With kept, a
        KeptConnection, it asks on that connection, kept open for the
        next call, instead of one of its own."""
        secs = _seconds(min_valid)
        try:
            info = self._frame_token(tenant, secs, kept=kept)
        except AgentNotRunning as e:
            info = self._leased(e, tenant, secs)
        except TapisAgentError as e:
            raise self._explain(e, tenant, secs) from None
        return _to_token(info)

    def headers(self, tenant: Optional[str] = None, min_valid: MinValid = None) -> Dict[str, str]:
        """Return {"X-Tapis-Token": token} for tenant, the token as a plain
        str."""
        return {HEADER: str(self.token(tenant, min_valid))}

    def status(self) -> Status:
        """Return the agent's status as a Status: a dict with version, pid,
        socket, config, and "tenants", one dict per tenant with its state
        and expiries, that shows itself as a table. It never holds a
        secret."""
        try:
            return Status(self._call("GET", "/v1/status", DEFAULT_TIMEOUT))
        except TapisAgentError as e:
            raise self._explain(e, None, None) from None

    def login_request(self, body: Dict[str, Any], timeout: Optional[float] = None) -> Dict[str, Any]:
        """Send one login request (the agent's LoginRequest: tenant,
        username, password, device, client_id, wait, cancel) and return
        its answer as a dict: "tenant", the tenant's status, and "device"
        while a device-code login waits for approval. tapis_agent.login
        is the interactive front end."""
        try:
            return self._call("POST", "/v1/login", timeout or LOGIN_TIMEOUT, body)
        except TapisAgentError as e:
            raise self._explain(e, body.get("tenant"), None) from None

    def logout(self, tenant: str) -> Dict[str, Any]:
        """Log out of tenant: the agent drops its session and revokes its
        tokens upstream. Return the tenant's status after."""
        try:
            return self._call("POST", "/v1/logout", DEFAULT_TIMEOUT, {"tenant": tenant})
        except TapisAgentError as e:
            raise self._explain(e, tenant, None) from None

    def _leased(self, e, tenant, secs):
        """Answer a token call that reached no agent (e) from the lease file
        of the batch job this runs in, as tapis-token does: the file that
        $TAPIS_TOKEN_FILE names, else the one of $SLURM_JOB_ID. Raise e,
        explained, when the process names none."""
        try:
            got = _lease.read(tenant, secs)
        except _lease.Problem as p:
            raise LeaseFileError(CODE_AGENT_UNREACHABLE, "no tapis-agent answers, and " + p.message, p.hint) from None
        if got is None:
            raise self._explain(e, tenant, secs) from None
        return got[1]

    def _frame_token(self, tenant, secs, timeout=None, kept=None):
        """Ask for a token with the token frame, on a connection of its
        own or on kept (a KeptConnection); return the answer as
        _frame.parse_answer does, or raise the agent's error (with its own
        hint: see _explain)."""
        path = self.path or socket_path()
        try:
            req = _frame.request(tenant, secs, kept is not None)
        except _frame.FrameError as e:
            raise TapisAgentError(CODE_BAD_REQUEST, str(e), "tapis_agent.status() lists the tenants") from None
        if timeout is None:
            timeout = self.timeout if self.timeout is not None else TOKEN_TIMEOUT
        if kept is not None:
            answer = kept._ask(path, req, timeout)
        else:
            conn = _open(path, timeout, req)
            try:
                answer = _read_answer(conn, path, timeout)
            finally:
                conn.close()
        if not answer:
            # The agent went away before answering (stopped, or restarted).
            raise AgentNotRunning(
                CODE_AGENT_UNREACHABLE, "tapis-agent at %s closed the connection without an answer" % path, _START_HINT
            )
        try:
            kind, val = _frame.parse_answer(answer)
        except _frame.FrameError as e:
            raise TapisAgentError(CODE_BAD_ANSWER, "the token answer of tapis-agent at %s: %s" % (path, e)) from None
        if kind == "error":
            code, message, hint = val
            raise _CLASSES.get(code, TapisAgentError)(code, message, hint)
        if not val["access_token"]:
            raise TapisAgentError(CODE_BAD_ANSWER, "the agent's token answer holds no access_token")
        return val

    def _explain(self, e, tenant, secs):
        """Return e with a hint in Python terms, as an UnknownTenant when
        the agent answers login_required for a tenant it neither has
        configured nor holds, and as a MinValidUnsatisfiable naming the
        tenant's token lifetime."""
        facts = None
        if e.code in (CODE_LOGIN_REQUIRED, CODE_UNKNOWN_TENANT, CODE_UPSTREAM_UNAVAILABLE, CODE_AGENT_UNREACHABLE):
            facts = self._facts()
        name = tenant or (facts or {}).get("default") or "TENANT"
        if e.code == CODE_LOGIN_REQUIRED and tenant and facts is not None and tenant not in facts["names"]:
            return UnknownTenant(
                CODE_UNKNOWN_TENANT,
                "tenant %s is neither configured in the agent nor logged in" % tenant,
                "tapis_agent.status() lists the agent's tenants; tapis_agent.login(%s) logs in to %s "
                "(at https://%s.tapis.io unless the agent's config names another base_url)" % (_q(tenant), tenant, tenant),
                e.status,
            )
        if e.code == CODE_UNSATISFIABLE and secs is not None:
            life = self._lifetime(tenant)
            if life is not None:
                ask = max(1, life * 9 // 10)
                out = MinValidUnsatisfiable(
                    e.code,
                    "%s issues tokens that live %s: none is valid for min_valid=%d seconds" % (name, human(life), secs),
                    "ask for less: tapis_agent.token(%s, min_valid=%d)" % (_q(name), ask),
                    e.status,
                )
                out.lifetime = life
                return out
        hint = {
            CODE_LOGIN_REQUIRED: "tapis_agent.login(%s)" % _q(name),
            CODE_BAD_CREDENTIALS: "check the username and password, then tapis_agent.login(%s) again" % _q(name),
            CODE_UNKNOWN_TENANT: "tapis_agent.status() lists the agent's tenants; tapis_agent.login(%s) logs in" % _q(name),
            CODE_UPSTREAM_UNAVAILABLE: "Tapis did not answer; try again in a minute; tapis_agent.status() shows the last error",
            CODE_DEVICE_EXPIRED: "tapis_agent.login(%s, device=True) starts a new one" % _q(name),
            CODE_UNSATISFIABLE: "ask for a shorter min_valid; tapis_agent.status() shows the token's expiry",
        }.get(e.code)
        if e.code == CODE_AGENT_UNREACHABLE and not isinstance(e, SocketDirUnsafe):
            if os.environ.get("TAPIS_AGENT_SOCK") and self.path is None:
                hint = (
                    'start the agent in a terminal: tapis-agent start; or del os.environ["TAPIS_AGENT_SOCK"] '
                    "and tapis_agent.login(%s) starts one at the default socket" % _q(name)
                )
            else:
                hint = "tapis_agent.login(%s) starts an agent and logs in" % _q(name)
        if hint:
            e.hint = hint
        return e

    def _facts(self):
        """Return {"names": the agent's tenants, "default": its default
        tenant or None}, or None when the status cannot be had."""
        try:
            st = self._call("GET", "/v1/status", DEFAULT_TIMEOUT)
        except TapisAgentError:
            return None
        tenants = [t for t in st.get("tenants") or [] if isinstance(t, dict)]
        default = next((t.get("tenant") for t in tenants if t.get("default")), None)
        return {"names": {t.get("tenant") for t in tenants}, "default": default}

    def _lifetime(self, tenant):
        """Return the whole seconds the tenant's access tokens live, from
        the agent's status (Tapis tokens carry no iat claim), or None."""
        try:
            st = self._call("GET", "/v1/status", DEFAULT_TIMEOUT)
        except TapisAgentError:
            return None
        for t in st.get("tenants") or []:
            if not isinstance(t, dict) or not (t.get("tenant") == tenant or tenant is None and t.get("default")):
                continue
            issued, expires = _parse_time(t.get("access_issued_at")), _parse_time(t.get("access_expires_at"))
            if issued is not None and expires is not None and expires > issued:
                return int((expires - issued).total_seconds())
        return None

    def _call(self, method, target, default_timeout, body=None):
        """Send one request on a fresh connection and return the decoded
        answer. body, if not None, is sent as JSON."""
        path = self.path or socket_path()
        timeout = self.timeout if self.timeout is not None else default_timeout
        # HTTP/1.1 over the Unix socket: http.client sends on the socket it
        # is given, and never connects anew for this one request.
        conn = http.client.HTTPConnection("localhost", timeout=timeout)
        try:
            conn.sock = _open(path, timeout)
            try:
                # One request per connection: saying so lets the agent
                # answer a token without handing the connection on.
                hdrs = {"Accept": "application/json", "Connection": "close"}
                data = None
                if body is not None:
                    data = json.dumps(body).encode()
                    hdrs["Content-Type"] = "application/json"
                conn.request(method, target, body=data, headers=hdrs)
                resp = conn.getresponse()
                answer = resp.read(_MAX_ANSWER + 1)
            except socket.timeout:
                raise TapisAgentError(
                    CODE_TIMEOUT, "tapis-agent at %s did not answer within %gs" % (path, timeout)
                ) from None
            except (ConnectionError, http.client.RemoteDisconnected) as e:
                # The agent went away mid-call (stopped, or restarted).
                raise AgentNotRunning(
                    CODE_AGENT_UNREACHABLE, "tapis-agent at %s closed the connection: %s" % (path, e), _START_HINT
                ) from None
            except (OSError, http.client.HTTPException) as e:
                raise TapisAgentError(
                    CODE_BAD_ANSWER, "reading the answer of tapis-agent at %s: %s" % (path, e)
                ) from None
        finally:
            conn.close()
        if len(answer) > _MAX_ANSWER:
            raise TapisAgentError(CODE_BAD_ANSWER, "the answer of tapis-agent at %s is too large" % path)
        return _decode(resp.status, answer)


def _seconds(min_valid):
    """Convert min_valid to whole seconds, rounding up: a token is never
    valid for less than asked."""
    if min_valid is None:
        return None
    if isinstance(min_valid, datetime.timedelta):
        min_valid = min_valid.total_seconds()
    if isinstance(min_valid, bool) or not isinstance(min_valid, (int, float)):
        raise TypeError("min_valid must be a number of seconds or a datetime.timedelta, not %r" % (min_valid,))
    if min_valid != min_valid or min_valid < 0 or min_valid == float("inf"):
        raise ValueError("min_valid must be a finite, non-negative number of seconds, not %r" % (min_valid,))
    whole = int(min_valid)
    return whole if whole == min_valid else whole + 1


def _decode(status, body):
    """Return the JSON object of a 2xx answer, or raise the error it
    carries."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        doc = None
    if 200 <= status < 300:
        if not isinstance(doc, dict):
            raise TapisAgentError(CODE_BAD_ANSWER, "the agent answered %d with a body that is not a JSON object" % status)
        return doc
    err = doc.get("error") if isinstance(doc, dict) else None
    if not isinstance(err, dict) or not isinstance(err.get("code"), str):
        raise TapisAgentError(
            CODE_BAD_ANSWER, "the agent answered %d without an error body" % status, status=status
        )
    code = err["code"]
    message = err.get("message") if isinstance(err.get("message"), str) else code
    hint = err.get("hint") if isinstance(err.get("hint"), str) else ""
    raise _CLASSES.get(code, TapisAgentError)(code, message, hint, status)


def token_info(tenant: Optional[str] = None, min_valid: MinValid = None) -> Dict[str, Any]:
    """Return the agent's answer for tenant's token as a dict (see
    Client.token_info)."""
    return Client().token_info(tenant, min_valid)


def token(tenant: Optional[str] = None, min_valid: MinValid = None) -> Token:
    """Return tenant's access token, valid for at least min_valid seconds
    (or a datetime.timedelta; None: 60 seconds, or half the tenant's token
    lifetime when that is shorter), as a Token: str(token) is the JWT, repr()
    shows the tenant and the time left instead, so that a token left as a
    cell's last expression is not written into the notebook. tenant None
    means the agent's default tenant.

    Raises LoginRequired when the tenant needs a login, UnknownTenant for a
    tenant the agent neither has configured nor holds, AgentNotRunning
    when no agent answers, MinValidUnsatisfiable when the tenant's tokens
    live less than min_valid, UpstreamUnavailable, or TapisAgentError with
    the agent's code.
    """
    return Client().token(tenant, min_valid)


def headers(tenant: Optional[str] = None, min_valid: MinValid = None) -> Dict[str, str]:
    """Return the request headers carrying tenant's access token:
    {"X-Tapis-Token": token}."""
    return Client().headers(tenant, min_valid)


def status() -> Status:
    """Return the agent's status as a Status, a dict that shows itself as a
    table in Jupyter and as text in a terminal: each tenant's state,
    expiries and next refresh (see Client.status)."""
    return Client().status()


class TapisAgentAuth:
    """Authentication for the requests library: every request gets a fresh
    X-Tapis-Token from the agent, so a long-lived Session never sends an
    expired token::

        s = requests.Session()
        s.auth = tapis_agent.TapisAgentAuth("designsafe")

    client is the Client to ask (default: Client()). The connection to the
    agent is kept between requests, one for the whole process (see
    KeptConnection).
    """

    def __init__(self, tenant: Optional[str] = None, min_valid: MinValid = None, client: Optional["Client"] = None) -> None:
        self.tenant = tenant
        self.min_valid = min_valid
        self.client = client or Client()
        self.kept = _SHARED_KEPT

    def __call__(self, r: Any) -> Any:
        r.headers[HEADER] = str(self.client.token(self.tenant, self.min_valid, self.kept))
        return r


def _q(name):
    """Return name quoted as a Python string literal, for hints."""
    return '"%s"' % str(name).replace("\\", "\\\\").replace('"', '\\"')


def _to_token(info):
    """Return the Token of a frame answer."""
    at = info.get("expires_at_unix")
    expires = datetime.datetime.fromtimestamp(at, datetime.timezone.utc) if at is not None else None
    return Token(info["access_token"], info["tenant"], info["base_url"], info["username"], expires)


# The parts that build on the client above. Nothing of tapipy is imported
# until tapipy_client, connect_tapis or the plugin is used.
from ._login import login, logout  # noqa: E402
from ._tapipy import connect_tapis, tapipy_client  # noqa: E402
