"""Tests of the lease-file fallback: a batch job that reaches no agent
reads the token the agent keeps for it (tapis-token lease), as
tapis-token does. The real agent writes the files."""

import os
import shutil
import tempfile
import time
import unittest

import harness
from test_client import EnvCase

import tapis_agent


class LeaseFileTest(EnvCase):
    @classmethod
    def setUpClass(cls):
        cls.world = harness.World().start()
        # A lease with an end time: no scheduler to ask.
        cls.path = cls.world.helper_token("lease", "demo", "--job", "4711.pbs01", "--until", "1h", "--min-valid", "10m")
        cls.state = os.path.join(cls.world.dir, "xdg-state")

    @classmethod
    def tearDownClass(cls):
        cls.world.stop()

    def setUp(self):
        super().setUp()
        # A compute node: no agent answers here.
        os.environ["TAPIS_AGENT_SOCK"] = os.path.join(self.world.dir, "nowhere", "agent.sock")
        os.environ["XDG_STATE_HOME"] = self.state
        os.environ.pop(tapis_agent._lease.FILE_ENV, None)
        os.environ.pop("SLURM_JOB_ID", None)
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def agent_token(self):
        return self.world.helper_token("demo", "--min-valid", "10m")

    def test_file_env(self):
        self.assertEqual(self.path, os.path.join(self.state, "tapis-agent", "jobs", "4711.pbs01", "demo.token"))
        os.environ["TAPIS_TOKEN_FILE"] = self.path
        tok = tapis_agent.token()
        self.assertEqual(str(tok), self.agent_token())
        self.assertEqual(tok.tenant, "demo")
        self.assertGreater(tok.expires_in(), 600)
        self.assertEqual(tapis_agent.headers("demo"), {"X-Tapis-Token": str(tok)})
        info = tapis_agent.token_info("demo", min_valid=600)
        self.assertEqual(info["access_token"], str(tok))
        self.assertTrue(info["expires_at"].endswith("Z"), info["expires_at"])

    def test_slurm_job_id(self):
        os.environ["SLURM_JOB_ID"] = "4711.pbs01"
        self.assertEqual(str(tapis_agent.token("demo")), self.agent_token())
        self.assertEqual(str(tapis_agent.token()), self.agent_token())

    def test_same_as_helper(self):
        env = self.world.env(TAPIS_AGENT_SOCK=os.environ["TAPIS_AGENT_SOCK"], TAPIS_TOKEN_FILE=self.path)
        p = self.world.run("demo", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        os.environ["TAPIS_TOKEN_FILE"] = self.path
        self.assertEqual(p.stdout.strip(), str(tapis_agent.token("demo")))

    def copy(self, mode=0o600, **edit):
        """Return the path of a copy of the lease file with some lines
        replaced."""
        with open(self.path) as f:
            lines = f.read().splitlines()
        out = []
        for line in lines:
            key = line.split("=", 1)[0]
            out.append("%s=%s" % (key, edit[key]) if key in edit else line)
        p = os.path.join(self.tmp, "copy.token")
        with open(p, "w") as f:
            f.write("\n".join(out) + "\n")
        os.chmod(p, mode)
        return p

    def assert_refused(self, want, **kw):
        with self.assertRaises(tapis_agent.LeaseFileError) as cm:
            tapis_agent.token(**kw)
        e = cm.exception
        self.assertIsInstance(e, tapis_agent.AgentNotRunning)
        self.assertIn(want, e.message)
        self.assertTrue(e.hint, "no hint")

    def test_refusals(self):
        cases = [
            ("lapsed", {"TAPIS_TOKEN_EXPIRES_AT": str(int(time.time()) - 90)}, 0o600, {}, "expired 1m"),
            ("too short", {}, 0o600, {"min_valid": 7200}, "less than the 2h asked"),
            ("open to others", {}, 0o644, {}, "open to other users (mode 0644)"),
            ("other tenant", {}, 0o600, {"tenant": "tacc"}, "holds a token of demo, not of tacc"),
            ("not a lease file", {"TAPIS_USERNAME": "$(rm -rf ~)"}, 0o600, {}, "not a lease file"),
        ]
        for name, edit, mode, kw, want in cases:
            with self.subTest(name):
                os.environ["TAPIS_TOKEN_FILE"] = self.copy(mode, **edit)
                self.assert_refused(want, **kw)
        os.environ["TAPIS_TOKEN_FILE"] = os.path.join(self.tmp, "none.token")
        self.assert_refused("no lease file")
        del os.environ["TAPIS_TOKEN_FILE"]
        os.environ["SLURM_JOB_ID"] = "999"
        self.assert_refused("job 999 has no lease file")

    def test_no_lease_no_fallback(self):
        # Outside a job, no agent is no agent.
        with self.assertRaises(tapis_agent.AgentNotRunning) as cm:
            tapis_agent.token()
        self.assertNotIsInstance(cm.exception, tapis_agent.LeaseFileError)


if __name__ == "__main__":
    unittest.main()
