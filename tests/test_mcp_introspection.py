"""The MCP server in introspection mode (auth.mode = "introspection", RFC 7662) against a running
authorization server: an access token from an auto-approved PKCE login works, the refresh token of
the same grant used as a bearer token is refused with 401 invalid_token (it is a credential for the
token endpoint only, RFC 6749 §1.5), and a revoked access token (RFC 7009) is refused once the
introspection cache entry has expired."""

from __future__ import annotations

import time

import harness
from harness import www_authenticate_params

CACHE_TTL = 1.0  # seconds: auth.introspection_cache_ttl of the server under test


def initialize(mcp: harness.MCPServer, token: str):
    return mcp.client(token).send("initialize", {
        "protocolVersion": harness.PROTOCOL_VERSION, "capabilities": {},
        "clientInfo": {"name": "pytest-introspection", "version": "1"}})


def invalid_token_challenge(resp) -> dict[str, str]:
    assert resp.status_code == 401, f"{resp.status_code}: {resp.text[:300]}"
    params = www_authenticate_params(resp.headers.get("WWW-Authenticate", ""))
    assert params[""].lower() == "bearer", params
    assert params.get("error") == "invalid_token", params
    assert params.get("resource_metadata"), params
    return params


def test_introspection_mode_access_refresh_and_revoked_tokens(services, token_log):
    auth = services.auth()
    mcp = services.mcp(auth.issuer, {"auth": {
        "mode": "introspection",
        "introspection_client_id": harness.SERVICE_CLIENT,
        "introspection_client_secret": harness.SERVICE_SECRET,
        "introspection_cache_ttl": f"{CACHE_TTL:g}s",
    }})
    tokens = auth.login(scope="mcp:read offline_access", resource=mcp.mcp_url, user="alice")
    access, refresh = tokens["access_token"], tokens.get("refresh_token")
    assert refresh, f"no refresh token for offline_access: {sorted(tokens)}"
    token_log.add(access, refresh)

    # The access token works: a session, and a tool call that sees who the caller is.
    session = mcp.session(access)
    whoami = harness.tool_data(session.call_tool("whoami"))
    assert whoami.get("subject") == "alice", whoami

    # The refresh token is active at the authorization server, but it is not an access token:
    # refused as a bearer token, for a new session and inside the open one alike.
    assert auth.is_active(refresh)
    invalid_token_challenge(initialize(mcp, refresh))
    borrowed = mcp.client(refresh)
    borrowed.session_id = session.session_id
    invalid_token_challenge(borrowed.send("tools/list"))

    # A revoked access token is refused once its cached introspection answer expires.
    assert session.send("tools/list").status_code == 200  # (re)fills the cache
    assert auth.revoke(access).status_code == 200
    assert not auth.is_active(access)
    revoked_at = time.monotonic()
    harness.bounded_wait(lambda: session.send("tools/list").status_code == 401,
                         timeout=CACHE_TTL + 4.0, interval=0.2, what="the revoked token to be refused")
    assert time.monotonic() - revoked_at <= CACHE_TTL + 4.0
    invalid_token_challenge(session.last_response)
    session.close()
