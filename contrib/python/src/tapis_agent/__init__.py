"""Fresh Tapis access tokens from tapis-agent, for Python scripts and Jupyter.

tapis-agent keeps the refresh tokens of your Tapis tenants in memory and
refreshes access tokens ahead of expiry. This module asks it for the current
token over its Unix socket, the way the tapis-token helper does::

    import tapis_agent
    headers = tapis_agent.headers("designsafe")   # {"X-Tapis-Token": "..."}
    token = tapis_agent.token("designsafe", min_valid=2 * 3600)

    import requests
    requests.get(url, auth=tapis_agent.TapisAgentAuth("designsafe"))

    t = tapis_agent.tapipy_client("designsafe")   # needs tapipy installed

The socket is found as tapis-token finds it: $TAPIS_AGENT_SOCK, else
$XDG_RUNTIME_DIR/tapis-agent/agent.sock, else /tmp/tapis-agent-$UID/agent.sock.
Its directory must belong to you and be closed to group and others; any
other directory is refused, since whoever can write to it could stand in
for the agent.

Failures raise TapisAgentError, or one of its subclasses, carrying the
agent's error code (e.g. "login_required") and a hint naming the command to
run next. Branch on the class or on .code, never on the message.

Install the wheel that make python builds into the kernel's environment
(pip install dist/tapis_agent-*.whl). Standard library only; Python 3.8 or
newer. Every call opens its own
connection, so the module is safe to use from several threads.
"""

import datetime
import http.client
import json
import os
import socket
import stat
import urllib.parse

from ._version import __version__

__all__ = [
    "AgentNotRunning",
    "Client",
    "LoginRequired",
    "SocketDirUnsafe",
    "TapisAgentAuth",
    "TapisAgentError",
    "UnknownTenant",
    "UpstreamUnavailable",
    "default_socket_path",
    "headers",
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

# Answers larger than this are refused: a status of thousands of tenants
# stays far below it.
_MAX_ANSWER = 4 << 20

# Error codes of the socket API (ipc/api.go). CODE_AGENT_UNREACHABLE and
# CODE_BAD_ANSWER are produced here, never by the agent.
CODE_LOGIN_REQUIRED = "login_required"
CODE_UNKNOWN_TENANT = "unknown_tenant"
CODE_UPSTREAM_UNAVAILABLE = "upstream_unavailable"
CODE_AGENT_UNREACHABLE = "agent_unreachable"
CODE_BAD_ANSWER = "bad_answer"
CODE_TIMEOUT = "timeout"

_START_HINT = (
    "start the agent (tapis-agent start, or tapis-token login TENANT), "
    "or set TAPIS_AGENT_SOCK to its socket"
)


class TapisAgentError(Exception):
    """An error answered by tapis-agent, or met while asking it.

    code is the agent's error code ("login_required", "unknown_tenant",
    "upstream_unavailable", "bad_request", ...) or one of the local codes
    "agent_unreachable", "bad_answer" and "timeout". message says what went
    wrong, hint (possibly empty) what to do next, status is the HTTP status
    of the agent's answer (0 when no answer was used).
    """

    def __init__(self, code, message, hint="", status=0):
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


class LoginRequired(TapisAgentError):
    """The tenant has no usable session: log in with tapis-token login."""


class UnknownTenant(TapisAgentError):
    """The tenant is neither configured nor logged in."""


class UpstreamUnavailable(TapisAgentError):
    """Tapis failed and the agent holds no token valid long enough."""


_CLASSES = {
    CODE_LOGIN_REQUIRED: LoginRequired,
    CODE_UNKNOWN_TENANT: UnknownTenant,
    CODE_UPSTREAM_UNAVAILABLE: UpstreamUnavailable,
}


def default_socket_path():
    """Return the well-known socket path, ignoring $TAPIS_AGENT_SOCK:
    $XDG_RUNTIME_DIR/tapis-agent/agent.sock, else
    /tmp/tapis-agent-$UID/agent.sock. It is never under $HOME, which on HPC
    systems is an NFS share seen by every login node."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime:
        return os.path.join(runtime, "tapis-agent", "agent.sock")
    return "/tmp/tapis-agent-%d/agent.sock" % os.getuid()


def socket_path():
    """Return the agent's socket path: $TAPIS_AGENT_SOCK if set, else
    default_socket_path(). It is read at every call, so setting the
    variable in a running notebook takes effect at once."""
    return os.environ.get("TAPIS_AGENT_SOCK", "") or default_socket_path()


def check_dir(path):
    """Raise SocketDirUnsafe unless path is a directory (not a symlink)
    owned by the current user with no group or other permission bits, as
    tmux requires of its socket directory, and as the agent and tapis-token
    check it. Raise AgentNotRunning when it does not exist."""
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
    uid = os.getuid()
    if st.st_uid != uid:
        raise SocketDirUnsafe(
            CODE_AGENT_UNREACHABLE,
            "socket directory %s is owned by uid %d (mode %04o), not by you (uid %d)"
            % (path, st.st_uid, perm, uid),
            "remove it or set TAPIS_AGENT_SOCK to a path in a directory of yours",
        )
    if perm & 0o077:
        raise SocketDirUnsafe(
            CODE_AGENT_UNREACHABLE,
            "socket directory %s has mode %04o, open to other users" % (path, perm),
            "run: chmod 0700 %s" % path,
        )


class _UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over a Unix stream socket."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


class Client:
    """Client of one tapis-agent socket.

    path is the socket path; None means socket_path() at each call. timeout
    (seconds) bounds connecting and every wait for the agent's answer; None
    means TOKEN_TIMEOUT for tokens and DEFAULT_TIMEOUT otherwise. A
    Client holds no connection and no token: it is safe to share between
    threads, and every call asks the agent afresh.
    """

    def __init__(self, path=None, timeout=None):
        self.path = path
        self.timeout = timeout

    def token_info(self, tenant=None, min_valid=60):
        """Return the agent's answer for tenant's token as a dict: tenant,
        base_url, username, access_token, expires_at (RFC 3339 text) and
        expires_in (seconds left). The token stays valid for at least
        min_valid (seconds, or a datetime.timedelta; None lets the agent
        choose, as tapis-token does); the agent refreshes first if needed.
        tenant None means the agent's default tenant."""
        query = {}
        if tenant:
            query["tenant"] = tenant
        secs = _seconds(min_valid)
        if secs is not None:
            query["min_valid"] = str(secs)
        target = "/v1/token"
        if query:
            target += "?" + urllib.parse.urlencode(query)
        answer = self._call("GET", target, TOKEN_TIMEOUT)
        if not isinstance(answer.get("access_token"), str) or not answer["access_token"]:
            raise TapisAgentError(CODE_BAD_ANSWER, "the agent's token answer holds no access_token")
        return answer

    def token(self, tenant=None, min_valid=60):
        """Return tenant's access token (a str), valid for at least
        min_valid seconds. See token_info."""
        return self.token_info(tenant, min_valid)["access_token"]

    def headers(self, tenant=None, min_valid=60):
        """Return {"X-Tapis-Token": token} for tenant."""
        return {HEADER: self.token(tenant, min_valid)}

    def status(self):
        """Return the agent's status as a dict: version, pid, socket,
        config, and "tenants", one dict per tenant with its state and
        expiries. It never holds a secret."""
        return self._call("GET", "/v1/status", DEFAULT_TIMEOUT)

    def _call(self, method, target, default_timeout, body=None):
        """Send one request on a fresh connection and return the decoded
        answer. body, if not None, is sent as JSON."""
        path = self.path or socket_path()
        check_dir(os.path.dirname(path) or ".")
        timeout = self.timeout if self.timeout is not None else default_timeout
        conn = _UnixHTTPConnection(path, timeout)
        try:
            try:
                conn.connect()
            except (FileNotFoundError, ConnectionRefusedError) as e:
                raise AgentNotRunning(
                    CODE_AGENT_UNREACHABLE,
                    "no tapis-agent answers at %s: %s" % (path, e.strerror or e),
                    _START_HINT,
                ) from None
            except socket.timeout:
                raise TapisAgentError(
                    CODE_TIMEOUT, "connecting to tapis-agent at %s timed out after %gs" % (path, timeout)
                ) from None
            except OSError as e:
                raise AgentNotRunning(
                    CODE_AGENT_UNREACHABLE, "connecting to tapis-agent at %s: %s" % (path, e), _START_HINT
                ) from None
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


def token_info(tenant=None, min_valid=60):
    """Return the agent's answer for tenant's token as a dict (see
    Client.token_info)."""
    return Client().token_info(tenant, min_valid)


def token(tenant=None, min_valid=60):
    """Return tenant's access token, valid for at least min_valid seconds
    (or a datetime.timedelta). tenant None means the agent's default tenant.

    Raises LoginRequired when the tenant needs a login, AgentNotRunning when
    no agent answers, UnknownTenant, UpstreamUnavailable, or TapisAgentError
    with the agent's code.
    """
    return Client().token(tenant, min_valid)


def headers(tenant=None, min_valid=60):
    """Return the request headers carrying tenant's access token:
    {"X-Tapis-Token": token}."""
    return Client().headers(tenant, min_valid)


def status():
    """Return the agent's status as a dict (see Client.status)."""
    return Client().status()


class TapisAgentAuth:
    """Authentication for the requests library: every request gets a fresh
    X-Tapis-Token from the agent, so a long-lived Session never sends an
    expired token::

        s = requests.Session()
        s.auth = tapis_agent.TapisAgentAuth("designsafe")

    client is the Client to ask (default: Client()).
    """

    def __init__(self, tenant=None, min_valid=60, client=None):
        self.tenant = tenant
        self.min_valid = min_valid
        self.client = client or Client()

    def __call__(self, r):
        r.headers[HEADER] = self.client.token(self.tenant, self.min_valid)
        return r


def tapipy_client(tenant=None, min_valid=600, client=None, **kwargs):
    """Return a tapipy.tapis.Tapis for tenant, made with its base URL and a
    current access token valid for at least min_valid seconds. Extra
    keyword arguments go to Tapis. The client does not refresh through the
    agent: call tapipy_client again when its token nears expiry (the
    agent's token lives about 4 hours). Raises ImportError when tapipy is
    not installed."""
    try:
        from tapipy.tapis import Tapis
    except ImportError as e:
        raise ImportError("tapipy_client needs tapipy: pip install tapipy (%s)" % e) from e
    info = (client or Client()).token_info(tenant, min_valid)
    return Tapis(base_url=info["base_url"], access_token=info["access_token"], **kwargs)
