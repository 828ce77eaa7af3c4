"""Helpers for the attack and resilience suites (test_security.py, test_oauth2_edge_cases.py).

These suites need servers configured differently from the shared session ones (a small
registration cap, consent pages instead of auto-approval, a short unknown-kid rate limit, keys
rotated and faults injected freely), so each module starts its own pair of binaries through the
shared harness. Also here: a runner for the client binary, a tiny fake HTTP server for MCP servers
and authorization servers that misbehave, and JWT forgery with python3-jwt / python3-cryptography.

Everything binds 127.0.0.1, every request and subprocess has a timeout, every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import queue
import socket
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
import requests

import harness
from harness import AuthServer, MCPServer, ServiceProcess

CLIENT_TIMEOUT = 45.0  # seconds, every client run (each run also has its own --timeout)


# ---------------------------------------------------------------------------------------------
# our own servers


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """A copy of base with extra's tables merged in (extra wins)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def auth_config(port: int, workdir: Path, overrides: dict[str, Any] | None = None) -> str:
    """The harness's authorization server config (same clients and users) plus overrides."""
    tables = {
        "server": {"listen": f"127.0.0.1:{port}", "issuer": f"http://127.0.0.1:{port}"},
        "log": {"level": "debug"},
        "keys": {"private_key_file": str(workdir / "keys" / "private_key.pem"), "algorithm": "RS256"},
        "storage": {"driver": "memory"},
        "mock": {"auto_approve": True, "default_user": "alice", "control_api": True},
        "cimd": {"allow_loopback": True},
    }
    tables = deep_merge(tables, overrides or {})
    return harness.render_toml(tables, {"users": harness.USERS, "clients": harness.SHIPPED_CLIENTS + harness.EXTRA_CLIENTS})


def mcp_config(port: int, issuer: str, audit_file: Path, overrides: dict[str, Any] | None = None) -> str:
    tables = {
        "server": {"listen": f"127.0.0.1:{port}", "resource": f"http://127.0.0.1:{port}/mcp"},
        "log": {"level": "debug"},
        "auth": {"enabled": True, "mode": "jwt", "issuer": issuer},
        "audit": {"file": str(audit_file), "sync": "always", "fail_closed": True},
    }
    return harness.render_toml(deep_merge(tables, overrides or {}))


def start_auth(workdir: Path, overrides: dict[str, Any] | None = None) -> AuthServer:
    """Start a private authorization server; stop it with `stop(server)`."""
    workdir.mkdir(parents=True, exist_ok=True)

    def factory(port: int) -> ServiceProcess:
        return ServiceProcess(harness.AUTH_BINARY, workdir, auth_config(port, workdir, overrides), port)

    proc = harness.start_with_free_port(factory)
    return AuthServer(proc.base_url, proc)


def start_mcp(workdir: Path, auth: AuthServer, overrides: dict[str, Any] | None = None) -> MCPServer:
    """Start a private MCP server trusting `auth`, and wait until its JWKS is loaded."""
    workdir.mkdir(parents=True, exist_ok=True)
    audit_file = workdir / "logs" / "audit.jsonl"

    def factory(port: int) -> ServiceProcess:
        return ServiceProcess(harness.MCP_BINARY, workdir, mcp_config(port, auth.issuer, audit_file, overrides), port)

    proc = harness.start_with_free_port(factory)
    harness.bounded_wait(lambda: status_of(proc.base_url + "/readyz") == 200, timeout=harness.STARTUP_TIMEOUT,
                         what="MCP server /readyz")
    return MCPServer(proc.base_url + "/mcp", proc, audit_file)


def stop(*servers) -> None:
    for server in servers:
        if server is not None and server.process is not None:
            server.process.stop()


def start_pair(base: Path, auth_overrides: dict[str, Any] | None = None,
               mcp_overrides: dict[str, Any] | None = None) -> tuple[AuthServer, MCPServer]:
    """Start an authorization server and an MCP server trusting it under base;
    if either fails to start, stop whatever did start and fail the module."""
    auth = mcp = None
    try:
        auth = start_auth(base / "auth", auth_overrides)
        mcp = start_mcp(base / "mcp", auth, mcp_overrides)
    except (RuntimeError, AssertionError) as exc:
        stop(mcp, auth)
        pytest.fail(f"servers did not start: {exc}", pytrace=False)
    return auth, mcp


def status_of(url: str, **kw) -> int:
    """The HTTP status of a GET (0 when the server does not answer)."""
    try:
        return requests.get(url, timeout=2.0, allow_redirects=False, **kw).status_code
    except requests.RequestException:
        return 0


@contextlib.contextmanager
def socket_bound(port: int):
    """Bind 127.0.0.1:port (fails when something still listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))
        yield s


def healthy(base_url: str) -> bool:
    return status_of(base_url.rstrip("/") + "/healthz") == 200


# ---------------------------------------------------------------------------------------------
# the client binary


class ClientRunner:
    """Runs bin/http-oauth2-client (headless by default) with its own HOME and a token file in tmp."""

    def __init__(self, workdir: Path, mcp_url: str):
        self.workdir = workdir
        self.mcp_url = mcp_url
        self.token_file = workdir / "tokens" / "tokens.json"
        self.binary = harness.ensure_binary(harness.CLIENT_BINARY)

    def command(self, *args: str, server: str | None = None, token_file: Path | None = None, user: str = "alice",
                timeout_flag: str = "5s", mode: str = "headless", extra_flags=()) -> list[str]:
        return [
            str(self.binary), "--mode", mode, "--server", server or self.mcp_url,
            "--token-file", str(token_file or self.token_file), "--login-hint", user,
            "--timeout", timeout_flag, *extra_flags, *args,
        ]

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = harness.child_env({"HOME": str(self.workdir), "XDG_CACHE_HOME": str(self.workdir / "cache"),
                                 "XDG_CONFIG_HOME": str(self.workdir / "config"), "BROWSER": "true"})
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
        env.update(extra or {})
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = CLIENT_TIMEOUT,
            **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args, **kw), cwd=self.workdir, env=self.env(env), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self, *args: str, env: dict[str, str] | None = None, stdin: bool = False, **kw) -> "RunningClient":
        proc = subprocess.Popen(self.command(*args, **kw), cwd=self.workdir, env=self.env(env), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
        return RunningClient(proc)

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        proc = self.run(*args, **kw)
        assert proc.returncode == 0, describe(proc, args)
        return proc

    def cache(self, token_file: Path | None = None) -> dict[str, Any] | None:
        path = token_file or self.token_file
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def entries(self, token_file: Path | None = None) -> list[dict[str, Any]]:
        cache = self.cache(token_file) or {}
        return [e for e in (cache.get("entries") or {}).values() if isinstance(e, dict)]

    def tokens(self, token_file: Path | None = None) -> list[dict[str, Any]]:
        return [e["token"] for e in self.entries(token_file) if isinstance(e.get("token"), dict)
                and e["token"].get("access_token")]

    def only_token(self, token_file: Path | None = None) -> dict[str, Any]:
        toks = self.tokens(token_file)
        assert len(toks) == 1, f"expected one cached token, found {len(toks)}: {self.cache(token_file)}"
        return toks[0]


class RunningClient:
    """A client process whose stderr is read line by line in a thread (bounded waits)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: "queue.Queue[str]" = queue.Queue()
        self.stderr_lines: list[str] = []
        self.stdout_chunks: list[str] = []
        self._readers = [threading.Thread(target=self._read_err, daemon=True),
                         threading.Thread(target=self._read_out, daemon=True)]
        for t in self._readers:
            t.start()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            self.lines.put(line)

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_chunks.append(line)

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        for _ in range(10_000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if predicate(line):
                return line
        raise AssertionError(f"no matching line from the client within {timeout}s; stderr so far:\n"
                             + "".join(self.stderr_lines)[-3000:])

    def send_line(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float) -> subprocess.CompletedProcess:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("client did not finish within %ss; stderr:\n%s" % (timeout, "".join(self.stderr_lines)[-3000:]))
        for t in self._readers:
            t.join(timeout=5)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, "".join(self.stdout_chunks),
                                           "".join(self.stderr_lines))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


def describe(proc: subprocess.CompletedProcess, args=()) -> str:
    return (f"client {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout[-2000:]}\n"
            f"stderr:\n{proc.stderr[-3000:]}")


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The client's failure contract: exit 1 and one `error: <what>: <why>` line, no panic."""
    assert proc.returncode == 1, describe(proc)
    assert "panic" not in proc.stderr and "goroutine " not in proc.stderr, describe(proc)
    # paste mode leaves its "> " prompt open on stderr (the user's Enter ends it on a terminal)
    lines = [line.removeprefix("> ") for line in proc.stderr.splitlines()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, f"expected exactly one error line:\n{proc.stderr[-3000:]}"
    assert lines[-1].startswith("error: "), proc.stderr[-2000:]
    return errors[0]


# ---------------------------------------------------------------------------------------------
# a fake HTTP server


@dataclass
class Reply:
    status: int = 200
    body: Any = b""  # bytes, str, or a JSON value
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[["FakeRequest"], Reply]


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class FakeServer:
    """A threaded http.server on a free loopback port answering from a route table (path without
    query -> function of the request returning a Reply; unknown paths get 404). Requests are
    recorded."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: list[FakeRequest] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1 << 20)) if length else b""
                parsed = urllib.parse.urlsplit(self.path)
                req = FakeRequest(self.command, parsed.path, dict(urllib.parse.parse_qsl(parsed.query)),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                outer.requests.append(req)
                route = outer.routes.get(parsed.path)
                reply = route(req) if route else Reply(404, {"error": "not_found"})
                data = reply.body
                ctype = "application/json"
                if isinstance(data, (dict, list)):
                    data = json.dumps(data).encode()
                elif isinstance(data, str):
                    data = data.encode()
                    ctype = "text/plain"
                self.send_response(reply.status)
                headers = {"Content-Type": ctype, **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self) -> "FakeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def route(self, path: str, reply: Reply | Route) -> None:
        self.routes[path] = reply if callable(reply) else (lambda _req, r=reply: r)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)


def fake_mcp_challenge(fake: FakeServer, resource_metadata: str | None) -> str:
    """Make `fake` an MCP endpoint at /mcp that answers every request with a 401 challenge
    (pointing at resource_metadata when given). Returns the /mcp URL."""
    header = "Bearer" + (f' resource_metadata="{resource_metadata}"' if resource_metadata else "")
    fake.route("/mcp", Reply(401, {"error": "invalid_token"}, {"WWW-Authenticate": header}))
    return fake.base_url + "/mcp"


# ---------------------------------------------------------------------------------------------
# JWTs


def b64url_json(obj: Any) -> str:
    return harness.b64url(json.dumps(obj, separators=(",", ":")).encode())


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def split_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    h, p, s = token.split(".")
    return json.loads(b64url_decode(h)), json.loads(b64url_decode(p)), s


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{b64url_json(header)}.{b64url_json(claims)}.{signature}"


def new_rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def sign_rs256(claims: dict[str, Any], key, headers: dict[str, Any]) -> str:
    import jwt

    return jwt.encode(claims, key, algorithm="RS256", headers=headers)


def sign_hs256_with_pem(claims: dict[str, Any], secret: bytes, headers: dict[str, Any]) -> str:
    """HS256 keyed with the RSA public key PEM, built by hand: python3-jwt refuses to use a PEM
    as an HMAC secret, which is exactly the algorithm-confusion attack."""
    import hashlib
    import hmac

    header = {"alg": "HS256", "typ": "JWT", **headers}
    signing_input = f"{b64url_json(header)}.{b64url_json(claims)}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{harness.b64url(sig)}"


def jwk_public_pem(jwk: dict[str, Any], pkcs1: bool = False) -> bytes:
    import jwt
    from cryptography.hazmat.primitives import serialization

    key = jwt.PyJWK(jwk).key
    fmt = serialization.PublicFormat.PKCS1 if pkcs1 else serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_bytes(serialization.Encoding.PEM, fmt)


def public_jwk(key, kid: str) -> dict[str, Any]:
    import jwt

    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return jwk
