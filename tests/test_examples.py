"""The examples for people outside Go (docs/examples/) keep working against the real servers.

Starts bin/http-oauth2-mock-server and bin/http-mcp-mock-server on free 127.0.0.1 ports, each in
its own temporary working directory and configured only through the environment overrides of
docs/INTERFACES.md (as `make demo` does), then runs the Python example and the TypeScript one
(after `npm ci`, skipped only when npm cannot install) and checks the lines a newcomer relies on.
Every wait is bounded; every child process has a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "docs" / "examples"
PY_EXAMPLE = EXAMPLES / "python" / "mcp_oauth_example.py"
TS_DIR = EXAMPLES / "typescript"
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

RUN_TIMEOUT = 90  # seconds for one run of an example
NPM_TIMEOUT = 300  # seconds for `npm ci`
START_TIMEOUT = 20  # seconds for a server to answer its health check
JWT_SHAPE = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")  # a whole JWT in the output is a leak


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


def _binary(name: str) -> Path:
    """bin/<name>, built with `go build` when missing (as `make build` does)."""
    path = REPO / "bin" / name
    if not path.exists():
        go = shutil.which("go") or "/usr/local/go/bin/go"
        proc = subprocess.run([go, "build", "-o", str(path), f"./cmd/{name}"], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.fail(f"go build ./cmd/{name} failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return path


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment without config overrides or proxies that would redirect the children."""
    drop = ("AUTH_", "MCP_", "CLIENT_")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop) and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(extra or {})
    return env


class _Server:
    """One started binary with its log; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, workdir: Path, env: dict[str, str]):
        workdir.mkdir(parents=True, exist_ok=True)
        self.name, self.log = name, workdir / "server.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(_binary(name))], cwd=workdir, env=_clean_env(env),
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        for _ in range(START_TIMEOUT * 10):
            if self.proc.poll() is not None:
                break
            if _status(url) == 200:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready at {url}; log:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _start_pair(tmp: Path, servers: list) -> tuple[str, str, Path]:
    """Start both servers as `make demo` does: issuer and resource on `localhost`, free ports."""
    auth_port, mcp_port = _free_port(), _free_port()
    issuer, resource = f"http://localhost:{auth_port}", f"http://localhost:{mcp_port}/mcp"
    audit = tmp / "mcp" / "logs" / "audit.jsonl"
    servers.append(_Server("http-oauth2-mock-server", tmp / "auth", {
        "AUTH_SERVER_LISTEN": f"127.0.0.1:{auth_port}", "AUTH_SERVER_ISSUER": issuer,
        "AUTH_MOCK_AUTO_APPROVE": "true", "AUTH_MOCK_CONTROL_API": "true",
        "AUTH_KEYS_PRIVATE_KEY_FILE": str(tmp / "auth" / "keys" / "private_key.pem")}))
    servers[-1].wait_ready(f"http://127.0.0.1:{auth_port}/healthz")
    servers.append(_Server("http-mcp-mock-server", tmp / "mcp", {
        "MCP_SERVER_LISTEN": f"127.0.0.1:{mcp_port}", "MCP_SERVER_RESOURCE": resource,
        "MCP_AUTH_ISSUER": issuer, "MCP_AUDIT_FILE": str(audit)}))
    servers[-1].wait_ready(f"http://127.0.0.1:{mcp_port}/readyz")  # 200 once the JWKS is loaded
    return issuer, resource, audit


@pytest.fixture(scope="module")
def demo_servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("examples")
    servers: list[_Server] = []
    try:
        for attempt in range(3):  # a free port can be taken between the check and the bind
            try:
                issuer, resource, audit = _start_pair(tmp, servers)
                break
            except RuntimeError as err:
                for server in servers:
                    server.stop()
                servers.clear()
                if "address already in use" not in str(err) or attempt == 2:
                    pytest.fail(str(err), pytrace=False)
        yield {"issuer": issuer, "resource": resource, "audit": audit, "tmp": tmp, "servers": servers}
    finally:
        for server in servers:
            server.stop()


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=_clean_env(env), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)


def _explain(proc: subprocess.CompletedProcess, servers) -> str:
    logs = "\n".join(f"--- {s.name}\n{s.log.read_text(errors='replace')[-2000:]}" for s in servers)
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-2000:]}\n{logs}"


def _check_walkthrough(proc: subprocess.CompletedProcess, demo) -> None:
    """The lines a reader follows: each standard named, whoami answering as alice, no secret."""
    out = proc.stdout
    assert proc.returncode == 0, _explain(proc, demo["servers"])
    for standard in ("RFC 9728", "RFC 8414", "RFC 7591", "RFC 7636", "RFC 8707", "RFC 9207", "RFC 6749 §4.1.3"):
        assert standard in out, f"{standard} is not named:\n{out}"
    assert re.search(r"(<-|->) 401$", out, re.M), f"the unauthenticated call's 401 is not shown:\n{out}"
    assert "resource_metadata" in out, out
    assert "tools/list" in out and "tools/call" in out, out
    whoami = [line for line in out.splitlines() if "whoami:" in line]
    assert whoami and "alice" in whoami[-1], f"whoami does not name alice:\n{out}"
    assert "Done:" in out, out
    leaked = JWT_SHAPE.findall(out + proc.stderr)
    assert not leaked, f"a token was printed in clear: {leaked[0][:12]}…"


def _fake_browser(tmp: Path) -> Path:
    """A 'browser' for --browser mode: follows the mock's redirects to the loopback listener."""
    script = tmp / "fake-browser"
    script.write_text('#!/bin/sh\nexec curl -fsS -m 20 -L -o /dev/null "$1"\n')
    script.chmod(0o755)
    return script


def test_python_example_headless(demo_servers):
    proc = _run([PYTHON, str(PY_EXAMPLE), "--server", demo_servers["resource"],
                 "--auth-server", demo_servers["issuer"]], EXAMPLES)
    _check_walkthrough(proc, demo_servers)
    assert "whoami" in demo_servers["audit"].read_text(), "the whoami call left no audit record"


def test_python_example_browser_mode(demo_servers):
    if not shutil.which("curl"):
        pytest.skip("curl is needed to play the browser")
    env = {"BROWSER": str(_fake_browser(demo_servers["tmp"]))}
    proc = _run([PYTHON, str(PY_EXAMPLE), "--browser", "--login-timeout", "30",
                 "--server", demo_servers["resource"], "--auth-server", demo_servers["issuer"]], EXAMPLES, env)
    _check_walkthrough(proc, demo_servers)
    assert "redirect_uri http://127.0.0.1:" in proc.stdout, proc.stdout


def test_python_example_refuses_another_authorization_server(demo_servers):
    proc = _run([PYTHON, str(PY_EXAMPLE), "--server", demo_servers["resource"],
                 "--auth-server", "http://localhost:1"], EXAMPLES)
    assert proc.returncode == 1, _explain(proc, demo_servers["servers"])
    assert proc.stderr.startswith("error: ") and "not the expected" in proc.stderr, proc.stderr
    assert "RFC 7591" not in proc.stdout, "it registered with a server it should have refused"


def test_python_example_fails_clearly_without_server():
    proc = _run([PYTHON, str(PY_EXAMPLE), "--server", f"http://127.0.0.1:{_free_port()}/mcp", "--timeout", "3"],
                EXAMPLES)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: POST http://127.0.0.1:") and "Traceback" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def ts_example():
    """The TypeScript example compiled: `npm ci` (bounded) when needed, then `tsc`."""
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        pytest.skip("node/npm are not installed: the TypeScript example cannot run")
    # npm keeps a copy of the lock it installed; an older one means package-lock.json changed since.
    installed = TS_DIR / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (TS_DIR / "package-lock.json").stat().st_mtime:
        try:
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TS_DIR, capture_output=True,
                                  text=True, timeout=NPM_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm ci did not finish in {NPM_TIMEOUT}s (registry unreachable?)")
        if proc.returncode != 0:
            pytest.skip(f"npm ci failed, cannot install the TypeScript SDK: {proc.stderr.strip()[-500:]}")
    build = subprocess.run([npm, "run", "build"], cwd=TS_DIR, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    assert build.returncode == 0, f"tsc failed:\n{build.stdout[-3000:]}\n{build.stderr[-1000:]}"
    return TS_DIR / "dist" / "mcp-oauth-example.js"


def test_typescript_example_headless(demo_servers, ts_example):
    proc = _run(["node", str(ts_example), "--server", demo_servers["resource"],
                 "--auth-server", demo_servers["issuer"]], TS_DIR)
    _check_walkthrough(proc, demo_servers)


def _deny_next_login(issuer: str) -> None:
    deny = urllib.request.Request(issuer + "/control/deny-next-login", data=b"{}", method="POST",
                                  headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(deny, timeout=5) as resp:
        assert resp.status in (200, 204)


@pytest.mark.parametrize("language", ["python", "typescript"])
def test_example_reports_a_denied_login(demo_servers, language, request):
    if language == "python":
        cmd, cwd = [PYTHON, str(PY_EXAMPLE)], EXAMPLES
    else:
        cmd, cwd = ["node", str(request.getfixturevalue("ts_example"))], TS_DIR
    _deny_next_login(demo_servers["issuer"])
    proc = _run(cmd + ["--server", demo_servers["resource"], "--auth-server", demo_servers["issuer"]], cwd)
    assert proc.returncode == 1, _explain(proc, demo_servers["servers"])
    assert proc.stderr.startswith("error: authorization denied: access_denied"), proc.stderr
    assert "RFC 6749 §4.1.3" not in proc.stdout, "it went on to the token request after a denial"


def test_typescript_example_browser_mode(demo_servers, ts_example):
    if not shutil.which("curl"):
        pytest.skip("curl is needed to play the browser")
    env = {"BROWSER": str(_fake_browser(demo_servers["tmp"]))}
    proc = _run(["node", str(ts_example), "--browser", "--login-timeout", "30",
                 "--server", demo_servers["resource"], "--auth-server", demo_servers["issuer"]], TS_DIR, env)
    _check_walkthrough(proc, demo_servers)
    assert "redirect_uri http://127.0.0.1:" in proc.stdout, proc.stdout
