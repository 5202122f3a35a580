"""Agent-backed tapipy clients against the real agent and fake tenant,
with tokens that live 6 seconds, through the tapipy stand-in."""

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
import unittest

import harness

if harness.STANDIN not in sys.path:
    sys.path.insert(0, harness.STANDIN)

import filesvc  # noqa: E402
from tapipy import errors  # noqa: E402
from tapipy.tapis import Tapis  # noqa: E402

import tapis_agent  # noqa: E402
from tapis_agent import _tapipy  # noqa: E402
from tapis_agent._token import claims  # noqa: E402

LIFETIME = 6


def left(jwt):
    """Return the seconds jwt has left now."""
    return claims(jwt)["exp"] - time.time()


class TapipyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = harness.World(access_ttl="%ds" % LIFETIME).start()
        cls.saved = os.environ.get("TAPIS_AGENT_SOCK")
        os.environ["TAPIS_AGENT_SOCK"] = cls.world.sock

    @classmethod
    def tearDownClass(cls):
        if cls.saved is None:
            os.environ.pop("TAPIS_AGENT_SOCK", None)
        else:
            os.environ["TAPIS_AGENT_SOCK"] = cls.saved
        cls.world.stop()

    def setUp(self):
        out = io.StringIO()
        cm = contextlib.redirect_stdout(out)
        cm.__enter__()
        self.addCleanup(cm.__exit__, None, None, None)
        self.out = out

    def closing(self, t):
        """Return t, its HTTP session closed at the end of the test."""
        self.addCleanup(t.requests_session.close)
        return t

    def upload_file(self):
        fd, path = tempfile.mkstemp(prefix="tpy-upload")
        os.write(fd, b"hello")
        os.close(fd)
        self.addCleanup(os.remove, path)
        return path

    def sent_tokens(self, t):
        """Record the token each operation of t sends and how long it had
        left then; return the list."""
        sent = []
        t.plugin_on_call_pre_request_callables.append(
            lambda op, r, **kw: sent.append((r.headers["X-Tapis-Token"], left(r.headers["X-Tapis-Token"])))
        )
        return sent

    def test_kept_client_across_lifetimes(self):
        path = self.upload_file()
        t = self.closing(tapis_agent.tapipy_client("demo"))
        p = Tapis(base_url=self.world.base_url, plugins=["tapis_agent.tapipy_plugin"])
        plain = self.closing(Tapis(base_url=self.world.base_url, access_token=str(tapis_agent.token("demo"))))
        clients = [(t, filesvc.mount(t), self.sent_tokens(t)), (p, filesvc.mount(p), self.sent_tokens(p))]
        plain_failed = None
        start = time.monotonic()
        while time.monotonic() - start < 3.5 * LIFETIME:
            for c, _, _ in clients:
                self.assertEqual(c.authenticator.get_userinfo().username, "demo")
                self.assertIsNone(c.upload(path, "sys", "dir/f.txt"))
            try:
                plain.authenticator.get_userinfo()
            except errors.BadRequestError as e:
                plain_failed = e
            time.sleep(0.7)
        # A plain client from the same token fails once it has expired;
        # the agent-backed ones went on with fresh tokens, and never sent
        # one with less than half the lifetime left.
        self.assertIsNotNone(plain_failed)
        self.assertEqual(plain_failed.message, "Invalid Tapis token.")
        for c, files, sent in clients:
            self.assertGreaterEqual(len({jwt for jwt, _ in sent}), 3, "tokens sent: %d" % len(sent))
            # A busy machine may take a moment between the hook and the send.
            self.assertGreaterEqual(min(secs for _, secs in sent), LIFETIME // 2 - 1)
            self.assertGreaterEqual(len(set(files.tokens)), 3)
            self.assertEqual(len(files.uploads), len(files.tokens))
            self.assertEqual(c._tapis_agent_tokens.want(), LIFETIME // 2)
            self.assertEqual(c.get_access_jwt(), sent[-1][0])

    def test_agent_restart(self):
        path = self.upload_file()
        t = self.closing(tapis_agent.tapipy_client("demo"))
        filesvc.mount(t)
        self.assertEqual(t.authenticator.get_userinfo().username, "demo")
        try:
            self.world.stop_agent()
            with self.assertRaises(tapis_agent.AgentNotRunning):
                t.authenticator.get_userinfo()
            self.world.start_agent()
            for call in (t.authenticator.get_userinfo, lambda: t.upload(path, "sys", "f.txt")):
                with self.assertRaises(tapis_agent.LoginRequired) as cm:
                    time.sleep(LIFETIME / 2)  # the held token nears its end: upload asks the agent
                    call()
                self.assertEqual(cm.exception.hint, 'tapis_agent.login("demo")')
        finally:
            if self.world.agent.poll() is not None:
                self.world.start_agent()
            self.world.login("demo")
        self.assertEqual(t.authenticator.get_userinfo().username, "demo")
        self.assertIsNone(t.upload(path, "sys", "f.txt"))

    def test_min_valid_clamped(self):
        t = self.closing(tapis_agent.tapipy_client("demo", min_valid=600))
        self.assertEqual(t.authenticator.get_userinfo().username, "demo")
        self.assertEqual(t._tapis_agent_tokens.want(), LIFETIME // 2)
        with self.assertRaises(tapis_agent.MinValidUnsatisfiable) as cm:
            tapis_agent.token("demo", min_valid=600)
        self.assertEqual(cm.exception.lifetime, LIFETIME)
        self.assertEqual(cm.exception.hint, 'ask for less: tapis_agent.token("demo", min_valid=%d)' % (LIFETIME * 9 // 10))

    def test_default_tenant_pinned(self):
        t = self.closing(tapis_agent.tapipy_client())
        self.assertEqual(t._tapis_agent_tokens.tenant, "demo")
        self.assertEqual(t.base_url, self.world.base_url)

    def test_plugin_tenant_by_base_url(self):
        cases = [
            ("configured", self.world.base_url, {}, "demo"),
            ("named", self.world.base_url, {"tapis_agent_tenant": "idle"}, "idle"),
        ]
        for name, base_url, kw, want in cases:
            with self.subTest(name):
                p = self.closing(Tapis(base_url=base_url, plugins=["tapis_agent.tapipy_plugin"], **kw))
                self.assertEqual(p._tapis_agent_tokens.tenant, want)
        self.assertEqual(_tapipy.tenant_for(self.world.base_url + "/"), "demo")
        self.assertEqual(_tapipy.tenant_for("https://foo.tapis.io"), "foo")
        with self.assertRaises(tapis_agent.UnknownTenant) as cm:
            _tapipy.tenant_for("http://127.0.0.1:1")
        self.assertIn("base_url", cm.exception.hint)

    def test_plugin_before_login(self):
        # A Tapis built with the plugin while the agent has no session is
        # made all the same; its calls say to log in until one is made.
        self.world.logout("demo")
        try:
            p = self.closing(Tapis(base_url=self.world.base_url, plugins=["tapis_agent.tapipy_plugin"]))
            with self.assertRaises(tapis_agent.LoginRequired) as cm:
                p.authenticator.get_userinfo()
            self.assertEqual(cm.exception.hint, 'tapis_agent.login("demo")')
        finally:
            self.world.login("demo")
        self.assertEqual(p.authenticator.get_userinfo().username, "demo")

    def test_connect_tapis(self):
        t = self.closing(tapis_agent.connect_tapis(base_url=self.world.base_url))
        self.assertEqual(t._tapis_agent_tokens.tenant, "demo")
        self.assertEqual(t.authenticator.get_userinfo().username, "demo")
        self.assertIn("connected to demo", self.out.getvalue())
        # Logged out, with the helper's username and password: it logs in
        # through the agent, asking nothing.
        self.world.logout("demo")
        self.addCleanup(self.world.login, "demo")
        t = self.closing(tapis_agent.connect_tapis(base_url=self.world.base_url, username="demo", password="demo"))
        self.assertEqual(t.authenticator.get_userinfo().username, "demo")
        self.assertEqual(self.world.status()["tenants"][0]["state"], "ready")
        before = self.world.helper_token("demo")
        self.closing(tapis_agent.connect_tapis(base_url=self.world.base_url, username="demo", password="demo", force_connect=True))
        self.assertNotEqual(self.world.helper_token("demo"), before)
        with self.assertRaises(tapis_agent.BadCredentials):
            tapis_agent.connect_tapis(base_url=self.world.base_url, username="demo", password="wrong", force_connect=True)
        with self.assertRaises(tapis_agent.UnknownTenant):
            tapis_agent.connect_tapis(base_url="http://127.0.0.1:1")


class ImportTest(unittest.TestCase):
    def run_python(self, code, path):
        env = dict(os.environ, PYTHONPATH=path)
        return subprocess.run(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60
        )

    def test_tapipy_imported_only_when_used(self):
        code = (
            "import sys, tapis_agent, tapis_agent.tapipy_plugin\n"
            "assert 'tapipy' not in sys.modules, 'imported early'\n"
            "try:\n"
            "    tapis_agent.tapipy_client('demo')\n"
            "except tapis_agent.TapisAgentError:\n"
            "    pass\n"
            "print('tapipy' in sys.modules)\n"
        )
        p = self.run_python(code, harness.STANDIN)
        self.assertEqual((p.returncode, p.stdout), (0, "True\n"), p.stderr)

    def test_without_tapipy(self):
        p = self.run_python("import tapis_agent\ntapis_agent.tapipy_client('demo')", "")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ImportError: an agent-backed tapipy client needs tapipy: pip install tapipy", p.stderr)


if __name__ == "__main__":
    unittest.main()
