"""The package as installed from the wheel: where it comes from, its
version, its typing marker, and that it stays standard library only and
Python 3.8 syntax."""

import ast
import glob
import importlib.util
import os
import sys
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
