"""Logging in from Python, and from a Jupyter kernel: the password through
getpass (Jupyter's password box), or a device-code login approved in a
browser. The agent is started when none runs, as tapis-token login does."""

import builtins
import getpass
import os
import shutil
import subprocess
from typing import Any, Dict, Optional

from . import (
    CODE_AGENT_UNREACHABLE,
    CODE_BAD_REQUEST,
    CODE_CLIENT_NEEDED,
    DEFAULT_TIMEOUT,
    AgentNotRunning,
    BadCredentials,
    Client,
    SocketDirUnsafe,
    Status,
    TapisAgentError,
    _q,
    socket_path,
)

#: How often an interactive login asks for the password while Tapis
#: refuses it, as tapis-token login, sudo and DesignSafe's helper do.
LOGIN_TRIES = 3

#: Seconds to wait for an agent this package starts.
START_TIMEOUT = 30.0


def _say(text):
    # In a kernel, print goes to the cell's output; in a script, to the
    # terminal, where getpass asks too.
    print(text, flush=True)


def _agent_binary():
    """Return the path of tapis-agent: on PATH, else where make install
    puts it (~/.local/bin), which a kernel's PATH often lacks."""
    found = shutil.which("tapis-agent")
    if found:
        return found
    local = os.path.expanduser("~/.local/bin/tapis-agent")
    if os.access(local, os.X_OK):
        return local
    return None


def ensure_agent(client: Optional[Client] = None) -> Status:
    """Return the status of the agent at the socket, after starting one
    (tapis-agent start) when none answers at the well-known socket. With
    $TAPIS_AGENT_SOCK set, or an explicit client path, the user chose an
    agent: starting another elsewhere would hide that it is gone, so the
    AgentNotRunning is raised instead."""
    client = client or Client()
    try:
        return client.status()
    except SocketDirUnsafe:
        raise
    except AgentNotRunning:
        if client.path is not None or os.environ.get("TAPIS_AGENT_SOCK"):
            raise
    binary = _agent_binary()
    if binary is None:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE,
            "no tapis-agent is running and none can be started: tapis-agent is not on PATH",
            "install it (make install puts it in ~/.local/bin), or add its directory to PATH: "
            'os.environ["PATH"] += ":/path/to/bin"',
        )
    env = dict(os.environ)
    env.pop("TAPIS_AGENT_SOCK", None)
    try:
        p = subprocess.run(
            [binary, "start", "-q"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            env=env,
            timeout=START_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE, "starting tapis-agent: %s" % e, 'start one in a terminal: eval "$(tapis-agent start)"'
        ) from None
    if p.returncode != 0:
        raise AgentNotRunning(
            CODE_AGENT_UNREACHABLE,
            "starting tapis-agent: %s" % (p.stderr.strip() or "exit status %d" % p.returncode),
            'start one in a terminal: eval "$(tapis-agent start)"',
        )
    _say("tapis_agent: started an agent (socket %s)" % socket_path())
    return client.status()


def _tenant_status(st, tenant):
    for t in st.get("tenants") or []:
        if isinstance(t, dict) and t.get("tenant") == tenant:
            return t
    return {}


def login(
    tenant: Optional[str] = None,
    username: Optional[str] = None,
    device: bool = False,
    client_id: Optional[str] = None,
    client_key: Optional[str] = None,
    client: Optional[Client] = None,
) -> Dict[str, Any]:
    """Log the agent in to tenant (None: the agent's default tenant) and
    return the tenant's status (a dict: state, username, expiries).

    Without device it asks for the password with getpass, which in Jupyter
    is the notebook's password box, and for the username with input()
    unless one is given or the agent's config names one. While Tapis
    refuses the username or password it asks again, three times in all,
    then raises BadCredentials.

    With device=True it runs the device-code flow: it shows the URL to
    open and the code to enter, and waits until the login is approved
    (interrupting the cell abandons it). client_id and client_key name the
    OAuth client for it when the agent's config names none; without
    either, the first such login on a host asks (with getpass) for one
    access token from the tenant's Token Web App, with which the agent
    finds or registers its own client.

    The agent is started when none answers at the well-known socket, as
    tapis-token login does. The password goes to the agent only; nothing
    is written anywhere.
    """
    client = client or Client()
    st = ensure_agent(client)
    if tenant is None:
        tenant = next((t.get("tenant") for t in st.get("tenants") or [] if t.get("default")), None)
        if not tenant:
            raise TapisAgentError(
                CODE_BAD_REQUEST,
                "the agent has no default tenant",
                'name one: tapis_agent.login("designsafe")',
            )
    if not isinstance(tenant, str) or not tenant:
        raise TypeError("tenant must be a tenant name (a str), not %r" % (tenant,))
    if device:
        return _login_device(client, tenant, client_id, client_key)
    return _login_password(client, tenant, username or _tenant_status(st, tenant).get("username") or None)


def _login_password(client, tenant, username):
    ask_user = not username
    for attempt in range(1, LOGIN_TRIES + 1):
        if ask_user:
            # builtins.input and getpass.getpass are looked up at each
            # call: a Jupyter kernel replaces them while a cell runs.
            prompt = "Username for %s: " % tenant if not username else "Username for %s [%s]: " % (tenant, username)
            typed = builtins.input(prompt).strip()
            if typed:
                username = typed
            if not username:
                raise ValueError("no username given; not logged in to %s" % tenant)
        password = getpass.getpass("Password for %s@%s: " % (username, tenant))
        if not password:
            raise ValueError("empty password; not logged in to %s" % tenant)
        try:
            resp = client.login_request({"tenant": tenant, "username": username, "password": password})
        except BadCredentials:
            if attempt == LOGIN_TRIES:
                raise BadCredentials(
                    "bad_credentials",
                    "Tapis refused the username or password for %s %d times; not logged in" % (tenant, LOGIN_TRIES),
                    "check them (a forgotten password is reset on the tenant's web portal), then: "
                    "tapis_agent.login(%s, username=...)" % _q(tenant),
                ) from None
            _say("Tapis refused the username or password for %s; try again (%d of %d)." % (tenant, attempt + 1, LOGIN_TRIES))
            continue
        finally:
            password = None
        t = resp.get("tenant") or {}
        _say("tapis_agent: logged in to %s as %s; the agent refreshes the token before it expires" % (tenant, t.get("username") or username))
        return t
    raise AssertionError("unreachable")


def _login_device(client, tenant, client_id, client_key):
    body = {"tenant": tenant, "device": True}
    if client_id:
        body["client_id"] = client_id
    if client_key:
        body["client_key"] = client_key
    try:
        resp = client.login_request(body)
    except TapisAgentError as e:
        if e.code != CODE_CLIENT_NEEDED:
            raise
        # The first device login on this host: the agent needs one access
        # token, from the tenant's Token Web App, to find or register its
        # OAuth client. The message says where to get it.
        _say("tapis_agent: " + e.message)
        token = getpass.getpass("Access token for %s (input hidden): " % tenant).strip()
        if not token:
            raise ValueError("no access token given; not logged in to %s" % tenant) from None
        body["bootstrap_token"] = token
        token = ""
        resp = client.login_request(body)
    body = None
    name = (resp.get("tenant") or {}).get("tenant") or tenant
    d = resp.get("device")
    if isinstance(d, dict):
        _say(
            "To log in to %s, open\n\n    %s\n\nand enter the code\n\n    %s\n"
            % (name, d.get("verification_uri", ""), d.get("user_code", ""))
        )
        _say("Waiting for approval (interrupt the cell to give up).")
    try:
        while isinstance(resp.get("device"), dict):
            resp = client.login_request({"tenant": name, "device": True, "wait": True})
    except KeyboardInterrupt:
        try:
            Client(client.path, timeout=DEFAULT_TIMEOUT).login_request(
                {"tenant": name, "device": True, "cancel": True}
            )
        except TapisAgentError:
            pass
        raise
    t = resp.get("tenant") or {}
    _say("tapis_agent: logged in to %s as %s with the device code; the agent refreshes the token before it expires" % (name, t.get("username", "")))
    return t


def logout(tenant: Optional[str] = None, client: Optional[Client] = None) -> Dict[str, Any]:
    """Log the agent out of tenant (None: the default tenant): it drops the
    session and revokes its tokens upstream. Return the tenant's status."""
    client = client or Client()
    if tenant is None:
        st = client.status()
        tenant = next((t.get("tenant") for t in st.get("tenants") or [] if t.get("default")), None)
        if not tenant:
            raise TapisAgentError(CODE_BAD_REQUEST, "the agent has no default tenant", 'name one: tapis_agent.logout("designsafe")')
    resp = client.logout(tenant)
    _say("tapis_agent: logged out of %s" % tenant)
    return resp

