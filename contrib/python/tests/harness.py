"""A world for the tests: the real tapis-fake, tapis-agent and tapis-token.

World.start() runs tapis-fake with user demo/demo, writes a config naming
it (tenants "demo", the default, and "idle", never logged in; with
nouser=True also "nouser", which names no username), starts
tapis-agent serve on a socket in a fresh short directory, and logs in to
"demo" with tapis-token. World.stop() ends both processes and removes the
directory.

The binaries come from $TAPIS_AGENT_BIN (a directory holding tapis-agent,
tapis-token and tapis-fake, e.g. the bin/ that make build fills), else they
are built once per test run with go build into a temporary directory.
"""

import atexit
import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)  # contrib/python
ROOT = os.path.dirname(os.path.dirname(PYDIR))
COMPLETION_DIR = os.path.join(ROOT, "contrib", "completion")

# The stand-in for tapipy (see standin/README.md): tests that use it put
# this directory on sys.path, or on the PYTHONPATH of what they start.
STANDIN = os.path.join(HERE, "standin")

# The tests use the installed package (make pytest installs the wheel into
# a fresh venv), never the source directory.

# Bounds on waiting for the real processes; generous for a busy machine.
START_TIMEOUT = 20.0
CALL_TIMEOUT = 30.0

_built = None


def bin_dir():
    """Return the directory holding the three binaries, building them once
    if $TAPIS_AGENT_BIN is not set."""
    global _built
    d = os.environ.get("TAPIS_AGENT_BIN")
    if d:
        for name in ("tapis-agent", "tapis-token", "tapis-fake"):
            if not os.access(os.path.join(d, name), os.X_OK):
                raise RuntimeError("TAPIS_AGENT_BIN=%s holds no executable %s; run make build" % (d, name))
        return os.path.abspath(d)
    if _built is None:
        d = tempfile.mkdtemp(prefix="tapis-py-bin")
        atexit.register(shutil.rmtree, d, True)
        subprocess.run(
            ["go", "build", "-o", d + "/", "./cmd/tapis-agent", "./cmd/tapis-token", "./cmd/tapis-fake"],
            cwd=ROOT,
            check=True,
            timeout=600,
        )
        _built = d
    return _built


def _read_line(proc, timeout):
    """Return the first line proc writes to stdout, within timeout."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise RuntimeError("tapis-fake printed no URL within %gs" % timeout)
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError("tapis-fake exited before printing its URL")
            buf += chunk
    finally:
        sel.close()
    return buf.split(b"\n", 1)[0].decode()


class World:
    """One fake tenant, one agent, one socket. Not safe for concurrent
    use."""

    def __init__(self, access_ttl="1h", login=True, nouser=False):
        self.access_ttl = access_ttl
        self.nouser = nouser
        self.login_at_start = login
        self.bin = bin_dir()
        # AF_UNIX paths are limited to 108 bytes: keep the directory short.
        self.dir = tempfile.mkdtemp(prefix="tpy", dir="/tmp")
        self.sock = os.path.join(self.dir, "s", "agent.sock")
        self.config = os.path.join(self.dir, "config.toml")
        self.fake = None
        self.agent = None
        self.base_url = None

    def path(self, name):
        return os.path.join(self.bin, name)

    def env(self, **extra):
        """Return the environment of every process the tests start."""
        env = {
            "PATH": self.bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "TAPIS_AGENT_SOCK": self.sock,
            "TAPIS_AGENT_CONFIG": self.config,
            "XDG_CONFIG_HOME": os.path.join(self.dir, "xdg-config"),
            "XDG_STATE_HOME": os.path.join(self.dir, "xdg-state"),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        env.update(extra)
        return env

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        with open(os.path.join(self.dir, "fake.log"), "wb") as log:
            self.fake = subprocess.Popen(
                [self.path("tapis-fake"), "-tenant", "demo", "-user", "demo:demo", "-access-ttl", self.access_ttl, "-device-approve-after", "1s"],
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.base_url = _read_line(self.fake, START_TIMEOUT)
        with open(self.config, "w") as f:
            f.write(
                'default_tenant = "demo"\n\n'
                '[tenants.demo]\nbase_url = "%s"\nusername = "demo"\n\n'
                '[tenants.idle]\nbase_url = "%s"\nusername = "demo"\n' % (self.base_url, self.base_url)
                + ('\n[tenants.nouser]\nbase_url = "%s"\n' % self.base_url if self.nouser else "")
            )
        self.agent_log = os.path.join(self.dir, "agent.log")
        self.start_agent()
        if self.login_at_start:
            self.login("demo")

    def start_agent(self):
        """Start tapis-agent serve on the socket and wait until it answers."""
        with open(self.agent_log, "ab") as log:
            self.agent = subprocess.Popen(
                [self.path("tapis-agent"), "serve", "--socket", self.sock, "--config", self.config],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.wait_ready()

    def stop_agent(self):
        """Stop the agent (SIGTERM) and wait until it has exited: its
        sessions are gone."""
        self.agent.send_signal(signal.SIGTERM)
        self.agent.wait(timeout=START_TIMEOUT)

    def restart_agent(self):
        """Stop the agent and start a new one on the same socket, logged
        in to nothing."""
        self.stop_agent()
        self.start_agent()

    def wait_ready(self):
        """Wait until the agent answers a status call. Polling with a
        deadline: the agent is a real external process."""
        import tapis_agent

        client = tapis_agent.Client(self.sock, timeout=5)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.agent.poll() is not None:
                raise RuntimeError("tapis-agent exited with %d:\n%s" % (self.agent.returncode, self.log()))
            try:
                client.status()
                return
            except tapis_agent.AgentNotRunning:
                if time.monotonic() > deadline:
                    raise RuntimeError("tapis-agent did not answer within %gs:\n%s" % (START_TIMEOUT, self.log()))
                time.sleep(0.05)

    def run(self, *args, input=None, env=None):
        """Run tapis-token with args and return the CompletedProcess."""
        return subprocess.run(
            [self.path("tapis-token")] + list(args),
            input=input,
            env=env or self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=CALL_TIMEOUT,
        )

    def login(self, tenant):
        p = self.run("login", tenant, "--password-stdin", input="demo\n")
        if p.returncode != 0:
            raise RuntimeError("tapis-token login %s: exit %d: %s" % (tenant, p.returncode, p.stderr))

    def logout(self, tenant):
        p = self.run("logout", tenant)
        if p.returncode != 0:
            raise RuntimeError("tapis-token logout %s: exit %d: %s" % (tenant, p.returncode, p.stderr))

    def helper_token(self, *args):
        """Return what tapis-token prints for args, without the newline."""
        p = self.run(*args)
        if p.returncode != 0:
            raise RuntimeError("tapis-token %s: exit %d: %s" % (" ".join(args), p.returncode, p.stderr))
        return p.stdout.rstrip("\n")

    def status(self):
        return json.loads(self.helper_token("status", "--json"))

    def log(self):
        try:
            with open(self.agent_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        for proc in (self.agent, self.fake):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.fake is not None and self.fake.stdout:
            self.fake.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)
