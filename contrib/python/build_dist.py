"""Build the tapis_agent wheel and sdist with the project's version.

    python3 build_dist.py --version "$(git describe --tags --always --dirty)" --outdir dist

It copies this directory (without its tests) to a temporary one, writes the
version, in its PEP 440 form, into src/tapis_agent/_version.py there, and
runs `python3 -m build --no-isolation` on the copy: the build uses the
installed setuptools and needs no network, and the source tree is left as
it was. Earlier builds of the package in the output directory are removed
first, so that the directory holds one wheel and one sdist.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

_DESCRIBE = re.compile(
    r"^v?(?P<release>\d+(?:\.\d+)*)(?:-(?P<ahead>\d+)-g(?P<hash>[0-9a-f]+))?(?P<dirty>-dirty)?$"
)
_HASH = re.compile(r"^(?:g)?(?P<hash>[0-9a-f]{4,40})(?P<dirty>-dirty)?$")


def pep440(version):
    """Return the PEP 440 form of a git describe version: v1.2.3 is 1.2.3,
    v1.2.3-4-gabc1234-dirty is 1.2.3.post4+gabc1234.dirty, a bare commit
    abc1234 is 0.0.0+gabc1234, and anything else (dev) is 0.0.0.dev0."""
    version = version.strip()
    m = _DESCRIBE.match(version)
    if m:
        out = m.group("release")
        local = []
        if m.group("ahead"):
            out += ".post" + m.group("ahead")
            local.append("g" + m.group("hash"))
        if m.group("dirty"):
            local.append("dirty")
        return out + ("+" + ".".join(local) if local else "")
    m = _HASH.match(version)
    if m:
        local = ["g" + m.group("hash")]
        if m.group("dirty"):
            local.append("dirty")
        return "0.0.0+" + ".".join(local)
    return "0.0.0.dev0"


def build(version, outdir):
    outdir = os.path.abspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    for old in glob.glob(os.path.join(outdir, "tapis_agent-*")) + glob.glob(os.path.join(outdir, "tapis-agent-*")):
        os.remove(old)
    # The wheel records each file's mode as the checkout has it, and
    # setuptools writes its own files under the umask: fixed modes keep the
    # wheel the same from any checkout (make dist is reproducible; the
    # file times come from SOURCE_DATE_EPOCH).
    os.umask(0o022)
    with tempfile.TemporaryDirectory(prefix="tapis-agent-py") as tmp:
        src = os.path.join(tmp, "tapis-agent")
        shutil.copytree(
            HERE, src, ignore=shutil.ignore_patterns("tests", "__pycache__", "*.pyc", "build", "dist", "*.egg-info")
        )
        for dirpath, _, files in os.walk(src):
            os.chmod(dirpath, 0o755)
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o644)
        with open(os.path.join(src, "src", "tapis_agent", "_version.py"), "w") as f:
            f.write("# Written by make python from the project's version.\n__version__ = %r\n" % version)
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        # Debian's setuptools 66 calls its pyproject.toml support beta.
        env["PYTHONWARNINGS"] = "ignore:Support for `[tool.setuptools]`:UserWarning"
        subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", outdir, src],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
        )
    built = sorted(os.path.basename(p) for p in glob.glob(os.path.join(outdir, "tapis*agent-*")))
    for name in built:
        print(os.path.join(outdir, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", required=True, help="the project's version, as git describe prints it")
    ap.add_argument("--outdir", required=True)
    args = ap.parse_args()
    build(pep440(args.version), args.outdir)


if __name__ == "__main__":
    main()
