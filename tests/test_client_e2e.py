"""The client binary, headless, against the two running servers: demo, login, tools, call,
token, status, refresh after a short access-token lifetime, logout."""

from __future__ import annotations

import json
import os
import queue
import threading
import urllib.parse
import stat
import subprocess
import time
from pathlib import Path

import pytest

import harness

CLIENT_TIMEOUT = 60  # seconds per client run


class ClientRunner:
    """Runs bin/http-oauth2-client headless with its own working dir, HOME and token file."""

    def __init__(self, workdir: Path, mcp_url: str, token_file: Path):
        self.workdir = workdir
        self.mcp_url = mcp_url
        self.token_file = token_file
        self.binary = harness.ensure_binary(harness.CLIENT_BINARY)

    def run(self, *args: str, json_out: bool = False, server: str | None = None, token_file: Path | None = None,
            user: str = "alice", timeout: float = CLIENT_TIMEOUT, extra_flags=()) -> subprocess.CompletedProcess:
        cmd = [
            str(self.binary),
            "--mode", "headless",
            "--server", server or self.mcp_url,
            "--token-file", str(token_file or self.token_file),
            "--login-hint", user,
            "--timeout", "10s",
            *extra_flags,
        ]
        if json_out:
            cmd.append("--json")
        cmd.extend(args)
        env = harness.child_env({"HOME": str(self.workdir), "XDG_CACHE_HOME": str(self.workdir / "cache"),
                                 "XDG_CONFIG_HOME": str(self.workdir / "config"), "BROWSER": "true"})
        return subprocess.run(cmd, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        proc = self.run(*args, **kw)
        assert proc.returncode == 0, (
            f"client {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
        return proc

    def ok_json(self, *args: str, **kw):
        proc = self.ok(*args, json_out=True, **kw)
        try:
            return json.loads(proc.stdout)
        except ValueError as exc:
            raise AssertionError(f"--json output of {args} is not JSON: {exc}\n{proc.stdout[:2000]}")

    def cache(self, token_file: Path | None = None):
        path = token_file or self.token_file
        if not path.exists():
            return None
        return json.loads(path.read_text())


@pytest.fixture(scope="module", autouse=True)
def clean_auth_server(auth_server):
    if auth_server.control.enabled:
        auth_server.control.reset()
    yield
    if auth_server.control.enabled:
        auth_server.control.reset()  # lifetimes back to normal for the next module


@pytest.fixture(scope="module")
def client(tmp_path_factory, mcp_server) -> ClientRunner:
    workdir = tmp_path_factory.mktemp("client")
    try:
        return ClientRunner(workdir, mcp_server.mcp_url, workdir / "tokens" / "tokens.json")
    except RuntimeError as exc:
        pytest.fail(f"client binary unavailable: {exc}", pytrace=False)


def cached_tokens(cache) -> list[dict]:
    """The token records in a cache file (by shape, not by key)."""
    found = []
    for entry in harness.find_values(cache or {}, "token"):
        if isinstance(entry, dict) and entry.get("access_token"):
            found.append(entry)
    return found


def test_demo(client, mcp_server, tmp_path):
    token_file = tmp_path / "demo-tokens.json"
    proc = client.ok("demo", token_file=token_file)
    out = proc.stdout.lower()
    for step in ("discover", "regist", "initialize", "whoami", "alice", "refresh"):
        assert step in out, f"demo output does not show {step!r}:\n{proc.stdout[-3000:]}"
    assert "tools" in out and ("resource" in out or "readme" in out)
    # secrets masked: neither the cached access nor refresh token is printed in full
    for record in cached_tokens(client.cache(token_file)):
        assert record["access_token"] not in proc.stdout + proc.stderr
        if record.get("refresh_token"):
            assert record["refresh_token"] not in proc.stdout + proc.stderr


def test_login_caches_tokens(client, auth_server, control):
    before = control.grant_count("authorization_code")
    client.ok("login")
    assert control.grant_count("authorization_code") == before + 1
    mode = stat.S_IMODE(os.stat(client.token_file).st_mode)
    assert mode & 0o077 == 0, f"token cache is readable by others: {oct(mode)}"
    records = cached_tokens(client.cache())
    assert len(records) == 1 and records[0].get("refresh_token")


def test_tools(client, control):
    before = control.grant_count("authorization_code")
    data = client.ok_json("tools")
    names = {n for n in harness.find_values(data, "name") if isinstance(n, str)}
    assert {"whoami", "echo", "calculate", "add_note", "list_notes"} <= names, data
    assert control.grant_count("authorization_code") == before, "cached token not reused"


def test_call_whoami_json(client):
    data = client.ok_json("call", "whoami")
    text = json.dumps(data)
    assert "alice@example.com" in text, data


def test_call_echo_with_arg(client):
    proc = client.ok("call", "echo", "--arg", "message=hello-from-pytest")
    assert "hello-from-pytest" in proc.stdout


def test_call_calculate_typed_args(client):
    data = client.ok_json("call", "calculate", "--arg", "operation=multiply", "--arg", "a=6", "--arg", "b=7")
    assert "42" in json.dumps(data), data


def test_call_with_json_arguments(client):
    proc = client.ok("call", "echo", "--json", '{"message":"json-args-ok"}')
    assert "json-args-ok" in proc.stdout


def test_token_prints_a_usable_access_token(client, auth_server, mcp_server):
    proc = client.ok("token")
    token = proc.stdout.strip().splitlines()[-1].strip()
    claims = harness.verify_jwt(auth_server, token, audience=mcp_server.mcp_url)
    assert claims["sub"] == "alice"
    session = mcp_server.session(token)
    try:
        assert session.request("tools/list")["tools"]
    finally:
        session.close()


def test_status(client):
    data = client.ok_json("status")
    assert data.get("logged_in") is True, data
    text = json.dumps(data)
    assert "alice" in text and client.mcp_url in text, data
    [record] = cached_tokens(client.cache())
    assert record["access_token"] not in text and record["refresh_token"] not in text, "status printed a secret"


def test_refresh_after_short_lifetime(client, auth_server, control):
    client.ok("logout")
    control.lifetimes(access_token_ttl="2s")
    client.ok("login")
    [record] = cached_tokens(client.cache())
    old_refresh = record["refresh_token"]
    exp = harness.unverified_claims(record["access_token"])["exp"]
    assert exp - time.time() <= 3, "the short lifetime was not applied"
    # the refreshed token gets a normal lifetime, so a slow run cannot need a second refresh
    control.lifetimes(access_token_ttl="1h")
    wait = exp - time.time() + 0.5
    if wait > 0:
        time.sleep(min(wait, 3.0))  # bounded: the token must be expired on the client's clock
    before = control.grant_count("refresh_token")
    data = client.ok_json("call", "whoami")
    assert "alice@example.com" in json.dumps(data)
    assert control.grant_count("refresh_token") == before + 1, "exactly one refresh should reach /token"
    [record] = cached_tokens(client.cache())
    assert record["refresh_token"] != old_refresh, "rotated refresh token not saved"


def test_logout_revokes_and_forgets(client, auth_server):
    [record] = cached_tokens(client.cache())
    refresh_token = record["refresh_token"]
    assert auth_server.is_active(refresh_token)
    registrations = [c for c in harness.find_values(client.cache(), "client") if isinstance(c, dict)]
    client.ok("logout")
    assert not auth_server.is_active(refresh_token), "logout did not revoke the refresh token"
    assert cached_tokens(client.cache()) == [], "logout left the token in the cache"
    kept = [c for c in harness.find_values(client.cache(), "client") if isinstance(c, dict)]
    assert kept == registrations, "logout forgot the client registration; the next login would register again"
    data = client.ok_json("status")
    assert data.get("logged_in") is False, data


def test_unreachable_server_is_one_clear_line(client, tmp_path):
    port = harness.free_port()
    proc = client.run("tools", server=f"http://127.0.0.1:{port}/mcp", token_file=tmp_path / "t.json",
                      extra_flags=("--timeout", "2s"), timeout=30)
    assert proc.returncode == 1, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-1000:]
    assert "panic" not in proc.stderr and "goroutine" not in proc.stderr


# ------------------------------------------------------------------------------------------------
# more commands and failure paths (each with its own token file)


def test_resources_read_and_prompts(client, tmp_path):
    tf = tmp_path / "t.json"
    data = client.ok_json("resources", token_file=tf)
    uris = set(harness.find_values(data, "uri"))
    assert {"file://demo/readme.txt", "data://demo/config.json"} <= uris, data
    proc = client.ok("read", "data://demo/config.json", token_file=tf)
    assert proc.stdout.strip()
    data = client.ok_json("prompts", token_file=tf)
    assert [n for n in harness.find_values(data, "name") if isinstance(n, str)], data


def test_no_cache_writes_nothing(client, tmp_path):
    tf = tmp_path / "never.json"
    client.ok("tools", token_file=tf, extra_flags=("--no-cache",))
    assert not tf.exists()


def test_corrupt_cache_is_a_warning_and_a_fresh_login(client, tmp_path, control):
    tf = tmp_path / "corrupt.json"
    tf.write_text("{ this is not json")
    before = control.grant_count("authorization_code")
    proc = client.ok("call", "whoami", token_file=tf)
    assert "alice" in proc.stdout
    assert "warn" in proc.stderr.lower() or "corrupt" in proc.stderr.lower() or "cache" in proc.stderr.lower()
    assert "panic" not in proc.stderr
    assert control.grant_count("authorization_code") == before + 1
    json.loads(tf.read_text())  # rewritten as a valid cache


def test_step_up_on_insufficient_scope(client, tmp_path, control):
    tf = tmp_path / "stepup.json"
    client.ok("login", token_file=tf, extra_flags=("--scope", "mcp:read"))
    [record] = cached_tokens(client.cache(tf))
    assert "mcp:write" not in record.get("scope", "")
    before = control.grant_count("authorization_code")
    proc = client.ok("call", "add_note", "--arg", "text=step-up-note", token_file=tf, extra_flags=("--scope", "mcp:read"))
    assert control.grant_count("authorization_code") == before + 1, "no re-authorization for the step-up"
    [record] = cached_tokens(client.cache(tf))
    assert "mcp:write" in harness.unverified_claims(record["access_token"])["scope"].split()
    data = client.ok_json("call", "list_notes", token_file=tf)
    assert "step-up-note" in json.dumps(data), proc.stdout


def test_denied_login_is_one_clear_line(client, tmp_path, control):
    control.deny_next_login()
    proc = client.run("login", token_file=tmp_path / "denied.json")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and "denied" in lines[-1].lower(), proc.stderr[-800:]


def test_remembered_client_reused_then_registered_again_when_forgotten(client, tmp_path, control):
    tf = tmp_path / "forgotten.json"
    client.ok("login", token_file=tf)
    cache = client.cache(tf)
    first_id = [i for i in harness.find_values(cache, "client_id") if isinstance(i, str)][0]
    # keep the registered client, drop the tokens: the next login must reuse the client
    for entry in cache["entries"].values():
        entry.pop("token", None)
    tf.write_text(json.dumps(cache))
    before = control.request_count("register")
    client.ok("login", token_file=tf)
    assert control.request_count("register") == before, "a remembered client was registered again"
    cache = client.cache(tf)
    assert first_id in harness.find_values(cache, "client_id")
    # now the authorization server forgets it: the client registers again and logs in
    for entry in cache["entries"].values():
        entry.pop("token", None)
    tf.write_text(json.dumps(cache))
    control.call("DELETE", f"/clients/{first_id}")
    client.ok("login", token_file=tf)
    ids = [i for i in harness.find_values(client.cache(tf), "client_id") if isinstance(i, str)]
    assert ids and first_id not in ids, "the forgotten client was not replaced"
    assert control.request_count("register") == before + 1


def test_preregistered_client_skips_registration(client, tmp_path, control):
    before = control.request_count("register")
    data = client.ok_json("call", "whoami", token_file=tmp_path / "prereg.json",
                          extra_flags=("--client-id", harness.PUBLIC_CLIENT))
    assert harness.PUBLIC_CLIENT in json.dumps(data)
    assert control.request_count("register") == before


def test_probe_passes_against_the_protected_server(client, tmp_path, mcp_server):
    proc = client.ok("probe", "--target", mcp_server.mcp_url, token_file=tmp_path / "probe.json")
    out = proc.stdout.lower()
    assert "pkce" in out and "fail" not in out.replace("0 failed", ""), proc.stdout


def test_probe_fails_against_an_unprotected_url(client, tmp_path, auth_server):
    proc = client.run("probe", "--target", auth_server.base_url + "/healthz", token_file=tmp_path / "p.json")
    assert proc.returncode != 0, proc.stdout
    assert "fail" in (proc.stdout + proc.stderr).lower()


def test_retries_a_failing_metadata_endpoint(client, tmp_path, control):
    """Two 503s on the AS metadata (an idempotent GET) are retried with backoff; the login succeeds."""
    control.fault(endpoint="metadata", count=2, status=503, error="temporarily_unavailable", mode="status")
    before = control.request_count("metadata")
    started = time.monotonic()
    client.ok("login", token_file=tmp_path / "retry.json")
    assert control.request_count("metadata") >= before + 3
    assert time.monotonic() - started < 30
    control.clear_faults()


def test_token_endpoint_failure_is_one_clear_line(client, tmp_path, control):
    control.fault(endpoint="token", count=-1, status=400, error="invalid_grant", mode="status")
    try:
        proc = client.run("login", token_file=tmp_path / "fail.json", timeout=60)
    finally:
        control.clear_faults()
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-800:]
    assert "panic" not in proc.stderr


# ------------------------------------------------------------------------------------------------
# the two interactive code-fetch modes, with the test playing the user


class Interactive:
    """A client process whose stderr is read line by line (the authorization URL appears there)."""

    def __init__(self, client: ClientRunner, mode: str, token_file: Path, extra_flags=()):
        cmd = [str(client.binary), "--mode", mode, "--server", client.mcp_url, "--token-file", str(token_file),
               "--login-hint", "alice", "--timeout", "10s", *extra_flags, "login"]
        env = harness.child_env({"HOME": str(client.workdir), "XDG_CACHE_HOME": str(client.workdir / "cache"),
                                 "DISPLAY": "", "WAYLAND_DISPLAY": ""})
        self.proc = subprocess.Popen(cmd, cwd=client.workdir, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.stderr: list[str] = []
        self.stdout = ""
        threading.Thread(target=self._pump_err, daemon=True).start()
        self._out_thread = threading.Thread(target=self._pump_out, daemon=True)
        self._out_thread.start()

    def _pump_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)

    def _pump_out(self):
        self.stdout = self.proc.stdout.read()

    def authorization_url(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            for word in line.split():
                if "/authorize?" in word and word.startswith("http"):
                    return word
        self.kill()
        raise AssertionError(f"no authorization URL printed; stderr:\n{''.join(self.stderr)[-2000:]}")

    def paste(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"client did not finish; stderr:\n{''.join(self.stderr)[-2000:]}")
        self._out_thread.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def test_loopback_mode_with_the_test_as_browser(client, tmp_path, auth_server):
    port = harness.free_port()
    redirect = f"http://127.0.0.1:{port}/callback"
    run = Interactive(client, "loopback", tmp_path / "loopback.json", ("--redirect-uri", redirect))
    try:
        url = run.authorization_url()
        assert url.startswith(auth_server.endpoint("authorization_endpoint") + "?")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        assert query["redirect_uri"] == redirect and query["code_challenge_method"] == "S256"
        assert query["resource"] == client.mcp_url and query.get("state")
        # a forged callback (wrong state) is refused and the client keeps waiting for the real one
        forged = harness.requests.get(redirect, params={"code": "forged", "state": "wrong"}, timeout=5)
        assert forged.status_code == 400
        page = harness.requests.get(url, timeout=10)  # follows the AS redirect to the client's listener
        assert page.status_code == 200 and "complete" in page.text.lower()
        assert run.finish() == 0, "".join(run.stderr)[-2000:]
    finally:
        run.kill()
    assert cached_tokens(client.cache(tmp_path / "loopback.json"))


def test_paste_mode(client, tmp_path, auth_server):
    run = Interactive(client, "paste", tmp_path / "paste.json")
    try:
        url = run.authorization_url()
        resp = harness.requests.get(url, allow_redirects=False, timeout=10)
        assert resp.status_code in (302, 303)
        run.paste(resp.headers["Location"])
        assert run.finish() == 0, "".join(run.stderr)[-2000:]
    finally:
        run.kill()
    assert cached_tokens(client.cache(tmp_path / "paste.json"))


@pytest.mark.parametrize("tamper", ["state", "iss"])
def test_paste_mode_refuses_tampered_redirect(client, tmp_path, tamper):
    """state (RFC 6749 §10.12) and iss (RFC 9207) of the pasted redirect are checked."""
    run = Interactive(client, "paste", tmp_path / f"tampered-{tamper}.json")
    try:
        url = run.authorization_url()
        location = harness.requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        base, _, query = location.partition("?")
        params = dict(urllib.parse.parse_qsl(query))
        params[tamper] = "http://127.0.0.1:9/evil" if tamper == "iss" else "not-the-state"
        run.paste(base + "?" + urllib.parse.urlencode(params))
        assert run.finish() == 1
    finally:
        run.kill()
    # the "> " prompt precedes the error on the same line when stdin is a pipe (no terminal echo)
    last = [line for line in run.stderr if line.strip()][-1].removeprefix("> ")
    assert last.startswith("error: ") and tamper in last.lower(), last
    assert not cached_tokens(client.cache(tmp_path / f"tampered-{tamper}.json"))


# ------------------------------------------------------------------------------------------------
# a misconfigured server in front of the client: it must refuse, in one line, before any login


def fake_mcp(as_metadata: dict | None, prm: dict | None = None) -> harness.FakeServer:
    challenge = 'Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
    prm = prm or {"resource": "{base}/mcp", "authorization_servers": ["{base}"], "scopes_supported": ["mcp:read"]}
    routes = {
        ("POST", "/mcp"): (401, {"WWW-Authenticate": challenge}, {"error": "unauthorized"}),
        ("GET", "/mcp"): (401, {"WWW-Authenticate": challenge}, {"error": "unauthorized"}),
        ("GET", "/.well-known/oauth-protected-resource/mcp"): (200, {}, prm),
        ("GET", "/.well-known/oauth-protected-resource"): (200, {}, prm),
    }
    if as_metadata is not None:
        routes[("GET", "/.well-known/oauth-authorization-server")] = (200, {}, as_metadata)
        routes[("GET", "/.well-known/openid-configuration")] = (200, {}, as_metadata)
    return harness.FakeServer(routes)


GOOD_AS = {
    "issuer": "{base}",
    "authorization_endpoint": "{base}/authorize",
    "token_endpoint": "{base}/token",
    "registration_endpoint": "{base}/register",
    "response_types_supported": ["code"],
    "grant_types_supported": ["authorization_code", "refresh_token"],
    "code_challenge_methods_supported": ["S256"],
    "authorization_response_iss_parameter_supported": True,
}


@pytest.mark.parametrize(
    "case,as_meta,prm,expect",
    [
        ("no-pkce", {k: v for k, v in GOOD_AS.items() if k != "code_challenge_methods_supported"}, None, "pkce"),
        ("plain-only", {**GOOD_AS, "code_challenge_methods_supported": ["plain"]}, None, "pkce"),
        ("issuer-mismatch", {**GOOD_AS, "issuer": "http://127.0.0.1:9/other"}, None, "issuer"),
        ("resource-mismatch", GOOD_AS,
         {"resource": "http://127.0.0.1:9/elsewhere", "authorization_servers": ["{base}"]}, "resource"),
        ("javascript-authorize", {**GOOD_AS, "authorization_endpoint": "javascript:alert(1)"}, None, ""),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else "",
)
def test_client_refuses_misconfigured_servers(client, tmp_path, case, as_meta, prm, expect):
    fake = fake_mcp(as_meta, prm)
    try:
        proc = client.run("login", server=fake.base_url + "/mcp", token_file=tmp_path / "fake.json",
                          extra_flags=("--client-id", "preregistered-client"), timeout=60)
    finally:
        fake.close()
    assert proc.returncode == 1, proc.stdout[-1000:] + proc.stderr[-1000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-1000:]
    assert expect in lines[-1].lower(), lines[-1]
    assert "panic" not in proc.stderr
    touched = {p for _, p in fake.requests}
    assert not touched & {"/authorize", "/token", "/register"}, f"the client went on to {touched}"


def test_probe_reports_missing_pkce(client, tmp_path):
    fake = fake_mcp({k: v for k, v in GOOD_AS.items() if k != "code_challenge_methods_supported"})
    try:
        proc = client.run("probe", "--target", fake.base_url + "/mcp", token_file=tmp_path / "probe-fake.json")
    finally:
        fake.close()
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert any(line.startswith("PASS") and "challenge" in line.lower() for line in out.splitlines()), out
    assert any(line.startswith("FAIL") and "pkce" in line.lower() for line in out.splitlines()), out
    assert not {p for _, p in fake.requests} & {"/authorize", "/token"}


@pytest.mark.parametrize("iss", [None, "http://127.0.0.1:9/evil"], ids=["missing", "wrong"])
def test_client_checks_iss_in_the_authorization_response(client, tmp_path, iss):
    """RFC 9207: the AS advertises authorization_response_iss_parameter_supported, so the redirect
    must carry iss equal to the issuer; otherwise the code is never redeemed."""

    def authorize(q):
        params = {"code": "fake-code", "state": q.get("state", "")}
        if iss:
            params["iss"] = iss
        return 302, {"Location": q["redirect_uri"] + "?" + urllib.parse.urlencode(params)}, ""

    fake = fake_mcp(GOOD_AS)
    fake.routes[("GET", "/authorize")] = authorize
    try:
        proc = client.run("login", server=fake.base_url + "/mcp", token_file=tmp_path / "iss.json",
                          extra_flags=("--client-id", "preregistered-client"), timeout=60)
    finally:
        fake.close()
    assert proc.returncode == 1, proc.stderr[-1000:]
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error: ") and "iss" in last.lower(), last
    assert ("GET", "/authorize") in fake.requests
    assert ("POST", "/token") not in fake.requests, "the code was redeemed despite the iss check"


def test_every_command_has_json_output(client, tmp_path):
    tf = tmp_path / "json.json"
    for args in (["login"], ["status"], ["token"], ["tools"], ["call", "echo", "--arg", "message=j"], ["resources"],
                 ["read", "file://demo/readme.txt"], ["prompts"], ["probe", "--target", client.mcp_url],
                 ["logout"], ["status"]):
        proc = client.ok(*args, json_out=True, token_file=tf)
        try:
            json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"--json {' '.join(args)} printed no JSON: {proc.stdout[:500]!r}")


def test_json_failure_still_exits_1_with_error_line(client, tmp_path):
    proc = client.run("call", "no_such_tool", json_out=True, token_file=tmp_path / "jf.json")
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: "), proc.stderr[-500:]
