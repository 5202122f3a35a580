"""Agent-backed tapipy clients.

A tapipy Tapis object built from an access token sends that token until
it expires, then fails on every call: its own refresh needs a refresh
token and an OAuth client it does not have, and swallows the error. An
agent-backed object asks the agent instead, through two hooks of tapipy:

1. a pre-request callable (plugin_on_call_pre_request_callables) puts the
   agent's current token on every API call;
2. refresh_user_tokens and refresh_tokens are replaced by functions that
   fetch the agent's token, and the token's expires_in is shortened by
   the validity the client asks for, so that tapipy's own check (less
   than 5 s left) refreshes in time. upload(), which runs no plugin
   hooks, refreshes this way.

The token is asked for with a min_valid of its own (60 s by default),
clamped to half the tenant's token lifetime, so that no call goes out with
a token about to expire, whatever the tenant's lifetime. tapipy is
imported only when a client is built.
"""

import datetime
import re
from typing import Any, Dict, List, Optional

from . import (
    CODE_UNKNOWN_TENANT,
    HEADER,
    Client,
    LoginRequired,
    MinValid,
    MinValidUnsatisfiable,
    TapisAgentError,
    UnknownTenant,
    _q,
    _seconds,
    _SHARED_KEPT,
)
from ._login import _say, ensure_agent, login
from ._token import Token

#: Seconds an agent-backed client's token must stay valid when it is
#: sent, unless the tenant's tokens live less than twice that.
DEFAULT_MIN_VALID = 60

_TAPIS_IO = re.compile(r"^https://([a-z0-9][a-z0-9-]*)\.tapis\.io$")


def _tapipy():
    try:
        from tapipy.tapis import Tapis, TapisResult  # type: ignore
    except ImportError as e:
        raise ImportError(
            "an agent-backed tapipy client needs tapipy: pip install tapipy, or %%pip install tapipy in a notebook (%s)" % e
        ) from e
    return Tapis, TapisResult


class AgentTokens:
    """Where an agent-backed tapipy client gets its tokens: one tenant of
    one agent. tenant None means the agent's default tenant, pinned at the
    first answer, so that the client keeps its tenant if the default
    changes. min_valid (seconds) is clamped to half the tenant's token
    lifetime, which the agent tells when it first refuses min_valid as too
    long. Safe for concurrent use."""

    def __init__(self, tenant: Optional[str] = None, min_valid: MinValid = DEFAULT_MIN_VALID, client: Optional[Client] = None) -> None:
        secs = _seconds(min_valid)
        if secs is None:
            raise TypeError("min_valid must be a number of seconds or a datetime.timedelta, not None")
        self.client = client or Client()
        self.tenant = tenant
        self.min_valid = secs
        self.lifetime = None  # type: Optional[int]
        # Asked before every API call: one connection, kept, and shared
        # by every agent-backed client of the process.
        self.kept = _SHARED_KEPT

    def want(self) -> Optional[int]:
        """Return the min_valid to ask for: min_valid, at most half the
        tenant's token lifetime once known; None (the agent's default,
        which is that too) for a tenant whose tokens live less than
        min_valid when the agent does not say how long."""
        if self.lifetime == 0:
            return None
        if self.lifetime:
            return max(1, min(self.min_valid, self.lifetime // 2))
        return self.min_valid

    def token(self) -> Token:
        """Return the agent's current Token for the tenant, valid for at
        least want() seconds."""
        try:
            tok = self.client.token(self.tenant, self.want(), self.kept)
        except MinValidUnsatisfiable as e:
            self.lifetime = e.lifetime or 0
            tok = self.client.token(self.tenant, self.want(), self.kept)
        if self.tenant is None:
            self.tenant = tok.tenant
        return tok


def install(t: Any, source: AgentTokens) -> Any:
    """Make the tapipy Tapis object t agent-backed, its tokens coming from
    source (an AgentTokens). Installing again only changes the source."""
    installed = getattr(t, "_tapis_agent_tokens", None) is not None
    t._tapis_agent_tokens = source
    if installed:
        return t
    _, TapisResult = _tapipy()
    # The error of a refresh that tapipy swallows, raised by the next
    # get_access_jwt: without it upload() would send the expired token and
    # the user would see Tapis's "Invalid Tapis token." instead of why.
    pending = []  # type: List[TapisAgentError]

    def current():
        tok = t._tapis_agent_tokens.token()
        jwt = str(tok)
        if _held(t) != jwt:
            t.set_access_token(TapisResult(access_token=jwt))
            _shorten(t)
        return jwt

    def pre_request(op, request, **kwargs):
        request.headers[HEADER] = current()

    def refresh_user_tokens(*args, **kwargs):
        del pending[:]
        try:
            current()
        except TapisAgentError as e:
            pending.append(e)
            raise

    orig_get_access_jwt = t.get_access_jwt

    def get_access_jwt():
        if pending:
            raise pending.pop()
        jwt = orig_get_access_jwt()
        if not jwt:
            # A plugin client built without a token: ask now.
            jwt = current()
        return jwt

    t.refresh_user_tokens = refresh_user_tokens
    t.refresh_tokens = refresh_user_tokens
    t.get_access_jwt = get_access_jwt
    t.plugin_on_call_pre_request_callables.append(pre_request)
    if _held(t):
        _shorten(t)
    return t


def _held(t):
    """Return the JWT t holds, or None."""
    at = getattr(t, "access_token", None)
    jwt = getattr(at, "access_token", None)
    return jwt if isinstance(jwt, str) else None


def _shorten(t):
    """Make t's token look shorter-lived by the validity its source asks
    for, so that tapipy's 5-second check refreshes through the agent
    before the token is too short for a call."""
    at = t.access_token
    orig = getattr(at, "expires_in", None)
    if not callable(orig) or getattr(orig, "_tapis_agent", False):
        return
    source = t._tapis_agent_tokens

    def expires_in():
        return orig() - datetime.timedelta(seconds=source.want() or 0)

    expires_in._tapis_agent = True
    at.expires_in = expires_in


def tapipy_client(
    tenant: Optional[str] = None, min_valid: MinValid = DEFAULT_MIN_VALID, client: Optional[Client] = None, **kwargs: Any
) -> Any:
    """Return an agent-backed tapipy.tapis.Tapis for tenant (None: the
    agent's default tenant), made with the tenant's base URL. Every call
    carries the agent's current token, valid for at least min_valid
    seconds (clamped to half the tenant's token lifetime), and upload()
    refreshes through the agent too: the same object keeps working across
    any number of token lifetimes and agent restarts. While the agent has
    no session its calls raise LoginRequired; tapis_agent.login(tenant)
    makes them work again. Extra keyword arguments go to Tapis. Raises
    ImportError when tapipy is not installed."""
    Tapis, _ = _tapipy()
    source = AgentTokens(tenant, min_valid, client)
    tok = source.token()
    t = Tapis(base_url=tok.base_url, access_token=str(tok), **kwargs)
    return install(t, source)


def tenant_for(
    base_url: Optional[str],
    username: Optional[str] = None,
    client: Optional[Client] = None,
    status: Optional[Dict[str, Any]] = None,
) -> str:
    """Return the agent's tenant for a Tapis base URL: the tenant with that
    base_url (the one of username, or the default, when several have it),
    else NAME for https://NAME.tapis.io. Raise UnknownTenant otherwise."""
    client = client or Client()
    st = status if status is not None else client.status()
    want = (base_url or "").rstrip("/")
    tenants = [t for t in st.get("tenants") or [] if isinstance(t, dict)]
    if not want:
        for t in tenants:
            if t.get("default"):
                return str(t.get("tenant"))
        raise UnknownTenant(CODE_UNKNOWN_TENANT, "no base_url given and the agent has no default tenant", 'tapis_agent.login("designsafe")')
    same = [t for t in tenants if (t.get("base_url") or "").rstrip("/") == want]
    for pick in (
        lambda t: username and t.get("username") == username,
        lambda t: t.get("default"),
        lambda t: t.get("state") == "ready",
        lambda t: True,
    ):
        for t in same:
            if pick(t):
                return str(t.get("tenant"))
    m = _TAPIS_IO.match(want)
    if m:
        return m.group(1)
    raise UnknownTenant(
        CODE_UNKNOWN_TENANT,
        "no tenant of the agent has the base URL %s" % want,
        "add one to the agent's config ([tenants.NAME] with base_url = %s), then tapis_agent.login(\"NAME\")" % _q(want),
    )


def plugin_install(t: Any, kwargs: Dict[str, Any]) -> Any:
    """on_tapis_client_instantiation of tapis_agent.tapipy_plugin: make t
    agent-backed for the tenant of its base URL (or tapis_agent_tenant=,
    a keyword argument of Tapis)."""
    client = Client()
    tenant = kwargs.get("tapis_agent_tenant") or tenant_for(getattr(t, "base_url", None), kwargs.get("username"), client)
    source = AgentTokens(tenant, kwargs.get("tapis_agent_min_valid") or DEFAULT_MIN_VALID, client)
    install(t, source)
    try:
        # Hold a token from the start when the agent has one, as a Tapis
        # built from an access token does; otherwise the first call asks.
        t.get_access_jwt()
    except TapisAgentError:
        pass
    return t


def connect_tapis(
    token_filePath: str = "~/.tapis_tokens.json",
    base_url: str = "https://designsafe.tapis.io",
    username: str = "",
    password: str = "",
    force_connect: bool = False,
) -> Any:
    """A drop-in for DesignSafe's connect_tapis helper, with its signature
    and defaults: return an agent-backed tapipy Tapis for the tenant of
    base_url. Where the helper keeps a token file, this asks the agent:
    when the agent has no session for the tenant (or force_connect), it
    logs in through the agent (tapis_agent.login: getpass, up to three
    tries), with username and password when given. token_filePath is
    accepted and ignored: no token file is read or written.

    A notebook switches by changing its import line only:
    from tapis_agent import connect_tapis.
    """
    del token_filePath  # the agent keeps the token; no file
    client = Client()
    st = ensure_agent(client)
    tenant = tenant_for(base_url, username or None, client, st)
    if not force_connect:
        try:
            t = tapipy_client(tenant, client=client)
            _connected(t)
            return t
        except LoginRequired:
            pass
    if password:
        if not username:
            raise ValueError("a password needs a username: connect_tapis(username=..., password=...)")
        client.login_request({"tenant": tenant, "username": username, "password": password})
        _say("tapis_agent: logged in to %s as %s" % (tenant, username))
    else:
        login(tenant, username=username or None, client=client)
    t = tapipy_client(tenant, client=client)
    _connected(t)
    return t


def _connected(t):
    source = t._tapis_agent_tokens
    at = getattr(t, "access_token", None)
    exp = getattr(at, "expires_at", None)
    until = " (current token valid until %s)" % exp.astimezone().strftime("%H:%M:%S") if exp else ""
    _say("tapis_agent: connected to %s; the agent keeps the token fresh%s" % (source.tenant, until))
