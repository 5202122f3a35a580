"""Check the LaunchAgent as install.sh writes it, on any Unix.

    python3 contrib/launchd/verify.py BINDIR

launchd itself is macOS only; this checks what can be checked elsewhere:
the plist parses, names the agent in BINDIR once @BINDIR@ is filled in, has
the keys that keep the agent running, and the command it runs (a /bin/sh
line that opens the log and becomes the agent) really starts an agent that
answers on its socket and logs to ~/.local/state/tapis-agent/agent.log of a
fresh home, and stops cleanly on SIGTERM, as `launchctl bootout` sends.
"""

import os
import plistlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LABEL = "com.github.tapis-agent.tapis-agent"


def fail(msg):
    print("verify.py: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    bindir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "bin")
    if not os.access(os.path.join(bindir, "tapis-agent"), os.X_OK):
        fail("%s/tapis-agent is not a built binary; run make build" % bindir)
    with open(os.path.join(HERE, LABEL + ".plist"), "rb") as f:
        text = f.read().replace(b"@BINDIR@", bindir.encode())
    plist = plistlib.loads(text)
    if b"@" in text.replace(b"@BINDIR@", b""):
        fail("placeholders left after filling in @BINDIR@")
    want = {"Label": LABEL, "RunAtLoad": True, "KeepAlive": {"SuccessfulExit": False}, "Umask": 0o077}
    for key, value in want.items():
        if plist.get(key) != value:
            fail("%s is %r; want %r" % (key, plist.get(key), value))
    args = plist["ProgramArguments"]
    if args[-1] != os.path.join(bindir, "tapis-agent"):
        fail("ProgramArguments ends with %r; want the agent in %s" % (args[-1], bindir))

    with tempfile.TemporaryDirectory(prefix="tapis-launchd") as tmp:
        home = os.path.join(tmp, "home")
        os.mkdir(home, 0o700)
        sockdir = os.path.join(tmp, "s")
        os.mkdir(sockdir, 0o700)
        sock = os.path.join(sockdir, "agent.sock")
        # What launchd gives an agent: HOME, a minimal PATH, the umask.
        env = {"HOME": home, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "TAPIS_AGENT_SOCK": sock}
        old = os.umask(plist["Umask"])
        try:
            proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            os.umask(old)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with socket.socket(socket.AF_UNIX) as c:
                        c.connect(sock)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        fail("the LaunchAgent's command started no agent on %s (exit %r)" % (sock, proc.poll()))
                    time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            if proc.wait(timeout=20) != 0:
                fail("the agent exited %d on SIGTERM; want 0 (KeepAlive would restart it)" % proc.returncode)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log = os.path.join(home, ".local", "state", "tapis-agent", "agent.log")
        try:
            st = os.stat(log)
            with open(log) as f:
                body = f.read()
        except OSError as e:
            fail("no agent log: %s" % e)
        if st.st_mode & 0o077:
            fail("agent log mode %o; want private (0600)" % (st.st_mode & 0o777))
        if sock not in body:
            fail("agent log does not name the socket:\n" + body)
    print("launchd plist OK")


if __name__ == "__main__":
    main()
