"""The lease file of a batch job: the access token tapis-agent keeps on the
shared home for a job (tapis-token lease), which a job reads when no agent
answers, as tapis-token does (package lease of the Go code).

The file is a list of shell variables, one a line, each value a word of
safe characters or single-quoted pieces joined by \\' for each quote::

    TAPIS_TENANT=designsafe
    TAPIS_BASE_URL=https://designsafe.tapis.io
    TAPIS_USERNAME=jdoe
    TAPIS_TOKEN=eyJ...
    TAPIS_TOKEN_EXPIRES_AT=1765000000
    TAPIS_LEASE_MIN_VALID=3600
"""

import os
import re
import stat
import time
from typing import Any, Dict, List, Optional, Tuple

from ._token import human

#: The environment variable through which a job names its lease file.
FILE_ENV = "TAPIS_TOKEN_FILE"

#: Seconds of validity a reader asks for when it names none (or the
#: lease's own minimum, when that is less), as a token request to the
#: agent does.
DEFAULT_MIN_VALID = 60

_MAX_FILE_BYTES = 64 << 10
_SAFE = re.compile(r"^[A-Za-z0-9/._\-+,:@%=]+$")
_JOB = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._\-+]{0,127}$")
_KEYS = {
    "TAPIS_TENANT": "tenant",
    "TAPIS_BASE_URL": "base_url",
    "TAPIS_USERNAME": "username",
    "TAPIS_TOKEN": "access_token",
    "TAPIS_TOKEN_EXPIRES_AT": "expires_at",
    "TAPIS_LEASE_MIN_VALID": "min_valid",
}


class Problem(Exception):
    """A lease file that cannot serve: message says which file and why,
    hint what to do on the login node."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def state_dir() -> str:
    """Return the directory of lease files: $XDG_STATE_HOME/tapis-agent/jobs,
    else ~/.local/state/tapis-agent/jobs."""
    state = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "tapis-agent", "jobs")


def path(tenant: Optional[str]) -> Optional[str]:
    """Return the lease file this process names, or None: $TAPIS_TOKEN_FILE,
    else in a Slurm job ($SLURM_JOB_ID) the file of tenant in the job's
    directory; with tenant None, the only lease file there."""
    p = os.environ.get(FILE_ENV, "")
    if p:
        return p
    job = os.environ.get("SLURM_JOB_ID", "")
    if not _JOB.match(job):
        return None
    d = os.path.join(state_dir(), job)
    if tenant:
        return os.path.join(d, tenant + ".token")
    try:
        found = sorted(n[: -len(".token")] for n in os.listdir(d) if n.endswith(".token") and not n.startswith("."))
    except OSError:
        found = []
    if not found:
        raise Problem(
            "job %s has no lease file in %s" % (job, d),
            "on the login node, before the job starts: tapis-token lease TENANT --job %s (or submit with tapis-token sbatch)" % job,
        )
    if len(found) > 1:
        raise Problem(
            "job %s has lease files for several tenants (%s) in %s" % (job, ", ".join(found), d),
            "name the tenant: tapis_agent.token(%r)" % found[0],
        )
    return os.path.join(d, found[0] + ".token")


def _unquote(raw: str) -> Optional[str]:
    """Undo the shell quoting the agent writes, or return None."""
    if not raw.startswith("'"):
        return raw if _SAFE.match(raw) else None
    out: List[str] = []
    s = raw
    while s:
        if s.startswith("\\'"):
            out.append("'")
            s = s[2:]
        elif s[0] == "'":
            end = s.find("'", 1)
            if end < 0:
                return None
            out.append(s[1:end])
            s = s[end + 1 :]
        else:
            return None
    return "".join(out)


def parse(data: bytes) -> Dict[str, Any]:
    """Return the fields of a lease file; raise ValueError for anything
    that is not one."""
    if len(data) > _MAX_FILE_BYTES:
        raise ValueError("over %d bytes; not a lease file" % _MAX_FILE_BYTES)
    fields: Dict[str, Any] = {}
    for i, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        key, sep, raw = line.partition("=")
        val = _unquote(raw)
        if not sep or val is None:
            raise ValueError("line %d is not NAME=VALUE; not a lease file" % i)
        if key not in _KEYS:
            raise ValueError("line %d: unknown name %r; not a lease file" % (i, key))
        fields[_KEYS[key]] = val
    try:
        fields["expires_at"] = int(fields.get("expires_at", ""))
        fields["min_valid"] = int(fields.get("min_valid", "0"))
    except ValueError:
        raise ValueError("no valid TAPIS_TOKEN_EXPIRES_AT or TAPIS_LEASE_MIN_VALID; not a lease file") from None
    if fields["expires_at"] <= 0 or fields["min_valid"] < 0 or not fields.get("access_token") or not fields.get("tenant"):
        raise ValueError("no TAPIS_TOKEN, TAPIS_TENANT or TAPIS_TOKEN_EXPIRES_AT; not a lease file")
    fields.setdefault("base_url", "")
    fields.setdefault("username", "")
    return fields


def _read_own(p: str) -> bytes:
    """Read the file at p, refusing one that is not a regular file of the
    user's, or that others may read or write."""
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise Problem(
            "no lease file %s" % p, "on the login node: tapis-token lease --job JOBID keeps it; is the job's lease over?"
        ) from None
    except OSError as e:
        raise Problem("reading lease file %s: %s" % (p, e.strerror or e), "check " + FILE_ENV) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Problem("lease file %s is not a regular file" % p, FILE_ENV + " must name a file that tapis-token lease keeps")
        if st.st_uid != os.getuid():
            raise Problem(
                "lease file %s is owned by uid %d, not by you" % (p, st.st_uid),
                "a token file of another user is not yours to use; lease your own: tapis-token lease --job JOBID",
            )
        if st.st_mode & 0o077:
            raise Problem(
                "lease file %s is open to other users (mode %04o)" % (p, stat.S_IMODE(st.st_mode)),
                "remove it and lease again: tapis-token lease --job JOBID writes it with mode 0600",
            )
        chunks = []
        size = 0
        while size <= _MAX_FILE_BYTES:
            b = os.read(fd, 65536)
            if not b:
                break
            chunks.append(b)
            size += len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read(tenant: Optional[str], min_valid: Optional[int], now: Optional[float] = None) -> Optional[Tuple[str, Dict[str, Any]]]:
    """Return (path, answer) for the lease file this process names, the
    answer shaped as the agent's token answer, valid for at least
    min_valid seconds (None: DEFAULT_MIN_VALID, or the lease's minimum
    when less); None when the process names no lease file. Raise Problem
    when the file cannot serve."""
    p = path(tenant)
    if p is None:
        return None
    try:
        f = parse(_read_own(p))
    except (ValueError, UnicodeDecodeError) as e:
        raise Problem("lease file %s: %s" % (p, e), FILE_ENV + " must name a file that tapis-token lease keeps") from None
    if tenant and f["tenant"] != tenant:
        raise Problem(
            "lease file %s holds a token of %s, not of %s" % (p, f["tenant"], tenant),
            "ask for %s, or lease a token of %s for the job too" % (f["tenant"], tenant),
        )
    if min_valid is None:
        min_valid = DEFAULT_MIN_VALID
        if 0 < f["min_valid"] < min_valid:
            min_valid = f["min_valid"]
    left = f["expires_at"] - (time.time() if now is None else now)
    if left <= 0:
        raise Problem(
            "the token in lease file %s expired %s ago: the agent that keeps it stopped refreshing it" % (p, human(-left)),
            "on the login node: tapis-token status shows the lease; lease the job again with tapis-token lease %s --job JOBID" % f["tenant"],
        )
    if left < min_valid:
        raise Problem(
            "the token in lease file %s is valid for %s, less than the %s asked" % (p, human(left), human(min_valid)),
            "ask for less, or lease with a longer --min-valid on the login node; tapis-token status there shows the lease",
        )
    return p, {
        "access_token": f["access_token"],
        "tenant": f["tenant"],
        "base_url": f["base_url"],
        "username": f["username"],
        "expires_in": int(left),
        "expires_at_unix": float(f["expires_at"]),
    }
