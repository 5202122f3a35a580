"""Tests of KeptConnection: token after token on one connection to the
real agent, and its reconnections against a stand-in agent that closes
connections as the real one does when they idle."""

import os
import shutil
import socket
import tempfile
import threading
import unittest

import harness

import tapis_agent


class KeptAgentTest(unittest.TestCase):
    """Against the real agent and fake tenant, a World of its own: one
    test restarts the agent."""

    def setUp(self):
        self.world = harness.World().start()
        self.addCleanup(self.world.stop)
        self.client = tapis_agent.Client(self.world.sock, timeout=harness.CALL_TIMEOUT)
        self.kept = tapis_agent.KeptConnection()
        self.addCleanup(self.kept.close)

    def token(self):
        return self.client.token("demo", None, self.kept)

    def test_one_connection(self):
        want = self.world.helper_token("demo")
        self.assertEqual(self.token(), want)
        conn = self.kept._sock
        self.assertIsNotNone(conn)
        for _ in range(50):
            self.assertEqual(self.token(), want)
        self.assertIs(self.kept._sock, conn, "a call opened a new connection")

    def test_agent_restart(self):
        self.assertEqual(self.token(), self.world.helper_token("demo"))
        self.world.restart_agent()
        with self.assertRaises(tapis_agent.LoginRequired):
            self.token()
        self.world.login("demo")
        tok = self.token()
        self.assertEqual(tok, self.world.helper_token("demo"))
        self.assertEqual(tok.tenant, "demo")

    def test_threads(self):
        want = self.world.helper_token("demo")
        got, errors = [], []

        def calls():
            try:
                for _ in range(25):
                    got.append(self.token())
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=calls) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(harness.CALL_TIMEOUT)
        self.assertEqual(errors, [])
        self.assertEqual(got, [want] * 200)

    @unittest.skipUnless(hasattr(os, "fork"), "needs fork")
    def test_fork(self):
        want = self.world.helper_token("demo")
        self.assertEqual(self.token(), want)
        conn = self.kept._sock
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own connection, the same token
            code = 1
            try:
                os.close(r)
                tok = self.token()
                ok = tok == want and self.kept._sock is not conn
                os.write(w, b"ok" if ok else b"wrong")
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            said = f.read()
        _, status = os.waitpid(pid, 0)
        self.assertEqual((said, os.waitstatus_to_exitcode(status)), (b"ok", 0))
        # The parent's connection is still its own, and still answers.
        self.assertEqual(self.token(), want)
        self.assertIs(self.kept._sock, conn)

    def test_tapipy_sources_share_one_connection(self):
        from tapis_agent._tapipy import AgentTokens

        sources = [AgentTokens("demo", client=self.client) for _ in range(3)]
        first = sources[0].token()
        conn = sources[0].kept._sock
        self.assertIsNotNone(conn)
        for source in sources:
            self.assertEqual(source.token(), first)
            self.assertIs(source.kept._sock, conn)
        auth = tapis_agent.TapisAgentAuth("demo", client=self.client)
        self.assertIs(auth.kept, sources[0].kept)


class KeptStandInAgent:
    """A stand-in agent that answers each connection's first per_conn
    requests with ANSWER and then closes it, as the agent closes a kept
    connection that has idled. per_conn 0 closes each at once."""

    def __init__(self, path, per_conn):
        self.path = path
        self.per_conn = per_conn
        self.requests = []
        self.connections = 0

    def __enter__(self):
        self.ln = socket.socket(socket.AF_UNIX)
        self.ln.bind(self.path)
        self.ln.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _serve(self):
        while True:
            try:
                conn, _ = self.ln.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as f:
                conn.settimeout(10)
                try:
                    for _ in range(self.per_conn):
                        line = f.readline()
                        if not line:
                            break
                        self.requests.append(line)
                        conn.sendall(ANSWER)
                except OSError:
                    pass  # the client went away

    def __exit__(self, *exc):
        try:
            self.ln.shutdown(socket.SHUT_RDWR)  # wakes the accept
        except OSError:
            pass
        self.ln.close()
        os.unlink(self.path)
        self.thread.join(10)


ANSWER = b'@tapis-agent/1 ok 100 1796523586.5 "a.b.c" "t1" "http://x" "u"\n'


class KeptReconnectTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tpy", dir="/tmp")
        os.chmod(self.dir, 0o700)
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "agent.sock")
        self.kept = tapis_agent.KeptConnection()
        self.addCleanup(self.kept.close)

    def test_reconnects_when_closed(self):
        with KeptStandInAgent(self.path, 2) as agent:
            c = tapis_agent.Client(self.path, timeout=5)
            for _ in range(5):
                self.assertEqual(c.token("t1", 60, self.kept), "a.b.c")
            self.kept.close()
        self.assertEqual(agent.requests, [b"@tapis-agent/1 keep t1 60\n"] * 5)
        self.assertEqual(agent.connections, 3)

    def test_closed_at_once(self):
        with KeptStandInAgent(self.path, 0):
            with self.assertRaises(tapis_agent.AgentNotRunning) as cm:
                tapis_agent.Client(self.path, timeout=5).token("t1", 60, self.kept)
        # Closed before the request was read: a reset, or no answer.
        self.assertIn("closed the connection", cm.exception.message)

    def test_follows_the_socket_path(self):
        other = os.path.join(self.dir, "other.sock")
        with KeptStandInAgent(self.path, 10) as first, KeptStandInAgent(other, 10) as second:
            tapis_agent.Client(self.path, timeout=5).token("t1", 60, self.kept)
            tapis_agent.Client(other, timeout=5).token("t1", 60, self.kept)
            self.kept.close()
        self.assertEqual((len(first.requests), len(second.requests)), (1, 1))

    def test_refuses_a_symlink(self):
        real = os.path.join(self.dir, "real.sock")
        os.symlink(real, self.path)
        with KeptStandInAgent(real, 10) as agent:
            with self.assertRaises(tapis_agent.SocketNotYours):
                tapis_agent.Client(self.path, timeout=5).token("t1", 60, self.kept)
        self.assertEqual(agent.requests, [])


if __name__ == "__main__":
    unittest.main()
