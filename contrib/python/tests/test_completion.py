"""The bash completion of tapis-token and tapis-agent, run in a real bash
against the real agent."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

import harness

BASH = shutil.which("bash") or "/bin/bash"

# Sources a completion file, fills COMP_WORDS/COMP_CWORD as bash does for
# a cursor at the end of the last word, calls the function and prints
# COMPREPLY one per line.
DRIVER = r"""
source "$1" || exit 1
fn=$2; shift 2
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
"$fn" || exit 1
printf '%s\n' "${COMPREPLY[@]}"
"""


def complete(file, fn, words, env):
    """Return the completions of words (the last one being completed) and
    what bash wrote on stderr."""
    p = subprocess.run(
        [BASH, "--norc", "--noprofile", "-c", DRIVER, "bash", os.path.join(harness.COMPLETION_DIR, file), fn]
        + list(words),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=harness.CALL_TIMEOUT,
    )
    if p.returncode != 0:
        raise AssertionError("completing %r: exit %d: %s" % (words, p.returncode, p.stderr))
    return sorted(w for w in p.stdout.split("\n") if w), p.stderr


SUBCOMMANDS = ["claims", "exec", "help", "import", "lease", "login", "logout", "sbatch", "status", "version"]


class TokenCompletionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = harness.World().start()

    @classmethod
    def tearDownClass(cls):
        cls.world.stop()

    def test_tapis_token(self):
        tenants = ["demo", "idle"]  # from the running agent
        cases = [
            ("subcommands and tenants", ["tapis-token", ""], SUBCOMMANDS + tenants),
            ("prefix", ["tapis-token", "lo"], ["login", "logout"]),
            ("tenant prefix", ["tapis-token", "d"], ["demo"]),
            ("token flags", ["tapis-token", "--"], ["--csh", "--curl-config", "--env", "--header", "--help", "--json", "--min-valid", "--sh", "--version"]),
            ("min-valid value", ["tapis-token", "--min-valid", ""], ["10m", "1h", "2h", "30m", "4h", "60s"]),
            ("min-valid=value", ["tapis-token", "--min-valid", "=", "4"], ["4h"]),
            ("tenant after a flag", ["tapis-token", "--json", ""], tenants),
            ("flags after a tenant", ["tapis-token", "demo", "-"], ["--csh", "--curl-config", "--env", "--header", "--json", "--min-valid", "--sh", "-H"]),
            ("no second tenant", ["tapis-token", "demo", ""], []),
            ("login tenant", ["tapis-token", "login", ""], tenants),
            ("login tenant prefix", ["tapis-token", "login", "i"], ["idle"]),
            ("login flags", ["tapis-token", "login", "demo", "--p"], ["--password-stdin"]),
            ("login username value", ["tapis-token", "login", "--username", ""], []),
            ("login tenant after username", ["tapis-token", "login", "--username", "jdoe", ""], tenants),
            ("logout tenant", ["tapis-token", "logout", ""], tenants),
            ("claims tenant", ["tapis-token", "claims", "de"], ["demo"]),
            ("import flags", ["tapis-token", "import", "demo", "--"], ["--client-id", "--client-key-stdin", "--from-env", "--from-file", "--refresh-token"]),
            ("import --from-file path", ["tapis-token", "import", "demo", "--from-file", os.path.abspath(__file__)[:-3]], [os.path.abspath(__file__)]),
            ("status flags", ["tapis-token", "status", "-"], ["--json"]),
            ("exec tenant", ["tapis-token", "exec", ""], tenants),
            ("exec flags", ["tapis-token", "exec", "demo", "-"], ["--", "--min-valid"]),
            ("exec command", ["tapis-token", "exec", "demo", "--", "ulimi"], ["ulimit"]),
            ("status takes no tenant", ["tapis-token", "status", ""], []),
            ("version takes nothing", ["tapis-token", "version", ""], []),
        ]
        env = self.world.env()
        for name, words, want in cases:
            with self.subTest(name):
                got, stderr = complete("tapis.bash", "_tapis_token", words, env)
                self.assertEqual(got, sorted(want))
                self.assertEqual(stderr, "")

    def test_tenants_from_the_agent(self):
        # With the config out of sight, the names can only come from the
        # running agent.
        env = self.world.env(TAPIS_AGENT_CONFIG=os.path.join(self.world.dir, "absent.toml"))
        got, _ = complete("tapis.bash", "_tapis_token", ["tapis-token", "logout", ""], env)
        self.assertEqual(got, ["demo", "idle"])
        st = self.world.status()
        self.assertEqual(sorted(t["tenant"] for t in st["tenants"]), got)

    def test_registered(self):
        p = subprocess.run(
            [BASH, "--norc", "--noprofile", "-c", 'source "$1" && complete -p tapis-token', "bash",
             os.path.join(harness.COMPLETION_DIR, "tapis.bash")],
            stdout=subprocess.PIPE,
            universal_newlines=True,
            timeout=harness.CALL_TIMEOUT,
        )
        self.assertEqual(p.stdout.strip(), "complete -F _tapis_token tapis-token")


class NoAgentCompletionTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tpy", dir="/tmp")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.env = {
            "PATH": harness.bin_dir() + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.dir,
            "TAPIS_AGENT_SOCK": os.path.join(self.dir, "s", "agent.sock"),
        }

    def test_tenants_from_config(self):
        cfg = os.path.join(self.dir, "config.toml")
        with open(cfg, "w") as f:
            f.write(
                'default_tenant = "designsafe"\n'
                "[tenants.designsafe]\nusername = \"jdoe\"\n"
                '  [ tenants."tacc" ]\n'
                "[tenants.designsafe.extra]\n"
                "[other]\n"
            )
        self.env["TAPIS_AGENT_CONFIG"] = cfg
        start = time.monotonic()
        got, stderr = complete("tapis.bash", "_tapis_token", ["tapis-token", "login", ""], self.env)
        self.assertEqual(got, ["designsafe", "tacc"])
        self.assertEqual(stderr, "")
        self.assertLess(time.monotonic() - start, 5)

    def test_xdg_config_home(self):
        d = os.path.join(self.dir, "xdg", "tapis-agent")
        os.makedirs(d)
        with open(os.path.join(d, "config.toml"), "w") as f:
            f.write("[tenants.tacc]\n")
        self.env["XDG_CONFIG_HOME"] = os.path.join(self.dir, "xdg")
        got, _ = complete("tapis.bash", "_tapis_token", ["tapis-token", ""], self.env)
        self.assertEqual(got, sorted(SUBCOMMANDS + ["tacc"]))

    def test_nothing_known(self):
        got, stderr = complete("tapis.bash", "_tapis_token", ["tapis-token", "logout", ""], self.env)
        self.assertEqual(got, [])
        self.assertEqual(stderr, "")


class AgentCompletionTest(unittest.TestCase):
    def test_tapis_agent(self):
        d = tempfile.mkdtemp(prefix="tpy", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        for name in ("agent.toml", "agent.sock"):
            open(os.path.join(d, name), "w").close()
        cases = [
            ("subcommands", ["tapis-agent", ""], ["forward", "help", "serve", "start", "stop", "version"]),
            ("prefix", ["tapis-agent", "st"], ["start", "stop"]),
            ("serve flags", ["tapis-agent", "serve", "--"], ["--config", "--log-level", "--socket"]),
            ("start flags", ["tapis-agent", "start", "-"], ["--config", "--log-level", "--socket", "-c", "-q", "-s"]),
            ("stop flags", ["tapis-agent", "stop", "-"], ["--socket", "-c", "-q", "-s"]),
            ("forward flags", ["tapis-agent", "forward", "--"], ["--remote-socket", "--socket"]),
            ("log levels", ["tapis-agent", "serve", "--log-level", ""], ["debug", "error", "info", "warn"]),
            ("log level=", ["tapis-agent", "serve", "--log-level", "=", "w"], ["warn"]),
            ("config file", ["tapis-agent", "serve", "--config", d + "/agent.t"], [d + "/agent.toml"]),
            ("socket file", ["tapis-agent", "start", "-c", "--socket", d + "/agent.s"], [d + "/agent.sock"]),
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d}
        for name, words, want in cases:
            with self.subTest(name):
                got, stderr = complete("tapis.bash", "_tapis_agent", words, env)
                self.assertEqual(got, sorted(want))
                self.assertEqual(stderr, "")


if __name__ == "__main__":
    unittest.main()
