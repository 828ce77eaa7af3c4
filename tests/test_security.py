"""Attacks on the two servers (issue 5, "Attacks on the servers").

Each attack must be refused with the standard error for its place (RFC 6749 JSON errors at the
token and registration endpoints, an HTML page without Location for an untrusted redirect URI,
RFC 6750 401 error="invalid_token" / 403 insufficient_scope at the MCP server), must leave no state
behind (shown with /control/stats, introspection, follow-up requests that still work, the audit
log), and both servers must keep serving (/healthz after every test).

This module starts its own pair of binaries: an authorization server with a small registration
cap (registration.max_clients = 50) and an MCP server with a short unknown-kid refresh limit, plus a
second authorization server that shows the consent page (mock.auto_approve = false).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import math
import re
import secrets
import time

import pytest
import requests

import attack_helpers as ah
import harness
from harness import PUBLIC_CLIENT, SECOND_PUBLIC_CLIENT, DEFAULT_REDIRECT, oauth_error, www_authenticate_params

MAX_CLIENTS = 50
UNKNOWN_KID_INTERVAL = 1.0  # seconds: the MCP server's auth.unknown_kid_rate_limit here


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    auth, mcp = ah.start_pair(
        tmp_path_factory.mktemp("security"),
        auth_overrides={"registration": {"max_clients": MAX_CLIENTS}},
        mcp_overrides={"auth": {"unknown_kid_rate_limit": f"{UNKNOWN_KID_INTERVAL:g}s",
                                "jwks_refresh_interval": "1h"}})
    yield auth, mcp
    ah.stop(mcp, auth)


@pytest.fixture(scope="module")
def auth(servers):
    return servers[0]


@pytest.fixture(scope="module")
def mcp(servers):
    return servers[1]


@pytest.fixture(autouse=True)
def still_serving(servers):
    """Every attack ends with both servers still answering /healthz, and no fault left queued."""
    yield
    auth, mcp = servers
    auth.control.clear_faults()
    assert ah.healthy(auth.base_url), "authorization server stopped serving"
    assert ah.healthy(mcp.base_url), "MCP server stopped serving"


@pytest.fixture(scope="module")
def seen_tokens():
    """Every token (real or forged) sent in this module, to prove none reaches the audit log."""
    return set()


@pytest.fixture(scope="module")
def alice_token(auth, mcp, seen_tokens):
    tok = auth.login(scope="mcp:read mcp:write offline_access", resource=mcp.mcp_url, user="alice")["access_token"]
    seen_tokens.add(tok)
    return tok


@pytest.fixture(scope="module")
def signing_key(auth):
    """The authorization server's own private key (it lives in our private working directory):
    signing with it isolates each claim check from the signature check."""
    from cryptography.hazmat.primitives import serialization

    pem = (auth.process.workdir / "keys" / "private_key.pem").read_bytes()
    return serialization.load_pem_private_key(pem, password=None)


def initialize(mcp, token: str | None, headers=None, params=None) -> requests.Response:
    payload = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": harness.PROTOCOL_VERSION, "capabilities": {},
                          "clientInfo": {"name": "attacker", "version": "1"}}}
    return mcp.client(token).post(payload, headers=headers, params=params)


def assert_invalid_token(resp: requests.Response, mcp) -> dict[str, str]:
    """RFC 6750 §3.1: 401 with a Bearer challenge carrying error="invalid_token" and the resource
    metadata URL (RFC 9728 §5.1)."""
    assert resp.status_code == 401, f"{resp.status_code}: {resp.text[:300]}"
    params = www_authenticate_params(resp.headers.get("WWW-Authenticate", ""))
    assert params[""].lower() == "bearer", resp.headers
    assert params.get("error") == "invalid_token", resp.headers
    assert params.get("resource_metadata", "").startswith(mcp.base_url + "/.well-known/oauth-protected-resource")
    assert "alice@example.com" not in resp.text
    assert "Mcp-Session-Id" not in resp.headers, "a refused request created a session"
    return params


def assert_error_page(resp: requests.Response, code: str = "invalid_request") -> None:
    """An untrusted redirect URI gets a 400 HTML page and never a Location (no open redirect)."""
    assert resp.status_code == 400, f"{resp.status_code}: {resp.headers} {resp.text[:300]}"
    assert "Location" not in resp.headers, resp.headers
    assert resp.headers.get("Content-Type", "").startswith("text/html"), resp.headers
    assert code in resp.text
    assert "code=" not in resp.text


def fresh_login_works(auth, mcp=None) -> None:
    """The follow-up that proves an attack did not break the server for honest users."""
    tokens = auth.login(scope="mcp:read offline_access", resource=mcp.mcp_url if mcp else None, user="bob")
    assert tokens["access_token"] and tokens["refresh_token"]
    if mcp is not None:
        session = mcp.session(tokens["access_token"])
        try:
            assert "bob@example.com" in json.dumps(session.call_tool("whoami"))
        finally:
            session.close()


def authz_grants(auth) -> int:
    return auth.control.grant_count("authorization_code")


# ---------------------------------------------------------------------------------------------
# authorization codes


def test_code_replay_fails_and_revokes_what_it_issued(auth, mcp):
    authz = auth.authorize(scope="mcp:read offline_access", resource=mcp.mcp_url)
    first = auth.exchange(authz, resource=mcp.mcp_url)
    assert first.status_code == 200, first.text
    issued = first.json()
    assert auth.is_active(issued["access_token"]) and auth.is_active(issued["refresh_token"])
    before = authz_grants(auth)

    replay = auth.exchange(authz, resource=mcp.mcp_url)
    assert replay.status_code == 400 and oauth_error(replay) == "invalid_grant", replay.text
    assert "access_token" not in replay.text
    assert authz_grants(auth) == before, "the replay issued tokens"
    # RFC 6749 §4.1.2 / OAuth 2.1 §4.1.3: the tokens issued from the replayed code are revoked.
    assert not auth.is_active(issued["access_token"]), "access token of a replayed code still active"
    assert not auth.is_active(issued["refresh_token"]), "refresh token of a replayed code still active"
    refresh = auth.refresh(issued["refresh_token"])
    assert refresh.status_code == 400 and oauth_error(refresh) == "invalid_grant", refresh.text
    fresh_login_works(auth, mcp)


def test_pkce_verifier_mismatch(auth):
    authz = auth.authorize()
    before = authz_grants(auth)
    other_verifier, _ = harness.pkce_pair()
    resp = auth.exchange(authz, code_verifier=other_verifier)
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_grant", resp.text
    assert authz_grants(auth) == before
    fresh_login_works(auth)


def test_pkce_verifier_missing(auth):
    authz = auth.authorize()
    before = authz_grants(auth)
    resp = auth.exchange(authz, code_verifier=None)
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_request", resp.text
    assert authz_grants(auth) == before
    # a request error does not consume the code: the real client can still redeem it
    ok = auth.exchange(authz)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("method", ["plain", None, "S512"])
def test_pkce_plain_or_missing_method_refused(auth, method):
    verifier, _ = harness.pkce_pair()
    state = secrets.token_urlsafe(8)
    # with plain the challenge is the verifier itself
    resp = auth.authorize_request(challenge=verifier, method=method, state=state,
                                  omit=("code_challenge_method",) if method is None else ())
    params = auth.redirect_params(resp, DEFAULT_REDIRECT, state)
    assert params.get("error") == "invalid_request", params
    assert "code" not in params


def test_pkce_downgrade_to_plain_at_the_token_endpoint(auth):
    """An attacker who saw the S256 challenge cannot redeem the code by sending it as the verifier."""
    authz = auth.authorize()
    challenge = harness.b64url(hashlib.sha256(authz.verifier.encode()).digest())
    before = authz_grants(auth)
    resp = auth.exchange(authz, code_verifier=challenge)
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_grant", resp.text
    assert authz_grants(auth) == before


def test_pkce_challenge_missing_refused(auth):
    state = secrets.token_urlsafe(8)
    resp = auth.authorize_request(challenge=None, state=state)
    params = auth.redirect_params(resp, DEFAULT_REDIRECT, state)
    assert params.get("error") == "invalid_request" and "code" not in params, params


def test_code_issued_to_a_redeemed_by_b(auth):
    authz = auth.authorize(client_id=PUBLIC_CLIENT)
    before = authz_grants(auth)
    resp = auth.exchange(authz, client_id=SECOND_PUBLIC_CLIENT)
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_grant", resp.text
    assert authz_grants(auth) == before, "client B got tokens for client A's code"
    fresh_login_works(auth)


# ---------------------------------------------------------------------------------------------
# redirect URIs


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/callback",                         # not registered
    "http://127.0.0.1:3001/callback/extra",                  # extra path
    "http://127.0.0.1:3001/callback?next=https://evil.example",  # extra query
    "http://127.0.0.1:3001/callback#frag",                   # fragment
    "http://127.0.0.1:3001/callback/../evil",                # path traversal
    "http://localhost:3001/callback",                        # another loopback host name
    "http://127.0.0.1.evil.example:3001/callback",           # look-alike host
    "http://127.0.0.1:3001@evil.example/callback",           # user info
    "//evil.example/callback",                               # scheme-relative
    "javascript:alert(1)//127.0.0.1:3001/callback",
    "HTTP://127.0.0.1:3001/CALLBACK",                        # case change in the path
])
def test_unregistered_redirect_uri_gets_error_page(auth, redirect_uri):
    verifier, challenge = harness.pkce_pair()
    resp = auth.authorize_request(redirect_uri=redirect_uri, challenge=challenge, state="s")
    assert_error_page(resp)


def test_unknown_client_gets_error_page(auth):
    _, challenge = harness.pkce_pair()
    resp = auth.authorize_request(client_id="no-such-client", redirect_uri="https://evil.example/cb", challenge=challenge)
    assert_error_page(resp, "invalid_client")


def test_loopback_port_variation_allowed_for_loopback_only(auth):
    # RFC 8252 §7.3: a native app's loopback redirect may use any port
    port = harness.free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    authz = auth.authorize(redirect_uri=redirect)
    assert authz.location.startswith(redirect + "?")
    assert auth.exchange(authz).status_code == 200
    # ...but not for an https redirect URI of a web client
    _, challenge = harness.pkce_pair()
    resp = auth.authorize_request(client_id=harness.CONFIDENTIAL_CLIENT, redirect_uri="https://app.example.test:8443/callback",
                                  challenge=challenge)
    assert_error_page(resp)


# ---------------------------------------------------------------------------------------------
# refresh tokens


def test_refresh_token_reuse_revokes_the_family(auth, mcp):
    first = auth.login(scope="mcp:read offline_access", resource=mcp.mcp_url)
    rotated = auth.refresh(first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    refresh_grants = auth.control.grant_count("refresh_token")

    reuse = auth.refresh(first["refresh_token"])
    assert reuse.status_code == 400 and oauth_error(reuse) == "invalid_grant", reuse.text
    assert auth.control.grant_count("refresh_token") == refresh_grants
    # the whole family is gone: the current refresh token and both access tokens
    assert not auth.is_active(second["refresh_token"])
    assert not auth.is_active(second["access_token"])
    assert not auth.is_active(first["access_token"])
    again = auth.refresh(second["refresh_token"])
    assert again.status_code == 400 and oauth_error(again) == "invalid_grant", again.text
    fresh_login_works(auth, mcp)


def test_refresh_cannot_widen_scope_or_change_resource(auth, mcp):
    tokens = auth.login(scope="mcp:read offline_access", resource=mcp.mcp_url)
    wider = auth.refresh(tokens["refresh_token"], scope="mcp:read mcp:write mcp:audit")
    assert wider.status_code == 400 and oauth_error(wider) == "invalid_scope", wider.text
    other = auth.refresh(tokens["refresh_token"], resource="http://127.0.0.1:1/other-mcp")
    assert other.status_code == 400 and oauth_error(other) == "invalid_target", other.text
    # neither attempt rotated or burned the refresh token
    ok = auth.refresh(tokens["refresh_token"])
    assert ok.status_code == 200, ok.text
    granted = set(harness.unverified_claims(ok.json()["access_token"])["scope"].split())
    assert "mcp:read" in granted and not granted & {"mcp:write", "mcp:audit"}, granted


def test_code_redeemed_for_another_resource(auth, mcp):
    authz = auth.authorize(scope="mcp:read", resource=mcp.mcp_url)
    before = authz_grants(auth)
    resp = auth.exchange(authz, resource="http://127.0.0.1:1/other-mcp")
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_target", resp.text
    assert authz_grants(auth) == before


def test_revoking_another_clients_token_has_no_effect(auth):
    """RFC 7009 §2.1: the server checks the token was issued to the client asking; another
    client's request changes nothing (and still answers 200, so it learns nothing)."""
    tokens = auth.login(client_id=PUBLIC_CLIENT)
    resp = auth.revoke(tokens["refresh_token"], client_id=SECOND_PUBLIC_CLIENT, hint="refresh_token")
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 400:
        assert oauth_error(resp) in ("invalid_request", "unauthorized_client", "invalid_client"), resp.text
    assert auth.is_active(tokens["refresh_token"]), "another client revoked the refresh token"
    assert auth.is_active(tokens["access_token"])


def test_refresh_token_of_another_client_refused_without_burning_it(auth):
    tokens = auth.login(client_id=PUBLIC_CLIENT)
    resp = auth.refresh(tokens["refresh_token"], client_id=SECOND_PUBLIC_CLIENT)
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_grant", resp.text
    assert auth.is_active(tokens["refresh_token"]), "another client's attempt burned the refresh token"
    assert auth.refresh(tokens["refresh_token"]).status_code == 200


# ---------------------------------------------------------------------------------------------
# forged and misused access tokens at the MCP server


def real_header(auth, token: str) -> dict:
    header, _, _ = ah.split_jwt(token)
    return header


def good_claims(auth, mcp, **changes) -> dict:
    now = int(time.time())
    claims = {"iss": auth.issuer, "sub": "alice", "aud": mcp.mcp_url, "exp": now + 300, "iat": now, "nbf": now,
              "jti": secrets.token_hex(8), "scope": "mcp:read mcp:write", "client_id": PUBLIC_CLIENT,
              "email": "alice@example.com"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_token_signed_with_the_real_key_is_accepted(auth, mcp, signing_key, seen_tokens):
    """The control for the forgeries below: a token we sign with the server's real key and
    correct claims is accepted, so each refusal below is caused by the one thing changed."""
    kid = auth.http.get("/jwks").json()["keys"][0]["kid"]
    token = ah.sign_rs256(good_claims(auth, mcp), signing_key, {"kid": kid, "typ": "at+jwt"})
    seen_tokens.add(token)
    assert initialize(mcp, token).status_code == 200


@pytest.mark.parametrize("typ", ["JWT", None])
def test_token_that_is_not_an_access_token_refused(auth, mcp, signing_key, seen_tokens, typ):
    """Signed by the real key with the right claims, but typed as something other than an access
    token (an ID token is typ JWT): not an access token, so not accepted (RFC 9068 §4)."""
    import jwt

    kid = auth.http.get("/jwks").json()["keys"][0]["kid"]
    header = {"alg": "RS256", "kid": kid}
    if typ:
        header["typ"] = typ
    signing_input = f"{ah.b64url_json(header)}.{ah.b64url_json(good_claims(auth, mcp))}"
    sig = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).sign(signing_input.encode(), signing_key)
    token = f"{signing_input}.{harness.b64url(sig)}"
    seen_tokens.add(token)
    assert_invalid_token(initialize(mcp, token), mcp)


_ATTACKER_KEY = []


def attacker_key():
    """One RSA key of our own for the whole module (generating one takes a while)."""
    if not _ATTACKER_KEY:
        _ATTACKER_KEY.append(ah.new_rsa_key())
    return _ATTACKER_KEY[0]


def forgeries(auth, mcp, alice_token, signing_key):
    """name -> forged token."""
    jwks = auth.http.get("/jwks").json()["keys"]
    kid = real_header(auth, alice_token)["kid"]
    real_jwk = next(k for k in jwks if k["kid"] == kid)
    header, payload, sig = ah.split_jwt(alice_token)
    attacker = attacker_key()
    now = int(time.time())
    at_header = {"kid": kid, "typ": "at+jwt"}  # real key, real kid, access-token type: only the claim is wrong
    out = {}
    out["alg none"] = ah.unsigned_jwt({"alg": "none", "typ": "JWT", "kid": kid}, payload)
    out["alg None"] = ah.unsigned_jwt({"alg": "None", "kid": kid}, payload)
    out["HS256 keyed with the RSA public key PEM"] = ah.sign_hs256_with_pem(payload, ah.jwk_public_pem(real_jwk), {"kid": kid})
    out["HS256 keyed with the PKCS#1 PEM"] = ah.sign_hs256_with_pem(payload, ah.jwk_public_pem(real_jwk, pkcs1=True), {"kid": kid})
    out["HS256 keyed with the JWK JSON"] = ah.sign_hs256_with_pem(payload, json.dumps(real_jwk).encode(), {"kid": kid})
    out["forged kid"] = ah.sign_rs256(payload, attacker, {"kid": "attacker-" + secrets.token_hex(4)})
    out["real kid, attacker key"] = ah.sign_rs256(payload, attacker, {"kid": kid})
    out["no kid"] = ah.sign_rs256(payload, signing_key, {"typ": "at+jwt"})
    out["wrong iss"] = ah.sign_rs256(good_claims(auth, mcp, iss="http://127.0.0.1:1"), signing_key, at_header)
    out["wrong aud"] = ah.sign_rs256(good_claims(auth, mcp, aud="http://127.0.0.1:1/mcp"), signing_key, at_header)
    out["aud list without us"] = ah.sign_rs256(good_claims(auth, mcp, aud=["http://127.0.0.1:1/mcp", "x"]), signing_key, at_header)
    out["expired"] = ah.sign_rs256(good_claims(auth, mcp, exp=now - 600, iat=now - 900, nbf=now - 900), signing_key, at_header)
    out["no exp"] = ah.sign_rs256(good_claims(auth, mcp, exp=None), signing_key, at_header)
    out["nbf in the future"] = ah.sign_rs256(good_claims(auth, mcp, nbf=now + 600), signing_key, at_header)
    out["iat in the future"] = ah.sign_rs256(good_claims(auth, mcp, iat=now + 600, nbf=None), signing_key, at_header)
    tampered = dict(payload, sub="bob", email="bob@example.com", scope="mcp:read mcp:write mcp:audit")
    out["tampered payload, original signature"] = f"{ah.b64url_json(header)}.{ah.b64url_json(tampered)}.{sig}"
    out["tampered header, original signature"] = f"{ah.b64url_json(dict(header, typ='at+jwt', x='1'))}.{alice_token.split('.')[1]}.{sig}"
    out["signature stripped"] = alice_token.rsplit(".", 1)[0] + "."
    out["garbage"] = "not.a.jwt"
    return out


FORGERY_NAMES = ["alg none", "alg None", "HS256 keyed with the RSA public key PEM", "HS256 keyed with the PKCS#1 PEM",
                 "HS256 keyed with the JWK JSON", "forged kid",
                 "real kid, attacker key", "no kid", "wrong iss", "wrong aud", "aud list without us", "expired",
                 "no exp", "nbf in the future", "iat in the future", "tampered payload, original signature",
                 "tampered header, original signature", "signature stripped", "garbage"]


@pytest.mark.parametrize("name", FORGERY_NAMES)
def test_forged_token_refused(auth, mcp, alice_token, signing_key, seen_tokens, name):
    token = forgeries(auth, mcp, alice_token, signing_key)[name]
    seen_tokens.add(token)
    jwks_before = auth.control.request_count("jwks")
    assert_invalid_token(initialize(mcp, token), mcp)
    # a tools/call with the forged token on a real session is refused too
    session = mcp.session(alice_token)
    try:
        session.token = token
        resp = session.send("tools/call", {"name": "whoami", "arguments": {}})
        assert_invalid_token(resp, mcp)
        session.token = alice_token
        assert "alice@example.com" in json.dumps(session.call_tool("whoami")), "the honest session broke"
    finally:
        session.close()
    if name not in ("forged kid",):
        # a known kid never makes the MCP server fetch the JWKS again
        assert auth.control.request_count("jwks") == jwks_before
    # the authorization server does not vouch for it either (RFC 7662); the audience is the
    # resource server's check (RFC 7662 §4), so a token for another resource may be active there
    if "aud" not in name:
        assert auth.introspect(token).json() == {"active": False}


@pytest.mark.parametrize("header_name", ["jku", "x5u"])
def test_key_url_header_is_never_fetched(auth, mcp, alice_token, seen_tokens, header_name):
    """A token naming its own key (jku / x5u / embedded jwk) must not make the server fetch or
    trust that key (RFC 8725 §3.10)."""
    attacker = attacker_key()
    kid = "attacker-" + secrets.token_hex(4)
    _, payload, _ = ah.split_jwt(alice_token)
    with ah.FakeServer() as fake:
        jwk = ah.public_jwk(attacker, kid)
        fake.route("/jwks.json", ah.Reply(200, {"keys": [jwk]}))
        fake.route("/cert.pem", ah.Reply(200, "-----BEGIN CERTIFICATE-----\n"))
        url = fake.base_url + ("/jwks.json" if header_name == "jku" else "/cert.pem")
        tokens = [
            ah.sign_rs256(payload, attacker, {"kid": kid, header_name: url}),
            ah.sign_rs256(payload, attacker, {"kid": kid, "jwk": jwk}),
        ]
        for token in tokens:
            seen_tokens.add(token)
            assert_invalid_token(initialize(mcp, token), mcp)
        assert fake.requests == [], f"the MCP server fetched the attacker's URL: {[r.path for r in fake.requests]}"


def test_token_for_another_resource_from_the_real_server(auth, mcp, seen_tokens):
    """A genuine token whose audience is another resource (RFC 8707) is not accepted here."""
    other = auth.login(scope="mcp:read", resource="http://127.0.0.1:1/other-mcp")["access_token"]
    no_resource = auth.login(scope="mcp:read")["access_token"]  # aud = client id
    for token in (other, no_resource):
        seen_tokens.add(token)
        params = assert_invalid_token(initialize(mcp, token), mcp)
        assert "resource" in params.get("error_description", "") or params.get("error_description")


def test_other_tokens_are_not_access_tokens(auth, mcp, seen_tokens):
    """A refresh token or an ID token presented as a bearer token is refused at the MCP server,
    and an access token is not a refresh token at the AS."""
    tokens = auth.login(scope="openid mcp:read offline_access", resource=mcp.mcp_url, nonce="n-" + secrets.token_hex(4))
    seen_tokens.update(t for t in (tokens.get("id_token"), tokens["refresh_token"], tokens["access_token"]) if t)
    for other in filter(None, (tokens["refresh_token"], tokens.get("id_token"))):
        assert_invalid_token(initialize(mcp, other), mcp)
    resp = auth.refresh(tokens["access_token"])
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_grant", resp.text
    assert auth.refresh(tokens["refresh_token"]).status_code == 200, "the real refresh token was disturbed"


def test_token_in_query_string_refused(mcp, alice_token):
    # alone: no credentials (the query is not a place we read tokens from)
    resp = initialize(mcp, None, params={"access_token": alice_token})
    assert resp.status_code == 401, resp.text
    assert "Bearer" in resp.headers.get("WWW-Authenticate", "")
    # beside a header token: two methods at once (RFC 6750 §2)
    resp = initialize(mcp, alice_token, params={"access_token": alice_token})
    assert resp.status_code == 400, resp.text
    assert resp.json().get("error") == "invalid_request"
    # a session-token header is not accepted unless configured (auth.accept_session_token_header)
    resp = initialize(mcp, None, headers={"X-Session-Token": alice_token})
    assert resp.status_code == 401, resp.text
    # and a form-body token is not a thing for JSON-RPC
    resp = requests.post(mcp.mcp_url, data={"access_token": alice_token}, timeout=harness.HTTP_TIMEOUT)
    assert resp.status_code == 401


def test_session_id_reused_with_another_users_token(auth, mcp, alice_token, seen_tokens):
    bob_token = auth.login(scope="mcp:read mcp:write", resource=mcp.mcp_url, user="bob")["access_token"]
    seen_tokens.add(bob_token)
    alice = mcp.session(alice_token)
    try:
        alice.call_tool("add_note", {"text": "alice's secret note"})
        hijacker = mcp.client(bob_token)
        hijacker.session_id = alice.session_id
        for method, params in (("tools/call", {"name": "list_notes", "arguments": {}}),
                               ("tools/call", {"name": "whoami", "arguments": {}})):
            resp = hijacker.send(method, params)
            assert resp.status_code in (403, 404), f"{resp.status_code}: {resp.text[:300]}"
            assert "alice" not in resp.text
        # a DELETE of alice's session with bob's token does not end it
        resp = hijacker.http.delete(mcp.mcp_url, headers=hijacker.headers(), timeout=harness.HTTP_TIMEOUT)
        assert resp.status_code in (403, 404), resp.status_code
        assert "alice@example.com" in json.dumps(alice.call_tool("whoami")), "alice's session was disturbed"
    finally:
        alice.close()


def test_unknown_kid_flood_keeps_jwks_fetches_bounded(auth, mcp, alice_token, seen_tokens):
    """Tokens with ever-new kids could make the MCP server fetch the JWKS per request; the
    fetches must stay within auth.unknown_kid_rate_limit (here one per second)."""
    attacker = attacker_key()
    _, payload, _ = ah.split_jwt(alice_token)
    count = 300
    tokens = [ah.sign_rs256(payload, attacker, {"kid": f"flood-{i}-{secrets.token_hex(3)}"}) for i in range(count)]
    seen_tokens.update(tokens)
    before = auth.control.request_count("jwks")
    start = time.monotonic()

    def send(token):
        return initialize(mcp, token).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        flood = pool.map(send, tokens, timeout=60)
        time.sleep(0.5)  # let the flood build up, then measure an honest request inside it
        honest_start = time.monotonic()
        honest = initialize(mcp, alice_token).status_code
        honest_latency = time.monotonic() - honest_start
        statuses = list(flood)
    elapsed = time.monotonic() - start
    assert honest == 200 and honest_latency < 2.0, f"honest request during the flood: {honest} in {honest_latency:.2f}s"
    fetched = auth.control.request_count("jwks") - before
    assert statuses == [401] * count, sorted(set(statuses))
    bound = math.ceil(elapsed / UNKNOWN_KID_INTERVAL) + 2  # one per interval, plus the burst of one
    print(f"unknown-kid flood: {count} tokens in {elapsed:.2f}s -> {fetched} JWKS fetches (bound {bound})")
    assert fetched <= bound, f"{fetched} JWKS fetches for {count} unknown kids in {elapsed:.1f}s (bound {bound})"
    # the honest caller is still served during and right after the flood
    assert initialize(mcp, alice_token).status_code == 200


# ---------------------------------------------------------------------------------------------
# the audit log


def test_audit_logs_need_mcp_audit(auth, mcp, alice_token):
    resp = mcp.http.get("/audit-logs", headers={"Authorization": f"Bearer {alice_token}"})
    assert resp.status_code == 403, resp.text
    params = www_authenticate_params(resp.headers.get("WWW-Authenticate", ""))
    assert params.get("error") == "insufficient_scope" and "mcp:audit" in params.get("scope", "").split(), resp.headers
    assert "alice" not in resp.text
    resp = mcp.http.get("/audit-logs")
    assert resp.status_code == 401 and "Bearer" in resp.headers.get("WWW-Authenticate", "")
    resp = mcp.http.get("/audit-logs", headers={"Authorization": "Bearer " + ah.unsigned_jwt({"alg": "none"}, {"scope": "mcp:audit"})})
    assert_invalid_token(resp, mcp)


def test_audit_records_contain_no_token(auth, mcp, alice_token, seen_tokens):
    """Runs after the attacks above: neither a real nor a forged token is in the audit log, in the
    file or through /audit-logs; the refused requests are recorded as denied."""
    resp = auth.client_credentials(scope="mcp:read mcp:audit", resource=mcp.mcp_url)
    assert resp.status_code == 200, resp.text
    audit_token = resp.json()["access_token"]
    seen_tokens.add(alice_token)
    records = mcp.http.get("/audit-logs", params={"limit": 1000}, headers={"Authorization": f"Bearer {audit_token}"})
    assert records.status_code == 200, records.text
    text = mcp.audit_file.read_text() + records.text
    assert "denied" in text
    leaked = [t[:16] for t in seen_tokens if t and (t in text or t.split(".")[-1] in text and len(t.split(".")[-1]) > 20)]
    assert not leaked, f"{len(leaked)} tokens (or their signatures) found in the audit log"
    for needle in ("Bearer ey", "refresh_token", "code_verifier"):
        assert needle not in text


# ---------------------------------------------------------------------------------------------
# oversized input


def test_oversized_token_body(auth):
    big = {"grant_type": "authorization_code", "code": "x" * 70_000, "client_id": PUBLIC_CLIENT}
    resp = auth.token_request(big)
    assert resp.status_code == 413 and oauth_error(resp) == "invalid_request", resp.text[:300]
    fresh_login_works(auth)


def test_oversized_registration_body(auth):
    body = {"redirect_uris": [DEFAULT_REDIRECT], "client_name": "x" * 100_000}
    resp = auth.http.post("/register", json=body)
    assert resp.status_code == 413 and oauth_error(resp) == "invalid_request", resp.text[:300]


def test_oversized_mcp_body(mcp, alice_token):
    payload = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"message": "x" * (2 << 20)}}}
    resp = mcp.client(alice_token).post(payload)
    assert resp.status_code == 413, resp.status_code
    assert resp.json()["error"]["code"] == -32600
    assert initialize(mcp, alice_token).status_code == 200


@pytest.mark.parametrize("target", ["auth", "mcp"])
def test_oversized_headers(servers, alice_token, target):
    auth, mcp = servers
    url = auth.base_url + "/healthz" if target == "auth" else mcp.mcp_url
    headers = {"X-Big": "a" * 200_000}
    try:
        resp = requests.get(url, headers=headers, timeout=harness.HTTP_TIMEOUT)
        assert resp.status_code == 431, resp.status_code
    except requests.ConnectionError:
        pass  # closing the connection is also a refusal
    huge_bearer = {"Authorization": "Bearer " + "a" * 200_000}
    try:
        resp = requests.post(mcp.mcp_url, headers=huge_bearer, data="{}", timeout=harness.HTTP_TIMEOUT)
        assert resp.status_code == 431, resp.status_code
    except requests.ConnectionError:
        pass


# ---------------------------------------------------------------------------------------------
# dynamic client registration


def register(auth, **metadata) -> requests.Response:
    body = {"redirect_uris": [DEFAULT_REDIRECT], "client_name": "attack test",
            "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}
    body.update(metadata)
    return auth.http.post("/register", json=body)


BAD_REDIRECTS = [
    "javascript:alert(document.cookie)",
    "JavaScript://127.0.0.1/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://evil.example/callback",
    "http://192.168.1.10/callback",
    "http://127.0.0.1.nip.io/callback",
    "file:///etc/passwd",
    "https://app.example/cb#fragment",
    "https://user:pass@app.example/cb",
    "/relative/callback",
]


@pytest.mark.parametrize("redirect_uri", BAD_REDIRECTS)
def test_registration_with_bad_redirect_uri(auth, redirect_uri):
    resp = register(auth, redirect_uris=[DEFAULT_REDIRECT, redirect_uri])
    assert resp.status_code == 400 and oauth_error(resp) == "invalid_redirect_uri", resp.text
    assert "client_id" not in resp.json()


@pytest.mark.parametrize("metadata", [
    {"redirect_uris": [f"http://127.0.0.1:{3000 + i}/cb" for i in range(25)]},
    {"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"},
    {"grant_types": ["implicit"], "response_types": ["token"]},
    {"token_endpoint_auth_method": "private_key_jwt_unknown"},
    {"redirect_uris": []},
])
def test_registration_with_bad_metadata(auth, metadata):
    resp = register(auth, **metadata)
    assert resp.status_code == 400 and oauth_error(resp) in ("invalid_client_metadata", "invalid_redirect_uri"), resp.text


def test_registration_cannot_grant_unknown_scopes(auth):
    resp = register(auth, scope="mcp:read admin root")
    assert resp.status_code == 201, resp.text
    assert resp.json()["scope"].split() == ["mcp:read"]


def test_registration_cap_holds_under_a_flood(auth):
    """Thousands of registrations against registration.max_clients = 50: exactly 50 succeed, even
    when sent concurrently, the rest get the standard error, and the server keeps working. The
    refused registrations above (bad redirect URIs) took no slot."""
    auth.control.reset()
    for bad in BAD_REDIRECTS[:3]:
        assert register(auth, redirect_uris=[bad]).status_code == 400
    total = 2000
    session = requests.Session()

    def one(i):
        try:
            r = session.post(auth.base_url + "/register", json={"redirect_uris": [DEFAULT_REDIRECT], "client_name": f"flood {i}"},
                             timeout=harness.HTTP_TIMEOUT)
            return r.status_code, oauth_error(r) if r.status_code != 201 else r.json()["client_id"]
        except requests.RequestException as exc:
            return 0, str(exc)

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(total), timeout=120))
    elapsed = time.monotonic() - start
    created = [v for s, v in results if s == 201]
    refused = [(s, v) for s, v in results if s != 201]
    assert len(created) == MAX_CLIENTS, f"{len(created)} clients registered with a cap of {MAX_CLIENTS}"
    assert len(set(created)) == MAX_CLIENTS
    assert set(refused) == {(503, "temporarily_unavailable")}, set(refused)
    assert elapsed < 60
    # a registered client works; the cap does not stop preregistered clients
    _, challenge = harness.pkce_pair()
    resp = auth.authorize_request(client_id=created[0], challenge=challenge, state="s")
    assert resp.status_code == 302 and "code=" in resp.headers["Location"]
    fresh_login_works(auth)
    auth.control.reset()


# ---------------------------------------------------------------------------------------------
# CSRF on the consent form


@pytest.fixture(scope="module")
def consent_auth(tmp_path_factory):
    try:
        server = ah.start_auth(tmp_path_factory.mktemp("consent-as"), {"mock": {"auto_approve": False}})
    except RuntimeError as exc:
        pytest.fail(f"authorization server did not start: {exc}", pytrace=False)
    yield server
    ah.stop(server)


def consent_page(server) -> tuple[requests.Session, dict[str, str], str, str]:
    """GET /authorize in a browser-like session: the page, its hidden fields and the cookie."""
    browser = requests.Session()
    verifier, challenge = harness.pkce_pair()
    state = secrets.token_urlsafe(8)
    params = {"response_type": "code", "client_id": PUBLIC_CLIENT, "redirect_uri": DEFAULT_REDIRECT,
              "scope": "mcp:read", "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
    resp = browser.get(server.base_url + "/authorize", params=params, timeout=harness.HTTP_TIMEOUT, allow_redirects=False)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html"), resp.text[:300]
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', resp.text))
    assert fields.get("csrf_token") and fields.get("request_id"), fields
    assert browser.cookies, "no CSRF cookie set"
    return browser, fields, verifier, state


def decide(server, browser, fields, **overrides) -> requests.Response:
    form = {"request_id": fields["request_id"], "csrf_token": fields["csrf_token"], "user": "alice", "action": "approve"}
    form.update(overrides)
    form = {k: v for k, v in form.items() if v is not None}
    return browser.post(server.base_url + "/authorize/decision", data=form, timeout=harness.HTTP_TIMEOUT, allow_redirects=False)


@pytest.mark.parametrize("attack", ["no token", "wrong token", "token of another page", "no cookie", "wrong cookie"])
def test_consent_csrf_refused(consent_auth, attack):
    server = consent_auth
    browser, fields, _, _ = consent_page(server)
    before = server.control.stats()
    if attack == "no token":
        resp = decide(server, browser, fields, csrf_token=None)
    elif attack == "wrong token":
        resp = decide(server, browser, fields, csrf_token=secrets.token_urlsafe(32))
    elif attack == "token of another page":
        _, other, _, _ = consent_page(server)
        resp = decide(server, browser, fields, csrf_token=other["csrf_token"])
    elif attack == "no cookie":
        resp = decide(server, requests.Session(), fields)
    else:
        forged = requests.Session()
        forged.cookies.set("mock_as_csrf", secrets.token_urlsafe(32))
        resp = decide(server, forged, fields)
    assert resp.status_code == 400, resp.status_code
    assert "Location" not in resp.headers, "a refused decision must not redirect (no code, no error to the client)"
    assert "invalid_request" in resp.text and "code=" not in resp.text
    after = server.control.stats()
    assert after["grants"] == before["grants"]
    decisions = [r for r in after["last_requests"].get("authorize", []) if r.get("method") == "POST"]
    assert decisions and decisions[-1]["status"] == 400
    # the honest flow still works from a fresh page
    browser, fields, verifier, state = consent_page(server)
    ok = decide(server, browser, fields)
    params = server.redirect_params(ok, DEFAULT_REDIRECT, state)
    assert params.get("code"), params
    tokens = server.token_request({"grant_type": "authorization_code", "code": params["code"], "redirect_uri": DEFAULT_REDIRECT,
                                   "client_id": PUBLIC_CLIENT, "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    assert ah.healthy(server.base_url)


def test_consent_decision_is_single_use(consent_auth):
    server = consent_auth
    browser, fields, _, state = consent_page(server)
    first = decide(server, browser, fields)
    assert server.redirect_params(first, DEFAULT_REDIRECT, state).get("code")
    again = decide(server, browser, fields)
    assert again.status_code == 400 and "Location" not in again.headers


def test_consent_page_cannot_be_framed(consent_auth):
    browser = requests.Session()
    _, challenge = harness.pkce_pair()
    resp = browser.get(consent_auth.base_url + "/authorize", timeout=harness.HTTP_TIMEOUT, allow_redirects=False,
                       params={"response_type": "code", "client_id": PUBLIC_CLIENT, "redirect_uri": DEFAULT_REDIRECT,
                               "code_challenge": challenge, "code_challenge_method": "S256"})
    assert resp.status_code == 200
    frame = resp.headers.get("X-Frame-Options", "").upper()
    csp = resp.headers.get("Content-Security-Policy", "")
    assert frame in ("DENY", "SAMEORIGIN") or "frame-ancestors" in csp, resp.headers


# ---------------------------------------------------------------------------------------------
# per-tool scopes: crafted JSON-RPC bodies


def raw_call(session, body: str) -> requests.Response:
    return session.http.post(session.url, data=body.encode(), headers=session.headers(), timeout=harness.HTTP_TIMEOUT)


CRAFTED_CALLS = {
    "duplicate name, write tool first": '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add_note","name":"echo","arguments":{"text":"%s","message":"x"}}}',
    "duplicate name, write tool last": '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","name":"add_note","arguments":{"text":"%s","message":"x"}}}',
    "case variant key": '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"Name":"add_note","arguments":{"text":"%s"}}}',
    "escaped key": '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"n\\u0061me":"add_note","arguments":{"text":"%s"}}}',
    "duplicate params": '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"%s"}},"params":{"name":"echo","arguments":{"message":"x"}}}',
    "duplicate method": '{"jsonrpc":"2.0","id":7,"method":"tools/list","method":"tools/call","params":{"name":"add_note","arguments":{"text":"%s"}}}',
    "batch": '[{"jsonrpc":"2.0","id":7,"method":"tools/list"},{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"add_note","arguments":{"text":"%s"}}}]',
}


@pytest.mark.parametrize("name", list(CRAFTED_CALLS))
def test_per_tool_scope_not_bypassed_by_crafted_body(auth, mcp, alice_token, seen_tokens, name):
    """A read-only token must not reach add_note (mcp:write) however the JSON-RPC body is
    written: duplicate or case-variant keys, escapes, batches. The note must not exist after."""
    reader = auth.login(scope="mcp:read", resource=mcp.mcp_url, user="alice")["access_token"]
    seen_tokens.add(reader)
    marker = "crafted-" + secrets.token_hex(6)
    session = mcp.session(reader)
    try:
        resp = raw_call(session, CRAFTED_CALLS[name] % marker)
        assert resp.status_code in (200, 400, 403), resp.status_code
        if resp.status_code == 403:
            params = www_authenticate_params(resp.headers.get("WWW-Authenticate", ""))
            assert params.get("error") == "insufficient_scope" and "mcp:write" in params.get("scope", ""), resp.headers
    finally:
        session.close()
    writer = mcp.session(alice_token)
    try:
        notes = json.dumps(writer.call_tool("list_notes"))
    finally:
        writer.close()
    assert marker not in notes, f"{name}: a read-only token added a note"


def test_consent_page_escapes_client_metadata(consent_auth):
    """A dynamically registered client's name is attacker-chosen: the consent page shows it as
    text, never as markup (stored XSS on the login page would defeat the CSRF protection)."""
    payload = '<script>alert("xss")</script><img src=x onerror=alert(1)>'
    resp = consent_auth.http.post("/register", json={"redirect_uris": [DEFAULT_REDIRECT], "client_name": payload,
                                                     "client_uri": "javascript:alert(1)"})
    if resp.status_code == 400:
        resp = consent_auth.http.post("/register", json={"redirect_uris": [DEFAULT_REDIRECT], "client_name": payload})
    assert resp.status_code == 201, resp.text
    client_id = resp.json()["client_id"]
    _, challenge = harness.pkce_pair()
    page = consent_auth.http.get("/authorize", params={"response_type": "code", "client_id": client_id,
                                                       "redirect_uri": DEFAULT_REDIRECT, "code_challenge": challenge,
                                                       "code_challenge_method": "S256", "state": "<script>s</script>"})
    assert page.status_code == 200, page.text[:300]
    assert "<script>" not in page.text and "<img" not in page.text
    assert "&lt;script&gt;" in page.text and "&lt;img" in page.text
    assert "javascript:" not in page.text
