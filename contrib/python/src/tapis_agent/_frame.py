"""The agent's token frame: one line each way on a connection of its own,
the way the tapis-token helper asks (ipc/doc.go in the agent's source
describes it). It costs a fraction of an HTTP exchange, which matters
when every call of a long-lived tapipy client asks for the token.

    @tapis-agent/1 token TENANT MIN_VALID
    @tapis-agent/1 keep TENANT MIN_VALID    (the connection stays open)
    @tapis-agent/1 ok EXPIRES_IN EXPIRES_AT "ACCESS_TOKEN" "TENANT" "BASE_URL" "USERNAME"
    @tapis-agent/1 error CODE "MESSAGE" "HINT"

Quoted fields are written as Go's strconv.Quote writes them.
"""

import datetime
import re

VERSION = b"@tapis-agent/1"

#: Largest request and answer frames, their LF included.
MAX_REQUEST = 512
MAX_ANSWER = 64 << 10

_WORD = re.compile(rb"[!#-~]+\Z")  # printable ASCII, no space, no double quote
_MAX_UNIX = 253402300799  # 9999-12-31T23:59:59Z, the last time datetime holds
_CODE = re.compile(rb"[a-z_]{1,64}\Z")
_INT = re.compile(rb"-?[0-9]+\Z")
_TIME = re.compile(rb"([0-9]+)(?:\.([0-9]{1,9}))?\Z")
# A token answer whose quoted fields hold no escapes: every answer of the
# agent in practice, parsed in one match.
_PLAIN_OK = re.compile(
    rb'@tapis-agent/1 ok (-?[0-9]+) ([0-9]+(?:\.[0-9]{1,9})?) "([^"\\\n]*)" "([^"\\\n]*)" "([^"\\\n]*)" "([^"\\\n]*)"\n\Z'
)

_SIMPLE = {
    ord("a"): 7,
    ord("b"): 8,
    ord("f"): 12,
    ord("n"): 10,
    ord("r"): 13,
    ord("t"): 9,
    ord("v"): 11,
    ord("\\"): 92,
    ord('"'): 34,
}


class FrameError(ValueError):
    """A frame that cannot be written or does not parse."""


def request(tenant, min_valid, keep=False):
    """Return the request frame for tenant's token (None: the default
    tenant) valid for min_valid whole seconds (None: the agent's
    default). keep asks the agent to keep the connection open for the
    next request after its answer."""
    if tenant is None or tenant == "":
        name = b"-"
    else:
        name = tenant.encode("utf-8", "replace")
        if name == b"-" or not _WORD.match(name):
            raise FrameError(
                "tenant name %r is invalid; use lower-case letters, digits, '.', '_' and '-'" % (tenant,)
            )
    if min_valid is None:
        secs = b"-"
    else:
        secs = str(int(min_valid)).encode()
    line = VERSION + (b" keep " if keep else b" token ") + name + b" " + secs + b"\n"
    if len(line) > MAX_REQUEST:
        raise FrameError("tenant name %r is too long" % (tenant,))
    return line


def _unquote(b, i):
    """Unquote the Go-quoted string starting at b[i] (a double quote);
    return its text and the index after its closing quote."""
    j = b.find(b'"', i + 1)
    if j > 0:
        plain = b[i + 1 : j]
        if b"\\" not in plain and b"\n" not in plain:
            # No escapes: a token, a name or a URL, almost always.
            return plain.decode("utf-8", "replace"), j + 1
    out = bytearray()
    i += 1
    n = len(b)
    while i < n:
        c = b[i]
        if c == 34:  # "
            return out.decode("utf-8", "replace"), i + 1
        if c == 10:
            break
        if c != 92:  # \
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            break
        e = b[i + 1]
        if e in _SIMPLE:
            out.append(_SIMPLE[e])
            i += 2
        elif e == ord("x"):
            out.append(int(_hex(b, i + 2, 2), 16))
            i += 4
        elif e in (ord("u"), ord("U")):
            width = 4 if e == ord("u") else 8
            cp = int(_hex(b, i + 2, width), 16)
            if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                raise FrameError("invalid escape in a quoted field")
            out += chr(cp).encode("utf-8")
            i += 2 + width
        elif ord("0") <= e <= ord("7"):
            digits = b[i + 1 : i + 4]
            if len(digits) != 3 or not all(ord("0") <= d <= ord("7") for d in digits) or int(digits, 8) > 255:
                raise FrameError("invalid escape in a quoted field")
            out.append(int(digits, 8))
            i += 4
        else:
            raise FrameError("invalid escape in a quoted field")
    raise FrameError("unterminated quoted field")


def _hex(b, i, width):
    h = b[i : i + width]
    if len(h) != width or not all(chr(d) in "0123456789abcdefABCDEF" for d in h):
        raise FrameError("invalid escape in a quoted field")
    return h


def fields(line):
    """Split an answer frame (bytes ending in LF) into its fields: words
    as bytes, quoted strings as str."""
    if not line.endswith(b"\n"):
        raise FrameError("no line end")
    b = line[:-1]
    out = []
    i, n = 0, len(b)
    while True:
        if i < n and b[i] == 34:
            s, i = _unquote(b, i)
            out.append(s)
        else:
            j = b.find(b" ", i)
            if j < 0:
                j = n
            w = b[i:j]
            if not _WORD.match(w):
                raise FrameError("malformed field")
            out.append(w)
            i = j
        if i == n:
            return out
        if b[i] != 32 or i + 1 == n:
            raise FrameError("malformed field separator")
        i += 1


def parse_answer(line):
    """Parse an answer frame. Return ("ok", info) with info holding the
    fields of the HTTP token answer (tenant, base_url, username,
    access_token, expires_in) and expires_at_unix, or
    ("error", (code, message, hint)). Raise FrameError for anything
    else."""
    if len(line) > MAX_ANSWER:
        raise FrameError("answer over %d bytes" % MAX_ANSWER)
    m = _PLAIN_OK.match(line)
    if m:
        return "ok", _ok(m.group(1), m.group(2), *(g.decode("utf-8", "replace") for g in m.group(3, 4, 5, 6)))
    f = fields(line)
    if len(f) < 2 or f[0] != VERSION:
        raise FrameError("not an answer of this version")
    if f[1] == b"error" and len(f) == 5 and isinstance(f[2], bytes) and _CODE.match(f[2]):
        if isinstance(f[3], str) and isinstance(f[4], str):
            return "error", (f[2].decode(), f[3], f[4])
    elif f[1] == b"ok" and len(f) == 8 and all(isinstance(x, str) for x in f[4:]):
        if isinstance(f[2], bytes) and _INT.match(f[2]) and isinstance(f[3], bytes):
            return "ok", _ok(f[2], f[3], *f[4:])
    raise FrameError("malformed answer")


def _ok(expires_in, expires_at, token, tenant, base_url, username):
    m = _TIME.match(expires_at)
    if not m:
        raise FrameError("malformed expiry")
    sec = int(m.group(1))
    nsec = int(((m.group(2) or b"") + b"000000000")[:9])
    if sec > _MAX_UNIX:
        raise FrameError("expiry out of range")
    return {
        "access_token": token,
        "tenant": tenant,
        "base_url": base_url,
        "username": username,
        "expires_in": int(expires_in),
        "expires_at_unix": sec + nsec / 1e9,
    }


def rfc3339(unix):
    """Return seconds since 1970 as RFC 3339 text in UTC, to the
    microsecond: 2026-12-06T02:19:46.5Z."""
    when = datetime.datetime.fromtimestamp(int(unix), datetime.timezone.utc)
    when = when.replace(microsecond=int(round((unix - int(unix)) * 1e6)) % 1000000)
    return when.isoformat().replace("+00:00", "Z")
