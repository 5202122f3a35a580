"""A stand-in for the Tapis Files service's upload, for tests: the fake
tenant serves the authenticator, tenants and sites only.

mount(t) mounts on t.requests_session a transport adapter for
BASE_URL/v3/files/ that checks the X-Tapis-Token it is sent as a Tapis
service does, by asking the fake tenant's userinfo with it, and answers
200 with the uploaded size, or the fake's 400 ("Invalid Tapis token."
for an expired token). The adapter's uploads lists (path, size) of each
upload it accepted, tokens the token of every upload it was sent.
"""

import json

import requests
import requests.adapters


class FilesAdapter(requests.adapters.BaseAdapter):
    def __init__(self, base_url):
        super().__init__()
        self.base_url = base_url
        self.uploads = []
        self.tokens = []

    def send(self, request, **kwargs):
        self.tokens.append(request.headers.get("X-Tapis-Token", ""))
        check = requests.get(
            self.base_url + "/v3/oauth2/userinfo",
            headers={"X-Tapis-Token": request.headers.get("X-Tapis-Token", "")},
            timeout=30,
        )
        resp = requests.Response()
        resp.request = request
        resp.url = request.url
        resp.headers["Content-Type"] = "application/json"
        if check.status_code != 200:
            resp.status_code = check.status_code
            resp._content = check.content
            return resp
        size = len(request.body or b"")
        path = request.url[len(self.base_url + "/v3/files/ops/") :]
        self.uploads.append((path, size))
        resp.status_code = 200
        resp._content = json.dumps(
            {"status": "success", "message": "File uploaded", "result": None, "version": "1.0"}
        ).encode()
        return resp

    def close(self):
        pass


def mount(t):
    adapter = FilesAdapter(t.base_url)
    t.requests_session.mount(t.base_url + "/v3/files/", adapter)
    return adapter
