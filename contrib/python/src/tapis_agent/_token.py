"""Token: an access token that does not show itself by accident."""

import base64
import datetime
import json
import time
from typing import Any, Dict, Optional


def claims(jwt: str) -> Dict[str, Any]:
    """Return the claims of a JWT as a dict, unverified (for expiry and
    display only), or {} when it does not decode."""
    try:
        payload = jwt.split(".")[1]
        doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def human(seconds: float) -> str:
    """Return seconds as text: 45s, 12m30s, 3h59m."""
    seconds = int(seconds)
    if seconds < 0:
        return "-" + human(-seconds)
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        m, s = divmod(seconds, 60)
        return "%dm%02ds" % (m, s) if s else "%dm" % m
    h, rest = divmod(seconds, 3600)
    return "%dh%02dm" % (h, rest // 60) if rest // 60 else "%dh" % h


class Token(str):
    """An access token (a JWT) from the agent. It is a str: str(token),
    f"{token}", "%s" % token and any use as a header value give the JWT.
    Its repr() -- what a notebook shows for a cell's last expression, and
    what a list or a traceback prints -- names the tenant and the time
    left instead, so a notebook that is saved or shared does not carry the
    token.

    tenant, base_url and username say whose token it is; expires_at is an
    aware datetime in UTC; expires_in() the seconds left now.
    """

    tenant = ""
    base_url = ""
    username = ""
    expires_at = None  # type: Optional[datetime.datetime]

    def __new__(
        cls,
        jwt: str,
        tenant: str = "",
        base_url: str = "",
        username: str = "",
        expires_at: Optional[datetime.datetime] = None,
    ) -> "Token":
        self = super().__new__(cls, jwt)
        self.tenant = tenant
        self.base_url = base_url
        self.username = username
        if expires_at is None:
            exp = claims(jwt).get("exp")
            if isinstance(exp, (int, float)):
                expires_at = datetime.datetime.fromtimestamp(exp, datetime.timezone.utc)
        self.expires_at = expires_at
        return self

    def __str__(self) -> str:
        return str.__str__(self)

    def expires_in(self) -> Optional[float]:
        """Return the seconds the token stays valid from now (negative once
        it has expired), or None when its expiry is unknown."""
        if self.expires_at is None:
            return None
        return self.expires_at.timestamp() - time.time()

    def __repr__(self) -> str:
        left, at = self.expires_in(), self.expires_at
        if left is None or at is None:
            validity = "expiry unknown"
        elif left <= 0:
            validity = "expired %s ago" % human(-left)
        else:
            validity = "valid for %s, until %s" % (
                human(left),
                at.astimezone().strftime("%H:%M:%S %Z").strip(),
            )
        who = self.tenant or "unknown tenant"
        if self.username:
            who = "%s@%s" % (self.username, who)
        return "<tapis_agent.Token %s, %s; str(token) gives the JWT>" % (who, validity)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __reduce__(self) -> Any:
        # A pickled token is the plain JWT: nothing of this class travels.
        return (str, (str.__str__(self),))
