"""Logging in from Python: the password by getpass (with no terminal it
reads stdin, as a kernel's input box feeds it), three tries, the device
code, and starting an agent when none runs. Each login runs in a child
Python without a controlling terminal, as a user's script would."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import harness

import tapis_agent


class LoginTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = harness.World(nouser=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.world.stop()

    def python(self, code, stdin="", env=None):
        """Run code in a child Python, detached from any terminal; return
        its CompletedProcess."""
        return subprocess.run(
            [sys.executable, "-c", "import tapis_agent\n" + code],
            input=stdin,
            env=env or self.world.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            universal_newlines=True,
            timeout=harness.CALL_TIMEOUT,
            start_new_session=True,
        )

    def state(self, tenant):
        return {t["tenant"]: t["state"] for t in self.world.status()["tenants"]}[tenant]

    def logged_out_after(self, tenant):
        self.addCleanup(self.world.run, "logout", tenant)

    def test_password(self):
        self.logged_out_after("idle")
        p = self.python('t = tapis_agent.login("idle")\nprint(t["state"])', "demo\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Password for demo@idle: ", p.stderr)  # getpass's prompt
        self.assertIn("logged in to idle as demo", p.stdout)
        self.assertTrue(p.stdout.endswith("ready\n"), p.stdout)
        self.assertNotIn("demo\n", p.stderr.replace("Password for demo@idle: ", ""))
        self.assertEqual(self.state("idle"), "ready")

    def test_asks_again(self):
        self.logged_out_after("idle")
        p = self.python('tapis_agent.login("idle")', "wrong\ndemo\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Tapis refused the username or password for idle; try again (2 of 3).", p.stdout)
        self.assertEqual(self.state("idle"), "ready")

    def test_three_tries(self):
        p = self.python(
            'try:\n    tapis_agent.login("idle")\nexcept tapis_agent.BadCredentials as e:\n    print("ERR", e.code, e)',
            "a\nb\nc\nd\n",
        )
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("(2 of 3)", p.stdout)
        self.assertIn("(3 of 3)", p.stdout)
        self.assertEqual(p.stderr.count("Password for demo@idle: "), 3)
        self.assertIn("ERR bad_credentials Tapis refused the username or password for idle 3 times; not logged in", p.stdout)
        self.assertIn('tapis_agent.login("idle", username=...)', p.stdout)
        self.assertEqual(self.state("idle"), "login_required")

    def test_username_asked(self):
        self.logged_out_after("nouser")
        p = self.python('tapis_agent.login("nouser")', "demo\ndemo\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Username for nouser: ", p.stdout + p.stderr)
        self.assertIn("logged in to nouser as demo", p.stdout)

    def test_bad_input(self):
        cases = [
            ("empty password", 'tapis_agent.login("idle")', "\n", "ValueError: empty password; not logged in to idle"),
            ("tenant not a name", "tapis_agent.login(7)", "", "TypeError: tenant must be a tenant name"),
        ]
        for name, code, stdin, want in cases:
            with self.subTest(name):
                p = self.python(code, stdin)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(want, p.stderr)
        self.assertEqual(self.state("demo"), "ready")

    def test_device_code(self):
        # An OAuth client of the user's, made with the fake tenant's API.
        req = urllib.request.Request(
            self.world.base_url + "/v3/oauth2/clients",
            data=b"{}",
            headers={"X-Tapis-Token": self.world.helper_token("demo"), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=harness.CALL_TIMEOUT) as resp:
            c = json.load(resp)["result"]
        self.logged_out_after("idle")
        code = "tapis_agent.login('idle', device=True, client_id=%r, client_key=%r)" % (c["client_id"], c["client_key"])
        p = self.python(code)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"To log in to idle, open\n\n    http://127\.0\.0\.1:\d+/v3/oauth2/device\?client_id=")
        self.assertRegex(p.stdout, r"and enter the code\n\n    \S+\n")
        self.assertIn("logged in to idle as demo with the device code", p.stdout)
        self.assertNotIn(c["client_key"], p.stdout + p.stderr)
        self.assertEqual(self.state("idle"), "ready")

    def test_device_code_without_client(self):
        # No client named anywhere: the agent needs an access token once,
        # which the login asks for with getpass (stdin, with no terminal).
        self.logged_out_after("idle")
        token = self.world.helper_token("demo")
        p = self.python("tapis_agent.login('idle', device=True)", token + "\n")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("this host has no OAuth client of the agent yet", p.stdout)
        self.assertIn("/v3/oauth2/webapp", p.stdout)
        self.assertIn("Access token for idle (input hidden): ", p.stderr)  # getpass's prompt
        self.assertIn("logged in to idle as demo with the device code", p.stdout)
        self.assertNotIn(token, p.stdout + p.stderr)
        self.assertEqual(self.state("idle"), "ready")
        # Again: the agent has its client now, and asks for no token.
        p = self.python("tapis_agent.login('idle', device=True)")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("Access token", p.stderr)
        self.assertIn("logged in to idle as demo with the device code", p.stdout)

    def test_logout(self):
        self.world.login("idle")
        p = self.python('print(tapis_agent.logout("idle")["state"])')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "tapis_agent: logged out of idle\nlogin_required\n")
        self.assertEqual(self.state("idle"), "login_required")

    def test_starts_agent(self):
        # No agent at the well-known socket and no TAPIS_AGENT_SOCK: login
        # starts one there, as tapis-token login does.
        runtime = tempfile.mkdtemp(prefix="tpy", dir="/tmp")
        self.addCleanup(shutil.rmtree, runtime, True)
        os.chmod(runtime, 0o700)
        env = self.world.env(XDG_RUNTIME_DIR=runtime)
        del env["TAPIS_AGENT_SOCK"]
        sock = os.path.join(runtime, "tapis-agent", "agent.sock")

        # The test changes env below: stop the agent it started with a copy
        # that still names that agent's socket.
        stop_env = dict(env)

        def stop():
            subprocess.run([self.world.path("tapis-agent"), "stop"], env=stop_env, timeout=harness.CALL_TIMEOUT, capture_output=True)

        self.addCleanup(stop)
        p = self.python('tapis_agent.login("demo")\nprint(tapis_agent.token("demo").tenant)', "demo\n", env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("tapis_agent: started an agent (socket %s)" % sock, p.stdout)
        self.assertTrue(p.stdout.endswith("demo\n"))
        st = tapis_agent.Client(sock).status()
        self.assertNotEqual(st["pid"], self.world.agent.pid)
        # With TAPIS_AGENT_SOCK set the user chose an agent: none is
        # started elsewhere.
        env["TAPIS_AGENT_SOCK"] = os.path.join(runtime, "other", "agent.sock")
        p = self.python('tapis_agent.login("demo")', "demo\n", env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("AgentNotRunning", p.stderr)
        self.assertIn("tapis-agent start", p.stderr)


if __name__ == "__main__":
    unittest.main()
