"""Client resilience (issue 5, "Client resilience"): the client binary, headless, against the two
servers while the authorization server's control API injects faults, shortens lifetimes, rotates
keys and forgets clients, and against tiny fake servers that misbehave.

Each case asserts what the client does: its exit status, its one `error: <what>: <why>` line, the
requests (and retries) that reached the authorization server (/control/stats) and what is left in
the token cache file. Each test gets its own token file; the module starts its own pair of servers
and resets the authorization server before every test.

Waiting for an access token to expire: case 10 uses a real 2 s lifetime and one bounded wait; the
other cases that only need "the client thinks its token expired" move the cached expiry into the
past instead (the client's clock is what decides, and the MCP server's 30 s leeway would accept the
token anyway).
"""

from __future__ import annotations

import json
import os
import stat
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest
import requests

import attack_helpers as ah
import harness
from attack_helpers import error_line

MAX_RETRIES = 2  # http.max_retries for the client runs here (CLIENT_HTTP_MAX_RETRIES)
RETRY_ENV = {"CLIENT_HTTP_MAX_RETRIES": str(MAX_RETRIES)}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    auth, mcp = ah.start_pair(tmp_path_factory.mktemp("edge"),
                              mcp_overrides={"auth": {"unknown_kid_rate_limit": "1s"}})
    yield auth, mcp
    ah.stop(mcp, auth)


@pytest.fixture(scope="module")
def auth(servers):
    return servers[0]


@pytest.fixture(scope="module")
def mcp(servers):
    return servers[1]


@pytest.fixture
def control(auth):
    return auth.control


@pytest.fixture(autouse=True)
def clean(servers):
    auth, mcp = servers
    auth.control.reset()
    yield
    auth.control.clear_faults()
    assert ah.healthy(auth.base_url) and ah.healthy(mcp.base_url), "a server stopped serving"


@pytest.fixture
def client(mcp, tmp_path) -> ah.ClientRunner:
    try:
        return ah.ClientRunner(tmp_path, mcp.mcp_url)
    except RuntimeError as exc:
        pytest.fail(f"client binary unavailable: {exc}", pytrace=False)


def requests_to(control, endpoint: str) -> int:
    return control.request_count(endpoint)


def last_token_requests(control) -> list[tuple[str, int]]:
    return [(r.get("form", {}).get("grant_type"), r["status"]) for r in control.stats()["last_requests"].get("token", [])]


def expire_cached(client: ah.ClientRunner, token_file=None) -> None:
    """Move the cached access token's expiry into the past: the client's clock now says it
    expired, so its next run must refresh."""
    path = token_file or client.token_file
    data = json.loads(path.read_text())
    now = datetime.now(timezone.utc)
    for entry in data["entries"].values():
        if entry.get("token"):
            entry["token"]["expiry"] = (now - timedelta(seconds=10)).isoformat().replace("+00:00", "Z")
            entry["token"]["obtained_at"] = (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)


def whoami_ok(client: ah.ClientRunner, **kw) -> ah.subprocess.CompletedProcess:
    proc = client.ok("--json", "call", "whoami", **kw)
    assert "alice@example.com" in proc.stdout, proc.stdout[-1000:]
    return proc


def loopback_flags(port: int) -> tuple[str, ...]:
    return ("--redirect-uri", f"http://127.0.0.1:{port}/callback")


def auth_url_from(running: ah.RunningClient) -> str:
    line = running.wait_for_line(lambda l: l.strip().startswith("http") and "/authorize?" in l, timeout=15)
    return line.strip()


def approve(url: str) -> urllib.parse.SplitResult:
    """Play the browser against the auto-approving AS: the redirect it answers with."""
    resp = requests.get(url, allow_redirects=False, timeout=harness.HTTP_TIMEOUT)
    assert resp.status_code == 302, f"{resp.status_code}: {resp.text[:300]}"
    return urllib.parse.urlsplit(resp.headers["Location"])


def with_query(loc: urllib.parse.SplitResult, **changes) -> str:
    q = dict(urllib.parse.parse_qsl(loc.query))
    q.update(changes)
    return urllib.parse.urlunsplit(loc._replace(query=urllib.parse.urlencode(q)))


# ---------------------------------------------------------------------------------------------
# 1-3: discovery


def test_01_authorization_server_unreachable_at_discovery(client, control, tmp_path):
    """The AS drops every metadata connection: the client retries (http.max_retries), then fails
    naming the AS metadata; nothing is cached."""
    control.fault(endpoint="metadata", count=-1, mode="drop")
    before = requests_to(control, "metadata")
    proc = client.run("login", env=RETRY_ENV)
    line = error_line(proc)
    assert "discovery" in line and "authorization server metadata" in line, line
    attempts = requests_to(control, "metadata") - before
    assert 1 + MAX_RETRIES <= attempts <= 2 * (1 + MAX_RETRIES), f"{attempts} metadata requests"
    assert requests_to(control, "token") == 0 and requests_to(control, "register") == 0
    assert client.tokens() == []


def test_01b_authorization_server_down(client, tmp_path):
    """The AS named by the resource metadata is not listening at all."""
    dead = f"http://127.0.0.1:{harness.free_port()}"
    with ah.FakeServer() as fake:
        url = ah.fake_mcp_challenge(fake, fake.base_url + "/.well-known/oauth-protected-resource/mcp")
        fake.route("/.well-known/oauth-protected-resource/mcp", ah.Reply(200, {"resource": url, "authorization_servers": [dead]}))
        proc = client.run("login", server=url, env=RETRY_ENV)
    line = error_line(proc)
    assert "server unreachable" in line and dead in line, line
    assert client.tokens() == []


def test_02_metadata_malformed(client, control):
    control.fault(endpoint="metadata", count=-1, mode="malformed")
    proc = client.run("login", env=RETRY_ENV)
    line = error_line(proc)
    assert "authorization server metadata" in line, line
    assert requests_to(control, "metadata") == 1, "a 200 with a bad body is not retried"
    assert requests_to(control, "register") == 0 and requests_to(control, "token") == 0
    assert client.tokens() == []


@pytest.mark.parametrize("missing", ["code_challenge_methods_supported", "token_endpoint", "authorization_endpoint", "issuer"])
def test_02b_metadata_missing_fields(client, auth, missing):
    """AS metadata without a required member: refused before any registration or login."""
    with ah.FakeServer() as fake:
        url = ah.fake_mcp_challenge(fake, fake.base_url + "/.well-known/oauth-protected-resource/mcp")
        fake.route("/.well-known/oauth-protected-resource/mcp", ah.Reply(200, {"resource": url, "authorization_servers": [fake.base_url]}))
        meta = {k: v.replace(auth.issuer, fake.base_url) if isinstance(v, str) else v for k, v in auth.metadata.items()}
        del meta[missing]
        fake.route("/.well-known/oauth-authorization-server", ah.Reply(200, meta))
        proc = client.run("login", server=url)
        hits = [r.path for r in fake.requests]
    line = error_line(proc)
    assert "authorization server" in line or "PKCE" in line, line
    assert "/register" not in hits and "/token" not in hits, hits
    assert client.tokens() == []


def test_03_resource_metadata_missing(client, auth, control):
    """No protected resource metadata anywhere: the 2025-03-26 fallback treats the MCP server's
    origin as the AS, finds nothing there and fails; the real AS is never contacted."""
    with ah.FakeServer() as fake:
        url = ah.fake_mcp_challenge(fake, None)
        proc = client.run("login", server=url)
        hits = [r.path for r in fake.requests]
    line = error_line(proc)
    assert "register" in line or "metadata" in line, line
    assert "/.well-known/oauth-protected-resource/mcp" in hits
    assert sum(control.stats()["requests"].values()) == 0
    assert client.tokens() == []


def test_03b_resource_metadata_names_an_unknown_as(client):
    """The resource metadata names a server that is not an authorization server (no RFC 8414
    metadata): the client stops at discovery and never registers or sends a code there."""
    with ah.FakeServer() as fake, ah.FakeServer() as not_an_as:
        url = ah.fake_mcp_challenge(fake, fake.base_url + "/.well-known/oauth-protected-resource/mcp")
        fake.route("/.well-known/oauth-protected-resource/mcp",
                   ah.Reply(200, {"resource": url, "authorization_servers": [not_an_as.base_url]}))
        proc = client.run("login", server=url)
        hits = [r.path for r in not_an_as.requests]
    line = error_line(proc)
    assert not_an_as.base_url in line and "metadata" in line, line
    assert "/register" not in hits and "/authorize" not in hits and "/token" not in hits, hits
    assert client.tokens() == []


# ---------------------------------------------------------------------------------------------
# 4-6: the authorization response


def test_04_login_denied(client, control):
    control.deny_next_login()
    proc = client.run("login")
    line = error_line(proc)
    assert "login denied" in line and "access_denied" in line, line
    assert requests_to(control, "token") == 0
    assert client.tokens() == []
    client.ok("login")  # the next login is not denied


def test_04b_loopback_listener_times_out(client, control):
    port = harness.free_port()
    start = time.monotonic()
    proc = client.run("login", mode="loopback", extra_flags=loopback_flags(port),
                      env={"CLIENT_OAUTH_LOGIN_TIMEOUT": "2s"}, timeout=30)
    elapsed = time.monotonic() - start
    line = error_line(proc)
    assert "timed out" in line and "2s" in line, line
    assert elapsed < 15
    assert requests_to(control, "token") == 0 and requests_to(control, "authorize") == 0
    assert client.tokens() == []
    # the listener is gone: the port can be bound again
    with ah.socket_bound(port):
        pass


def test_05_loopback_callback_with_wrong_state_is_ignored(client, control):
    port = harness.free_port()
    running = client.start("login", mode="loopback", extra_flags=loopback_flags(port), env={"CLIENT_OAUTH_LOGIN_TIMEOUT": "20s"})
    try:
        loc = approve(auth_url_from(running))
        forged = requests.get(with_query(loc, state="forged-state"), timeout=5)
        assert forged.status_code == 400, forged.status_code
        assert requests_to(control, "token") == 0, "a callback with a foreign state was redeemed"
        genuine = requests.get(urllib.parse.urlunsplit(loc), timeout=5)
        assert genuine.status_code == 200
        proc = running.finish(timeout=30)
    finally:
        running.kill()
    assert proc.returncode == 0, ah.describe(proc)
    assert control.grant_count("authorization_code") == 1
    assert len(client.tokens()) == 1


def test_05b_pasted_redirect_with_wrong_state_fails(client, control):
    running = client.start("login", mode="paste", stdin=True)
    try:
        loc = approve(auth_url_from(running))
        running.send_line(with_query(loc, state="forged-state"))
        proc = running.finish(timeout=30)
    finally:
        running.kill()
    line = error_line(proc)
    assert "state mismatch" in line, line
    assert requests_to(control, "token") == 0, "the code of a foreign redirect was redeemed"
    assert client.tokens() == []


def test_06_redirect_with_wrong_iss(client, control):
    """RFC 9207: an authorization response whose iss is not the AS we asked is a mix-up attack;
    the code is never sent to any token endpoint."""
    port = harness.free_port()
    running = client.start("login", mode="loopback", extra_flags=loopback_flags(port), env={"CLIENT_OAUTH_LOGIN_TIMEOUT": "20s"})
    try:
        loc = approve(auth_url_from(running))
        requests.get(with_query(loc, iss="https://attacker.example"), timeout=5)
        proc = running.finish(timeout=30)
    finally:
        running.kill()
    line = error_line(proc)
    assert "issuer" in line.lower(), line
    assert requests_to(control, "token") == 0
    assert client.tokens() == []


# ---------------------------------------------------------------------------------------------
# 7-9: the token endpoint


def test_07_token_500_once_is_retried(client, control):
    control.fault(endpoint="token", count=1, status=500, error="server_error")
    proc = client.run("login", env=RETRY_ENV)
    assert proc.returncode == 0, ah.describe(proc)
    assert [s for _, s in last_token_requests(control)] == [500, 200]
    assert control.grant_count("authorization_code") == 1
    assert len(client.tokens()) == 1


def test_07c_refresh_500_once_is_retried(client, control):
    """A refresh that gets a 500 is tried once more (the transport goes on without a token, the
    401 makes the handler refresh again) and the call succeeds without a new login."""
    client.ok("login")
    expire_cached(client)
    control.fault(endpoint="token", count=1, status=500, error="server_error")
    whoami_ok(client)
    assert last_token_requests(control) == [("authorization_code", 200), ("refresh_token", 500), ("refresh_token", 200)]
    assert control.grant_count("authorization_code") == 1


def test_07b_token_500_always_is_a_clear_failure(client, control):
    control.fault(endpoint="token", count=-1, status=500, error="server_error", error_description="injected")
    proc = client.run("login", env=RETRY_ENV)
    line = error_line(proc)
    assert "token exchange failed" in line and "server_error" in line, line
    assert 1 <= requests_to(control, "token") <= 1 + MAX_RETRIES
    assert control.stats()["grants"] == {}
    assert client.tokens() == []


def test_08_token_malformed_json(client, control):
    control.fault(endpoint="token", count=1, mode="malformed")
    proc = client.run("login", env=RETRY_ENV)
    line = error_line(proc)
    assert "token exchange failed" in line and "json" in line.lower(), line
    assert requests_to(control, "token") == 1
    assert client.tokens() == []
    # the dynamic registration is kept for the next run, which then succeeds without registering
    registered = requests_to(control, "register")
    client.ok("login")
    assert requests_to(control, "register") == registered


def test_09_token_slow_past_the_client_timeout(client, control):
    control.fault(endpoint="token", count=1, mode="delay", delay_ms=3000)
    start = time.monotonic()
    proc = client.run("login", timeout_flag="1s", env=RETRY_ENV)
    elapsed = time.monotonic() - start
    line = error_line(proc)
    assert "timed out" in line and "token" in line, line
    assert elapsed < 2.9, f"the client waited {elapsed:.1f}s for a 1s timeout"
    assert client.tokens() == []


# ---------------------------------------------------------------------------------------------
# 10-13: expiry and refresh


def test_10_access_token_expires_between_calls(client, control, auth):
    control.lifetimes(access_token_ttl="2s")
    client.ok("login")
    first = client.only_token()
    exp = harness.unverified_claims(first["access_token"])["exp"]
    assert exp - time.time() <= 2.5, "the short lifetime was not applied"
    harness.bounded_wait(lambda: time.time() > exp + 0.2, timeout=3.5, what="access token expiry")
    whoami_ok(client)
    assert control.grant_count("refresh_token") == 1
    assert control.grant_count("authorization_code") == 1, "a refresh was enough: no new login"
    second = client.only_token()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"], "rotated refresh token not saved"
    assert not auth.is_active(first["refresh_token"])
    assert auth.is_active(second["refresh_token"])


def test_11_refresh_invalid_grant_starts_a_new_login(client, control):
    client.ok("login")
    old = client.only_token()
    expire_cached(client)
    control.fault(endpoint="token", count=1, status=400, error="invalid_grant", error_description="injected")
    whoami_ok(client)
    assert last_token_requests(control) == [("authorization_code", 200), ("refresh_token", 400), ("authorization_code", 200)]
    assert control.grant_count("authorization_code") == 2
    new = client.only_token()
    assert new["refresh_token"] != old["refresh_token"]


def test_12_refresh_token_revoked_server_side(client, control, auth):
    client.ok("login")
    old = client.only_token()
    control.call("POST", "/revoke-user/alice")
    assert not auth.is_active(old["refresh_token"])
    expire_cached(client)
    whoami_ok(client)
    assert last_token_requests(control)[1:] == [("refresh_token", 400), ("authorization_code", 200)]
    new = client.only_token()
    assert new["refresh_token"] != old["refresh_token"] and auth.is_active(new["refresh_token"])


def test_13_concurrent_calls_with_an_expired_token_refresh_once(client, control, auth):
    client.ok("login")
    expire_cached(client)
    # a slow first refresh (0.5 s) makes sure the runs overlap, as they would on a slow network
    control.fault(endpoint="token", count=1, mode="delay", delay_ms=500)
    runs = [client.start("--json", "call", "whoami") for _ in range(6)]
    try:
        results = [r.finish(timeout=40) for r in runs]
    finally:
        for r in runs:
            r.kill()
    assert all(r.returncode == 0 for r in results), [ah.describe(r) for r in results if r.returncode]
    grants = [g for g, _ in last_token_requests(control)]
    assert grants.count("refresh_token") == 1, f"{grants.count('refresh_token')} refresh requests: {last_token_requests(control)}"
    assert control.grant_count("authorization_code") == 1, "the family was revoked and the runs logged in again"
    assert auth.is_active(client.only_token()["refresh_token"])


# ---------------------------------------------------------------------------------------------
# 14-15: the token cache file


CORRUPTIONS = {
    "garbage": b"this is not json",
    "truncated": b'{"version": 1, "entries": {"x": {"resource": ',
    "other version": b'{"version": 99, "entries": {}}',
    "null entries": b'{"version": 1, "entries": null}',
    "binary": bytes(range(256)) * 4,
    "wrong types": b'{"version": "1", "entries": []}',
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_14_corrupt_token_cache(client, control, kind):
    client.token_file.parent.mkdir(parents=True, exist_ok=True)
    client.token_file.write_bytes(CORRUPTIONS[kind])
    os.chmod(client.token_file, 0o600)
    proc = whoami_ok(client)
    warnings = [l for l in proc.stderr.splitlines() if l.startswith("warning: ")]
    assert warnings and all(str(client.token_file) in w for w in warnings), proc.stderr[-1500:]
    assert "corrupt" in warnings[0], warnings
    assert "panic" not in proc.stderr
    assert control.grant_count("authorization_code") == 1
    assert len(client.tokens()) == 1, "the cache was not rewritten with the new login"
    assert stat.S_IMODE(os.stat(client.token_file).st_mode) == 0o600


def test_15_token_cache_readable_by_others(client):
    client.ok("login")
    os.chmod(client.token_file, 0o644)
    proc = whoami_ok(client)
    assert any("readable by others" in l for l in proc.stderr.splitlines() if l.startswith("warning: ")), proc.stderr
    mode = stat.S_IMODE(os.stat(client.token_file).st_mode)
    assert mode & 0o077 == 0, f"the token cache is still {oct(mode)} after the warning"


def test_15b_token_cache_directory_unusable(client, control, tmp_path):
    """The cache's directory cannot be created (a file is in the way): the command still works with
    the tokens in memory, warns naming the path and the reason, and writes nothing."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    token_file = blocker / "tokens.json"
    proc = whoami_ok(client, token_file=token_file)
    warnings = [l for l in proc.stderr.splitlines() if l.startswith("warning: ")]
    assert warnings and any("not a directory" in w for w in warnings), proc.stderr[-1500:]
    assert all("eyJ" not in w for w in warnings), "a warning shows a token"
    assert blocker.read_text() == "x"
    assert control.grant_count("authorization_code") == 1


# ---------------------------------------------------------------------------------------------
# 16-17: keys


def test_16_signing_key_rotated(client, control, auth, mcp):
    client.ok("login")
    old = client.only_token()
    old_kid = ah.split_jwt(old["access_token"])[0]["kid"]
    new_kid = control.rotate_key()
    assert new_kid != old_kid
    pid = mcp.process.proc.pid
    jwks_before = requests_to(control, "jwks")
    whoami_ok(client)  # the old token still works: its key stays published
    expire_cached(client)
    whoami_ok(client)  # refreshed: a token with the new kid
    new = client.only_token()
    assert ah.split_jwt(new["access_token"])[0]["kid"] == new_kid
    assert mcp.process.proc.pid == pid and mcp.process.proc.poll() is None, "the MCP server was restarted"
    assert 1 <= requests_to(control, "jwks") - jwks_before <= 2, "the new kid should cost one JWKS fetch"
    assert control.grant_count("authorization_code") == 1


def test_17_jwks_down_while_the_mcp_server_has_cached_keys(client, control, mcp):
    client.ok("login")
    control.fault(endpoint="jwks", count=-1, status=500)
    whoami_ok(client)
    expire_cached(client)
    whoami_ok(client)  # a new token, signed with the same (cached) key
    control.clear_faults()
    control.fault(endpoint="jwks", count=-1, mode="drop")
    client.ok("logout")
    whoami_ok(client)  # a whole new login
    assert control.grant_count("refresh_token") == 1 and control.grant_count("authorization_code") == 2
    assert requests_to(control, "jwks") == 0, "a known kid made the MCP server fetch the JWKS"
    assert ah.status_of(mcp.base_url + "/readyz") == 200


# ---------------------------------------------------------------------------------------------
# 18-20


def test_18_unknown_resource_metadata_in_the_challenge(client, control):
    """The 401 names resource metadata that does not exist: the client stops with an error naming
    that URL instead of registering or logging in anywhere."""
    with ah.FakeServer() as fake:
        prm = fake.base_url + "/.well-known/oauth-protected-resource/unknown"
        url = ah.fake_mcp_challenge(fake, prm)
        proc = client.run("login", server=url)
        hits = [r.path for r in fake.requests]
    line = error_line(proc)
    assert "protected resource metadata" in line and prm in line, line
    assert "/register" not in hits and "/authorize" not in hits, hits
    assert sum(control.stats()["requests"].values()) == 0
    assert client.tokens() == []


def test_18b_resource_metadata_for_another_resource(client, control, mcp):
    """The 401 points at real metadata of another resource (the real MCP server's): RFC 9728 §3.3
    says to refuse it, so no token for that resource is obtained or sent here."""
    with ah.FakeServer() as fake:
        url = ah.fake_mcp_challenge(fake, mcp.base_url + "/.well-known/oauth-protected-resource/mcp")
        proc = client.run("login", server=url)
    line = error_line(proc)
    assert "another resource" in line, line
    assert requests_to(control, "token") == 0 and requests_to(control, "authorize") == 0
    assert client.tokens() == []


def test_19_registered_client_forgotten_by_the_as(client, control):
    client.ok("login")
    [entry] = client.entries()
    old_id = entry["client"]["client_id"]
    assert entry["client"]["registration"] == "dynamic"
    control.call("DELETE", f"/clients/{old_id}")
    expire_cached(client)
    registered = requests_to(control, "register")
    whoami_ok(client)
    # the refresh is refused (the AS no longer knows the client), then one registration and login
    assert last_token_requests(control)[1:] == [("refresh_token", 401), ("authorization_code", 200)], last_token_requests(control)
    assert requests_to(control, "register") == registered + 1, "re-registered exactly once"
    [entry] = client.entries()
    assert entry["client"]["client_id"] != old_id
    assert control.grant_count("authorization_code") == 2


def test_20_mcp_server_unreachable(client):
    client.ok("login")
    before = client.token_file.read_bytes()
    dead = f"http://127.0.0.1:{harness.free_port()}/mcp"
    proc = client.run("tools", server=dead, timeout_flag="2s")
    line = error_line(proc)
    assert "server unreachable" in line and dead in line, line
    assert client.token_file.read_bytes() == before, "the cache changed for an unrelated server"
    whoami_ok(client)
