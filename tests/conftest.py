"""Session fixtures: the authorization server and the MCP server, started from bin/ on free
loopback ports with private configs, or taken from AUTH_SERVER_URL / MCP_SERVER_URL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness
from harness import AuthServer, MCPServer, ServiceProcess


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory) -> AuthServer:
    external = os.environ.get("AUTH_SERVER_URL")
    if external:
        server = AuthServer(external)
        if server.control.enabled:
            server.control.reset()
        yield server
        return
    workdir = tmp_path_factory.mktemp("authserver")

    def factory(port: int) -> ServiceProcess:
        return ServiceProcess(harness.AUTH_BINARY, workdir, harness.auth_server_config(port, workdir), port)

    try:
        proc = harness.start_with_free_port(factory)
    except RuntimeError as exc:
        pytest.fail(f"authorization server did not start: {exc}", pytrace=False)
    server = AuthServer(proc.base_url, proc)
    yield server
    proc.stop()


@pytest.fixture(scope="session")
def mcp_server(tmp_path_factory, auth_server: AuthServer) -> MCPServer:
    external = os.environ.get("MCP_SERVER_URL")
    if external:
        if not os.environ.get("AUTH_SERVER_URL"):
            pytest.skip("MCP_SERVER_URL needs AUTH_SERVER_URL (the issuer it trusts)")
        audit = os.environ.get("MCP_AUDIT_FILE")
        yield MCPServer(external, audit_file=Path(audit) if audit else None)
        return
    workdir = tmp_path_factory.mktemp("mcpserver")
    audit_file = workdir / "logs" / "audit.jsonl"

    def factory(port: int) -> ServiceProcess:
        config = harness.mcp_server_config(port, auth_server.issuer, audit_file)
        return ServiceProcess(harness.MCP_BINARY, workdir, config, port)

    try:
        proc = harness.start_with_free_port(factory)
        # /readyz turns 200 once the JWKS is loaded from the authorization server.
        harness.bounded_wait(
            lambda: proc.proc.poll() is None and _status(proc.base_url + "/readyz") == 200,
            timeout=harness.STARTUP_TIMEOUT,
            what="MCP server /readyz",
        )
    except (RuntimeError, AssertionError) as exc:
        pytest.fail(f"MCP server did not become ready: {exc}", pytrace=False)
    server = MCPServer(proc.base_url + "/mcp", proc, audit_file)
    yield server
    proc.stop()


def _status(url: str) -> int:
    try:
        return harness.requests.get(url, timeout=1.0).status_code
    except harness.requests.RequestException:
        return 0


@pytest.fixture
def control(auth_server: AuthServer) -> harness.Control:
    """The control API; tests that need it are skipped when it is off (external server)."""
    if not auth_server.control.enabled:
        pytest.skip("the authorization server's control API is off")
    return auth_server.control


@pytest.fixture
def services(tmp_path):
    """Start extra servers with private configs inside one test; all stopped afterwards."""
    if os.environ.get("AUTH_SERVER_URL") or os.environ.get("MCP_SERVER_URL"):
        pytest.skip("needs private server configs (external services in use)")
    reg = harness.Services(tmp_path)
    yield reg
    reg.stop_all()


@pytest.fixture(scope="module")
def module_services(tmp_path_factory):
    """Like `services`, shared by the tests of one module."""
    if os.environ.get("AUTH_SERVER_URL") or os.environ.get("MCP_SERVER_URL"):
        pytest.skip("needs private server configs (external services in use)")
    reg = harness.Services(tmp_path_factory.mktemp("extra"))
    yield reg
    reg.stop_all()


@pytest.fixture(scope="session")
def token_log() -> harness.TokenLog:
    return harness.TokenLog()


def pytest_runtest_makereport(item, call):
    """On a failure, attach the tail of each managed server's stderr to the report."""
    if call.when != "call" or call.excinfo is None:
        return
    for name in ("auth_server", "mcp_server"):
        server = item.funcargs.get(name) if hasattr(item, "funcargs") else None
        proc = getattr(server, "process", None)
        if proc is not None:
            item.add_report_section("call", f"{name} stderr", proc.stderr_tail())
