"""The client refuses a socket path another user could control before it
sends anything: a symlink at the socket path, a directory above it that
others may write, and a socket served by another user."""

import os
import socket
import tempfile
import threading
import unittest

import tapis_agent


class VerifyTest(unittest.TestCase):
    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="tv")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.base, ignore_errors=True))

    def listen(self, path):
        """A listener that records whether anything was sent to it."""
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(8)
        self.addCleanup(srv.close)
        got = []

        def serve():
            while True:
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                c.settimeout(2)
                try:
                    got.append(c.recv(4096))
                except OSError:
                    pass
                c.close()

        threading.Thread(target=serve, daemon=True).start()
        return got

    def test_symlinked_socket(self):
        d = os.path.join(self.base, "private")
        os.mkdir(d, 0o700)
        got = self.listen(os.path.join(d, "real.sock"))
        os.symlink(os.path.join(d, "real.sock"), os.path.join(d, "agent.sock"))
        c = tapis_agent.Client(path=os.path.join(d, "agent.sock"), timeout=5)
        with self.assertRaises(tapis_agent.SocketNotYours) as cm:
            c.token("dev")
        self.assertIn("is a symlink", str(cm.exception))
        with self.assertRaises(tapis_agent.SocketNotYours):
            c.status()
        self.assertEqual(got, [])

    def test_open_parent(self):
        open_dir = os.path.join(self.base, "open")
        os.mkdir(open_dir)
        os.chmod(open_dir, 0o777)
        d = os.path.join(open_dir, "private")
        os.mkdir(d, 0o700)
        got = self.listen(os.path.join(d, "agent.sock"))
        c = tapis_agent.Client(path=os.path.join(d, "agent.sock"), timeout=5)
        with self.assertRaises(tapis_agent.SocketNotYours) as cm:
            c.token("dev")
        self.assertIn("others may write it, and it is not sticky", str(cm.exception))
        self.assertIn("TAPIS_AGENT_SOCK", cm.exception.hint)
        self.assertEqual(got, [])


if __name__ == "__main__":
    unittest.main()
