"""Tests of tapis_agent against the real agent, helper and fake tenant,
and against hostile answers from a stand-in agent."""

import datetime
import json
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import unittest
import urllib.request

import harness

import tapis_agent


class EnvCase(unittest.TestCase):
    """A test case that restores the process environment after each test."""

    def setUp(self):
        saved = dict(os.environ)

        def restore():
            os.environ.clear()
            os.environ.update(saved)

        self.addCleanup(restore)


class RealAgentTest(EnvCase):
    @classmethod
    def setUpClass(cls):
        cls.world = harness.World().start()

    @classmethod
    def tearDownClass(cls):
        cls.world.stop()

    def setUp(self):
        super().setUp()
        os.environ["TAPIS_AGENT_SOCK"] = self.world.sock

    def test_token_equals_helper(self):
        cases = [
            ("default tenant", None, []),
            ("named tenant", "demo", ["demo"]),
        ]
        for name, tenant, args in cases:
            with self.subTest(name):
                got = tapis_agent.token(tenant)
                want = self.world.helper_token(*args)
                self.assertEqual(got, want)
                self.assertEqual(got.count("."), 2, "not a JWT: %r" % got[:20])

    def test_token_info(self):
        info = tapis_agent.token_info("demo", min_valid=datetime.timedelta(minutes=30))
        self.assertEqual(info["tenant"], "demo")
        self.assertEqual(info["base_url"], self.world.base_url)
        self.assertEqual(info["username"], "demo")
        self.assertGreaterEqual(info["expires_in"], 30 * 60)
        expires = datetime.datetime.fromisoformat(info["expires_at"].replace("Z", "+00:00"))
        left = expires - datetime.datetime.now(datetime.timezone.utc)
        self.assertGreater(left, datetime.timedelta(minutes=30))

    def test_headers(self):
        h = tapis_agent.headers("demo")
        self.assertEqual(list(h), ["X-Tapis-Token"])
        self.assertEqual(h["X-Tapis-Token"], self.world.helper_token("demo"))

    def test_headers_accepted_by_tapis(self):
        # The fake tenant checks the token's signature and expiry.
        req = urllib.request.Request(self.world.base_url + "/v3/oauth2/userinfo", headers=tapis_agent.headers())
        with urllib.request.urlopen(req, timeout=harness.CALL_TIMEOUT) as resp:
            body = json.load(resp)
        self.assertEqual(body["result"]["username"], "demo")

    def test_min_valid(self):
        cases = [
            ("zero", 0, None),
            ("seconds", 600, None),
            ("fraction rounds up", 59.2, None),
            ("timedelta", datetime.timedelta(minutes=50), None),
            ("longer than tokens live", 2 * 3600, "min_valid_unsatisfiable"),
        ]
        for name, min_valid, code in cases:
            with self.subTest(name):
                if code is None:
                    info = tapis_agent.token_info("demo", min_valid=min_valid)
                    want = min_valid.total_seconds() if isinstance(min_valid, datetime.timedelta) else min_valid
                    self.assertGreaterEqual(info["expires_in"], want)
                    continue
                with self.assertRaises(tapis_agent.TapisAgentError) as cm:
                    tapis_agent.token("demo", min_valid=min_valid)
                self.assertEqual(cm.exception.code, code)
                self.assertIn("min_valid=", cm.exception.hint)
                self.assertNotIn("--min-valid", cm.exception.hint)

    def test_min_valid_refused_locally(self):
        cases = [
            ("negative", -1, ValueError),
            ("nan", float("nan"), ValueError),
            ("infinite", float("inf"), ValueError),
            ("text", "60", TypeError),
            ("bool", True, TypeError),
        ]
        for name, min_valid, exc in cases:
            with self.subTest(name):
                with self.assertRaises(exc) as cm:
                    tapis_agent.token("demo", min_valid=min_valid)
                self.assertIn("min_valid", str(cm.exception))

    def test_login_required(self):
        with self.assertRaises(tapis_agent.LoginRequired) as cm:
            tapis_agent.token("idle")
        e = cm.exception
        self.assertEqual(e.code, "login_required")
        self.assertEqual(e.hint, 'tapis_agent.login("idle")')
        self.assertIn(e.hint, str(e))

    def test_login_required_default_tenant_named(self):
        self.world.logout("demo")
        self.addCleanup(self.world.login, "demo")
        with self.assertRaises(tapis_agent.LoginRequired) as cm:
            tapis_agent.token()
        self.assertEqual(cm.exception.hint, 'tapis_agent.login("demo")')

    def test_unconfigured_tenant(self):
        # A tenant neither configured nor logged in is most often a typo:
        # UnknownTenant, not a LoginRequired that would send the user to
        # log in to https://NAME.tapis.io.
        with self.assertRaises(tapis_agent.UnknownTenant) as cm:
            tapis_agent.token("nosuch")
        e = cm.exception
        self.assertEqual(e.code, "unknown_tenant")
        self.assertIn("nosuch", e.message)
        self.assertIn("tapis_agent.status()", e.hint)
        self.assertIn('tapis_agent.login("nosuch")', e.hint)
        self.assertNotIsInstance(e, tapis_agent.LoginRequired)

    def test_token_masked(self):
        tok = tapis_agent.token("demo")
        jwt = self.world.helper_token("demo")
        self.assertIsInstance(tok, tapis_agent.Token)
        self.assertIsInstance(tok, str)
        self.assertEqual(tok, jwt)
        self.assertEqual(str(tok), jwt)
        self.assertIs(type(str(tok)), str)
        self.assertEqual(f"{tok}", jwt)
        self.assertEqual("%s" % tok, jwt)
        self.assertEqual("{}".format(tok), jwt)
        self.assertEqual(tapis_agent.headers("demo")["X-Tapis-Token"], jwt)
        self.assertIs(type(tapis_agent.headers("demo")["X-Tapis-Token"]), str)
        for shown in (repr(tok), repr([tok]), repr({"t": tok}), "%r" % tok):
            self.assertNotIn(jwt, shown)
            self.assertNotIn(jwt.split(".")[2], shown)
        self.assertIn("demo", repr(tok))
        self.assertRegex(repr(tok), r"valid for (\d+h\d+m|59m\d+s|\d+m)")
        self.assertEqual((tok.tenant, tok.base_url, tok.username), ("demo", self.world.base_url, "demo"))
        self.assertGreater(tok.expires_in(), 3000)

    def test_min_valid_longer_than_lifetime(self):
        # The fake's tokens live 1h: min_valid=2h cannot be had, and the
        # error says how long they live and what to ask instead.
        with self.assertRaises(tapis_agent.MinValidUnsatisfiable) as cm:
            tapis_agent.token("demo", min_valid=7200)
        e = cm.exception
        self.assertEqual(e.code, "min_valid_unsatisfiable")
        self.assertEqual(e.lifetime, 3600)
        self.assertIn("1h", e.message)
        self.assertIn("min_valid=7200", e.message)
        self.assertEqual(e.hint, 'ask for less: tapis_agent.token("demo", min_valid=3240)')

    def test_unknown_tenant(self):
        # The agent answers unknown_tenant to a logout of a tenant it holds
        # no session for.
        with self.assertRaises(tapis_agent.UnknownTenant) as cm:
            tapis_agent.Client().logout("nosuch")
        self.assertEqual(cm.exception.code, "unknown_tenant")
        self.assertEqual(cm.exception.status, 404)
        self.assertIn("tapis_agent.status()", cm.exception.hint)

    def test_status(self):
        st = tapis_agent.status()
        self.assertIsInstance(st, dict)
        self.assertEqual(st["pid"], self.world.agent.pid)
        self.assertEqual(st["socket"], self.world.sock)
        states = {t["tenant"]: t["state"] for t in st["tenants"]}
        self.assertEqual(states, {"demo": "ready", "idle": "login_required"})
        jwt = str(tapis_agent.token("demo"))
        self.assertNotIn(jwt, json.dumps(st))
        text, html = repr(st), st._repr_html_()
        for shown in (text, str(st), html):
            self.assertNotIn(jwt, shown)
        lines = text.splitlines()
        self.assertIn("pid %d" % self.world.agent.pid, lines[0])
        self.assertRegex(lines[1], r"^TENANT +STATE +USER +ACCESS TOKEN +NEXT REFRESH")
        self.assertRegex(lines[2], r"^demo \(default\) +ready +demo +\d\d:\d\d:\d\d \(in (59m\d\ds|1h)\) +\d\d:\d\d:\d\d \(in ")
        self.assertRegex(lines[3], r"^idle +login_required +demo( |$)")
        self.assertTrue(html.startswith("<div>"))
        self.assertEqual(html.count("<tr>"), 3)
        self.assertIn("<td>login_required</td>", html)

    def test_explicit_client_ignores_env(self):
        os.environ["TAPIS_AGENT_SOCK"] = "/nonexistent/agent.sock"
        c = tapis_agent.Client(self.world.sock, timeout=10)
        self.assertEqual(c.token(), self.world.helper_token())
        with self.assertRaises(tapis_agent.AgentNotRunning):
            tapis_agent.token()

    def test_concurrent_calls(self):
        want = self.world.helper_token()
        got, errors = [], []

        def call():
            try:
                got.append(tapis_agent.token())
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(harness.CALL_TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(got, [want] * 16)

    def test_auth_fetches_per_request(self):
        # A plain object with a headers dict is what requests hands an auth.
        class Req:
            def __init__(self):
                self.headers = {}

        self.world.login("idle")
        self.addCleanup(self.world.run, "logout", "idle")
        auth = tapis_agent.TapisAgentAuth("idle")
        first = auth(Req()).headers["X-Tapis-Token"]
        self.assertEqual(first, self.world.helper_token("idle"))
        self.world.logout("idle")
        with self.assertRaises(tapis_agent.LoginRequired):
            auth(Req())
        self.world.login("idle")
        second = auth(Req()).headers["X-Tapis-Token"]
        self.assertNotEqual(second, first)
        self.assertEqual(second, self.world.helper_token("idle"))

    def test_auth_with_requests(self):
        try:
            import requests
        except ImportError:
            self.skipTest("requests is not installed (Debian: python3-requests)")
        with requests.Session() as s:
            s.auth = tapis_agent.TapisAgentAuth(min_valid=300)
            for _ in range(2):
                r = s.get(self.world.base_url + "/v3/oauth2/userinfo", timeout=harness.CALL_TIMEOUT)
                self.assertEqual(r.status_code, 200, r.text)
                self.assertEqual(r.json()["result"]["username"], "demo")
                self.assertEqual(r.request.headers["X-Tapis-Token"], self.world.helper_token())


class NoAgentTest(EnvCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="tpy", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.environ.pop("XDG_RUNTIME_DIR", None)

    def sockdir(self, name, mode=0o700):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        os.chmod(d, mode)
        return d

    def test_not_running(self):
        stale = os.path.join(self.sockdir("stale"), "agent.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)  # bound, never listening: connections are refused
        self.addCleanup(s.close)
        cases = [
            ("no socket", os.path.join(self.sockdir("empty"), "agent.sock")),
            ("no directory", os.path.join(self.dir, "missing", "agent.sock")),
            ("stale socket", stale),
        ]
        for name, path in cases:
            with self.subTest(name):
                os.environ["TAPIS_AGENT_SOCK"] = path
                with self.assertRaises(tapis_agent.AgentNotRunning) as cm:
                    tapis_agent.token()
                e = cm.exception
                self.assertNotIsInstance(e, tapis_agent.SocketDirUnsafe)
                self.assertEqual(e.code, "agent_unreachable")
                self.assertIn(os.path.dirname(path) if name == "no directory" else path, e.message)
                self.assertIn("tapis-agent start", e.hint)
                self.assertIn("TAPIS_AGENT_SOCK", e.hint)

    def test_unsafe_dir(self):
        real = self.sockdir("real")
        link = os.path.join(self.dir, "link")
        os.symlink(real, link)
        cases = [
            ("group and other bits", self.sockdir("open", 0o755), "chmod 0700"),
            ("group bits only", self.sockdir("group", 0o750), "chmod 0700"),
            ("symlink", link, "not a directory"),
        ]
        if os.getuid() == 0:
            foreign = self.sockdir("foreign")
            os.chown(foreign, 65534, 65534)
            cases.append(("another owner", foreign, "owned by uid 65534"))
        for name, d, want in cases:
            with self.subTest(name):
                os.environ["TAPIS_AGENT_SOCK"] = os.path.join(d, "agent.sock")
                with self.assertRaises(tapis_agent.SocketDirUnsafe) as cm:
                    tapis_agent.status()
                self.assertIsInstance(cm.exception, tapis_agent.AgentNotRunning)
                self.assertIn(d, cm.exception.message)
                self.assertIn(want, str(cm.exception))

    def test_unsafe_dir_refused_before_connecting(self):
        # An agent that would answer is still not asked through an open
        # directory.
        d = self.sockdir("open", 0o755)
        with FakeAgent(os.path.join(d, "agent.sock"), [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"]) as fa:
            with self.assertRaises(tapis_agent.SocketDirUnsafe):
                tapis_agent.Client(fa.path).status()
        self.assertEqual(fa.requests, [])


class SocketPathTest(EnvCase):
    def test_discovery(self):
        uid = os.getuid()
        cases = [
            ("explicit", {"TAPIS_AGENT_SOCK": "/x/a.sock", "XDG_RUNTIME_DIR": "/run/user/7"}, "/x/a.sock"),
            ("runtime dir", {"XDG_RUNTIME_DIR": "/run/user/7"}, "/run/user/7/tapis-agent/agent.sock"),
            ("empty variables", {"TAPIS_AGENT_SOCK": "", "XDG_RUNTIME_DIR": ""}, "/tmp/tapis-agent-%d/agent.sock" % uid),
            ("nothing set", {}, "/tmp/tapis-agent-%d/agent.sock" % uid),
        ]
        for name, env, want in cases:
            with self.subTest(name):
                os.environ.pop("TAPIS_AGENT_SOCK", None)
                os.environ.pop("XDG_RUNTIME_DIR", None)
                os.environ.update(env)
                self.assertEqual(tapis_agent.socket_path(), want)

    def test_macos(self):
        os.environ.pop("TAPIS_AGENT_SOCK", None)
        os.environ.pop("XDG_RUNTIME_DIR", None)
        os.environ["HOME"] = "/Users/u"
        platform = sys.platform
        sys.platform = "darwin"
        try:
            got = tapis_agent.socket_path()
        finally:
            sys.platform = platform
        self.assertEqual(got, "/Users/u/Library/Application Support/tapis-agent/agent.sock")

    def test_default_ignores_explicit(self):
        os.environ["TAPIS_AGENT_SOCK"] = "/x/a.sock"
        os.environ["XDG_RUNTIME_DIR"] = "/run/user/7"
        self.assertEqual(tapis_agent.default_socket_path(), "/run/user/7/tapis-agent/agent.sock")


# HOLD as a FakeAgent answer: read the request, then answer nothing until
# the FakeAgent is closed.
HOLD = object()


class FakeAgent:
    """A stand-in agent on a Unix socket that answers each connection with
    the next canned bytes (None: close at once) and records the requests."""

    def __init__(self, path, answers):
        self.path = path
        self.answers = list(answers)
        self.requests = []
        self.release = threading.Event()

    def __enter__(self):
        self.ln = socket.socket(socket.AF_UNIX)
        self.ln.bind(self.path)
        self.ln.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _serve(self):
        try:
            self._answer_all()
        finally:
            # Calls past the canned answers find no agent, at once.
            self.ln.close()

    def _answer_all(self):
        for answer in self.answers:
            try:
                conn, _ = self.ln.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                if answer is None:
                    continue
                req = b""
                # A token frame ends at its LF, an HTTP request's head at
                # its blank line.
                while not (req.endswith(b"\n") if req.startswith(b"@") else b"\r\n\r\n" in req):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    req += chunk
                self.requests.append(req.decode("latin-1"))
                if answer is HOLD:
                    self.release.wait(30)
                    continue
                try:
                    conn.sendall(answer)
                except OSError:
                    pass  # the client stopped reading, as it should for huge answers

    def __exit__(self, *exc):
        self.release.set()
        self.ln.close()
        os.unlink(self.path)
        self.thread.join(10)


def http(status, body, extra=b""):
    if isinstance(body, str):
        body = body.encode()
    return b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status,
        len(body),
        extra,
        body,
    )


def frame(*fields):
    return ("@tapis-agent/1 " + " ".join(fields) + "\n").encode()


OK = frame("ok", "100", "1796523586.5", '"a.b.c"', '"t1"', '"http://x"', '"u"')


class AnswerTest(unittest.TestCase):
    """The client against hostile or unusual answers."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tpy", dir="/tmp")
        os.chmod(self.dir, 0o700)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "agent.sock")

    def ask(self, answer, call=lambda c: c.token("t1", min_valid=90.5)):
        with FakeAgent(self.path, [answer]) as fa:
            try:
                return call(tapis_agent.Client(self.path, timeout=0.5 if answer is HOLD else 5))
            finally:
                self.requests = fa.requests

    def status(self, answer):
        return self.ask(answer, lambda c: c.status())

    def test_request(self):
        tok = self.ask(OK)
        self.assertEqual(tok, "a.b.c")
        self.assertEqual((tok.tenant, tok.base_url, tok.username), ("t1", "http://x", "u"))
        self.assertEqual(tok.expires_at.timestamp(), 1796523586.5)
        self.assertEqual(self.requests, ["@tapis-agent/1 token t1 91\n"])
        info = self.ask(OK, lambda c: c.token_info(None, None))
        self.assertEqual(self.requests, ["@tapis-agent/1 token - -\n"])
        self.assertEqual(
            info,
            {
                "access_token": "a.b.c",
                "tenant": "t1",
                "base_url": "http://x",
                "username": "u",
                "expires_in": 100,
                "expires_at": "2026-12-06T02:19:46.500000Z",
            },
        )

    def test_tenant_refused_before_asking(self):
        for name in ("a b", "a\nb", '"', "-", "x" * 600):
            with self.subTest(name):
                with self.assertRaises(tapis_agent.TapisAgentError) as cm:
                    tapis_agent.Client(self.path).token(name)
                self.assertEqual(cm.exception.code, "bad_request")

    def test_quoted_fields(self):
        msg = r'"caf\u00e9 \x41\t\"q\" \\ \U0001F600 \101"'
        with self.assertRaises(tapis_agent.TapisAgentError) as cm:
            self.ask(frame("error", "forbidden", msg, '"h"'))
        self.assertEqual(cm.exception.message, 'caf\u00e9 A\t"q" \\ \U0001F600 A')
        self.assertEqual(cm.exception.hint, "h")

    def test_errors(self):
        cases = [
            ("login required", frame("error", "login_required", '"t1: log in"', '"tapis-token login t1"'), tapis_agent.LoginRequired, "login_required"),
            ("unknown tenant", frame("error", "unknown_tenant", '"m"', '"h"'), tapis_agent.UnknownTenant, "unknown_tenant"),
            ("upstream", frame("error", "upstream_unavailable", '"m"', '"h"'), tapis_agent.UpstreamUnavailable, "upstream_unavailable"),
            ("other code", frame("error", "forbidden", '"m"', '"h"'), tapis_agent.TapisAgentError, "forbidden"),
            ("empty token", frame("ok", "1", "2", '""', '"t"', '"b"', '"u"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("wrong version", OK.replace(b"/1", b"/2"), tapis_agent.TapisAgentError, "bad_answer"),
            ("seven fields", frame("ok", "1", "2", '"a"', '"t"', '"b"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("unquoted token", frame("ok", "1", "2", "a", '"t"', '"b"', '"u"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("bad expiry", frame("ok", "1", "2.", '"a"', '"t"', '"b"', '"u"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("long fraction", frame("ok", "1", "2.0123456789", '"a"', '"t"', '"b"', '"u"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("huge expiry", frame("ok", "1", "9" * 30, '"a"', '"t"', '"b"', '"u"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("bad escape", frame("error", "forbidden", r'"\q"', '"h"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("bad unicode escape", frame("error", "forbidden", r'"\uD800"', '"h"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("unterminated", frame("error", "forbidden", '"m', '"h"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("two spaces", OK.replace(b" ok ", b" ok  "), tapis_agent.TapisAgentError, "bad_answer"),
            ("code not a code", frame("error", "Forbidden!", '"m"', '"h"'), tapis_agent.TapisAgentError, "bad_answer"),
            ("HTTP answer", http(200, '{"access_token":"a.b.c"}'), tapis_agent.TapisAgentError, "bad_answer"),
            ("no line end", OK[:-1], tapis_agent.TapisAgentError, "bad_answer"),
            ("closed at once", None, tapis_agent.AgentNotRunning, "agent_unreachable"),
            ("no answer in time", HOLD, tapis_agent.TapisAgentError, "timeout"),
            ("too large", OK[:-1] + b" " * (70 << 10) + b"\n", tapis_agent.TapisAgentError, "bad_answer"),
        ]
        for name, answer, exc, code in cases:
            with self.subTest(name):
                with self.assertRaises(exc) as cm:
                    self.ask(answer)
                self.assertIs(type(cm.exception), exc)
                self.assertEqual(cm.exception.code, code)
                self.assertTrue(str(cm.exception))
                self.assertTrue(cm.exception.hint or code in ("bad_answer", "timeout"), code)

    def test_parser_refuses_garbage_cleanly(self):
        # Mutations of real answers, and random bytes: every one parses or
        # is refused with FrameError, never another exception.
        from tapis_agent import _frame

        rng = random.Random(11)
        seeds = [OK, frame("error", "forbidden", r'"caf\u00e9 \x41\t\"q\""', '"h"')]
        alphabet = b'@"\\ \nux0123456789abcdefUtokrE.-\xff\xe9'
        for i in range(5000):
            b = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                op, at = rng.randrange(3), rng.randrange(len(b) + 1)
                c = rng.choice(alphabet)
                if op == 0:
                    b.insert(at, c)
                elif op == 1 and at < len(b):
                    del b[at]
                elif at < len(b):
                    b[at] = c
            if i % 5 == 0:
                b = bytearray(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            try:
                _frame.parse_answer(bytes(b))
            except _frame.FrameError:
                pass

    def test_hints_name_python_calls(self):
        cases = [
            ("login_required", 'tapis_agent.login("t1")'),
            ("upstream_unavailable", "tapis_agent.status()"),
            ("forbidden", "h"),  # the agent's own hint: nothing to say in Python terms
        ]
        for code, want in cases:
            with self.subTest(code):
                with self.assertRaises(tapis_agent.TapisAgentError) as cm:
                    self.ask(frame("error", code, '"m"', '"h"'))
                self.assertIn(want, cm.exception.hint)
                self.assertNotIn("tapis-token", cm.exception.hint)

    def test_http_errors(self):
        err = lambda code, hint="": json.dumps({"error": {"code": code, "message": "m " + code, "hint": hint}})
        cases = [
            ("forbidden", http(403, err("forbidden", "h")), tapis_agent.TapisAgentError, "forbidden"),
            ("no error body", http(500, "oops"), tapis_agent.TapisAgentError, "bad_answer"),
            ("error not an object", http(500, '{"error":"x"}'), tapis_agent.TapisAgentError, "bad_answer"),
            ("code not a string", http(500, '{"error":{"code":7}}'), tapis_agent.TapisAgentError, "bad_answer"),
            ("200 not JSON", http(200, "\xff"), tapis_agent.TapisAgentError, "bad_answer"),
            ("200 a list", http(200, "[]"), tapis_agent.TapisAgentError, "bad_answer"),
            ("not HTTP", b"SSH-2.0-x\r\n\r\n", tapis_agent.TapisAgentError, "bad_answer"),
            ("body cut short", http(200, '{"tenants":[]}')[:-3], tapis_agent.TapisAgentError, "bad_answer"),
            ("closed at once", None, tapis_agent.AgentNotRunning, "agent_unreachable"),
            ("no answer in time", HOLD, tapis_agent.TapisAgentError, "timeout"),
        ]
        for name, answer, exc, code in cases:
            with self.subTest(name):
                with self.assertRaises(exc) as cm:
                    self.status(answer)
                self.assertIs(type(cm.exception), exc)
                self.assertEqual(cm.exception.code, code)
                self.assertTrue(str(cm.exception))
        self.assertEqual(self.requests[0].split("\r\n", 1)[0], "GET /v1/status HTTP/1.1")

    def test_http_error_fields(self):
        body = json.dumps({"error": {"code": "forbidden", "message": "not yours", "hint": "run as yourself"}})
        with self.assertRaises(tapis_agent.TapisAgentError) as cm:
            self.status(http(403, body))
        e = cm.exception
        self.assertEqual((e.code, e.message, e.hint, e.status), ("forbidden", "not yours", "run as yourself", 403))
        self.assertEqual(str(e), "not yours (hint: run as yourself)")

    def test_too_large(self):
        big = b'{"tenants":"' + b"a" * (5 << 20) + b'"}'
        with self.assertRaises(tapis_agent.TapisAgentError) as cm:
            self.status(http(200, big))
        self.assertEqual(cm.exception.code, "bad_answer")
        self.assertIn("too large", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
