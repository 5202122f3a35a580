"""tapis_agent inside a real IPython kernel, as a Jupyter notebook uses it."""

import json
import os
import queue
import sys
import unittest

import harness

try:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
except ImportError:  # pragma: no cover - CI installs python3-jupyter-client
    KernelManager = None

KERNEL_TIMEOUT = 60.0


@unittest.skipIf(
    KernelManager is None,
    "jupyter_client is not importable: install python3-jupyter-client and python3-ipykernel (.ci/run does)",
)
class KernelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = harness.World().start()
        try:
            # The kernel runs this interpreter, that of the venv the wheel
            # is installed in, as a kernel of a user's venv does; it sees
            # the agent's socket, as a notebook server started from a login
            # shell would.
            kernels = os.path.join(cls.world.dir, "kernels")
            os.makedirs(os.path.join(kernels, "venv"))
            with open(os.path.join(kernels, "venv", "kernel.json"), "w") as f:
                json.dump(
                    {
                        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                        "display_name": "Python (venv)",
                        "language": "python",
                    },
                    f,
                )
            env = cls.world.env()
            cls.km = KernelManager(
                kernel_name="venv",
                kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]),
                connection_file=os.path.join(cls.world.dir, "kernel.json"),
            )
            # The kernel's own chatter (debugger warnings) goes to a log.
            cls.kernel_log = os.path.join(cls.world.dir, "kernel.log")
            with open(cls.kernel_log, "wb") as log:
                cls.km.start_kernel(env=env, stderr=log)
            cls.kc = cls.km.client()
            cls.kc.start_channels()
            cls.kc.wait_for_ready(timeout=KERNEL_TIMEOUT)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        kc = getattr(cls, "kc", None)
        if kc is not None:
            kc.stop_channels()
        km = getattr(cls, "km", None)
        if km is not None and km.has_kernel:
            km.shutdown_kernel(now=True)
        cls.world.stop()

    def run_cell(self, code):
        """Execute code in the kernel; return its status, stdout and the
        error name if any."""
        out = []

        def hook(msg):
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])

        try:
            reply = self.kc.execute_interactive(code, timeout=KERNEL_TIMEOUT, output_hook=hook)
        except (TimeoutError, queue.Empty):
            self.fail("the kernel did not finish %r within %gs" % (code, KERNEL_TIMEOUT))
        content = reply["content"]
        return content["status"], "".join(out), content.get("ename", "")

    def test_token_in_kernel(self):
        status, out, ename = self.run_cell("import tapis_agent\nprint(tapis_agent.token())")
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


if __name__ == "__main__":
    unittest.main()
