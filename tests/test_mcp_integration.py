"""The protected MCP server with the authorization server: resource metadata (RFC 9728), bearer
challenges (RFC 6750), audience binding (RFC 8707), MCP over Streamable HTTP with each tool,
resources and prompts, scope step-up, per-user isolation, session binding and the audit log."""

from __future__ import annotations

import json
import secrets
import time

import pytest

import harness
from harness import MCPError, tool_data, tool_text, www_authenticate_params

EXPECTED_TOOLS = {"whoami", "echo", "calculate", "add_note", "list_notes"}


@pytest.fixture(scope="module", autouse=True)
def clean_auth_server(auth_server):
    """Start this module from the configured state (an earlier module may have shortened
    lifetimes)."""
    if auth_server.control.enabled:
        auth_server.control.reset()


@pytest.fixture(scope="module")
def tokens(auth_server, mcp_server, token_log):
    """Access tokens for the MCP resource: alice and bob with read+write, a read-only one for
    alice, and a service token with mcp:audit (client_credentials)."""
    res = mcp_server.mcp_url
    out = {
        "alice": auth_server.login(scope="mcp:read mcp:write", resource=res, user="alice")["access_token"],
        "bob": auth_server.login(scope="mcp:read mcp:write", resource=res, user="bob")["access_token"],
        "alice_read": auth_server.login(scope="mcp:read", resource=res, user="alice")["access_token"],
    }
    resp = auth_server.client_credentials(scope="mcp:read mcp:audit", resource=res)
    assert resp.status_code == 200, resp.text
    out["audit"] = resp.json()["access_token"]
    token_log.add(*out.values())
    return out


@pytest.fixture(scope="module")
def alice(mcp_server, tokens):
    session = mcp_server.session(tokens["alice"])
    yield session
    session.close()


def challenge(resp):
    header = resp.headers.get("WWW-Authenticate", "")
    assert header, f"no WWW-Authenticate on {resp.status_code}"
    params = www_authenticate_params(header)
    assert params[""].lower() == "bearer", header
    return params


def initialize_raw(mcp_server, headers=None, params=None, token=None):
    client = mcp_server.client(token)
    payload = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": harness.PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "pytest", "version": "1"}},
    }
    return client.post(payload, headers=headers, params=params)


def audit_records(mcp_server, token, **filters):
    resp = mcp_server.http.get("/audit-logs", params=filters, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, f"/audit-logs: {resp.status_code} {resp.text[:300]}"
    body = resp.json()
    if isinstance(body, dict):
        lists = [v for v in body.values() if isinstance(v, list)]
        assert len(lists) == 1, f"cannot find the record list in {list(body)}"
        body = lists[0]
    assert isinstance(body, list)
    return body


# ------------------------------------------------------------------------------------------------
# health and resource metadata


def test_health_and_readiness(mcp_server):
    assert mcp_server.http.get("/healthz").status_code == 200
    assert mcp_server.http.get("/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"])
def test_protected_resource_metadata(mcp_server, auth_server, path):
    resp = mcp_server.http.get(path)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    meta = resp.json()
    assert meta["resource"] == mcp_server.mcp_url
    assert meta["authorization_servers"] == [auth_server.issuer]
    scopes = set(meta["scopes_supported"])
    assert {"mcp:read", "mcp:write"} <= scopes
    assert "offline_access" not in scopes  # MCP 2026-07-28
    assert meta["bearer_methods_supported"] == ["header"]
    assert meta.get("resource_name")


# ------------------------------------------------------------------------------------------------
# challenges


def test_no_token_gets_401_with_resource_metadata(mcp_server):
    resp = initialize_raw(mcp_server)
    assert resp.status_code == 401
    params = challenge(resp)
    assert "error" not in params, "RFC 6750 §3.1: no error code when no credentials were sent"
    meta_url = params["resource_metadata"]
    assert meta_url.startswith(mcp_server.base_url + "/.well-known/oauth-protected-resource")
    meta = harness.requests.get(meta_url, timeout=harness.HTTP_TIMEOUT).json()
    assert meta["resource"] == mcp_server.mcp_url


@pytest.mark.parametrize("bad", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9."],
                         ids=["garbage", "three-dots", "alg-none"])
def test_bad_token_gets_invalid_token(mcp_server, bad):
    resp = initialize_raw(mcp_server, token=bad)
    assert resp.status_code == 401
    params = challenge(resp)
    assert params.get("error") == "invalid_token"
    assert params.get("resource_metadata")


def test_token_in_query_string_refused(mcp_server, tokens):
    resp = initialize_raw(mcp_server, params={"access_token": tokens["alice"]})
    assert resp.status_code == 401
    challenge(resp)


def test_token_for_another_audience_refused(mcp_server, auth_server, token_log):
    other = auth_server.login(scope="mcp:read", resource="http://127.0.0.1:9/other-mcp")["access_token"]
    no_resource = auth_server.login(scope="mcp:read")["access_token"]  # aud = client id
    token_log.add(other, no_resource)
    for token in (other, no_resource):
        resp = initialize_raw(mcp_server, token=token)
        assert resp.status_code == 401, resp.text
        assert challenge(resp).get("error") == "invalid_token"


def test_token_without_mcp_read_gets_403(mcp_server, auth_server, token_log):
    token = auth_server.login(scope="openid email", resource=mcp_server.mcp_url)["access_token"]
    token_log.add(token)
    resp = initialize_raw(mcp_server, token=token)
    assert resp.status_code == 403, resp.text
    params = challenge(resp)
    assert params.get("error") == "insufficient_scope"
    assert "mcp:read" in params.get("scope", "").split()


def test_foreign_origin_refused(mcp_server, tokens):
    """DNS-rebinding protection (MCP transport spec): a non-loopback Origin is refused."""
    resp = initialize_raw(mcp_server, token=tokens["alice"], headers={"Origin": "http://evil.example.com"})
    assert resp.status_code == 403, resp.text


# ------------------------------------------------------------------------------------------------
# MCP


def test_initialize_and_tools_list(mcp_server, tokens):
    client = mcp_server.client(tokens["alice"])
    result = client.initialize()
    try:
        assert result["protocolVersion"] in ("2025-11-25", "2025-06-18")
        assert result["serverInfo"]["name"]
        assert "tools" in result["capabilities"]
        assert client.session_id, "stateful server must issue Mcp-Session-Id"
        tools = {t["name"]: t for t in client.request("tools/list")["tools"]}
        assert EXPECTED_TOOLS <= set(tools)
        for tool in tools.values():
            assert tool["inputSchema"]["type"] == "object"
        assert client.request("ping") == {}
    finally:
        client.close()


def test_whoami_shows_the_user(alice):
    result = alice.call_tool("whoami")
    assert not result.get("isError"), result
    text = json.dumps(tool_data(result)) + tool_text(result)
    assert "alice" in text and "alice@example.com" in text
    assert harness.PUBLIC_CLIENT in text
    assert "mcp:write" in text


def test_whoami_for_bob(mcp_server, tokens):
    bob = mcp_server.session(tokens["bob"])
    try:
        result = bob.call_tool("whoami")
        text = json.dumps(tool_data(result)) + tool_text(result)
        assert "bob@example.com" in text and "alice" not in text
    finally:
        bob.close()


def test_echo(alice):
    message = "hello " + secrets.token_hex(4)
    result = alice.call_tool("echo", {"message": message})
    assert not result.get("isError"), result
    assert message in tool_text(result)


def test_calculate(alice):
    result = alice.call_tool("calculate", {"operation": "multiply", "a": 6, "b": 7})
    assert not result.get("isError"), result
    assert "42" in json.dumps(result.get("structuredContent")) + tool_text(result)
    assert result.get("structuredContent") is not None, "calculate has structured output"


def test_calculate_division_by_zero(alice):
    try:
        result = alice.call_tool("calculate", {"operation": "divide", "a": 1, "b": 0})
    except MCPError as exc:  # a JSON-RPC error is acceptable too
        assert "zero" in json.dumps(exc.body).lower()
        return
    assert result.get("isError") is True, result
    assert "zero" in tool_text(result).lower()


def test_unknown_tool(alice):
    try:
        result = alice.call_tool("no_such_tool", {})
    except MCPError as exc:
        assert exc.body is not None, f"expected a JSON-RPC error, got {exc}"
        return
    assert result.get("isError") is True, result


def test_add_note_needs_write_scope(mcp_server, tokens):
    reader = mcp_server.session(tokens["alice_read"])
    try:
        assert reader.request("tools/list")["tools"]  # mcp:read is enough to list
        resp = reader.send("tools/call", {"name": "add_note", "arguments": {"text": "nope"}})
        assert resp.status_code == 403, resp.text
        params = challenge(resp)
        assert params.get("error") == "insufficient_scope"
        assert set(params.get("scope", "").split()) == {"mcp:read", "mcp:write"}
        assert params.get("resource_metadata")
        # a read-scoped tool still works on the same session
        assert not reader.call_tool("list_notes").get("isError")
    finally:
        reader.close()


def test_notes_are_per_user(mcp_server, tokens, alice):
    bob = mcp_server.session(tokens["bob"])
    try:
        alice_note = "alice-note-" + secrets.token_hex(4)
        bob_note = "bob-note-" + secrets.token_hex(4)
        assert not alice.call_tool("add_note", {"text": alice_note}).get("isError")
        assert not bob.call_tool("add_note", {"text": bob_note}).get("isError")
        alice_list = json.dumps(alice.call_tool("list_notes"))
        bob_list = json.dumps(bob.call_tool("list_notes"))
        assert alice_note in alice_list and bob_note not in alice_list
        assert bob_note in bob_list and alice_note not in bob_list
    finally:
        bob.close()


def test_resources_list_and_read(alice):
    resources = {r["uri"]: r for r in alice.request("resources/list")["resources"]}
    assert {"file://demo/readme.txt", "data://demo/config.json"} <= set(resources)
    readme = alice.request("resources/read", {"uri": "file://demo/readme.txt"})["contents"]
    assert readme and readme[0]["uri"] == "file://demo/readme.txt" and readme[0].get("text")
    config = alice.request("resources/read", {"uri": "data://demo/config.json"})["contents"]
    json.loads(config[0]["text"])
    with pytest.raises(MCPError):
        alice.request("resources/read", {"uri": "file://demo/../../etc/passwd"})


def test_prompts_list(alice):
    prompts = alice.request("prompts/list")["prompts"]
    assert prompts and all(p.get("name") for p in prompts)


def test_session_bound_to_user(mcp_server, tokens, alice):
    """A session id created for alice cannot be used with bob's token."""
    hijacker = mcp_server.client(tokens["bob"])
    hijacker.session_id = alice.session_id
    resp = hijacker.send("tools/call", {"name": "whoami", "arguments": {}})
    assert resp.status_code in (403, 404), f"{resp.status_code}: {resp.text[:300]}"
    assert "alice@example.com" not in resp.text


def test_session_needs_token_on_every_request(mcp_server, alice):
    anonymous = mcp_server.client(None)
    anonymous.session_id = alice.session_id
    resp = anonymous.send("tools/list")
    assert resp.status_code == 401


# ------------------------------------------------------------------------------------------------
# audit


def test_audit_logs_need_audit_scope(mcp_server, tokens):
    assert mcp_server.http.get("/audit-logs").status_code == 401
    resp = mcp_server.http.get("/audit-logs", headers={"Authorization": f"Bearer {tokens['alice']}"})
    assert resp.status_code == 403
    params = challenge(resp)
    assert params.get("error") == "insufficient_scope" and "mcp:audit" in params.get("scope", "")
    audit_records(mcp_server, tokens["audit"], limit=1)


def test_audit_records_the_calls(mcp_server, tokens, alice):
    marker = "audit-" + secrets.token_hex(4)
    alice.call_tool("echo", {"message": marker})
    alice.call_tool("whoami")
    reader = mcp_server.session(tokens["alice_read"])
    try:
        reader.send("tools/call", {"name": "add_note", "arguments": {"text": "denied"}})
    finally:
        reader.close()
    initialize_raw(mcp_server, token="garbage")  # refused, still audited

    records = audit_records(mcp_server, tokens["audit"], user="alice", method="tools/call", limit=1000)
    assert records, "no audit records for alice's tools/call"
    for r in records:
        assert r["subject"] == "alice" and r["method"] == "tools/call"
    by_tool = {}
    for r in records:
        by_tool.setdefault((r.get("tool"), r["outcome"]), r)
    whoami = by_tool.get(("whoami", "allowed"))
    assert whoami, f"no allowed whoami record in {records[-5:]}"
    assert whoami["email"] == "alice@example.com"
    assert whoami["client_id"] == harness.PUBLIC_CLIENT
    assert whoami["jti"] and whoami["session_id"] == alice.session_id
    assert ("echo", "allowed") in by_tool
    denied = by_tool.get(("add_note", "denied"))
    assert denied, "the insufficient_scope refusal was not audited"
    assert denied["status"] == 403

    denied_all = audit_records(mcp_server, tokens["audit"], outcome="denied", limit=1000)
    assert any(r.get("status") == 401 for r in denied_all), "refused unauthenticated requests are not audited"
    limited = audit_records(mcp_server, tokens["audit"], user="alice", limit=1)
    assert len(limited) == 1


def test_audit_file_has_records_and_no_tokens(mcp_server, tokens, alice, token_log):
    if mcp_server.audit_file is None:
        pytest.skip("audit file location unknown for an external MCP server (set MCP_AUDIT_FILE)")
    alice.call_tool("whoami")
    request_id = alice.last_response.headers.get("X-Request-Id")
    # read at once: the record is written (and synced, audit.sync = always) before the response
    text = mcp_server.audit_file.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert any(r.get("subject") == "alice" and r.get("tool") == "whoami" and r.get("request_id") == request_id
               for r in lines), "the record of the call just answered is not in the file yet"
    for token in token_log.tokens | harness.SEEN_SECRETS:
        assert token not in text, "a token reached the audit file"
        assert token.split(".")[-1] not in text, "a token signature reached the audit file"


def test_key_rotation_picked_up(mcp_server, auth_server, control, token_log, alice):
    """A token signed with a freshly rotated key (unknown kid) is accepted after the MCP
    server refreshes the JWKS, and tokens signed with the old key keep working."""
    control.rotate_key()
    token = auth_server.login(scope="mcp:read", resource=mcp_server.mcp_url, user="bob")["access_token"]
    token_log.add(token)

    def try_session():
        try:
            return mcp_server.session(token)
        except MCPError:
            return None

    # Normally the first request refreshes the JWKS at once. If another unknown kid caused a
    # refresh moments ago (auth.unknown_kid_rate_limit, 10 s by default), the next one waits.
    session = harness.bounded_wait(try_session, timeout=15.0, interval=0.5, what="the rotated key to be accepted")
    try:
        assert "bob@example.com" in json.dumps(session.call_tool("whoami"))
    finally:
        session.close()
    assert "alice@example.com" in json.dumps(alice.call_tool("whoami")), "old-key token refused after rotation"


# ------------------------------------------------------------------------------------------------
# bad input on /mcp


def test_malformed_and_oversized_bodies(mcp_server, tokens, alice):
    headers = alice.headers()
    url = mcp_server.mcp_url
    resp = harness.requests.post(url, data='{"jsonrpc": "2.0", "id": 1, "method": ', headers=headers,
                                 timeout=harness.HTTP_TIMEOUT)
    assert resp.status_code == 400, resp.text[:300]
    big = json.dumps({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"message": "x" * (1 << 20)}}})
    try:
        resp = harness.requests.post(url, data=big, headers=headers, timeout=harness.HTTP_TIMEOUT)
        assert resp.status_code in (400, 413), resp.status_code
    except harness.requests.ConnectionError:
        pass  # closing the connection is acceptable; serving on is what counts
    assert not alice.call_tool("whoami").get("isError")


def test_session_token_header_off_by_default(mcp_server, tokens):
    resp = initialize_raw(mcp_server, headers={"X-Session-Token": tokens["alice"]})
    assert resp.status_code == 401


def test_deleted_session_is_gone(mcp_server, tokens):
    client = mcp_server.session(tokens["alice"])
    resp = client.http.delete(client.url, headers=client.headers(), timeout=harness.HTTP_TIMEOUT)
    assert resp.status_code in (200, 202, 204), resp.status_code
    resp = client.send("tools/list")
    assert resp.status_code == 404, resp.status_code


def test_unsupported_protocol_version_header(mcp_server, tokens, alice):
    resp = alice.post({"jsonrpc": "2.0", "id": 7, "method": "tools/list"},
                      headers={"MCP-Protocol-Version": "1999-01-01"})
    assert resp.status_code == 400


# ------------------------------------------------------------------------------------------------
# servers with their own configuration


def test_authorization_server_down_at_start_then_recovery_and_expiry(services):
    """The MCP server starts without its authorization server, answers 503 + Retry-After, becomes
    ready by itself once the AS appears; with leeway 0 an expired token is refused."""
    as_port = harness.free_port()
    mcp = services.mcp(f"http://127.0.0.1:{as_port}", {"auth": {"leeway": "0s"}}, ready=False)
    assert mcp.http.get("/healthz").status_code == 200
    ready = mcp.http.get("/readyz")
    assert ready.status_code == 503
    resp = initialize_raw(mcp, token="x.y.z")
    assert resp.status_code == 503, resp.text
    assert resp.headers.get("Retry-After")

    auth = services.auth({"tokens": {"access_token_ttl": "2s"}}, port=as_port)
    harness.bounded_wait(lambda: harness.http_status(mcp.base_url + "/readyz") == 200, 15.0,
                         what="MCP server recovery")
    tokens = auth.login(scope="mcp:read", resource=mcp.mcp_url)
    session = mcp.session(tokens["access_token"])
    exp = harness.unverified_claims(tokens["access_token"])["exp"]
    time.sleep(max(0.0, min(exp - time.time() + 0.3, 2.5)))  # bounded: let the 2 s token expire
    resp = session.send("tools/list")
    assert resp.status_code == 401, resp.text
    assert challenge(resp).get("error") == "invalid_token"


def test_introspection_mode_refuses_revoked_tokens(services, auth_server, token_log):
    mcp = services.mcp(auth_server.issuer, {"auth": {
        "mode": "introspection", "introspection_client_id": harness.SERVICE_CLIENT,
        "introspection_client_secret": harness.SERVICE_SECRET, "introspection_cache_ttl": "0s"}})
    tokens = auth_server.login(scope="mcp:read offline_access", resource=mcp.mcp_url, user="bob")
    token_log.add(tokens["access_token"], tokens["refresh_token"])
    session = mcp.session(tokens["access_token"])
    assert "bob@example.com" in json.dumps(session.call_tool("whoami"))
    assert auth_server.revoke(tokens["access_token"]).status_code == 200
    resp = session.send("tools/list")
    assert resp.status_code == 401, resp.text
    assert challenge(resp).get("error") == "invalid_token"
    other = auth_server.login(scope="mcp:read", resource="http://127.0.0.1:9/other")["access_token"]
    assert initialize_raw(mcp, token=other).status_code == 401


def test_stateless_mode(services, auth_server):
    mcp = services.mcp(auth_server.issuer, {"server": {"stateless": True}})
    token = auth_server.login(scope="mcp:read", resource=mcp.mcp_url)["access_token"]
    client = mcp.client(token)
    client.initialize()
    assert not client.session_id, "stateless server issued a session id"
    assert not client.call_tool("echo", {"message": "stateless"}).get("isError")


def test_audit_fail_closed(services, auth_server, tmp_path):
    """When the audit record cannot be written the request fails (audit.fail_closed = true)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the audit directory should be")
    proc = services.mcp_process(auth_server.issuer, {"audit": {"file": str(blocker / "audit.jsonl")}})
    proc.spawn()
    try:
        proc.wait_healthy(timeout=5)
    except RuntimeError:
        # refusing to start with an unwritable audit file is fail-closed too, with a clear line
        assert "audit" in proc.stderr_tail(), proc.stderr_tail()
        return
    harness.bounded_wait(lambda: harness.http_status(proc.base_url + "/readyz") in (200, 503), 10.0, what="readyz")
    token = auth_server.login(scope="mcp:read", resource=proc.base_url + "/mcp")["access_token"]
    resp = initialize_raw(harness.MCPServer(proc.base_url + "/mcp", proc), token=token)
    assert resp.status_code >= 500, f"request served without an audit record: {resp.status_code}"


def test_token_from_another_issuer_refused(services, mcp_server):
    """A token signed by a different authorization server, even for this exact resource."""
    rogue = services.auth()
    token = rogue.login(scope="mcp:read mcp:write", resource=mcp_server.mcp_url)["access_token"]
    resp = initialize_raw(mcp_server, token=token)
    assert resp.status_code == 401, resp.text
    assert challenge(resp).get("error") == "invalid_token"


def test_cors_for_configured_browser_origin(services, auth_server):
    origin = "http://app.example.test"
    mcp = services.mcp(auth_server.issuer, {"server": {"cors_origins": [origin], "allowed_origins": [origin]}})
    pre = harness.requests.options(mcp.mcp_url, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version, mcp-session-id"},
        timeout=harness.HTTP_TIMEOUT)
    assert pre.status_code in (200, 204), pre.status_code
    assert pre.headers.get("Access-Control-Allow-Origin") == origin
    allowed = pre.headers.get("Access-Control-Allow-Headers", "").lower()
    assert "authorization" in allowed and "mcp-session-id" in allowed
    token = auth_server.login(scope="mcp:read", resource=mcp.mcp_url)["access_token"]
    resp = initialize_raw(mcp, token=token, headers={"Origin": origin})
    assert resp.status_code == 200, resp.text
    exposed = resp.headers.get("Access-Control-Expose-Headers", "").lower()
    assert "mcp-session-id" in exposed and "www-authenticate" in exposed
    denied = initialize_raw(mcp, token=token, headers={"Origin": "http://other.example.test"})
    assert denied.status_code == 403
    assert "Access-Control-Allow-Origin" not in denied.headers


# ------------------------------------------------------------------------------------------------
# more audit and transport details


def test_audit_record_fields_and_request_id(mcp_server, tokens, alice):
    request_id = "pytest-" + secrets.token_hex(6)
    resp = alice.post({"jsonrpc": "2.0", "id": 4242, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"message": "rid"}}},
                      headers={"X-Request-Id": request_id})
    assert resp.status_code == 200
    echoed = resp.headers.get("X-Request-Id")
    assert echoed, "no X-Request-Id on the response"
    records = [r for r in audit_records(mcp_server, tokens["audit"], user="alice", limit=1000)
               if r.get("request_id") == echoed]
    assert len(records) == 1, f"no single audit record for request id {echoed}"
    rec = records[0]
    assert rec["tool"] == "echo" and rec["outcome"] == "allowed" and rec["status"] == 200
    assert rec["http_method"] == "POST" and rec["path"] == "/mcp"
    assert rec["remote_addr"].startswith("127.0.0.1") and rec["duration_ms"] >= 0 and rec["time"]


def test_audit_since_and_outcome_filters(mcp_server, tokens, alice):
    records = audit_records(mcp_server, tokens["audit"], limit=1000)
    assert records
    latest = max(r["time"] for r in records)
    alice.call_tool("whoami")
    newer = audit_records(mcp_server, tokens["audit"], since=latest, limit=1000)
    assert newer and all(r["time"] >= latest for r in newer)
    assert len(newer) < len(records)
    for outcome in ("allowed", "denied"):
        subset = audit_records(mcp_server, tokens["audit"], outcome=outcome, limit=1000)
        assert subset and all(r["outcome"] == outcome for r in subset)
    resp = mcp_server.http.get("/audit-logs", params={"since": "yesterday"},
                               headers={"Authorization": f"Bearer {tokens['audit']}"})
    assert resp.status_code == 400


def test_audit_logs_refuse_a_token_for_another_audience(mcp_server, auth_server):
    resp = auth_server.client_credentials(scope="mcp:audit")  # aud = client id, not this server
    token = resp.json()["access_token"]
    resp = mcp_server.http.get("/audit-logs", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


def test_tool_arguments_are_validated(alice):
    try:
        result = alice.call_tool("calculate", {"operation": "multiply", "a": "six", "b": 7})
    except MCPError as exc:
        assert exc.body is not None and exc.body.get("code") == -32602, exc.body
        return
    assert result.get("isError") is True, result


def test_get_stream_with_token(mcp_server, alice):
    resp = harness.requests.get(mcp_server.mcp_url, headers={
        "Accept": "text/event-stream", "Authorization": f"Bearer {alice.token}",
        "Mcp-Session-Id": alice.session_id, "MCP-Protocol-Version": alice.protocol_version},
        stream=True, timeout=harness.HTTP_TIMEOUT)
    try:
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    finally:
        resp.close()
    resp = harness.requests.get(mcp_server.mcp_url, headers={"Accept": "text/event-stream",
                                                             "Mcp-Session-Id": alice.session_id},
                                timeout=harness.HTTP_TIMEOUT)
    assert resp.status_code == 401


def test_session_token_header_when_enabled(services, auth_server):
    mcp = services.mcp(auth_server.issuer, {"auth": {"accept_session_token_header": True}})
    token = auth_server.login(scope="mcp:read", resource=mcp.mcp_url)["access_token"]
    resp = initialize_raw(mcp, headers={"X-Session-Token": token})
    assert resp.status_code == 200, resp.text
    resp = initialize_raw(mcp, headers={"X-Session-Token": "garbage"})
    assert resp.status_code == 401


def test_same_user_may_continue_a_session_with_a_new_token(mcp_server, auth_server, alice, token_log):
    fresh = auth_server.login(scope="mcp:read mcp:write", resource=mcp_server.mcp_url, user="alice")["access_token"]
    token_log.add(fresh)
    cont = mcp_server.client(fresh)
    cont.session_id = alice.session_id
    assert cont.request("tools/list")["tools"]


def test_notes_are_bounded(mcp_server, auth_server, control, token_log):
    subject = "notes-" + secrets.token_hex(3)
    control.call("POST", "/users", {"subject": subject, "email": f"{subject}@example.com", "name": "Notes Cap"})
    token = auth_server.login(scope="mcp:read mcp:write", resource=mcp_server.mcp_url, user=subject)["access_token"]
    token_log.add(token)
    session = mcp_server.session(token)
    try:
        big = session.call_tool("add_note", {"text": "x" * 5000})
        assert big.get("isError") is True, "a 5000-byte note was stored"
        refused_at = None
        for i in range(150):  # bounded: the cap is documented as 100 notes per user
            result = session.call_tool("add_note", {"text": f"note {i}"})
            if result.get("isError"):
                refused_at = i
                break
        assert refused_at is not None, "no cap on notes per user"
        assert "limit" in tool_text(result).lower()
    finally:
        session.close()
