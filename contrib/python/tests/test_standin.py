"""The tapipy stand-in (standin/tapipy) is honest: against the real fake
tenant it fails after expiry exactly as tapipy 1.9 does, swallows its
refresh error, and runs plugin hooks on operations but not on upload()."""

import datetime
import os
import sys
import tempfile
import time
import types
import unittest

import harness

if harness.STANDIN not in sys.path:
    sys.path.insert(0, harness.STANDIN)

import filesvc  # noqa: E402
from tapipy import errors  # noqa: E402
from tapipy.tapis import Tapis  # noqa: E402


# Seconds the fake's tokens live: short, so that the test sees one expire,
# with room for a busy machine between a refresh and a call.
LIFETIME = 8


def sleep_past(when):
    """Sleep until the wall clock is past when (an aware datetime): the
    tokens are real and expire by the wall clock."""
    left = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    if left > 0:
        time.sleep(left + 0.3)


class StandinTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.world = harness.World(access_ttl="%ds" % LIFETIME).start()

    @classmethod
    def tearDownClass(cls):
        cls.world.stop()

    def fresh(self):
        """Return the agent's token, valid for half its lifetime at least:
        time for a few calls."""
        return self.world.helper_token("demo", "--min-valid", "%ds" % (LIFETIME // 2))

    def upload_file(self):
        fd, path = tempfile.mkstemp(prefix="tpy-upload")
        os.write(fd, b"hello")
        os.close(fd)
        self.addCleanup(os.remove, path)
        return path

    def test_plain_client_fails_after_expiry(self):
        t = Tapis(base_url=self.world.base_url, access_token=self.fresh())

        self.addCleanup(t.requests_session.close)
        files = filesvc.mount(t)
        path = self.upload_file()
        # As tapipy: claims decoded, tenant_id derived from the tenants API.
        self.assertEqual(t.tenant_id, "demo")
        self.assertEqual(t.access_token.claims["tapis/username"], "demo")
        self.assertLessEqual(t.access_token.expires_in(), datetime.timedelta(seconds=LIFETIME))
        self.assertEqual(t.authenticator.get_userinfo().username, "demo")
        self.assertIsNone(t.upload(path, "sys", "dir/a.txt"))
        self.assertEqual(files.uploads, [("sys/dir/a.txt", files.uploads[0][1])])

        sleep_past(t.access_token.expires_at)
        # The refresh it tries is refused for want of a client and a
        # refresh token; the error is swallowed and the expired token sent.
        with self.assertRaises(errors.TapyClientConfigurationError):
            t.refresh_user_tokens()
        with self.assertRaises(errors.BadRequestError) as cm:
            t.authenticator.get_userinfo()
        self.assertEqual(cm.exception.message, "Invalid Tapis token.")
        with self.assertRaises(errors.BadRequestError) as cm:
            t.upload(path, "sys", "dir/b.txt")
        self.assertEqual(cm.exception.message, "Invalid Tapis token.")
        self.assertEqual(len(files.uploads), 1)

    def test_check_before_each_call(self):
        t = Tapis(base_url=self.world.base_url, access_token=self.fresh())

        self.addCleanup(t.requests_session.close)
        refreshes = []
        t.refresh_user_tokens = lambda: refreshes.append("user")
        t.refresh_tokens = lambda: refreshes.append("tokens")
        # With less than 5 s left, an operation refreshes first, and so
        # does upload().
        t.access_token.expires_in = lambda: datetime.timedelta(seconds=4)
        t.authenticator.get_userinfo()
        self.assertEqual(refreshes, ["user"])
        filesvc.mount(t)
        t.upload(self.upload_file(), "sys", "a.txt")
        self.assertEqual(refreshes, ["user", "tokens"])
        # A token with hours left is sent as it is.
        t.access_token.expires_in = lambda: datetime.timedelta(hours=3)
        t.authenticator.get_userinfo()
        self.assertEqual(refreshes, ["user", "tokens"])

    def test_set_access_token(self):
        t = Tapis(base_url=self.world.base_url, access_token=self.fresh())

        self.addCleanup(t.requests_session.close)
        self.world.login("demo")  # a new token
        fresh = self.fresh()
        self.assertNotEqual(t.get_access_jwt(), fresh)
        from tapipy.tapis import TapisResult

        t.set_access_token(TapisResult(access_token=fresh))
        self.assertEqual(t.get_access_jwt(), fresh)
        self.assertTrue(callable(t.access_token.expires_in))
        t.set_access_token(TapisResult(access_token="not a jwt"))  # swallowed, as tapipy does
        self.assertEqual(t.get_access_jwt(), fresh)

    def test_hooks_run_on_operations_not_upload(self):
        t = Tapis(base_url=self.world.base_url, access_token=self.fresh())

        self.addCleanup(t.requests_session.close)
        filesvc.mount(t)
        seen = []
        t.plugin_on_call_pre_request_callables.append(lambda op, r, **kw: seen.append(("pre", op.operation_id)))
        t.plugin_on_call_post_request_callables.append(lambda op, resp, **kw: seen.append(("post", resp.status_code)))
        t.authenticator.get_userinfo()
        t.upload(self.upload_file(), "sys", "a.txt")
        self.assertEqual(seen, [("pre", "get_userinfo"), ("post", 200)])

    def test_plugins(self):
        calls = []
        mod = types.ModuleType("tpy_test_plugin")
        mod.on_tapis_client_instantiation = lambda client, **kw: calls.append((client, kw))
        sys.modules["tpy_test_plugin"] = mod
        self.addCleanup(sys.modules.pop, "tpy_test_plugin")
        t = Tapis(base_url=self.world.base_url, username="u", plugins=["tpy_test_plugin"], extra=1)

        self.addCleanup(t.requests_session.close)
        self.assertEqual(len(calls), 1)
        client, kw = calls[0]
        self.assertIs(client, t)
        self.assertEqual((kw["base_url"], kw["username"], kw["extra"]), (self.world.base_url, "u", 1))
        self.assertEqual(t.plugin_on_call_pre_request_callables, [])


if __name__ == "__main__":
    unittest.main()
