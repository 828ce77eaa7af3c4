"""Helpers the pytest suites share: start the built binaries, drive OAuth and MCP over HTTP.

Everything here talks to 127.0.0.1 only, every HTTP call has a timeout and every wait loop is
bounded in count and in time. The contract these helpers follow is docs/INTERFACES.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN_DIR = Path(os.environ.get("TEST_BIN_DIR") or REPO_ROOT / "bin")  # TEST_BIN_DIR: binaries built elsewhere

AUTH_BINARY = "http-oauth2-mock-server"
MCP_BINARY = "http-mcp-mock-server"
CLIENT_BINARY = "http-oauth2-client"

HTTP_TIMEOUT = 10.0  # seconds, every request
STARTUP_TIMEOUT = 15.0  # seconds, waiting for /healthz
STOP_TIMEOUT = 5.0  # seconds, SIGTERM before SIGKILL

PUBLIC_CLIENT = "http-oauth2-client"
SERVICE_CLIENT = "mcp-service"
SERVICE_SECRET = os.environ.get("MCP_SERVICE_SECRET", "mcp-service-dev-secret")
DEFAULT_REDIRECT = "http://127.0.0.1:3001/callback"
ALL_SCOPES = ["openid", "profile", "email", "offline_access", "mcp:read", "mcp:write", "mcp:audit"]

# Clients the suites need beyond the shipped ones. A managed authorization server gets them from
# its private config; an external one (AUTH_SERVER_URL) gets them through /control/clients.
SECOND_PUBLIC_CLIENT = "second-public-client"
READ_ONLY_CLIENT = "read-only-client"
CONFIDENTIAL_CLIENT = "test-confidential-client"
CONFIDENTIAL_SECRET = "test-confidential-secret-" + secrets.token_hex(8)
CONFIDENTIAL_REDIRECT = "https://app.example.test/callback"

EXTRA_CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": SECOND_PUBLIC_CLIENT,
        "client_name": "Second public test client",
        "redirect_uris": [DEFAULT_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ALL_SCOPES,
        "token_endpoint_auth_method": "none",
    },
    {
        "client_id": READ_ONLY_CLIENT,
        "client_name": "Read-only test client",
        "redirect_uris": [DEFAULT_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "offline_access", "mcp:read"],
        "token_endpoint_auth_method": "none",
    },
    {
        "client_id": CONFIDENTIAL_CLIENT,
        "client_secret": CONFIDENTIAL_SECRET,
        "client_name": "Confidential test client",
        "redirect_uris": [CONFIDENTIAL_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes": ALL_SCOPES,
        "token_endpoint_auth_method": "client_secret_basic",
    },
]

SHIPPED_CLIENTS: list[dict[str, Any]] = [
    {
        "client_id": PUBLIC_CLIENT,
        "client_name": "HTTP OAuth2 MCP client",
        "redirect_uris": [DEFAULT_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ALL_SCOPES,
        "token_endpoint_auth_method": "none",
    },
    {
        "client_id": SERVICE_CLIENT,
        "client_secret": SERVICE_SECRET,
        "client_name": "MCP service",
        "redirect_uris": [],
        "grant_types": ["client_credentials"],
        "scopes": ["mcp:read", "mcp:write", "mcp:audit"],
        "token_endpoint_auth_method": "client_secret_basic",
    },
]

# Every token, code and verifier the suites obtained or sent, so a test can prove that none of them
# reached a server's log or audit file.
SEEN_SECRETS: set[str] = set()


def remember_secrets(*values: Any) -> None:
    for v in values:
        if isinstance(v, str) and len(v) >= 16:
            SEEN_SECRETS.add(v)


USERS = [
    {"subject": "alice", "email": "alice@example.com", "name": "Alice Example"},
    {"subject": "bob", "email": "bob@example.com", "name": "Bob Example"},
]


# ---------------------------------------------------------------------------------------------
# small utilities


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7636 appendix A)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge) pair."""
    verifier = b64url(secrets.token_bytes(32))
    challenge = b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    return verifier, challenge


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(value: Any) -> str:
    """Render a Python value as TOML (the subset our configs use)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"unsupported TOML value {value!r}")


def render_toml(tables: dict[str, dict[str, Any]], arrays: dict[str, list[dict[str, Any]]] | None = None) -> str:
    """Render `[table]` sections (dotted names allowed) and `[[array]]` sections."""
    lines: list[str] = []
    for name, keys in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in keys.items())
        lines.append("")
    for name, items in (arrays or {}).items():
        for item in items:
            lines.append(f"[[{name}]]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in item.items())
            lines.append("")
    return "\n".join(lines)


def tail(path: Path, limit: int = 4000) -> str:
    """The last `limit` characters of a log file (for failure messages)."""
    try:
        data = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return data[-limit:]


def bounded_wait(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll predicate until it returns a truthy value; at most `timeout` seconds and a bounded count."""
    deadline = time.monotonic() + timeout
    attempts = max(1, int(timeout / interval) + 1)
    last = None
    for _ in range(attempts):
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {last!r})")


def ensure_binary(name: str) -> Path:
    """The path of bin/<name>, building it with `go build` when it is missing."""
    path = BIN_DIR / name
    if path.exists() and os.access(path, os.X_OK):
        return path
    BIN_DIR.mkdir(exist_ok=True)
    go = os.environ.get("GO", "go")
    if not (REPO_ROOT / "cmd" / name).is_dir():
        raise RuntimeError(f"{path} is missing and cmd/{name} does not exist to build it")
    proc = subprocess.run(
        [go, "build", "-o", str(path), f"./cmd/{name}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"go build ./cmd/{name} failed:\n{proc.stderr[-4000:]}")
    return path


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process: ours without any AUTH_/MCP_/CLIENT_ override."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "MCP_", "CLIENT_"))}
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------------------------------
# processes


class ServiceProcess:
    """One started binary: its working directory, config file, logs and process handle."""

    def __init__(self, name: str, workdir: Path, config_text: str | None, port: int, health_path: str = "/healthz",
                 env: dict[str, str] | None = None):
        self.name = name
        self.workdir = workdir
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.config_path: Path | None = None
        if config_text is not None:  # None: no --config, built-in defaults and the environment only
            self.config_path = workdir / f"{name}.toml"
            self.config_path.write_text(config_text)
        self.env = env or {}
        self.stdout_path = workdir / "stdout.log"
        self.stderr_path = workdir / "stderr.log"
        self.health_path = health_path
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = [str(ensure_binary(self.name))]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd

    def spawn(self) -> subprocess.Popen:
        """Start the process without waiting for it (for start-up failure tests)."""
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=child_env(self.env),
            )
        return self.proc

    def start(self) -> "ServiceProcess":
        self.spawn()
        self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.1) + 1):
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} during start-up; stderr tail:\n"
                    + tail(self.stderr_path)
                )
            try:
                resp = requests.get(self.base_url + self.health_path, timeout=1.0)
                if resp.status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer {self.health_path} within {timeout}s; stderr tail:\n" + tail(self.stderr_path)
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stderr_tail(self) -> str:
        return tail(self.stderr_path)


def start_with_free_port(factory, attempts: int = 3) -> ServiceProcess:
    """Start a service on a fresh free port, retrying a bounded number of times (port races)."""
    last: Exception | None = None
    for _ in range(attempts):
        svc = factory(free_port())
        try:
            return svc.start()
        except RuntimeError as exc:
            last = exc
            if "address already in use" not in str(exc):
                raise
    raise RuntimeError(f"could not start after {attempts} attempts: {last}")


def merge_tables(base: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]] | None) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    for table, keys in (overrides or {}).items():
        out.setdefault(table, {}).update(keys)
    return out


def auth_server_config(port: int, workdir: Path, overrides: dict[str, dict[str, Any]] | None = None) -> str:
    issuer = f"http://127.0.0.1:{port}"
    return render_toml(
        merge_tables({
            "server": {"listen": f"127.0.0.1:{port}", "issuer": issuer},
            "log": {"level": "debug"},
            "keys": {"private_key_file": str(workdir / "keys" / "private_key.pem"), "algorithm": "RS256"},
            "storage": {"driver": "memory"},
            "mock": {"auto_approve": True, "default_user": "alice", "control_api": True},
            "cimd": {"allow_loopback": True},
        }, overrides),
        {"users": USERS, "clients": SHIPPED_CLIENTS + EXTRA_CLIENTS},
    )


def mcp_server_config(port: int, issuer: str, audit_file: Path,
                      overrides: dict[str, dict[str, Any]] | None = None) -> str:
    return render_toml(
        merge_tables({
            "server": {"listen": f"127.0.0.1:{port}", "resource": f"http://127.0.0.1:{port}/mcp"},
            "log": {"level": "debug"},
            "auth": {"enabled": True, "mode": "jwt", "issuer": issuer},
            "audit": {"file": str(audit_file), "sync": "always", "fail_closed": True},
        }, overrides)
    )


# ---------------------------------------------------------------------------------------------
# HTTP


class Http:
    """requests with a timeout on every call and never following redirects unless asked."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def request(self, method: str, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", HTTP_TIMEOUT)
        kw.setdefault("allow_redirects", False)
        return self.session.request(method, self.url(path), **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return self.request("POST", path, **kw)


def oauth_error(resp: requests.Response) -> str | None:
    """The `error` member of a JSON OAuth error body, or None."""
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def www_authenticate_params(header: str) -> dict[str, str]:
    """Parse `Bearer k="v", k2=v2` into a dict (scheme under the key '' )."""
    header = header.strip()
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {"": scheme}
    i, n = 0, len(rest)
    for _ in range(200):  # bounded: a challenge has a handful of parameters
        while i < n and rest[i] in " ,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            j = i + 1
            value = []
            while j < n and rest[j] != '"':
                if rest[j] == "\\" and j + 1 < n:
                    j += 1
                value.append(rest[j])
                j += 1
            params[key] = "".join(value)
            i = j + 1
        else:
            j = rest.find(",", i)
            j = n if j < 0 else j
            params[key] = rest[i:j].strip()
            i = j
    return params


@dataclass
class Authorization:
    """The result of an auto-approved authorization request."""

    code: str
    verifier: str
    redirect_uri: str
    client_id: str
    params: dict[str, str]
    location: str


class AuthServer:
    """A running authorization server (started by us or given by AUTH_SERVER_URL)."""

    def __init__(self, base_url: str, process: ServiceProcess | None = None):
        self.http = Http(base_url)
        self.base_url = self.http.base_url
        self.process = process
        self._metadata: dict[str, Any] | None = None
        self.control = Control(self)

    @property
    def managed(self) -> bool:
        return self.process is not None

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            resp = self.http.get("/.well-known/oauth-authorization-server")
            assert resp.status_code == 200, resp.text
            self._metadata = resp.json()
        return self._metadata

    @property
    def issuer(self) -> str:
        return self.metadata["issuer"]

    def endpoint(self, name: str) -> str:
        return self.metadata[name]

    # -- authorization -------------------------------------------------------------------------

    def authorize_request(
        self,
        client_id: str = PUBLIC_CLIENT,
        redirect_uri: str = DEFAULT_REDIRECT,
        scope: str | None = "mcp:read offline_access",
        resource: str | None = None,
        state: str | None = None,
        challenge: str | None = None,
        method: str | None = "S256",
        login_hint: str | None = None,
        nonce: str | None = None,
        response_type: str = "code",
        extra: Iterable[tuple[str, str]] = (),
        omit: Iterable[str] = (),
    ) -> requests.Response:
        """GET /authorize with the given parameters (None values are left out), no redirects."""
        params: list[tuple[str, str]] = []
        for key, value in (
            ("response_type", response_type),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", state),
            ("code_challenge", challenge),
            ("code_challenge_method", method if challenge is not None else None),
            ("resource", resource),
            ("login_hint", login_hint),
            ("nonce", nonce),
        ):
            if value is not None and key not in set(omit):
                params.append((key, value))
        params.extend(extra)
        return self.http.get(self.endpoint("authorization_endpoint"), params=params)

    def redirect_params(self, resp: requests.Response, redirect_uri: str, state: str | None) -> dict[str, str]:
        """Check an authorization response redirect (target, state, iss) and return its query."""
        assert resp.status_code in (302, 303), f"expected a redirect, got {resp.status_code}: {resp.text[:500]}"
        location = resp.headers["Location"]
        target, _, query = location.partition("?")
        expected_target = redirect_uri.split("?")[0]
        assert target == expected_target, f"redirected to {location!r}, expected {redirect_uri!r}"
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if state is not None:
            assert params.get("state") == state, f"state not echoed: {params}"
        assert params.get("iss") == self.issuer, f"iss missing or wrong (RFC 9207): {params}"
        return params

    def authorize(
        self,
        client_id: str = PUBLIC_CLIENT,
        redirect_uri: str = DEFAULT_REDIRECT,
        scope: str | None = "mcp:read offline_access",
        resource: str | None = None,
        login_hint: str | None = None,
        nonce: str | None = None,
    ) -> Authorization:
        """An auto-approved authorization: returns the code and the PKCE verifier that goes with it."""
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        resp = self.authorize_request(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            resource=resource,
            state=state,
            challenge=challenge,
            login_hint=login_hint,
            nonce=nonce,
        )
        params = self.redirect_params(resp, redirect_uri, state)
        assert "error" not in params, f"authorization failed: {params}"
        assert params.get("code"), f"no code in {params}"
        remember_secrets(params["code"], verifier)
        return Authorization(params["code"], verifier, redirect_uri, client_id, params, resp.headers["Location"])

    # -- token endpoint ------------------------------------------------------------------------

    def token_request(self, data, auth=None, headers=None) -> requests.Response:
        resp = self.http.post(self.endpoint("token_endpoint"), data=data, auth=auth, headers=headers)
        if isinstance(data, dict):
            remember_secrets(data.get("code"), data.get("code_verifier"), data.get("refresh_token"))
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            remember_secrets(body.get("access_token"), body.get("refresh_token"), body.get("id_token"))
        return resp

    def exchange(self, authz: Authorization, resource: str | None = None, **overrides) -> requests.Response:
        data = {
            "grant_type": "authorization_code",
            "code": authz.code,
            "redirect_uri": authz.redirect_uri,
            "client_id": authz.client_id,
            "code_verifier": authz.verifier,
        }
        if resource is not None:
            data["resource"] = resource
        data.update(overrides)
        data = {k: v for k, v in data.items() if v is not None}
        return self.token_request(data)

    def login(
        self,
        scope: str = "mcp:read offline_access",
        resource: str | None = None,
        client_id: str = PUBLIC_CLIENT,
        user: str | None = None,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """Authorization + code exchange for a public client; returns the token response."""
        authz = self.authorize(client_id=client_id, scope=scope, resource=resource, login_hint=user, nonce=nonce)
        resp = self.exchange(authz, resource=resource)
        assert resp.status_code == 200, f"token exchange failed: {resp.status_code} {resp.text}"
        return resp.json()

    def refresh(self, refresh_token: str, client_id: str = PUBLIC_CLIENT, **extra) -> requests.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
        data.update(extra)
        return self.token_request(data)

    def client_credentials(
        self,
        scope: str | None = None,
        resource: str | None = None,
        client_id: str = SERVICE_CLIENT,
        secret: str = SERVICE_SECRET,
        method: str = "basic",
    ) -> requests.Response:
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        if resource is not None:
            data["resource"] = resource
        if method == "basic":
            return self.token_request(data, auth=(client_id, secret))
        data.update({"client_id": client_id, "client_secret": secret})
        return self.token_request(data)

    # -- token state ---------------------------------------------------------------------------

    def introspect(self, token: str, auth=(SERVICE_CLIENT, SERVICE_SECRET), hint: str | None = None) -> requests.Response:
        data = {"token": token}
        if hint:
            data["token_type_hint"] = hint
        return self.http.post(self.endpoint("introspection_endpoint"), data=data, auth=auth)

    def is_active(self, token: str) -> bool:
        resp = self.introspect(token)
        assert resp.status_code == 200, f"introspection failed: {resp.status_code} {resp.text}"
        return bool(resp.json().get("active"))

    def revoke(self, token: str, client_id: str = PUBLIC_CLIENT, hint: str | None = None, auth=None) -> requests.Response:
        data = {"token": token}
        if auth is None:
            data["client_id"] = client_id
        if hint:
            data["token_type_hint"] = hint
        return self.http.post(self.endpoint("revocation_endpoint"), data=data, auth=auth)

    def healthy(self) -> bool:
        try:
            return self.http.get("/healthz").status_code == 200
        except requests.RequestException:
            return False


class Control:
    """The mock's /control API (docs/INTERFACES.md)."""

    def __init__(self, server: AuthServer):
        self.server = server
        self._enabled: bool | None = None

    @property
    def enabled(self) -> bool:
        if self._enabled is None:
            try:
                resp = self.server.http.get("/control/stats")
                self._enabled = resp.status_code == 200
            except requests.RequestException:
                self._enabled = False
        return self._enabled

    def call(self, method: str, path: str, body: Any = None, expect: int | tuple = (200, 201, 204)) -> Any:
        resp = self.server.http.request(method, "/control" + path, json=body)
        expected = (expect,) if isinstance(expect, int) else expect
        assert resp.status_code in expected, f"{method} /control{path}: {resp.status_code} {resp.text}"
        if resp.content and resp.headers.get("Content-Type", "").startswith("application/json"):
            return resp.json()
        return None

    def reset(self) -> None:
        self.call("POST", "/reset")
        if not self.server.managed:
            for client in EXTRA_CLIENTS:
                self.call("POST", "/clients", client)

    def stats(self) -> dict[str, Any]:
        return self.call("GET", "/stats")

    def lifetimes(self, **ttls: str) -> None:
        self.call("POST", "/lifetimes", ttls)

    def fault(self, **spec: Any) -> None:
        self.call("POST", "/faults", spec)

    def clear_faults(self) -> None:
        self.call("DELETE", "/faults")

    def deny_next_login(self) -> None:
        self.call("POST", "/deny-next-login")

    def rotate_key(self) -> str:
        return self.call("POST", "/rotate-key")["kid"]

    def grant_count(self, grant: str) -> int:
        return int(self.stats().get("grants", {}).get(grant, 0))

    def request_count(self, endpoint: str) -> int:
        return int(self.stats().get("requests", {}).get(endpoint, 0))


# ---------------------------------------------------------------------------------------------
# MCP


PROTOCOL_VERSION = "2025-11-25"


class MCPError(AssertionError):
    """An MCP request that did not produce a JSON-RPC result."""

    def __init__(self, message: str, response: requests.Response | None = None, body: Any = None):
        super().__init__(message)
        self.response = response
        self.body = body


def parse_mcp_body(resp: requests.Response) -> list[dict[str, Any]]:
    """JSON-RPC messages in a Streamable HTTP response: a JSON body or an SSE stream."""
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body = resp.json()
        return body if isinstance(body, list) else [body]
    if ctype == "text/event-stream":
        messages = []
        data_lines: list[str] = []
        for line in resp.text.splitlines() + [""]:
            if line == "":
                if data_lines:
                    payload = "\n".join(data_lines)
                    data_lines = []
                    try:
                        msg = json.loads(payload)
                    except ValueError:
                        continue
                    messages.extend(msg if isinstance(msg, list) else [msg])
            elif line.startswith("data:"):
                data_lines.append(line[5:].removeprefix(" "))  # SSE: one optional space after the colon
        return messages
    return []


class MCPClient:
    """A minimal Streamable HTTP MCP client: JSON-RPC over POST, session id kept."""

    def __init__(self, url: str, token: str | None, protocol_version: str = PROTOCOL_VERSION):
        self.url = url
        self.token = token
        self.protocol_version = protocol_version
        self.session_id: str | None = None
        self.next_id = 1
        self.http = requests.Session()
        self.last_response: requests.Response | None = None

    def headers(self) -> dict[str, str]:
        h = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": self.protocol_version,
        }
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.session_id:
            h["Mcp-Session-Id"] = self.session_id
        return h

    def post(self, payload: Any, headers: dict[str, str] | None = None, params=None) -> requests.Response:
        h = self.headers()
        h.update(headers or {})
        resp = self.http.post(self.url, data=json.dumps(payload), headers=h, params=params, timeout=HTTP_TIMEOUT)
        self.last_response = resp
        return resp

    def send(self, method: str, params: dict[str, Any] | None = None) -> requests.Response:
        """Send a JSON-RPC request and return the raw HTTP response."""
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        self.next_id += 1
        if params is not None:
            msg["params"] = params
        return self.post(msg)

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a JSON-RPC request; return its `result` (raise MCPError on HTTP or JSON-RPC error)."""
        req_id = self.next_id
        resp = self.send(method, params)
        if resp.status_code != 200:
            raise MCPError(f"{method}: HTTP {resp.status_code}: {resp.text[:500]}", resp)
        for msg in parse_mcp_body(resp):
            if msg.get("id") == req_id:
                if "error" in msg:
                    raise MCPError(f"{method}: JSON-RPC error {msg['error']}", resp, msg["error"])
                return msg["result"]
        raise MCPError(f"{method}: no response with id {req_id} in {resp.text[:500]!r}", resp)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> requests.Response:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        return self.post(msg)

    def initialize(self) -> dict[str, Any]:
        req_id = self.next_id
        resp = self.send(
            "initialize",
            {
                "protocolVersion": self.protocol_version,
                "capabilities": {},
                "clientInfo": {"name": "pytest-harness", "version": "1.0"},
            },
        )
        if resp.status_code != 200:
            raise MCPError(f"initialize: HTTP {resp.status_code}: {resp.text[:500]}", resp)
        self.session_id = resp.headers.get("Mcp-Session-Id") or self.session_id
        result = None
        for msg in parse_mcp_body(resp):
            if msg.get("id") == req_id:
                if "error" in msg:
                    raise MCPError(f"initialize: {msg['error']}", resp, msg["error"])
                result = msg["result"]
        if result is None:
            raise MCPError(f"initialize: no result in {resp.text[:500]!r}", resp)
        self.protocol_version = result.get("protocolVersion", self.protocol_version)
        note = self.notify("notifications/initialized")
        if note.status_code not in (200, 202, 204):
            raise MCPError(f"notifications/initialized: HTTP {note.status_code}: {note.text[:300]}", note)
        return result

    def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("tools/call", {"name": name, "arguments": arguments or {}})

    def close(self) -> None:
        if self.session_id:
            try:
                self.http.delete(self.url, headers=self.headers(), timeout=HTTP_TIMEOUT)
            except requests.RequestException:
                pass
        self.http.close()


def tool_text(result: dict[str, Any]) -> str:
    """All text content of a tools/call result, joined."""
    return "\n".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")


def tool_data(result: dict[str, Any]) -> Any:
    """A tool result's structured content, or its text parsed as JSON when it is JSON."""
    if result.get("structuredContent") is not None:
        return result["structuredContent"]
    text = tool_text(result)
    try:
        return json.loads(text)
    except ValueError:
        return text


def find_values(obj: Any, key: str, limit: int = 1000) -> list[Any]:
    """Every value stored under `key` anywhere in a JSON structure (bounded walk)."""
    found: list[Any] = []
    stack = [obj]
    for _ in range(limit):
        if not stack:
            break
        cur = stack.pop()
        if isinstance(cur, dict):
            for k, v in cur.items():
                if k == key:
                    found.append(v)
                stack.append(v)
        elif isinstance(cur, list):
            stack.extend(cur)
    return found


@dataclass
class TokenLog:
    """Every token string the suites obtained, so a test can prove none leaked into a file."""

    tokens: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        for v in values:
            if v:
                self.tokens.add(v)


class MCPServer:
    """A running MCP server (started by us or given by MCP_SERVER_URL, the /mcp URL)."""

    def __init__(self, mcp_url: str, process: ServiceProcess | None = None, audit_file: Path | None = None):
        self.mcp_url = mcp_url.rstrip("/")
        parsed = urllib.parse.urlsplit(self.mcp_url)
        self.base_url = f"{parsed.scheme}://{parsed.netloc}"
        self.http = Http(self.base_url)
        self.process = process
        self.audit_file = audit_file

    @property
    def managed(self) -> bool:
        return self.process is not None

    def client(self, token: str | None) -> MCPClient:
        return MCPClient(self.mcp_url, token)

    def session(self, token: str) -> MCPClient:
        """An initialized MCP session for this token."""
        c = self.client(token)
        c.initialize()
        return c


def verify_jwt(server: AuthServer, token: str, audience: str | None, algorithms=("RS256",)) -> dict[str, Any]:
    """Verify a JWT's signature against the server's JWKS with python3-jwt (an independent
    implementation) and check iss/aud/exp; returns the claims."""
    import jwt  # python3-jwt

    header = jwt.get_unverified_header(token)
    assert header.get("alg") in algorithms, f"unexpected alg in {header}"
    assert header.get("kid"), f"no kid in {header}"
    jwks = server.http.get(server.endpoint("jwks_uri")).json()
    matching = [k for k in jwks.get("keys", []) if k.get("kid") == header["kid"]]
    assert len(matching) == 1, f"kid {header['kid']} not (uniquely) in the JWKS"
    key = jwt.PyJWK(matching[0]).key
    options = {"require": ["exp", "iat", "iss", "sub"], "verify_aud": audience is not None}
    return jwt.decode(
        token,
        key,
        algorithms=list(algorithms),
        audience=audience,
        issuer=server.issuer,
        options=options,
        leeway=5,
    )


def unverified_claims(token: str) -> dict[str, Any]:
    import jwt

    return jwt.decode(token, options={"verify_signature": False})


class Services:
    """Extra server processes a test starts with a private config; stop_all() at teardown."""

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.procs: list[ServiceProcess] = []
        self.count = 0

    def workdir(self, name: str) -> Path:
        self.count += 1
        path = self.base_dir / f"{name}-{self.count}"
        path.mkdir(parents=True)
        return path

    def auth_process(self, overrides=None, port: int | None = None) -> ServiceProcess:
        workdir = self.workdir("auth")
        port = port or free_port()
        proc = ServiceProcess(AUTH_BINARY, workdir, auth_server_config(port, workdir, overrides), port)
        self.procs.append(proc)
        return proc

    def auth(self, overrides=None, port: int | None = None) -> AuthServer:
        proc = self.auth_process(overrides, port).start()
        return AuthServer(proc.base_url, proc)

    def mcp_process(self, issuer: str, overrides=None, port: int | None = None) -> ServiceProcess:
        workdir = self.workdir("mcp")
        port = port or free_port()
        audit = workdir / "logs" / "audit.jsonl"
        proc = ServiceProcess(MCP_BINARY, workdir, mcp_server_config(port, issuer, audit, overrides), port)
        self.procs.append(proc)
        return proc

    def mcp(self, issuer: str, overrides=None, ready: bool = True) -> MCPServer:
        proc = self.mcp_process(issuer, overrides).start()
        if ready:
            bounded_wait(lambda: http_status(proc.base_url + "/readyz") == 200, STARTUP_TIMEOUT, what="/readyz")
        return MCPServer(proc.base_url + "/mcp", proc, proc.workdir / "logs" / "audit.jsonl")

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def http_status(url: str, **kw) -> int:
    """The status of a GET, 0 when the server does not answer."""
    try:
        return requests.get(url, timeout=1.0, **kw).status_code
    except requests.RequestException:
        return 0


class FakeServer:
    """A tiny HTTP server on 127.0.0.1 with canned JSON answers, to put a client in front of a
    misconfigured MCP server or authorization server. routes maps (method, path) to
    (status, headers, body); {base} in strings is replaced by the server's base URL. Every request
    is recorded in `requests` as (method, path)."""

    def __init__(self, routes: dict[tuple[str, str], tuple[int, dict[str, str], Any]]):
        import http.server
        import threading

        self.routes = routes
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
                if length:
                    self.rfile.read(length)
                path, _, query = self.path.partition("?")
                fake.requests.append((self.command, path))
                route = fake.routes.get((self.command, path), (404, {}, {"error": "not_found"}))
                if callable(route):  # dynamic answer from the query parameters
                    route = route(dict(urllib.parse.parse_qsl(query)))
                status, headers, body = route
                data = body if isinstance(body, (bytes, str)) else json.dumps(body)
                data = data.replace("{base}", fake.base_url) if isinstance(data, str) else data
                raw = data.encode() if isinstance(data, str) else data
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v.replace("{base}", fake.base_url))
                if "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = _answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
