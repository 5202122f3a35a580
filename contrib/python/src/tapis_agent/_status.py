"""Status: the agent's status as a dict that shows itself as a table."""

import datetime
import html
from typing import Any, Dict, List, Optional, Tuple

from ._token import human

_COLUMNS = ("tenant", "state", "user", "access token", "next refresh", "refresh token", "last error")


def _parse_time(text):
    """Return an aware datetime for RFC 3339 text, or None."""
    if not isinstance(text, str) or not text:
        return None
    t = text.strip()
    if t.endswith("Z") or t.endswith("z"):
        t = t[:-1] + "+00:00"
    # Python before 3.11 takes at most six digits of a fraction.
    if "." in t:
        head, _, rest = t.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        t = head + ("." + (digits + "000000")[:6] if digits else "") + rest
    try:
        when = datetime.datetime.fromisoformat(t)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when


def _when(text, now):
    """Return 'HH:MM:SS (in 3h59m)' for an RFC 3339 time, or '' ."""
    when = _parse_time(text)
    if when is None:
        return ""
    left = (when - now).total_seconds()
    local = when.astimezone()
    stamp = local.strftime("%H:%M:%S") if abs(left) < 20 * 3600 else local.strftime("%Y-%m-%d %H:%M")
    if left >= 0:
        return "%s (in %s)" % (stamp, human(left))
    return "%s (%s ago)" % (stamp, human(-left))


class Status(Dict[str, Any]):
    """The agent's status: a dict with version, pid, socket, config and
    "tenants", one dict per tenant with its state and expiries. It never
    holds a secret. In Jupyter it renders as a table (_repr_html_), in a
    terminal as text; rows() gives the table's cells."""

    def rows(self, now: Optional[datetime.datetime] = None) -> List[Tuple[str, ...]]:
        """Return one tuple of display cells per tenant, in the order of
        _COLUMNS."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        out = []  # type: List[Tuple[str, ...]]
        for t in self.get("tenants") or []:
            if not isinstance(t, dict):
                continue
            name = str(t.get("tenant", ""))
            if t.get("default"):
                name += " (default)"
            state = str(t.get("state", ""))
            dev = t.get("device")
            if isinstance(dev, dict) and dev.get("user_code"):
                state += ": code %s at %s" % (dev.get("user_code"), dev.get("verification_uri", ""))
            err = t.get("last_error") or ""
            warnings = t.get("warnings") or []
            if warnings:
                err = "; ".join([err] + [str(w) for w in warnings] if err else [str(w) for w in warnings])
            out.append(
                (
                    name,
                    state,
                    str(t.get("username", "") or ""),
                    _when(t.get("access_expires_at"), now),
                    _when(t.get("next_refresh"), now),
                    _when(t.get("refresh_expires_at"), now),
                    str(err),
                )
            )
        return out

    def _header(self):
        return "tapis-agent %s, pid %s, socket %s" % (self.get("version", "?"), self.get("pid", "?"), self.get("socket", "?"))

    def text(self) -> str:
        """Return the status as a text table."""
        rows = [tuple(c.upper() for c in _COLUMNS)] + self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
        lines = [self._header()]
        if self.get("config_error"):
            lines.append("config error: %s" % self["config_error"])
        for r in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if len(rows) == 1:
            lines.append("(no tenants: tapis_agent.login(\"TENANT\") adds one)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text())

    def _repr_html_(self) -> str:
        e = html.escape
        parts = ["<div><p>%s</p>" % e(self._header())]
        if self.get("config_error"):
            parts.append("<p>config error: %s</p>" % e(str(self["config_error"])))
        parts.append("<table><thead><tr>")
        parts.extend("<th>%s</th>" % e(c) for c in _COLUMNS)
        parts.append("</tr></thead><tbody>")
        for r in self.rows():
            parts.append("<tr>" + "".join("<td>%s</td>" % e(c) for c in r) + "</tr>")
        parts.append("</tbody></table></div>")
        return "".join(parts)
