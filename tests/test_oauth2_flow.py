"""The mock authorization server alone, over HTTP: discovery, PKCE authorization, tokens,
refresh rotation, client credentials, DCR, introspection, revocation, userinfo, and each OAuth
error case (RFC 6749, 7636, 8414, 7591, 7662, 7009, 8707, 9207)."""

from __future__ import annotations

import secrets
import time
import urllib.parse

import pytest

import harness
from harness import (
    CONFIDENTIAL_CLIENT,
    CONFIDENTIAL_SECRET,
    DEFAULT_REDIRECT,
    PUBLIC_CLIENT,
    READ_ONLY_CLIENT,
    SECOND_PUBLIC_CLIENT,
    SERVICE_CLIENT,
    SERVICE_SECRET,
    oauth_error,
    pkce_pair,
    verify_jwt,
)

RESOURCE = "http://127.0.0.1:3003/mcp"


@pytest.fixture(autouse=True)
def fresh_state(auth_server, request):
    """Each test starts from the configured state (clients, tokens, lifetimes, faults)."""
    if auth_server.control.enabled:
        auth_server.control.reset()
    elif not auth_server.managed and request.node.get_closest_marker("extra_clients"):
        pytest.skip("needs the suite's test clients (private config or /control/clients)")
    yield


def assert_oauth_error(resp, error, status=400):
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in statuses, f"expected {status} {error}, got {resp.status_code}: {resp.text[:400]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    errors = error if isinstance(error, tuple) else (error,)
    assert oauth_error(resp) in errors, f"expected error {error}, got {resp.text[:400]}"
    assert "no-store" in resp.headers.get("Cache-Control", ""), "token-endpoint errors must not be cached"


def assert_redirect_error(auth_server, resp, error, state):
    params = auth_server.redirect_params(resp, DEFAULT_REDIRECT, state)
    assert params.get("error") == error, params
    assert "code" not in params, params
    return params


def assert_error_page(resp):
    """RFC 6749 §4.1.2.1: never redirect to an unverified client/redirect URI."""
    assert resp.status_code == 400, f"{resp.status_code}: {resp.text[:300]}"
    assert "Location" not in resp.headers, resp.headers.get("Location")
    assert resp.headers.get("Content-Type", "").startswith("text/html"), resp.headers


# ------------------------------------------------------------------------------------------------
# discovery


def test_healthz(auth_server):
    resp = auth_server.http.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"])
def test_discovery_document(auth_server, path):
    resp = auth_server.http.get(path)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    meta = resp.json()
    issuer = meta["issuer"]
    assert issuer == auth_server.base_url
    for key, suffix in (
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("jwks_uri", None),
        ("registration_endpoint", "/register"),
        ("introspection_endpoint", "/introspect"),
        ("revocation_endpoint", "/revoke"),
        ("userinfo_endpoint", "/userinfo"),
    ):
        assert meta[key].startswith(issuer + "/"), (key, meta.get(key))
        if suffix:
            assert meta[key] == issuer + suffix
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    grants = set(meta["grant_types_supported"])
    assert {"authorization_code", "refresh_token", "client_credentials"} <= grants
    assert not grants & {"implicit", "password"}
    assert set(harness.ALL_SCOPES) <= set(meta["scopes_supported"])
    assert {"none", "client_secret_basic", "client_secret_post"} <= set(meta["token_endpoint_auth_methods_supported"])
    assert meta.get("client_id_metadata_document_supported") is True
    if path.endswith("openid-configuration"):
        # OIDC Discovery §3 required members
        assert "public" in meta["subject_types_supported"]
        assert "RS256" in meta["id_token_signing_alg_values_supported"]


def test_jwks_publishes_signing_keys(auth_server):
    jwks_uri = auth_server.endpoint("jwks_uri")
    for url in (jwks_uri, auth_server.base_url + "/jwks", auth_server.base_url + "/.well-known/jwks.json"):
        resp = auth_server.http.get(url)
        assert resp.status_code == 200, url
        keys = resp.json()["keys"]
        assert keys, url
        for key in keys:
            assert key["kid"]
            assert key["kty"] == "RSA"
            assert key.get("use", "sig") == "sig"
            assert "d" not in key and "p" not in key, "private key material published"


# ------------------------------------------------------------------------------------------------
# authorization code + PKCE


def test_pkce_authorization_and_token_exchange(auth_server):
    authz = auth_server.authorize(scope="mcp:read offline_access", resource=RESOURCE)
    assert set(authz.params) >= {"code", "state", "iss"}
    resp = auth_server.exchange(authz, resource=RESOURCE)
    assert resp.status_code == 200, resp.text
    assert "no-store" in resp.headers.get("Cache-Control", "")
    body = resp.json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 3600
    assert body["access_token"] and body["refresh_token"]
    assert set(body["scope"].split()) == {"mcp:read", "offline_access"}


def test_access_token_verifies_against_jwks(auth_server):
    tokens = auth_server.login(scope="mcp:read mcp:write offline_access", resource=RESOURCE, user="alice")
    claims = verify_jwt(auth_server, tokens["access_token"], audience=RESOURCE)
    assert claims["iss"] == auth_server.issuer
    assert claims["aud"] == RESOURCE or claims["aud"] == [RESOURCE]
    assert claims["sub"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert claims["name"] == "Alice Example"
    assert claims["client_id"] == PUBLIC_CLIENT
    assert set(claims["scope"].split()) == {"mcp:read", "mcp:write", "offline_access"}
    now = time.time()
    assert claims["exp"] > now and claims["iat"] <= now + 5 and claims["nbf"] <= now + 5
    assert claims["jti"]
    # a tampered token fails independent verification
    head, payload, sig = tokens["access_token"].split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    import jwt

    with pytest.raises(jwt.InvalidTokenError):
        verify_jwt(auth_server, ".".join([head, payload, flipped]), audience=RESOURCE)


def test_access_token_audience_defaults_to_client_id(auth_server):
    tokens = auth_server.login(scope="mcp:read")
    claims = verify_jwt(auth_server, tokens["access_token"], audience=None)
    assert claims["aud"] in (PUBLIC_CLIENT, [PUBLIC_CLIENT])


def test_id_token_carries_nonce(auth_server):
    nonce = secrets.token_urlsafe(12)
    tokens = auth_server.login(scope="openid email profile", resource=RESOURCE, nonce=nonce, user="bob")
    assert "id_token" in tokens
    claims = verify_jwt(auth_server, tokens["id_token"], audience=PUBLIC_CLIENT)
    assert claims["nonce"] == nonce
    assert claims["sub"] == "bob"
    assert claims["email"] == "bob@example.com"


def test_no_id_token_without_openid(auth_server):
    tokens = auth_server.login(scope="mcp:read")
    assert "id_token" not in tokens


def test_login_hint_selects_user(auth_server):
    tokens = auth_server.login(scope="mcp:read", resource=RESOURCE, user="bob")
    claims = verify_jwt(auth_server, tokens["access_token"], audience=RESOURCE)
    assert claims["sub"] == "bob" and claims["email"] == "bob@example.com"


def test_loopback_redirect_port_may_differ(auth_server):
    """RFC 8252 §7.3: the port of a loopback redirect may vary."""
    redirect = "http://127.0.0.1:45123/callback"
    authz = auth_server.authorize(redirect_uri=redirect, scope="mcp:read")
    resp = auth_server.exchange(authz)
    assert resp.status_code == 200, resp.text


def test_userinfo(auth_server):
    tokens = auth_server.login(scope="openid email profile mcp:read", resource=RESOURCE, user="alice")
    resp = auth_server.http.get(
        auth_server.endpoint("userinfo_endpoint"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert info["sub"] == "alice"
    assert info["email"] == "alice@example.com"
    assert info["name"] == "Alice Example"


def test_userinfo_needs_a_valid_token(auth_server):
    url = auth_server.endpoint("userinfo_endpoint")
    resp = auth_server.http.get(url)
    assert resp.status_code == 401
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
    resp = auth_server.http.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers.get("WWW-Authenticate", "")


# ------------------------------------------------------------------------------------------------
# refresh


def test_refresh_rotation_and_reuse_detection(auth_server):
    first = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE)
    resp = auth_server.refresh(first["refresh_token"])
    assert resp.status_code == 200, resp.text
    assert "no-store" in resp.headers.get("Cache-Control", "")
    second = resp.json()
    assert second["refresh_token"] and second["refresh_token"] != first["refresh_token"], "refresh token not rotated"
    assert second["access_token"] != first["access_token"]
    verify_jwt(auth_server, second["access_token"], audience=RESOURCE)
    # reuse of the rotated token: theft; the whole family dies (OAuth 2.1 §4.3.1)
    assert_oauth_error(auth_server.refresh(first["refresh_token"]), "invalid_grant")
    assert_oauth_error(auth_server.refresh(second["refresh_token"]), "invalid_grant")
    assert not auth_server.is_active(second["refresh_token"])


def test_refresh_scope_may_narrow_not_widen(auth_server):
    tokens = auth_server.login(scope="mcp:read mcp:write offline_access", resource=RESOURCE)
    resp = auth_server.refresh(tokens["refresh_token"], scope="mcp:read")
    assert resp.status_code == 200, resp.text
    narrowed = resp.json()
    claims = verify_jwt(auth_server, narrowed["access_token"], audience=RESOURCE)
    assert claims["scope"].split() == ["mcp:read"]
    resp = auth_server.refresh(narrowed["refresh_token"], scope="mcp:read mcp:audit")
    assert_oauth_error(resp, "invalid_scope")


@pytest.mark.extra_clients
def test_refresh_token_bound_to_client(auth_server):
    tokens = auth_server.login(scope="mcp:read offline_access")
    resp = auth_server.refresh(tokens["refresh_token"], client_id=SECOND_PUBLIC_CLIENT)
    assert_oauth_error(resp, "invalid_grant")


# ------------------------------------------------------------------------------------------------
# client credentials


@pytest.mark.parametrize("method", ["basic", "post"])
def test_client_credentials(auth_server, method):
    resp = auth_server.client_credentials(scope="mcp:read mcp:audit", resource=RESOURCE, method=method)
    assert resp.status_code == 200, resp.text
    assert "no-store" in resp.headers.get("Cache-Control", "")
    body = resp.json()
    assert body["token_type"].lower() == "bearer"
    assert "refresh_token" not in body
    claims = verify_jwt(auth_server, body["access_token"], audience=RESOURCE)
    assert claims["client_id"] == SERVICE_CLIENT
    assert set(claims["scope"].split()) == {"mcp:read", "mcp:audit"}


def test_client_credentials_wrong_secret(auth_server):
    resp = auth_server.client_credentials(scope="mcp:read", secret="wrong-" + secrets.token_hex(4))
    assert_oauth_error(resp, "invalid_client", status=401)
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")
    resp = auth_server.client_credentials(scope="mcp:read", secret="wrong", method="post")
    assert_oauth_error(resp, "invalid_client", status=(400, 401))


def test_client_credentials_refused_for_public_client(auth_server):
    resp = auth_server.token_request({"grant_type": "client_credentials", "client_id": PUBLIC_CLIENT, "scope": "mcp:read"})
    assert_oauth_error(resp, ("unauthorized_client", "invalid_client"), status=(400, 401))


def test_client_credentials_scope_outside_client(auth_server):
    resp = auth_server.client_credentials(scope="openid mcp:read")
    assert_oauth_error(resp, "invalid_scope")


# ------------------------------------------------------------------------------------------------
# dynamic client registration (RFC 7591)


def register(auth_server, metadata, **kw):
    return auth_server.http.post(auth_server.endpoint("registration_endpoint"), json=metadata, **kw)


def test_register_confidential_client(auth_server):
    meta = {
        "client_name": "pytest confidential",
        "redirect_uris": ["https://app.example.test/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "mcp:read mcp:write",
    }
    resp = register(auth_server, meta)
    assert resp.status_code == 201, resp.text
    assert "no-store" in resp.headers.get("Cache-Control", "")
    body = resp.json()
    assert body["client_id"]
    assert body["client_secret"]
    assert isinstance(body["client_id_issued_at"], int) and abs(body["client_id_issued_at"] - time.time()) < 60
    assert "client_secret_expires_at" in body  # RFC 7591 §3.2.1: required with a secret
    assert body["redirect_uris"] == meta["redirect_uris"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert set(body["grant_types"]) == {"authorization_code", "refresh_token"}


def test_register_public_client_and_use_it(auth_server):
    resp = register(
        auth_server,
        {
            "client_name": "pytest public",
            "redirect_uris": ["http://127.0.0.1:3001/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert "client_secret" not in body or not body["client_secret"]
    tokens = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE, client_id=body["client_id"])
    claims = verify_jwt(auth_server, tokens["access_token"], audience=RESOURCE)
    assert claims["client_id"] == body["client_id"]


def test_register_client_credentials_only_client(auth_server):
    resp = register(
        auth_server,
        {
            "client_name": "pytest service",
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "mcp:read",
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    resp = auth_server.client_credentials(
        scope="mcp:read", resource=RESOURCE, client_id=body["client_id"], secret=body["client_secret"], method="post"
    )
    assert resp.status_code == 200, resp.text


def test_register_grants_allowed_subset_of_scopes(auth_server):
    resp = register(
        auth_server,
        {
            "redirect_uris": ["http://127.0.0.1:3001/callback"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp:read no-such-scope",
        },
    )
    assert resp.status_code == 201, resp.text
    assert "no-such-scope" not in resp.json().get("scope", "")


@pytest.mark.parametrize(
    "uris",
    [
        ["http://evil.example.com/cb"],  # plain http, not loopback
        ["/relative/callback"],
        ["https://app.example.test/cb#fragment"],
        ["javascript:alert(1)"],
        [],
    ],
    ids=["http-non-loopback", "relative", "fragment", "javascript", "empty"],
)
def test_register_bad_redirect_uris(auth_server, uris):
    resp = register(auth_server, {"redirect_uris": uris, "token_endpoint_auth_method": "none"})
    expected = ("invalid_redirect_uri", "invalid_client_metadata") if not uris else "invalid_redirect_uri"
    assert_oauth_error(resp, expected)
    assert auth_server.healthy()


@pytest.mark.parametrize(
    "meta",
    [
        {"grant_types": ["password"]},
        {"grant_types": ["implicit"], "response_types": ["token"]},
        {"response_types": ["token"]},
        {"token_endpoint_auth_method": "private_key_jwt_unknown"},
        {"grant_types": "authorization_code"},
        {"client_name": 42},
        {"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"], "response_types": []},
    ],
    ids=["password-grant", "implicit", "token-response", "unknown-auth-method", "grant-not-list", "name-not-string",
         "public-client-credentials"],
)
def test_register_bad_metadata(auth_server, meta):
    body = {"redirect_uris": ["https://app.example.test/cb"], "token_endpoint_auth_method": "client_secret_basic"}
    body.update(meta)
    resp = register(auth_server, body)
    assert_oauth_error(resp, "invalid_client_metadata")
    assert auth_server.healthy()


@pytest.mark.parametrize(
    "data,ctype",
    [
        ('{"redirect_uris": ["https://app.example.test/cb"', "application/json"),
        ("[1,2,3]", "application/json"),
        ("redirect_uris=https%3A%2F%2Fapp.example.test%2Fcb", "application/x-www-form-urlencoded"),
    ],
    ids=["truncated-json", "json-array", "form-body"],
)
def test_register_malformed_body(auth_server, data, ctype):
    resp = auth_server.http.post(
        auth_server.endpoint("registration_endpoint"), data=data, headers={"Content-Type": ctype}
    )
    assert_oauth_error(resp, ("invalid_client_metadata", "invalid_request"))
    assert auth_server.healthy()


# ------------------------------------------------------------------------------------------------
# introspection (RFC 7662) and revocation (RFC 7009)


@pytest.mark.extra_clients
def test_introspection_active_and_inactive(auth_server):
    tokens = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE, user="alice")
    for auth in ((SERVICE_CLIENT, SERVICE_SECRET), (CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET)):
        resp = auth_server.introspect(tokens["access_token"], auth=auth)
        assert resp.status_code == 200, resp.text
        info = resp.json()
        assert info["active"] is True
        assert info["sub"] == "alice"
        assert info["client_id"] == PUBLIC_CLIENT
        assert set(info["scope"].split()) == {"mcp:read", "offline_access"}
        assert info["exp"] > time.time()
        assert info.get("iss", auth_server.issuer) == auth_server.issuer
    resp = auth_server.introspect(tokens["refresh_token"], hint="refresh_token")
    assert resp.status_code == 200 and resp.json()["active"] is True
    resp = auth_server.introspect("garbage-" + secrets.token_hex(8))
    assert resp.status_code == 200
    assert resp.json() == {"active": False}


def test_introspection_requires_client_authentication(auth_server):
    tokens = auth_server.login(scope="mcp:read")
    resp = auth_server.http.post(auth_server.endpoint("introspection_endpoint"), data={"token": tokens["access_token"]})
    assert resp.status_code == 401
    resp = auth_server.introspect(tokens["access_token"], auth=(SERVICE_CLIENT, "wrong-secret"))
    assert resp.status_code == 401
    assert oauth_error(resp) == "invalid_client"


def test_revoke_refresh_token_kills_family(auth_server):
    tokens = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE)
    rotated = auth_server.refresh(tokens["refresh_token"]).json()
    resp = auth_server.revoke(rotated["refresh_token"], hint="refresh_token")
    assert resp.status_code == 200, resp.text
    assert_oauth_error(auth_server.refresh(rotated["refresh_token"]), "invalid_grant")
    assert not auth_server.is_active(rotated["refresh_token"])


def test_revoke_refresh_token_kills_its_access_tokens(auth_server):
    """RFC 7009 §2.1: revoking a refresh token SHOULD also invalidate the access tokens of the
    same grant; the issue asks for the whole family to be revoked."""
    tokens = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE)
    assert auth_server.is_active(tokens["access_token"])
    assert auth_server.revoke(tokens["refresh_token"]).status_code == 200
    assert not auth_server.is_active(tokens["access_token"])


def test_revoke_access_token(auth_server):
    tokens = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE)
    resp = auth_server.revoke(tokens["access_token"], hint="access_token")
    assert resp.status_code == 200, resp.text
    assert not auth_server.is_active(tokens["access_token"])
    # userinfo also refuses the revoked token
    resp = auth_server.http.get(
        auth_server.endpoint("userinfo_endpoint"), headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert resp.status_code == 401


def test_revoke_unknown_token_is_ok(auth_server):
    resp = auth_server.revoke("unknown-" + secrets.token_hex(8))
    assert resp.status_code == 200


@pytest.mark.extra_clients
def test_revoke_other_clients_token_is_ignored(auth_server):
    tokens = auth_server.login(scope="mcp:read offline_access")
    resp = auth_server.revoke(tokens["refresh_token"], client_id=SECOND_PUBLIC_CLIENT)
    assert resp.status_code in (200, 400, 401)
    assert auth_server.is_active(tokens["refresh_token"]), "a client revoked another client's token"


# ------------------------------------------------------------------------------------------------
# /authorize errors


def test_authorize_unknown_client_shows_error_page(auth_server):
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(client_id="no-such-client", state="s", challenge=challenge)
    assert_error_page(resp)


@pytest.mark.parametrize(
    "redirect",
    ["http://127.0.0.1:3001/other", "https://evil.example.com/callback", "http://127.0.0.1:3001/callback?x=1"],
    ids=["other-path", "other-host", "extra-query"],
)
def test_authorize_unregistered_redirect_shows_error_page(auth_server, redirect):
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(redirect_uri=redirect, state="s", challenge=challenge)
    assert_error_page(resp)


def test_authorize_missing_redirect_uri_with_one_registered(auth_server):
    """With a single registered redirect URI, omitting it is allowed (RFC 6749 §3.1.2.3)
    or refused with the error page; never a redirect elsewhere."""
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(redirect_uri=None, state="s", challenge=challenge)
    if resp.status_code in (302, 303):
        assert resp.headers["Location"].startswith(DEFAULT_REDIRECT)
    else:
        assert_error_page(resp)


def test_authorize_requires_pkce(auth_server):
    state = secrets.token_urlsafe(8)
    resp = auth_server.authorize_request(state=state, challenge=None)
    assert_redirect_error(auth_server, resp, "invalid_request", state)


def test_authorize_refuses_plain_pkce(auth_server):
    state = secrets.token_urlsafe(8)
    verifier, _ = pkce_pair()
    resp = auth_server.authorize_request(state=state, challenge=verifier, method="plain")
    assert_redirect_error(auth_server, resp, "invalid_request", state)


def test_authorize_refuses_response_type_token(auth_server):
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(state=state, challenge=challenge, response_type="token")
    assert_redirect_error(auth_server, resp, "unsupported_response_type", state)


@pytest.mark.parametrize("resource", ["/mcp", "http://127.0.0.1:3003/mcp#frag", "not a uri"],
                         ids=["relative", "fragment", "garbage"])
def test_authorize_bad_resource(auth_server, resource):
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(state=state, challenge=challenge, resource=resource)
    assert_redirect_error(auth_server, resp, "invalid_target", state)


@pytest.mark.extra_clients
def test_authorize_scope_outside_client(auth_server):
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(
        client_id=READ_ONLY_CLIENT, scope="mcp:read mcp:write", state=state, challenge=challenge
    )
    assert_redirect_error(auth_server, resp, "invalid_scope", state)


def test_authorize_unknown_scope(auth_server):
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(scope="mcp:read admin:all", state=state, challenge=challenge)
    assert_redirect_error(auth_server, resp, "invalid_scope", state)


def test_authorize_duplicate_parameter(auth_server):
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(state=state, challenge=challenge, extra=[("scope", "mcp:write")])
    assert_redirect_error(auth_server, resp, "invalid_request", state)


def test_authorize_denied_login(auth_server, control):
    control.deny_next_login()
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(state=state, challenge=challenge)
    assert_redirect_error(auth_server, resp, "access_denied", state)
    # only the next one
    auth_server.authorize()


# ------------------------------------------------------------------------------------------------
# /token errors


def test_code_replay_revokes_issued_tokens(auth_server):
    authz = auth_server.authorize(scope="mcp:read offline_access", resource=RESOURCE)
    first = auth_server.exchange(authz, resource=RESOURCE)
    assert first.status_code == 200
    tokens = first.json()
    assert auth_server.is_active(tokens["access_token"])
    assert_oauth_error(auth_server.exchange(authz, resource=RESOURCE), "invalid_grant")
    # RFC 6749 §4.1.2 / OAuth 2.1: tokens issued from a replayed code are revoked
    assert not auth_server.is_active(tokens["access_token"])
    assert_oauth_error(auth_server.refresh(tokens["refresh_token"]), "invalid_grant")


def test_wrong_code_verifier(auth_server):
    authz = auth_server.authorize()
    other_verifier, _ = pkce_pair()
    assert_oauth_error(auth_server.exchange(authz, code_verifier=other_verifier), "invalid_grant")


def test_missing_code_verifier(auth_server):
    authz = auth_server.authorize()
    resp = auth_server.exchange(authz, code_verifier=None)
    assert_oauth_error(resp, ("invalid_grant", "invalid_request"))


@pytest.mark.extra_clients
def test_code_bound_to_client(auth_server):
    authz = auth_server.authorize(client_id=PUBLIC_CLIENT)
    assert_oauth_error(auth_server.exchange(authz, client_id=SECOND_PUBLIC_CLIENT), "invalid_grant")


def test_code_bound_to_redirect_uri(auth_server):
    authz = auth_server.authorize()
    resp = auth_server.exchange(authz, redirect_uri="http://127.0.0.1:3001/other")
    assert_oauth_error(resp, "invalid_grant")


def test_code_bound_to_resource(auth_server):
    authz = auth_server.authorize(resource=RESOURCE)
    resp = auth_server.exchange(authz, resource="http://127.0.0.1:9999/other")
    assert_oauth_error(resp, ("invalid_target", "invalid_grant"))


def test_unknown_code(auth_server):
    authz = auth_server.authorize()
    assert_oauth_error(auth_server.exchange(authz, code="x" + authz.code), "invalid_grant")


def test_expired_code_refresh_and_access_tokens(auth_server, control):
    """One short wait covers every expiry: code, refresh token and access token (1 s each)."""
    control.lifetimes(code_ttl="1s")
    authz = auth_server.authorize()
    control.lifetimes(access_token_ttl="1s", refresh_token_ttl="1s")
    tokens = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE)
    time.sleep(2.1)  # the one unavoidable wait: expiry must really pass on the server's clock
    assert_oauth_error(auth_server.exchange(authz), "invalid_grant")
    assert_oauth_error(auth_server.refresh(tokens["refresh_token"]), "invalid_grant")
    assert not auth_server.is_active(tokens["access_token"])
    assert not auth_server.is_active(tokens["refresh_token"])
    resp = auth_server.http.get(auth_server.endpoint("userinfo_endpoint"),
                                headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert resp.status_code == 401


def test_unsupported_grant_type(auth_server):
    resp = auth_server.token_request({"grant_type": "password", "username": "alice", "password": "x",
                                      "client_id": PUBLIC_CLIENT})
    assert_oauth_error(resp, "unsupported_grant_type")


def _bad_token_bodies(authz):
    good = {
        "grant_type": "authorization_code",
        "code": authz.code,
        "redirect_uri": authz.redirect_uri,
        "client_id": authz.client_id,
        "code_verifier": authz.verifier,
    }
    enc = urllib.parse.urlencode
    without = lambda key: enc({k: v for k, v in good.items() if k != key})  # noqa: E731
    return {
        "missing-grant-type": (without("grant_type"), "application/x-www-form-urlencoded"),
        "missing-code": (without("code"), "application/x-www-form-urlencoded"),
        "missing-client-id": (without("client_id"), "application/x-www-form-urlencoded"),
        "duplicate-grant-type": (enc(good) + "&grant_type=authorization_code", "application/x-www-form-urlencoded"),
        "duplicate-code": (enc(good) + "&code=" + authz.code, "application/x-www-form-urlencoded"),
        "malformed-escape": (enc(good) + "&x=%zz", "application/x-www-form-urlencoded"),
        "json-body": (__import__("json").dumps(good), "application/json"),
        "text-body": (enc(good), "text/plain"),
        "empty-body": ("", "application/x-www-form-urlencoded"),
    }


BAD_TOKEN_CASES = [
    "missing-grant-type",
    "missing-code",
    "missing-client-id",
    "duplicate-grant-type",
    "duplicate-code",
    "malformed-escape",
    "json-body",
    "text-body",
    "empty-body",
]


@pytest.mark.parametrize("case", BAD_TOKEN_CASES)
def test_token_bad_input(auth_server, case):
    """Bad requests get invalid_request (or invalid_client when the client cannot be
    identified), change nothing: the code is still good afterwards and the server serves."""
    authz = auth_server.authorize(scope="mcp:read")
    body, ctype = _bad_token_bodies(authz)[case]
    grants_before = auth_server.control.stats()["grants"] if auth_server.control.enabled else None
    resp = auth_server.http.post(auth_server.endpoint("token_endpoint"), data=body, headers={"Content-Type": ctype})
    expected = ("invalid_request", "invalid_client") if case == "missing-client-id" else "invalid_request"
    assert_oauth_error(resp, expected, status=(400, 401))
    assert auth_server.healthy()
    if grants_before is not None:
        assert auth_server.control.stats()["grants"] == grants_before, "a grant was counted for a bad request"
    follow = auth_server.exchange(authz)
    assert follow.status_code == 200, f"the bad request consumed or broke the code: {follow.text}"


@pytest.mark.parametrize("endpoint", ["token_endpoint", "introspection_endpoint", "revocation_endpoint",
                                      "registration_endpoint"])
def test_oversized_body(auth_server, endpoint):
    authz = auth_server.authorize(scope="mcp:read")
    url = auth_server.endpoint(endpoint)
    if endpoint == "registration_endpoint":
        body = '{"redirect_uris":["https://app.example.test/cb"],"client_name":"' + "a" * 70000 + '"}'
        headers = {"Content-Type": "application/json"}
    else:
        body = urllib.parse.urlencode({"grant_type": "authorization_code", "code": authz.code, "pad": "a" * 70000})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        resp = auth_server.http.post(url, data=body, headers=headers, auth=(SERVICE_CLIENT, SERVICE_SECRET)
                                     if endpoint == "introspection_endpoint" else None)
        assert resp.status_code in (400, 413), f"{resp.status_code}: {resp.text[:300]}"
        err = oauth_error(resp)
        assert err in ("invalid_request", "invalid_client_metadata", None), resp.text[:300]
    except harness.requests.ConnectionError:
        pass  # closing the connection on an oversized body is acceptable; serving on is what counts
    assert auth_server.healthy()
    follow = auth_server.exchange(authz)
    assert follow.status_code == 200, follow.text


def test_introspect_and_revoke_duplicate_token_parameter(auth_server):
    tokens = auth_server.login(scope="mcp:read offline_access")
    body = urllib.parse.urlencode([("token", tokens["access_token"]), ("token", tokens["refresh_token"])])
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    resp = auth_server.http.post(auth_server.endpoint("introspection_endpoint"), data=body, headers=headers,
                                 auth=(SERVICE_CLIENT, SERVICE_SECRET))
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request", resp.text
    body = urllib.parse.urlencode([("token", tokens["refresh_token"]), ("token", tokens["access_token"]),
                                   ("client_id", PUBLIC_CLIENT)])
    resp = auth_server.http.post(auth_server.endpoint("revocation_endpoint"), data=body, headers=headers)
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request", resp.text
    assert auth_server.is_active(tokens["refresh_token"]) and auth_server.is_active(tokens["access_token"])


# ------------------------------------------------------------------------------------------------
# the control API itself


def test_control_stats_count_and_mask(auth_server, control):
    tokens = auth_server.login(scope="mcp:read offline_access")
    assert auth_server.refresh(tokens["refresh_token"]).status_code == 200
    stats = control.stats()
    assert stats["grants"].get("refresh_token") == 1
    assert stats["grants"].get("authorization_code") == 1
    assert stats["requests"].get("token") == 2
    recent = stats["last_requests"]["token"]
    text = repr(recent)
    assert tokens["refresh_token"] not in text, "refresh token in clear in /control/stats"
    refreshes = [r for r in recent if r.get("form", {}).get("grant_type") == "refresh_token"]
    assert refreshes and refreshes[-1]["form"]["refresh_token"] != tokens["refresh_token"]


def test_control_token_fault(auth_server, control):
    control.fault(endpoint="token", count=1, status=503, error="temporarily_unavailable", mode="status")
    authz = auth_server.authorize()
    resp = auth_server.exchange(authz)
    assert resp.status_code == 503 and oauth_error(resp) == "temporarily_unavailable"
    # only one: the same code still works (the fault answered before any processing)
    assert auth_server.exchange(authz).status_code == 200


def test_control_rotate_key_keeps_old_key_published(auth_server, control):
    before = auth_server.login(scope="mcp:read", resource=RESOURCE)
    import jwt

    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]
    new_kid = control.rotate_key()
    assert new_kid and new_kid != old_kid
    after = auth_server.login(scope="mcp:read", resource=RESOURCE)
    assert jwt.get_unverified_header(after["access_token"])["kid"] == new_kid
    verify_jwt(auth_server, before["access_token"], audience=RESOURCE)
    verify_jwt(auth_server, after["access_token"], audience=RESOURCE)


def test_control_short_access_token_lifetime(auth_server, control):
    control.lifetimes(access_token_ttl="2s")
    tokens = auth_server.login(scope="mcp:read", resource=RESOURCE)
    assert tokens["expires_in"] <= 2
    claims = harness.unverified_claims(tokens["access_token"])
    assert claims["exp"] - claims["iat"] <= 2


# ------------------------------------------------------------------------------------------------
# servers with their own configuration: consent page, initial access token, client cap, ES256,
# SQLite persistence across a restart, environment-only configuration, invalid configuration

from html.parser import HTMLParser  # noqa: E402

INITIAL_ACCESS_TOKEN = "iat-" + secrets.token_hex(12)


class FormParser(HTMLParser):
    """Collects the forms of a page: action, method, inputs and submit buttons."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": (a.get("method") or "get").lower(),
                               "inputs": [], "buttons": []})
        elif self.forms and tag == "input":
            self.forms[-1]["inputs"].append(a)
        elif self.forms and tag == "button":
            self.forms[-1]["buttons"].append(a)


def consent_form(resp):
    parser = FormParser()
    parser.feed(resp.text)
    assert len(parser.forms) == 1, f"expected one form on the consent page: {resp.text[:500]}"
    form = parser.forms[0]
    assert form["method"] == "post"
    hidden = {i["name"]: i.get("value", "") for i in form["inputs"] if i.get("type") == "hidden"}
    return urllib.parse.urljoin(resp.url, form["action"]), hidden, form


@pytest.fixture(scope="module")
def manual_as(module_services):
    """An authorization server that shows its consent page, wants an initial access token for
    registration, caps registered clients at 2 and signs with ES256."""
    return module_services.auth({
        "mock": {"auto_approve": False},
        "registration": {"initial_access_token": INITIAL_ACCESS_TOKEN, "max_clients": 2},
        "keys": {"algorithm": "ES256"},
    })


def open_consent(server, http, **kw):
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    resp = http.get(server.endpoint("authorization_endpoint"), params={
        "response_type": "code", "client_id": PUBLIC_CLIENT, "redirect_uri": DEFAULT_REDIRECT,
        "scope": kw.get("scope", "openid mcp:read offline_access"), "state": state, "code_challenge": challenge,
        "code_challenge_method": "S256", "resource": RESOURCE}, allow_redirects=False, timeout=harness.HTTP_TIMEOUT)
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers.get("Content-Type", "").startswith("text/html")
    return resp, verifier, state


def test_consent_page_is_safe_and_complete(manual_as):
    http = harness.requests.Session()
    resp, _, _ = open_consent(manual_as, http)
    assert resp.headers.get("X-Frame-Options", "").upper() == "DENY"
    assert "frame-ancestors 'none'" in resp.headers.get("Content-Security-Policy", "")
    action, hidden, form = consent_form(resp)
    assert hidden.get("csrf_token"), "no CSRF token on the consent form"
    for text in ("alice", "bob", "mcp:read", "127.0.0.1"):  # users, scopes, redirect host
        assert text in resp.text
    assert {b.get("value") for b in form["buttons"]} >= {"approve", "deny"}


def test_consent_approve_and_deny(manual_as):
    http = harness.requests.Session()
    resp, verifier, state = open_consent(manual_as, http)
    action, hidden, _ = consent_form(resp)
    decision = http.post(action, data={**hidden, "user": "bob", "action": "approve"}, allow_redirects=False,
                         timeout=harness.HTTP_TIMEOUT)
    params = manual_as.redirect_params(decision, DEFAULT_REDIRECT, state)
    assert params.get("code"), params
    tokens = manual_as.token_request({"grant_type": "authorization_code", "code": params["code"],
                                      "redirect_uri": DEFAULT_REDIRECT, "client_id": PUBLIC_CLIENT,
                                      "code_verifier": verifier, "resource": RESOURCE}).json()
    claims = verify_jwt(manual_as, tokens["access_token"], audience=RESOURCE, algorithms=("ES256",))
    assert claims["sub"] == "bob"
    # the same form cannot be submitted twice
    again = http.post(action, data={**hidden, "user": "bob", "action": "approve"}, allow_redirects=False,
                      timeout=harness.HTTP_TIMEOUT)
    assert not (again.status_code in (302, 303) and "code=" in again.headers.get("Location", "")), "form replayed"

    resp, _, state = open_consent(manual_as, http)
    action, hidden, _ = consent_form(resp)
    denied = http.post(action, data={**hidden, "user": "alice", "action": "deny"}, allow_redirects=False,
                       timeout=harness.HTTP_TIMEOUT)
    params = manual_as.redirect_params(denied, DEFAULT_REDIRECT, state)
    assert params.get("error") == "access_denied" and "code" not in params


def test_consent_refuses_bad_csrf_token(manual_as):
    http = harness.requests.Session()
    resp, _, _ = open_consent(manual_as, http)
    action, hidden, _ = consent_form(resp)
    forged = {**hidden, "csrf_token": "forged-" + secrets.token_hex(8), "user": "alice", "action": "approve"}
    bad = http.post(action, data=forged, allow_redirects=False, timeout=harness.HTTP_TIMEOUT)
    assert bad.status_code in (400, 403), bad.status_code
    assert "code=" not in bad.headers.get("Location", "")
    # from another browser (no cookie), the real token does not work either
    other = harness.requests.post(action, data={**hidden, "user": "alice", "action": "approve"},
                                  allow_redirects=False, timeout=harness.HTTP_TIMEOUT)
    assert "code=" not in other.headers.get("Location", ""), "CSRF token not bound to the browser"


def custom_login(server, claims_json):
    """Approve on the consent page as the custom subject carol with extra claims; returns the
    redirect parameters and the verifier."""
    http = harness.requests.Session()
    resp, verifier, state = open_consent(server, http)
    action, hidden, _ = consent_form(resp)
    decision = http.post(action, data={**hidden, "user": "-custom-", "custom_subject": "carol",
                                       "custom_claims": claims_json, "action": "approve"},
                         allow_redirects=False, timeout=harness.HTTP_TIMEOUT)
    return server.redirect_params(decision, DEFAULT_REDIRECT, state), verifier


def redeem(server, params, verifier):
    resp = server.token_request({"grant_type": "authorization_code", "code": params["code"],
                                 "redirect_uri": DEFAULT_REDIRECT, "client_id": PUBLIC_CLIENT,
                                 "code_verifier": verifier, "resource": RESOURCE})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_consent_custom_subject_and_claims(manual_as):
    params, verifier = custom_login(manual_as, '{"email": "carol@example.com", "groups": ["dev"]}')
    claims = verify_jwt(manual_as, redeem(manual_as, params, verifier)["access_token"], audience=RESOURCE,
                        algorithms=("ES256",))
    assert claims["sub"] == "carol" and claims["email"] == "carol@example.com"
    assert claims.get("groups") == ["dev"]


@pytest.mark.parametrize("reserved", ['{"iss": "http://evil.example"}', '{"aud": "http://evil.example"}',
                                      '{"scope": "mcp:audit"}', '{"exp": 9999999999}', '{"sub": "root"}',
                                      '[1, 2]', '{"email": '])
def test_consent_extra_claims_cannot_override_registered_ones(manual_as, reserved):
    params, verifier = custom_login(manual_as, reserved)
    if "error" in params:  # refused: the standard error through the registered redirect
        assert params["error"] == "invalid_request", params
        return
    claims = verify_jwt(manual_as, redeem(manual_as, params, verifier)["access_token"], audience=RESOURCE,
                        algorithms=("ES256",))
    assert claims["iss"] == manual_as.issuer and claims["aud"] in (RESOURCE, [RESOURCE])
    assert claims["sub"] == "carol" and "mcp:audit" not in claims["scope"].split()
    assert claims["exp"] < time.time() + 7200


def test_es256_jwks(manual_as):
    keys = manual_as.http.get(manual_as.endpoint("jwks_uri")).json()["keys"]
    assert keys and all(k["kty"] == "EC" and k["crv"] == "P-256" and k["kid"] and "d" not in k for k in keys)
    meta = manual_as.http.get("/.well-known/openid-configuration").json()
    assert "ES256" in meta["id_token_signing_alg_values_supported"]


def test_registration_needs_initial_access_token_and_is_capped(manual_as):
    url = manual_as.endpoint("registration_endpoint")
    meta = {"redirect_uris": [DEFAULT_REDIRECT], "token_endpoint_auth_method": "none"}
    resp = manual_as.http.post(url, json=meta)
    assert resp.status_code == 401, resp.text
    resp = manual_as.http.post(url, json=meta, headers={"Authorization": "Bearer wrong"})
    assert resp.status_code == 401, resp.text
    auth = {"Authorization": f"Bearer {INITIAL_ACCESS_TOKEN}"}
    statuses = [manual_as.http.post(url, json=meta, headers=auth).status_code for _ in range(3)]
    assert statuses[:2] == [201, 201], statuses
    assert statuses[2] in (400, 403, 429, 503, 507), f"client cap not enforced: {statuses}"
    assert manual_as.healthy()


def test_sqlite_state_survives_restart(services):
    server = services.auth({"storage": {"driver": "sqlite", "sqlite_path": "data/auth.db"}})
    reg = server.http.post(server.endpoint("registration_endpoint"),
                           json={"redirect_uris": [DEFAULT_REDIRECT], "token_endpoint_auth_method": "none",
                                 "grant_types": ["authorization_code", "refresh_token"]})
    assert reg.status_code == 201, reg.text
    client_id = reg.json()["client_id"]
    kept = server.login(scope="mcp:read offline_access", resource=RESOURCE, client_id=client_id)
    dropped = server.login(scope="mcp:read offline_access", resource=RESOURCE, client_id=client_id)
    assert server.revoke(dropped["refresh_token"], client_id=client_id).status_code == 200

    server.process.stop()
    # codes and tokens are stored hashed, never in clear (the WAL and journal files included)
    stored = b"".join(f.read_bytes() for f in (server.process.workdir / "data").iterdir() if f.is_file())
    assert stored, "nothing in data/"
    for secret in (kept["refresh_token"], kept["access_token"], dropped["refresh_token"]):
        assert secret.encode() not in stored, "a token is stored in clear in the SQLite database"
    server.process.start()

    assert (server.process.workdir / "data" / "auth.db").exists()
    verify_jwt(server, kept["access_token"], audience=RESOURCE)  # the signing key was kept
    resp = server.refresh(kept["refresh_token"], client_id=client_id)
    assert resp.status_code == 200, f"refresh family lost in restart: {resp.text}"
    assert_oauth_error(server.refresh(dropped["refresh_token"], client_id=client_id), "invalid_grant")
    server.login(scope="mcp:read", client_id=client_id)  # the registered client is still known


def test_environment_overrides_without_config_file(services, tmp_path):
    port = harness.free_port()
    workdir = services.workdir("env-auth")
    proc = harness.ServiceProcess(harness.AUTH_BINARY, workdir, None, port, env={
        "AUTH_SERVER_LISTEN": f"127.0.0.1:{port}",
        "AUTH_SERVER_ISSUER": f"http://127.0.0.1:{port}",
        "AUTH_MOCK_AUTO_APPROVE": "true",
        "AUTH_MOCK_CONTROL_API": "true",
        "AUTH_TOKENS_ACCESS_TOKEN_TTL": "5m",
        "AUTH_RESOURCES_ALLOWED": f"{RESOURCE},http://127.0.0.1:9/other",
    })
    services.procs.append(proc)
    proc.start()
    server = harness.AuthServer(proc.base_url, proc)
    assert server.issuer == f"http://127.0.0.1:{port}"
    key = workdir / "keys" / "private_key.pem"
    assert key.exists(), "the generated key was not saved under keys/ in the working directory"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert server.control.enabled
    tokens = server.login(scope="mcp:read", resource=RESOURCE)
    assert 295 <= tokens["expires_in"] <= 300
    # a list from the environment (comma-separated): resources outside the allowlist are refused
    _, challenge = pkce_pair()
    resp = server.authorize_request(state="s1", challenge=challenge, resource="http://127.0.0.1:9/not-allowed")
    assert_redirect_error(server, resp, "invalid_target", "s1")
    server.login(scope="mcp:read", resource="http://127.0.0.1:9/other")


@pytest.mark.parametrize(
    "name,overrides,env,key",
    [
        ("hmac-alg", {"keys": {"algorithm": "HS256"}}, {}, "keys.algorithm"),
        ("bad-ttl-env", {}, {"AUTH_TOKENS_CODE_TTL": "banana"}, "tokens.code_ttl"),
        ("bad-storage", {"storage": {"driver": "mongodb"}}, {}, "storage.driver"),
    ],
)
def test_invalid_configuration_is_one_clear_error(services, name, overrides, env, key):
    port = harness.free_port()
    workdir = services.workdir(name)
    proc = harness.ServiceProcess(harness.AUTH_BINARY, workdir, harness.auth_server_config(port, workdir, overrides),
                                  port, env=env)
    services.procs.append(proc)
    proc.spawn()
    try:
        code = proc.proc.wait(timeout=10)
    except harness.subprocess.TimeoutExpired:
        pytest.fail("the server started with an invalid configuration")
    assert code != 0
    err = proc.stderr_path.read_text()
    assert key in err, err[-1000:]
    assert "panic" not in err and "goroutine" not in err


# ------------------------------------------------------------------------------------------------
# confidential client on the authorization code flow (client authentication at /token)


def confidential_authz(auth_server):
    return auth_server.authorize(client_id=CONFIDENTIAL_CLIENT, redirect_uri=harness.CONFIDENTIAL_REDIRECT,
                                 scope="mcp:read offline_access", resource=RESOURCE)


def confidential_exchange(auth_server, authz, auth=None, extra=None):
    data = {"grant_type": "authorization_code", "code": authz.code, "redirect_uri": authz.redirect_uri,
            "code_verifier": authz.verifier, "resource": RESOURCE}
    data.update(extra or {})
    return auth_server.token_request(data, auth=auth)


@pytest.mark.extra_clients
def test_confidential_client_code_flow_basic_and_refresh(auth_server):
    authz = confidential_authz(auth_server)
    resp = confidential_exchange(auth_server, authz, auth=(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET))
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    claims = verify_jwt(auth_server, tokens["access_token"], audience=RESOURCE)
    assert claims["client_id"] == CONFIDENTIAL_CLIENT
    resp = auth_server.token_request({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                                     auth=(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET))
    assert resp.status_code == 200, resp.text
    # a public client cannot use the confidential client's refresh token
    assert_oauth_error(auth_server.refresh(resp.json()["refresh_token"], client_id=PUBLIC_CLIENT),
                       ("invalid_grant", "invalid_client"), status=(400, 401))


@pytest.mark.extra_clients
def test_confidential_client_needs_its_secret(auth_server):
    authz = confidential_authz(auth_server)
    resp = confidential_exchange(auth_server, authz, extra={"client_id": CONFIDENTIAL_CLIENT})
    assert_oauth_error(resp, "invalid_client", status=401)
    resp = confidential_exchange(auth_server, authz, auth=(CONFIDENTIAL_CLIENT, "wrong"))
    assert_oauth_error(resp, "invalid_client", status=401)
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("basic")
    # the failed attempts consumed nothing: the right secret still redeems the code
    resp = confidential_exchange(auth_server, authz, auth=(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET))
    assert resp.status_code == 200, resp.text


def test_two_client_authentication_methods_refused(auth_server):
    """RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request."""
    resp = auth_server.token_request(
        {"grant_type": "client_credentials", "scope": "mcp:read", "client_id": SERVICE_CLIENT,
         "client_secret": SERVICE_SECRET},
        auth=(SERVICE_CLIENT, SERVICE_SECRET),
    )
    assert_oauth_error(resp, ("invalid_request", "invalid_client"), status=(400, 401))


def test_basic_auth_credentials_are_form_urlencoded(auth_server):
    """RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding."""
    client = {"client_id": "svc:with space", "client_secret": "p@ss:w0rd/+", "client_name": "odd chars",
              "grant_types": ["client_credentials"], "scopes": ["mcp:read"],
              "token_endpoint_auth_method": "client_secret_basic"}
    if not auth_server.control.enabled:
        pytest.skip("needs /control/clients")
    auth_server.control.call("POST", "/clients", client)
    import base64

    user = urllib.parse.quote_plus(client["client_id"])
    password = urllib.parse.quote_plus(client["client_secret"])
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    resp = auth_server.token_request({"grant_type": "client_credentials", "scope": "mcp:read"},
                                     headers={"Authorization": header})
    assert resp.status_code == 200, resp.text


def test_control_added_client_and_user_work(auth_server, control):
    control.call("POST", "/users", {"subject": "carol", "email": "carol@example.com", "name": "Carol Example"})
    tokens = auth_server.login(scope="mcp:read", resource=RESOURCE, user="carol")
    claims = verify_jwt(auth_server, tokens["access_token"], audience=RESOURCE)
    assert claims["sub"] == "carol" and claims["email"] == "carol@example.com"
    control.call("DELETE", f"/clients/{SECOND_PUBLIC_CLIENT}")
    _, challenge = pkce_pair()
    assert_error_page(auth_server.authorize_request(client_id=SECOND_PUBLIC_CLIENT, state="s", challenge=challenge))


def test_control_revoke_user(auth_server, control):
    alice = auth_server.login(scope="mcp:read offline_access", user="alice")
    bob = auth_server.login(scope="mcp:read offline_access", user="bob")
    control.call("POST", "/revoke-user/alice")
    assert not auth_server.is_active(alice["access_token"])
    assert_oauth_error(auth_server.refresh(alice["refresh_token"]), "invalid_grant")
    assert auth_server.is_active(bob["access_token"])


@pytest.mark.parametrize("mode", ["malformed", "drop", "delay"])
def test_control_fault_modes(auth_server, control, mode):
    control.fault(endpoint="jwks", count=1, status=500, mode=mode, delay_ms=300)
    url = auth_server.endpoint("jwks_uri")
    started = time.monotonic()
    if mode == "drop":
        with pytest.raises(harness.requests.ConnectionError):
            auth_server.http.get(url)
    else:
        resp = auth_server.http.get(url)
        assert resp.status_code == 200
        if mode == "malformed":
            with pytest.raises(ValueError):
                resp.json()
        else:
            assert time.monotonic() - started >= 0.3 and resp.json()["keys"]
    assert auth_server.http.get(url).json()["keys"], "the fault outlived its count"


def test_refused_registrations_store_nothing(services):
    """With a cap of one client, every refused registration before it leaves the cap untouched:
    the one good registration afterwards succeeds and a second one hits the cap."""
    server = services.auth({"registration": {"max_clients": 1}})
    url = server.endpoint("registration_endpoint")
    bad = [
        {"redirect_uris": ["http://evil.example.com/cb"], "token_endpoint_auth_method": "none"},
        {"redirect_uris": ["https://app.example.test/cb#f"], "token_endpoint_auth_method": "none"},
        {"redirect_uris": ["https://app.example.test/cb"], "grant_types": ["password"]},
        {"redirect_uris": ["https://app.example.test/cb"], "token_endpoint_auth_method": "nope"},
        {"redirect_uris": ["https://app.example.test/cb"], "client_name": "x" * 70000},
    ]
    for meta in bad:
        resp = server.http.post(url, json=meta)
        assert 400 <= resp.status_code < 500, (meta if len(str(meta)) < 200 else "oversized", resp.status_code)
    for raw in ('{"redirect_uris": [', "null", '"string"'):
        resp = server.http.post(url, data=raw, headers={"Content-Type": "application/json"})
        assert 400 <= resp.status_code < 500, (raw, resp.status_code)
    good = {"redirect_uris": [DEFAULT_REDIRECT], "token_endpoint_auth_method": "none"}
    assert server.http.post(url, json=good).status_code == 201, "a refused registration used up the cap"
    assert server.http.post(url, json=good).status_code != 201, "the cap of one client was not enforced"


# ------------------------------------------------------------------------------------------------
# redirect URI matching details, optional parameters, methods


@pytest.mark.extra_clients
@pytest.mark.parametrize(
    "client_id,redirect",
    [
        (CONFIDENTIAL_CLIENT, "https://app.example.test:8443/callback"),  # port exception is loopback-only
        (PUBLIC_CLIENT, "http://localhost:3001/callback"),  # registered as 127.0.0.1: another host
        (PUBLIC_CLIENT, "https://127.0.0.1:3001/callback"),  # another scheme
        (PUBLIC_CLIENT, "http://127.0.0.1:3001/Callback"),  # paths match exactly
        (PUBLIC_CLIENT, "http://127.0.0.1:3001/callback/"),
    ],
    ids=["https-other-port", "localhost-for-ip", "https-for-http", "path-case", "trailing-slash"],
)
def test_redirect_uri_matches_exactly(auth_server, client_id, redirect):
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(client_id=client_id, redirect_uri=redirect, state="s", challenge=challenge)
    assert_error_page(resp)


def test_state_is_optional(auth_server):
    verifier, challenge = pkce_pair()
    resp = auth_server.authorize_request(state=None, challenge=challenge)
    params = auth_server.redirect_params(resp, DEFAULT_REDIRECT, None)
    assert "state" not in params and params.get("code")


def test_resource_from_authorization_applies_when_token_request_omits_it(auth_server):
    authz = auth_server.authorize(resource=RESOURCE)
    resp = auth_server.exchange(authz)  # no resource at /token
    assert resp.status_code == 200, resp.text
    claims = verify_jwt(auth_server, resp.json()["access_token"], audience=RESOURCE)
    assert claims["aud"] in (RESOURCE, [RESOURCE])


def test_refresh_cannot_change_resource(auth_server):
    tokens = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE)
    resp = auth_server.refresh(tokens["refresh_token"], resource="http://127.0.0.1:9/elsewhere")
    assert_oauth_error(resp, ("invalid_target", "invalid_grant"))


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke", "/register"])
def test_post_endpoints_refuse_get(auth_server, path):
    resp = auth_server.http.get(path)
    assert resp.status_code == 405, resp.status_code
    assert "POST" in resp.headers.get("Allow", "POST")


# ------------------------------------------------------------------------------------------------
# client authentication at introspection and revocation, hints, odd PKCE values


@pytest.mark.extra_clients
def test_confidential_client_must_authenticate_to_revoke(auth_server):
    authz = confidential_authz(auth_server)
    tokens = confidential_exchange(auth_server, authz, auth=(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET)).json()
    resp = auth_server.revoke(tokens["refresh_token"], client_id=CONFIDENTIAL_CLIENT)  # no secret
    assert resp.status_code == 401 and oauth_error(resp) == "invalid_client", resp.text
    assert auth_server.is_active(tokens["refresh_token"])
    resp = auth_server.revoke(tokens["refresh_token"], auth=(CONFIDENTIAL_CLIENT, CONFIDENTIAL_SECRET))
    assert resp.status_code == 200
    assert not auth_server.is_active(tokens["refresh_token"])


def test_public_client_cannot_introspect(auth_server):
    tokens = auth_server.login(scope="mcp:read")
    resp = auth_server.http.post(auth_server.endpoint("introspection_endpoint"),
                                 data={"token": tokens["access_token"], "client_id": PUBLIC_CLIENT})
    assert resp.status_code == 401 and oauth_error(resp) == "invalid_client", resp.text


@pytest.mark.extra_clients
def test_form_client_id_must_match_basic_auth(auth_server):
    resp = auth_server.token_request({"grant_type": "client_credentials", "client_id": CONFIDENTIAL_CLIENT},
                                     auth=(SERVICE_CLIENT, SERVICE_SECRET))
    assert_oauth_error(resp, ("invalid_request", "invalid_client"), status=(400, 401))


@pytest.mark.parametrize("which,hint", [("access_token", "refresh_token"), ("refresh_token", "access_token"),
                                        ("refresh_token", "no_such_hint")])
def test_revocation_hint_is_only_a_hint(auth_server, which, hint):
    """RFC 7009 §2.1: a wrong hint makes the server search further, it does not stop revocation."""
    tokens = auth_server.login(scope="mcp:read offline_access")
    resp = auth_server.revoke(tokens[which], hint=hint)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:  # an unknown hint may be refused, but only as unsupported_token_type
        assert oauth_error(resp) == "unsupported_token_type", resp.text
        return
    assert not auth_server.is_active(tokens[which])


def test_register_authorization_code_client_needs_redirect_uris(auth_server):
    resp = register(auth_server, {"token_endpoint_auth_method": "none", "grant_types": ["authorization_code"]})
    assert_oauth_error(resp, ("invalid_redirect_uri", "invalid_client_metadata"))


def test_client_credentials_token_names_the_client(auth_server):
    body = auth_server.client_credentials(scope="mcp:read", resource=RESOURCE).json()
    claims = verify_jwt(auth_server, body["access_token"], audience=RESOURCE)
    assert claims["sub"] == SERVICE_CLIENT and "email" not in claims
    info = auth_server.introspect(body["access_token"]).json()
    assert info["active"] is True and info["client_id"] == SERVICE_CLIENT


@pytest.mark.parametrize("challenge", ["abc", "!" * 43, "A" * 44, ""], ids=["short", "bad-chars", "long", "empty"])
def test_authorize_refuses_malformed_code_challenge(auth_server, challenge):
    state = secrets.token_urlsafe(8)
    resp = auth_server.authorize_request(state=state, challenge=challenge)
    assert_redirect_error(auth_server, resp, "invalid_request", state)


# ------------------------------------------------------------------------------------------------
# races: single use must hold under concurrent requests

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

RACERS = 8


def race(fn, n=RACERS):
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: fn(), range(n), timeout=30))


def test_concurrent_code_redemption_issues_once(auth_server):
    authz = auth_server.authorize(scope="mcp:read offline_access", resource=RESOURCE)
    results = race(lambda: auth_server.exchange(authz, resource=RESOURCE))
    ok = [r for r in results if r.status_code == 200]
    assert len(ok) <= 1, f"one code redeemed {len(ok)} times"
    for r in results:
        if r.status_code != 200:
            assert oauth_error(r) == "invalid_grant", r.text


def test_concurrent_refresh_issues_once(auth_server):
    tokens = auth_server.login(scope="mcp:read offline_access", resource=RESOURCE)
    results = race(lambda: auth_server.refresh(tokens["refresh_token"]))
    ok = [r for r in results if r.status_code == 200]
    assert len(ok) <= 1, f"one refresh token rotated {len(ok)} times"
    for r in results:
        if r.status_code != 200:
            assert oauth_error(r) == "invalid_grant", r.text


def test_unknown_login_hint_is_denied_not_swapped(auth_server):
    """Auto-approve must not silently log in as another user than the one asked for."""
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(state=state, challenge=challenge, login_hint="nobody-" + secrets.token_hex(3))
    params = auth_server.redirect_params(resp, DEFAULT_REDIRECT, state)
    assert "code" not in params and params.get("error") in ("access_denied", "login_required", "invalid_request")


def test_several_resources_refused_with_invalid_target(auth_server):
    """RFC 8707 §2 allows several resource parameters; a server that issues single-audience tokens
    answers invalid_target (not invalid_request)."""
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(state=state, challenge=challenge, resource=RESOURCE,
                                         extra=[("resource", "http://127.0.0.1:3004/mcp")])
    assert_redirect_error(auth_server, resp, "invalid_target", state)


def test_oversized_state_refused(auth_server):
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(state="s" * 5000, challenge=challenge)
    assert_redirect_error(auth_server, resp, "invalid_request", "s" * 5000)


# ------------------------------------------------------------------------------------------------
# last: nothing secret in the servers' logs (this module runs after the MCP and client suites)


def test_no_secret_in_server_logs(auth_server, request):
    """Every code, verifier and token the suites saw, and the client secrets, are absent from the
    logs of the servers the suites started (they log at debug level)."""
    if not auth_server.managed:
        pytest.skip("logs of an external server are not readable here")
    logs = {"auth server": auth_server.process.stderr_path.read_text(errors="replace")}
    try:
        mcp = request.getfixturevalue("mcp_server")
        if mcp.managed:
            logs["MCP server"] = mcp.process.stderr_path.read_text(errors="replace")
    except pytest.skip.Exception:
        pass
    secrets_seen = set(harness.SEEN_SECRETS) | {SERVICE_SECRET, CONFIDENTIAL_SECRET}
    assert len(secrets_seen) > 10, "the suites recorded too few secrets for this check to mean anything"
    for name, text in logs.items():
        assert text, f"{name} wrote no log at all"
        for secret in secrets_seen:
            assert secret not in text, f"{name} logged a secret ({secret[:6]}…)"
            if secret.count(".") == 2:  # a JWT: not even its signature
                assert secret.rsplit(".", 1)[1] not in text, f"{name} logged a JWT signature"


@pytest.mark.parametrize("mode", ["fragment", "form_post"])
def test_response_mode_other_than_query_refused(auth_server, mode):
    state = secrets.token_urlsafe(8)
    _, challenge = pkce_pair()
    resp = auth_server.authorize_request(state=state, challenge=challenge, extra=[("response_mode", mode)])
    assert resp.status_code in (302, 303, 400), resp.status_code
    if resp.status_code == 400:
        assert_error_page(resp)
        return
    location = resp.headers["Location"]
    assert "#" not in location and "code=" not in location, location
    assert_redirect_error(auth_server, resp, "invalid_request", state)


def test_two_resources_at_token_refused(auth_server):
    authz = auth_server.authorize(resource=RESOURCE)
    body = urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": authz.code, "redirect_uri": authz.redirect_uri,
        "client_id": authz.client_id, "code_verifier": authz.verifier}) + "&" + urllib.parse.urlencode(
        [("resource", RESOURCE), ("resource", "http://127.0.0.1:3004/mcp")])
    resp = auth_server.http.post(auth_server.endpoint("token_endpoint"), data=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_oauth_error(resp, "invalid_target")
