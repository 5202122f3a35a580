"""The package as installed from the wheel: where it comes from, its
version, its typing marker, and that it stays standard library only and
Python 3.8 syntax."""

import ast
import glob
import importlib.util
import os
import subprocess
import sys
import tempfile
import sysconfig
import unittest

import harness

import tapis_agent


def _build_dist():
    spec = importlib.util.spec_from_file_location("build_dist", os.path.join(harness.PYDIR, "build_dist.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class InstalledTest(unittest.TestCase):
    def pkgdir(self):
        return os.path.dirname(os.path.realpath(tapis_agent.__file__))

    def test_installed_not_source(self):
        if sys.prefix == sys.base_prefix:
            self.skipTest("not in a venv: make pytest runs the tests in one, with the wheel installed")
        purelib = os.path.realpath(sysconfig.get_paths()["purelib"])
        self.assertEqual(os.path.dirname(self.pkgdir()), purelib)
        self.assertFalse(self.pkgdir().startswith(os.path.realpath(harness.PYDIR) + os.sep))

    def test_version_is_the_projects(self):
        want = os.environ.get("TAPIS_AGENT_VERSION")
        if not want:
            self.skipTest("TAPIS_AGENT_VERSION is not set: make pytest sets it")
        self.assertEqual(tapis_agent.__version__, _build_dist().pep440(want))

    def test_typed(self):
        self.assertTrue(os.path.isfile(os.path.join(self.pkgdir(), "py.typed")))

    def test_sources(self):
        files = sorted(glob.glob(os.path.join(self.pkgdir(), "*.py")))
        self.assertIn(os.path.join(self.pkgdir(), "__init__.py"), files)
        stdlib = getattr(sys, "stdlib_module_names", None)
        for path in files:
            with self.subTest(os.path.basename(path)):
                with open(path) as f:
                    src = f.read()
                tree = ast.parse(src, path, feature_version=(3, 8))
                if stdlib is None:
                    continue
                top = set()
                for node in tree.body:  # module-level imports only; tapipy is imported when used
                    if isinstance(node, ast.Import):
                        top.update(a.name.split(".")[0] for a in node.names)
                    elif isinstance(node, ast.ImportFrom) and node.level == 0:
                        top.add(node.module.split(".")[0])
                self.assertEqual(sorted(top - set(stdlib)), [])


# A user's script, type-checked against the installed package with
# mypy --strict: the public API is typed, and py.typed says so.
USER_SCRIPT = """
import datetime
from typing import Any, Dict, List, Optional, Tuple

import tapis_agent

tok: tapis_agent.Token = tapis_agent.token("demo", min_valid=datetime.timedelta(minutes=5))
jwt: str = str(tok)
left: Optional[float] = tok.expires_in()
when: Optional[datetime.datetime] = tok.expires_at
h: Dict[str, str] = tapis_agent.headers("demo", min_valid=60)
info: Dict[str, Any] = tapis_agent.token_info()
st: tapis_agent.Status = tapis_agent.status()
rows: List[Tuple[str, ...]] = st.rows()
html: str = st._repr_html_()
try:
    tapis_agent.token("demo", min_valid=600)
except tapis_agent.MinValidUnsatisfiable as e:
    life: Optional[int] = e.lifetime
    code: str = e.code
    hint: str = e.hint
t: Any = tapis_agent.tapipy_client("demo", min_valid=30)
t2: Any = tapis_agent.connect_tapis(base_url="https://designsafe.tapis.io", username="jdoe")
t3: Any = tapis_agent.Client("/run/user/1000/tapis-agent/agent.sock", timeout=5.0).token("demo")
kept = tapis_agent.KeptConnection()
t4: tapis_agent.Token = tapis_agent.Client().token("demo", 60, kept)
kept.close()
tenant: Dict[str, Any] = tapis_agent.login("demo", device=True)
tapis_agent.logout("demo")
"""


class TypedTest(unittest.TestCase):
    def test_mypy_strict(self):
        try:
            import mypy  # noqa: F401
        except ImportError:
            self.skipTest("mypy is not installed (Debian: python3-mypy; .ci/run installs it)")
        d = tempfile.mkdtemp(prefix="tpy-mypy")
        self.addCleanup(__import__("shutil").rmtree, d, True)
        path = os.path.join(d, "notebook_code.py")
        with open(path, "w") as f:
            f.write(USER_SCRIPT)

        def mypy():
            return subprocess.run(
                [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.8", "--cache-dir", os.path.join(d, "cache"), path],
                cwd=d,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                universal_newlines=True,
                timeout=300,
            )

        p = mypy()
        self.assertEqual(p.returncode, 0, p.stdout)
        # The check can fail: a wrong type is reported.
        with open(path, "a") as f:
            f.write("wrong: int = tapis_agent.token()\n")
        p = mypy()
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('Incompatible types in assignment (expression has type "Token", variable has type "int")', p.stdout)


class VersionTest(unittest.TestCase):
    def test_pep440(self):
        pep440 = _build_dist().pep440
        cases = [
            ("v1.2.3", "1.2.3"),
            ("1.2", "1.2"),
            ("v1.2.3-dirty", "1.2.3+dirty"),
            ("v1.2.3-4-gabc1234", "1.2.3.post4+gabc1234"),
            ("v1.2.3-4-gabc1234-dirty", "1.2.3.post4+gabc1234.dirty"),
            ("d9397bb", "0.0.0+gd9397bb"),
            ("d9397bb-dirty", "0.0.0+gd9397bb.dirty"),
            ("dev", "0.0.0.dev0"),
            ("", "0.0.0.dev0"),
        ]
        for describe, want in cases:
            with self.subTest(describe):
                self.assertEqual(pep440(describe), want)


if __name__ == "__main__":
    unittest.main()
