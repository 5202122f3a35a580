"""tapipy.tapis as far as tokens go: Tapis, TapisResult, Operation.

Written from the facts of shared/tapipy.md (tapipy 1.9.0, tapis.py):
- the constructor turns a string access_token into a TapisResult with
  claims, expires_at and an expires_in closure (add_claims_to_token), and
  fetches the tenants (and sites) when given a base_url but no tenant_id;
- every operation checks the token first: with less than 5 s left it
  calls refresh_user_tokens() and swallows any error, then sends whatever
  get_access_jwt() returns, after running the pre-request plugin
  callables;
- refresh_user_tokens() needs client_id, client_key and a refresh token;
- upload() has its own 5-second check, which calls refresh_tokens(), and
  runs no plugin hooks.
Only the operations the tests use are defined.
"""

import base64
import datetime
import importlib
import json

import requests

from . import errors


class TapisResult:
    """A result object: its fields as attributes."""

    PRIMITIVE_TYPES = [int, str, bool, float, type(None)]

    def __init__(self, *args, **kwargs):
        for k, v in kwargs.items():
            if isinstance(v, dict):
                v = TapisResult(**v)
            setattr(self, k, v)

    def __repr__(self):
        return "TapisResult(%s)" % ", ".join(sorted(vars(self)))


def _decode_unverified(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def get_basic_auth_header(username, password):
    return "Basic " + base64.b64encode(("%s:%s" % (username, password)).encode()).decode()


# The operations defined, per resource: (operation_id, method, path).
_SPECS = {
    "authenticator": [
        ("get_userinfo", "GET", "/v3/oauth2/userinfo"),
        ("create_token", "POST", "/v3/oauth2/tokens"),
    ],
    "tenants": [("list_tenants", "GET", "/v3/tenants")],
    "sites": [("list_sites", "GET", "/v3/sites")],
}


class Tapis:
    def __init__(
        self,
        base_url=None,
        username=None,
        password=None,
        tenant_id=None,
        access_token=None,
        refresh_token=None,
        jwt=None,
        verify=True,
        client_id=None,
        client_key=None,
        plugins=[],
        **kwargs
    ):
        self.base_url = base_url
        self.username = username
        self.password = password
        self.tenant_id = tenant_id
        if access_token and type(access_token) == str:
            access_token = self.add_claims_to_token(TapisResult(access_token=access_token))
        self.access_token = access_token
        if refresh_token and type(refresh_token) == str:
            refresh_token = self.add_claims_to_token(TapisResult(refresh_token=refresh_token))
        self.refresh_token = refresh_token
        self.jwt = jwt
        self.verify = verify
        self.client_id = client_id
        self.client_key = client_key
        self.requests_session = requests.Session()
        for resource, ops in _SPECS.items():
            setattr(self, resource, Resource(resource, ops, self))
        self.plugins = plugins
        self.plugin_on_call_pre_request_callables = []
        self.plugin_on_call_post_request_callables = []
        # tapipy fetches the tenants (and sites) to derive tenant_id from
        # base_url.
        if base_url and not tenant_id:
            self.sites.list_sites()
            for t in self.tenants.list_tenants():
                if getattr(t, "base_url", None) == base_url:
                    self.tenant_id = t.tenant_id
        for p in plugins:
            importlib.import_module(p).on_tapis_client_instantiation(
                self,
                base_url=base_url,
                username=username,
                password=password,
                tenant_id=tenant_id,
                access_token=access_token,
                refresh_token=refresh_token,
                jwt=jwt,
                verify=verify,
                client_id=client_id,
                client_key=client_key,
                plugins=plugins,
                **kwargs
            )

    def get_tokens(self, **kwargs):
        return self.get_user_tokens(**kwargs)

    def get_user_tokens(self, **kwargs):
        username = kwargs.get("username", self.username)
        password = kwargs.get("password", self.password)
        if not username or not password:
            if self.refresh_token:
                return self.refresh_tokens(tenant_id=self.tenant_id)
            raise errors.InvalidInputError("Either a refresh_token or a username and password are required for get_tokens().")
        headers = {}
        if self.client_id and self.client_key:
            headers["Authorization"] = get_basic_auth_header(self.client_id, self.client_key)
        tokens = self.authenticator.create_token(
            username=username, password=password, grant_type="password", _tapis_headers=headers
        )
        self.set_access_token(tokens.access_token)
        self.refresh_token = None
        if hasattr(tokens, "refresh_token"):
            self.set_refresh_token(tokens.refresh_token)

    def add_claims_to_token(self, token):
        def _expires_in():
            return token_with_claims.expires_at - datetime.datetime.now(datetime.timezone.utc)

        token_with_claims = token
        try:
            token_str = token_with_claims.access_token
        except AttributeError:
            token_str = token_with_claims.refresh_token
        token_with_claims.claims = _decode_unverified(token_str)
        if hasattr(token_with_claims, "expires_in"):
            token_with_claims.original_ttl = token_with_claims.expires_in
        else:
            token_with_claims.original_ttl = -1
        token_with_claims.expires_at = datetime.datetime.fromtimestamp(
            token_with_claims.claims["exp"], datetime.timezone.utc
        )
        token_with_claims.expires_in = _expires_in
        return token_with_claims

    def set_access_token(self, token):
        try:
            self.access_token = self.add_claims_to_token(token=token)
        except:  # noqa: E722 - as tapipy does
            pass

    def set_refresh_token(self, token):
        self.refresh_token = token
        try:
            self.add_claims_to_token(self.refresh_token)
        except:  # noqa: E722 - as tapipy does
            pass

    def refresh_tokens(self, tenant_id=None):
        if not self.refresh_token:
            raise errors.TapyClientConfigurationError(msg="No refresh token found.")
        return self.refresh_user_tokens()

    def refresh_user_tokens(self):
        if not self.client_id:
            raise errors.TapyClientConfigurationError(msg="client_id not configure.")
        if not self.client_key:
            raise errors.TapyClientConfigurationError(msg="client_key not configure.")
        headers = {"Authorization": get_basic_auth_header(self.client_id, self.client_key)}
        if type(self.refresh_token) == str:
            refresh_token = self.refresh_token
        else:
            try:
                refresh_token = self.refresh_token.refresh_token
            except AttributeError:
                raise errors.InvalidInputError("The refresh_token must either be a string or a refresh_token object generated by tapipy.")
        tokens = self.authenticator.create_token(
            grant_type="refresh_token", refresh_token=refresh_token, _tapis_headers=headers
        )
        self.set_access_token(tokens.access_token)
        self.set_refresh_token(tokens.refresh_token)

    def get_access_jwt(self):
        if hasattr(self, "access_token") and hasattr(self.access_token, "access_token"):
            return self.access_token.access_token
        if hasattr(self, "access_token") and type(self.access_token) == str:
            return self.access_token
        if hasattr(self, "jwt"):
            return self.jwt
        return None

    def upload(self, source_file_path, system_id, dest_file_path, **kwargs):
        url = "%s/v3/files/ops/%s/%s" % (self.base_url, system_id, dest_file_path)
        headers = {}
        if self.get_access_jwt():
            if datetime.timedelta(seconds=5) > self.access_token.expires_in():
                try:
                    self.refresh_tokens()
                except:  # noqa: E722 - as tapipy does
                    pass
            headers = {"X-Tapis-Token": self.get_access_jwt()}
        headers["Accept"] = "application/json"
        headers.update(kwargs.pop("headers", {}))
        with open(source_file_path, "rb") as f:
            r = requests.Request("POST", url, files={"file": f}, headers=headers).prepare()
        # No plugin hooks here: tapipy has them commented out.
        try:
            resp = self.requests_session.send(r, verify=self.verify)
        except Exception as e:
            raise errors.BaseTapyException(msg="Unable to make request to Tapis server. Exception: %s" % e, request=r)
        return _result(resp, r)


def _result(resp, r):
    try:
        doc = resp.json()
        error_msg = doc.get("message")
        version = doc.get("version")
    except Exception:
        doc, error_msg, version = None, resp.content, None
    for status, exc in (
        (400, errors.BadRequestError),
        (401, errors.UnauthorizedError),
        (403, errors.ForbiddenError),
        (404, errors.NotFoundError),
        (503, errors.ServiceUnavailableError),
    ):
        if resp.status_code == status:
            raise exc(msg=error_msg, version=version, request=r, response=resp)
    if 500 <= resp.status_code < 600:
        raise errors.InternalServerError(msg=error_msg, version=version, request=r, response=resp)
    if resp.status_code >= 300:
        raise errors.BaseTapyException(msg=error_msg, version=version, request=r, response=resp)
    if not isinstance(doc, dict):
        return resp.content
    result = doc.get("result")
    if isinstance(result, list):
        return [TapisResult(**x) if isinstance(x, dict) else x for x in result]
    if isinstance(result, dict):
        return TapisResult(**result)
    return result


class Resource:
    def __init__(self, resource_name, ops, tapis_client):
        self.resource_name = resource_name
        self.tapis_client = tapis_client
        for op_id, method, path in ops:
            setattr(self, op_id, Operation(resource_name, op_id, method, path, tapis_client))


class Operation:
    def __init__(self, resource_name, operation_id, http_method, path_name, tapis_client):
        self.resource_name = resource_name
        self.operation_id = operation_id
        self.http_method = http_method
        self.path_name = path_name
        self.tapis_client = tapis_client

    def __call__(self, **kwargs):
        url = self.tapis_client.base_url + self.path_name
        headers = {}
        access_token = None
        if self.tapis_client.access_token:
            access_token = self.tapis_client.access_token
        elif self.tapis_client.get_access_jwt():
            access_token = self.tapis_client.get_access_jwt()
        if access_token:
            time_remaining = datetime.timedelta(days=10)
            try:
                time_remaining = access_token.expires_in()
            except:  # noqa: E722 - as tapipy does
                pass
            if datetime.timedelta(seconds=5) > time_remaining:
                if (self.resource_name == "tokens" and self.operation_id == "refresh_token") or (
                    self.resource_name == "authenticator" and self.operation_id == "create_token"
                ):
                    pass
                else:
                    try:
                        self.tapis_client.refresh_user_tokens()
                    except:  # noqa: E722 - as tapipy does: the error is swallowed
                        pass
        jwt = self.tapis_client.get_access_jwt()
        if jwt:
            headers = {"X-Tapis-Token": jwt}
        if "_tapis_headers" in kwargs:
            headers.update(kwargs.pop("_tapis_headers"))
        data = None
        if self.http_method == "POST":
            headers["Content-Type"] = "application/json"
            data = json.dumps(kwargs)
            kwargs = {}
        r = requests.Request(self.http_method, url, params=None, data=data, headers=headers).prepare()
        for f in self.tapis_client.plugin_on_call_pre_request_callables:
            f(self, r, **kwargs)
        try:
            resp = self.tapis_client.requests_session.send(r, verify=self.tapis_client.verify)
        except Exception as e:
            raise errors.BaseTapyException(msg="Unable to make request to Tapis server. Exception: %s" % e, request=r)
        for f in self.tapis_client.plugin_on_call_post_request_callables:
            f(self, resp, **kwargs)
        return _result(resp, r)
