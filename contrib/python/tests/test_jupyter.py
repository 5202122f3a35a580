"""tapis_agent inside a real IPython kernel, as a Jupyter notebook uses it:
the wheel installed in the kernel's venv, cells run through jupyter_client,
every output captured as a notebook would save it."""

import json
import os
import queue
import re
import sys
import time
import unittest

import harness

try:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
except ImportError:  # pragma: no cover - CI installs python3-jupyter-client
    KernelManager = None

KERNEL_TIMEOUT = 60.0

# A JWT as Tapis issues them: three base64url parts, the first two JSON.
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class Kernel:
    """A real IPython kernel running this interpreter (that of the venv the
    wheel is installed in, as a kernel of a user's venv does), with env."""

    def __init__(self, world, env):
        kernels = os.path.join(world.dir, "kernels")
        os.makedirs(os.path.join(kernels, "venv"), exist_ok=True)
        with open(os.path.join(kernels, "venv", "kernel.json"), "w") as f:
            json.dump(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python (venv)",
                    "language": "python",
                },
                f,
            )
        self.km = KernelManager(
            kernel_name="venv",
            kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]),
            connection_file=os.path.join(world.dir, "kernel-%d.json" % id(self)),
        )
        self.kc = None
        # The kernel's own chatter (debugger warnings) goes to a log.
        with open(os.path.join(world.dir, "kernel.log"), "ab") as log:
            self.km.start_kernel(env=env, stderr=log, cwd=world.dir)
        try:
            self.kc = self.km.client()
            self.kc.start_channels()
            self.kc.wait_for_ready(timeout=KERNEL_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.kc is not None:
            self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=True)

    def run(self, code, answers=()):
        """Execute code as a cell. answers feed the kernel's input requests
        (input() and getpass) in order. Return a Cell."""
        cell = Cell(code)
        answers = list(answers)

        def output(msg):
            t, c = msg["msg_type"], msg["content"]
            if t == "stream":
                cell.outputs.append(("stream:" + c["name"], c["text"]))
            elif t in ("execute_result", "display_data"):
                for mime, data in c["data"].items():
                    cell.outputs.append((t + ":" + mime, data if isinstance(data, str) else json.dumps(data)))
            elif t == "error":
                cell.outputs.append(("error", "\n".join([c["ename"], c["evalue"]] + c["traceback"])))

        def stdin(msg):
            c = msg["content"]
            cell.prompts.append((c["prompt"], c.get("password", False)))
            self.kc.input(answers.pop(0) if answers else "")

        try:
            reply = self.kc.execute_interactive(
                code, timeout=KERNEL_TIMEOUT, output_hook=output, stdin_hook=stdin, allow_stdin=True
            )
        except (TimeoutError, queue.Empty):
            raise AssertionError("the kernel did not finish %r within %gs" % (code, KERNEL_TIMEOUT))
        cell.status = reply["content"]["status"]
        cell.ename = reply["content"].get("ename", "")
        return cell


class Cell:
    def __init__(self, code):
        self.code = code
        self.outputs = []  # (kind, text), as a notebook saves them
        self.prompts = []  # (prompt, password)
        self.status = None
        self.ename = ""

    def text(self, kind=None):
        return "".join(t for k, t in self.outputs if kind is None or k == kind)

    def __repr__(self):
        return "cell %r: %s %s %r" % (self.code, self.status, self.ename, self.outputs)


@unittest.skipIf(
    KernelManager is None,
    "jupyter_client is not importable: install python3-jupyter-client and python3-ipykernel (.ci/run does)",
)
class KernelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = harness.World().start()
        try:
            # The kernel sees the agent's socket, as a notebook server
            # started from a login shell would.
            cls.kernel = Kernel(cls.world, cls.world.env())
        except BaseException:
            cls.world.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.kernel.stop()
        cls.world.stop()

    def run_cell(self, code):
        cell = self.kernel.run(code)
        return cell.status, cell.text("stream:stdout"), cell.ename

    def test_token_in_kernel(self):
        status, out, ename = self.run_cell("import tapis_agent\nprint(str(tapis_agent.token()))")
        self.assertEqual((status, ename), ("ok", ""), out)
        self.assertEqual(out.rstrip("\n"), self.world.helper_token())

    def test_kernel_uses_the_installed_package(self):
        import tapis_agent

        status, out, _ = self.run_cell("import tapis_agent, os\nprint(os.path.realpath(tapis_agent.__file__))")
        self.assertEqual(status, "ok")
        self.assertEqual(out.strip(), os.path.realpath(tapis_agent.__file__))
        self.assertFalse(out.strip().startswith(os.path.realpath(harness.PYDIR) + os.sep))

    def test_headers_in_kernel(self):
        status, out, _ = self.run_cell('import tapis_agent\nprint(tapis_agent.headers("demo")["X-Tapis-Token"])')
        self.assertEqual(status, "ok")
        self.assertEqual(out.rstrip("\n"), self.world.helper_token("demo"))

    def test_login_required_in_kernel(self):
        code = (
            "import tapis_agent\n"
            "try:\n"
            "    tapis_agent.token('idle')\n"
            "except tapis_agent.LoginRequired as e:\n"
            "    print(e.code, e.hint)\n"
        )
        status, out, _ = self.run_cell(code)
        self.assertEqual(status, "ok")
        self.assertEqual(out.strip(), 'login_required tapis_agent.login("idle")')


LIFETIME = 20  # seconds an access token of the notebook test lives


@unittest.skipIf(KernelManager is None, "jupyter_client is not importable (see KernelTest)")
class NotebookTest(unittest.TestCase):
    """A notebook's life with tokens that live 20 seconds: log in from the
    kernel, keep one agent-backed tapipy client for three lifetimes and
    more, through an agent restart and a new login, and never show a JWT
    in a cell's output unless the cell prints str(token)."""

    def setUp(self):
        self.world = harness.World(access_ttl="%ds" % LIFETIME, login=False).start()
        self.addCleanup(self.world.stop)
        # The stand-in tapipy is on the kernel's path, as a pip-installed
        # tapipy would be; the package under test is in the venv.
        self.kernel = Kernel(self.world, self.world.env(PYTHONPATH=harness.STANDIN))
        self.addCleanup(self.kernel.stop)
        self.cells = []

    def cell(self, code, answers=(), status="ok"):
        c = self.kernel.run(code, answers)
        self.cells.append(c)
        self.assertEqual(c.status, status, c)
        return c

    def test_notebook(self):
        # Log in from the kernel: getpass's prompt is the notebook's
        # password box (an input request with password set), fed through
        # the kernel's stdin channel. A wrong password is asked again.
        c = self.cell('import tapis_agent\ntapis_agent.login("demo")', ["wrong", "demo"])
        self.assertEqual(c.prompts, [("Password for demo@demo: ", True)] * 2)
        self.assertIn("try again (2 of 3)", c.text())
        self.assertIn("logged in to demo as demo", c.text())

        self.cell(
            "import filesvc\n"
            't = tapis_agent.tapipy_client("demo")\n'
            "files = filesvc.mount(t)\n"
            'with open("data.txt", "w") as f:\n'
            '    f.write("x" * 100)\n'
        )
        # A token left as a cell's last expression, the status table and a
        # traceback show no JWT.
        c = self.cell('tok = tapis_agent.token("demo")\ntok')
        self.assertRegex(c.text("execute_result:text/plain"), r"^<tapis_agent\.Token demo@demo, valid for \d+s, until ")
        c = self.cell("tapis_agent.status()")
        html = c.text("execute_result:text/html")
        self.assertIn("<table>", html)
        self.assertIn("<td>demo (default)</td><td>ready</td>", html)
        self.assertIn("TENANT", c.text("execute_result:text/plain"))

        # Calls across three lifetimes and more: every one succeeds, each
        # after the token it started with has expired.
        call = 'u = t.authenticator.get_userinfo()\nprint(u.username, t.upload("data.txt", "sys", "dir/data.txt"))'
        start = time.monotonic()
        while time.monotonic() - start < 3 * LIFETIME + 4:
            c = self.cell(call)
            self.assertEqual(c.text("stream:stdout"), "demo None\n")
            time.sleep(LIFETIME / 4)
        c = self.cell("print(len(set(files.tokens)), len(files.uploads))")
        tokens, uploads = map(int, c.text("stream:stdout").split())
        self.assertGreaterEqual(tokens, 4, "tokens used over more than three lifetimes")
        self.assertGreaterEqual(uploads, 12)

        # The agent restarts: the kept client says to log in, in Python
        # terms; after a login from the kernel it works again.
        self.world.restart_agent()
        c = self.cell("t.authenticator.get_userinfo()", status="error")
        self.assertEqual(c.ename, "LoginRequired")
        self.assertIn('tapis_agent.login("demo")', c.text("error"))
        self.cell('tapis_agent.login("demo")', ["demo"])
        c = self.cell(call)
        self.assertEqual(c.text("stream:stdout"), "demo None\n")
        time.sleep(LIFETIME / 2)
        self.assertEqual(self.cell(call).text("stream:stdout"), "demo None\n")

        # A cell written for DesignSafe's connect_tapis, with only its
        # import changed, against the fake tenant; logged out, it asks for
        # the password through the agent and keeps no token file.
        self.world.logout("demo")
        c = self.cell(
            "from tapis_agent import connect_tapis\n"
            't = connect_tapis(base_url="%s")\n'
            "print(t.authenticator.get_userinfo().username)\n" % self.world.base_url,
            ["demo"],
        )
        self.assertEqual(c.prompts, [("Password for demo@demo: ", True)])
        self.assertTrue(c.text("stream:stdout").endswith("demo\n"))
        self.assertFalse(os.path.exists(os.path.join(self.world.dir, ".tapis_tokens.json")))

        # No cell so far showed a JWT. A cell that prints str(token) does:
        # the check sees JWTs where they are.
        for c in self.cells:
            self.assertIsNone(JWT.search(c.text()), c)
        c = self.cell('print(str(tapis_agent.token("demo")))')
        self.assertRegex(c.text(), JWT)


if __name__ == "__main__":
    unittest.main()
