"""Proof that the newcomer's documentation cannot go stale (issue 6).

1. `scripts/demo.sh` (what `make demo` runs after `make build`) runs on free ports and prints every
   step of the tour with the standard it follows, logs in as alice, shows the audit record, never
   prints a token, and leaves both ports free afterwards; it names a taken port, and it stops both
   servers when a step fails or on Ctrl-C.
2. Every README.md code block marked runnable (a ```sh block right after the line
   `<!-- runnable -->`) runs, in order, in one `bash -euo pipefail`, against a private
   authorization server and MCP server started on free ports. The substitutions, the only ones:
   `http://localhost:3002` becomes the test authorization server's URL, `http://localhost:3003`
   the test MCP server's, `go run ./cmd/<name>` becomes the built `bin/<name>`, and the client
   gets `CLIENT_MCP_SERVER_URL` (its default server is in config/client_config.toml) and a private
   cache directory. Commands that need a browser, a terminal or the default ports are left
   unmarked; `go run` and `make` lines there are still checked to name a real command or target,
   and the three `go run` lines of "Three terminals" run with the shipped TOMLs on free ports
   (moved through the environment) with the client headless. The pytest module of
   docs/INTEGRATION.md (marked `<!-- runnable-pytest -->`) runs as it is.
3. Every relative Markdown link in README.md and docs/**/*.md resolves to a file (and heading
   anchor); every "[`file.go`](…) `Function`" pair names a function or type that file declares;
   every test function SECURITY.md names exists; the flow diagrams avoid the mermaid syntax that
   broke them; and no token or code reaches the servers' logs during the README walk-through.

Running time: about 20 s (the `go run` test compiles with the usual build cache).
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness

REPO = harness.REPO_ROOT
README = REPO / "README.md"
DEMO = REPO / "scripts" / "demo.sh"
DEMO_TIMEOUT = 60.0  # seconds for one demo run; it takes about one
RUNNABLE_TIMEOUT = 60.0  # seconds for all runnable README blocks together
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")  # a JWT in clear


# ---------------------------------------------------------------------------------------------
# helpers


def built_binaries() -> Path:
    """The directory holding the three binaries (bin/ or TEST_BIN_DIR), built when missing."""
    for name in (harness.AUTH_BINARY, harness.MCP_BINARY, harness.CLIENT_BINARY):
        harness.ensure_binary(name)
    return harness.BIN_DIR


def two_free_ports() -> tuple[int, int]:
    for _ in range(10):
        a, b = harness.free_port(), harness.free_port()
        if a != b:
            return a, b
    raise AssertionError("could not find two distinct free ports")


def port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port (a connect is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) != 0


def demo_env(tmp_path: Path, auth_port: int, mcp_port: int, bin_dir: Path) -> dict[str, str]:
    return harness.child_env({
        "DEMO_AUTH_PORT": str(auth_port),
        "DEMO_MCP_PORT": str(mcp_port),
        "DEMO_AUDIT_FILE": str(tmp_path / "audit.jsonl"),
        "BIN": str(bin_dir),
        "TMPDIR": str(tmp_path),
    })


def run_demo(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DEMO)], cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=DEMO_TIMEOUT,
    )


def fake_bin(tmp_path: Path, client_script: str) -> Path:
    """A bin directory with the real servers and a stand-in client (a shell script)."""
    real = built_binaries()
    fake = tmp_path / "fakebin"
    fake.mkdir()
    for name in (harness.AUTH_BINARY, harness.MCP_BINARY):
        (fake / name).symlink_to(real / name)
    client = fake / harness.CLIENT_BINARY
    client.write_text("#!/usr/bin/env bash\n" + client_script + "\n")
    client.chmod(0o755)
    return fake


# ---------------------------------------------------------------------------------------------
# 1. make demo


DEMO_KEY_LINES = [
    # each step and the standard it names
    "[1] Discovery (RFC 9728 protected resource metadata, RFC 8414 authorization server metadata)",
    "HTTP 401",
    "WWW-Authenticate: Bearer",
    "code_challenge_methods_supported: S256",
    "authorization_response_iss_parameter_supported: true",
    "[2] Registration (RFC 7591), login (RFC 6749 §4.1 authorization code + RFC 7636 PKCE S256, RFC 9207 iss, RFC 8707 resource), token",
    "registered dynamically (RFC 7591)",
    "code_challenge_method=S256",
    "[3] Token (RFC 6749 §5.1 response, RFC 9068 JWT access token",
    "claim sub: alice",
    "[4] MCP initialize (MCP Streamable HTTP transport, RFC 6750 Authorization: Bearer)",
    "[5] tools/list (MCP tools",
    "[6] tools/call whoami (MCP tools",
    "[7] resources/read (MCP resources)",
    "the server attributes this call to: alice",
    "[8] Forced refresh (RFC 6749 §6 refresh_token grant; rotation expected, OAuth 2.1 §4.3.1)",
    "refresh token rotated: true",
    "[9] Audit record",
    "Where to look next",
]


def test_demo_walks_through_every_step_and_stops_both_servers(tmp_path):
    bin_dir = built_binaries()
    for _ in range(3):  # other suites bind ports too: a port taken between our check and the demo's
        auth_port, mcp_port = two_free_ports()
        proc = run_demo(demo_env(tmp_path, auth_port, mcp_port, bin_dir))
        out = proc.stdout + proc.stderr
        if "already in use" not in out:
            break
    assert proc.returncode == 0, f"demo failed ({proc.returncode}):\n{out[-4000:]}"
    missing = [line for line in DEMO_KEY_LINES if line not in out]
    assert not missing, f"demo output lacks {missing}:\n{out}"
    # the audit record of alice's whoami call, printed as the MCP server wrote it
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"tool":"whoami"' in line]
    assert records, f"no whoami audit record in the output:\n{out}"
    assert records[-1]["subject"] == "alice" and records[-1]["outcome"] == "allowed"
    assert records[-1]["jti"], "the audit record identifies the token by its jti"
    assert not JWT_RE.search(out), "the demo printed a token in clear"
    assert port_free(auth_port) and port_free(mcp_port), "a server outlived the demo"


def test_demo_names_a_taken_port_and_starts_nothing(tmp_path):
    bin_dir = built_binaries()
    auth_port, mcp_port = two_free_ports()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", mcp_port))
        busy.listen(1)
        proc = run_demo(demo_env(tmp_path, auth_port, mcp_port, bin_dir))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"port {mcp_port}" in out and "already in use" in out, out
    assert "DEMO_AUTH_PORT" in out, "the message says how to pick other ports"
    assert port_free(auth_port), "the authorization server was started although the MCP port was taken"


def test_demo_stops_both_servers_when_a_step_fails(tmp_path):
    fake = fake_bin(tmp_path, 'echo "client: simulated failure" >&2; exit 3')
    auth_port, mcp_port = two_free_ports()
    proc = run_demo(demo_env(tmp_path, auth_port, mcp_port, fake))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    assert "demo failed (exit 3)" in out, out
    assert port_free(auth_port) and port_free(mcp_port), "a server outlived the failed demo"


def test_demo_stops_both_servers_on_ctrl_c(tmp_path):
    fake = fake_bin(tmp_path, "echo client-started; sleep 30")
    auth_port, mcp_port = two_free_ports()
    proc = subprocess.Popen(
        [str(DEMO)], cwd=REPO, env=demo_env(tmp_path, auth_port, mcp_port, fake), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    seen = ""
    try:
        deadline = time.monotonic() + 20
        fd = proc.stdout.fileno()  # raw reads: a buffered reader would hide lines from select
        while "client-started" not in seen and time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                seen += os.read(fd, 65536).decode(errors="replace")
        assert "client-started" in seen, f"the demo never reached the client step:\n{seen}"
        assert not port_free(auth_port) and not port_free(mcp_port), "both servers run during the client step"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        rest = proc.communicate(timeout=15)[0].decode(errors="replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    assert proc.returncode == 130, seen + rest
    assert port_free(auth_port) and port_free(mcp_port), "a server outlived Ctrl-C"


# ---------------------------------------------------------------------------------------------
# 2. README.md runnable blocks

RUNNABLE_RE = re.compile(r"^<!-- runnable -->\n```sh\n(.*?)^```", re.M | re.S)
CODE_BLOCK_RE = re.compile(r"^```[a-z]*\n(.*?)^```", re.M | re.S)


def readme_runnable_blocks() -> list[str]:
    return RUNNABLE_RE.findall(README.read_text())


def rewrite(block: str, auth_url: str, mcp_base: str, bin_dir: Path) -> str:
    block = block.replace("http://localhost:3002", auth_url).replace("http://localhost:3003", mcp_base)
    return re.sub(r"go run \./cmd/([a-z0-9-]+)", lambda m: str(bin_dir / m.group(1)), block)


def test_readme_has_runnable_blocks_for_every_endpoint():
    """The runnable blocks cover every endpoint the README promises curl examples for."""
    text = "\n".join(readme_runnable_blocks())
    for needle in [
        "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/authorize",
        "grant_type=authorization_code", "grant_type=refresh_token", "grant_type=client_credentials",
        "/jwks", "/register", "/introspect", "/revoke", "/userinfo",
        "/control/faults", "/control/deny-next-login", "/control/rotate-key", "/control/lifetimes",
        "/control/users", "/control/clients", "/control/revoke-user/", "/control/stats", "/control/reset",
        "/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource ",
        '"method":"initialize"', '"method":"tools/call"', "insufficient_scope", "/audit-logs",
        "--mode headless login", "probe --target", "http-oauth2-client logout",
    ]:
        assert needle in text, f"no runnable README command uses {needle!r}"


@pytest.fixture(scope="module")
def readme_run(module_services, tmp_path_factory):
    """Run every runnable README block once against a private pair of servers (debug logs)."""
    bin_dir = built_binaries()
    tmp = tmp_path_factory.mktemp("readme")
    blocks = readme_runnable_blocks()
    auth = module_services.auth()
    mcp = module_services.mcp(auth.issuer)
    script = ["set -euo pipefail"]
    for i, block in enumerate(blocks, 1):
        script.append(f"echo '@@ block {i}' >&2")
        script.append(rewrite(block, auth.base_url, mcp.base_url, bin_dir))
    env = harness.child_env({
        "CLIENT_MCP_SERVER_URL": mcp.mcp_url,
        "XDG_CACHE_HOME": str(tmp / "cache"),
        "HOME": str(tmp / "home"),
    })
    proc = subprocess.run(
        ["bash", "-c", "\n".join(script)], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=RUNNABLE_TIMEOUT,
    )
    return blocks, proc, auth, mcp


def test_readme_runnable_blocks_succeed_against_live_services(readme_run):
    blocks, proc, _, _ = readme_run
    started = re.findall(r"@@ block (\d+)", proc.stderr)
    where = f"block {started[-1]}:\n{blocks[int(started[-1]) - 1]}" if started else "before the first block"
    assert proc.returncode == 0, (
        f"README runnable {where}\nexit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    assert started and int(started[-1]) == len(blocks)
    # the blocks print what they promise: alice's identity, the challenge, the scope refusal
    assert '"sub":"alice"' in proc.stdout.replace(" ", "")
    assert "resource_metadata=" in proc.stdout
    assert 'error="insufficient_scope"' in proc.stdout


def test_server_logs_hold_no_token_after_the_readme_walkthrough(readme_run):
    """Both servers ran at log level debug through every README command (codes, access, refresh
    and client-credentials tokens, a revocation, step-up): no JWT and no authorization code the
    walk-through printed appears in their logs, the audit file or the demo's output."""
    _, proc, auth, mcp = readme_run
    assert proc.returncode == 0, "see test_readme_runnable_blocks_succeed_against_live_services"
    codes = re.findall(r"[?&]code=([A-Za-z0-9_-]{20,})", proc.stdout)
    assert codes, "the README prints the redirect carrying the code"
    logs = {
        "authorization server log": auth.process.stderr_path.read_text() + auth.process.stdout_path.read_text(),
        "MCP server log": mcp.process.stderr_path.read_text() + mcp.process.stdout_path.read_text(),
        "audit file": mcp.audit_file.read_text() if mcp.audit_file and mcp.audit_file.exists() else "",
    }
    assert logs["MCP server log"] and logs["authorization server log"] and logs["audit file"]
    for name, text in logs.items():
        assert not JWT_RE.search(text), f"a JWT in the {name}"
        for code in codes:
            assert code not in text, f"an authorization code in the {name}"


GO_BLOCK_RE = re.compile(r"^```go\n(.*?)^```", re.M | re.S)


def test_integration_go_snippets_are_the_compiled_examples():
    """Every line of code in INTEGRATION.md's Go blocks is in docs/integration/example_test.go,
    which `go test ./...` compiles and runs: the snippets cannot drift from working code."""
    doc = (REPO / "docs" / "INTEGRATION.md").read_text()
    source = {line.strip() for line in (REPO / "docs" / "integration" / "example_test.go").read_text().splitlines()}
    blocks = GO_BLOCK_RE.findall(doc)
    assert len(blocks) >= 6
    for block in blocks:
        for line in block.splitlines():
            code = line.strip()
            if code and not code.startswith("//"):
                assert code in source, f"INTEGRATION.md shows a line example_test.go lacks: {code}"


PYTEST_BLOCK_RE = re.compile(r"^<!-- runnable-pytest -->\n```python\n(.*?)^```", re.M | re.S)


def test_integration_pytest_example_runs(tmp_path):
    """The pytest module of docs/INTEGRATION.md §3, as it is, against bin/http-oauth2-mock-server."""
    blocks = PYTEST_BLOCK_RE.findall((REPO / "docs" / "INTEGRATION.md").read_text())
    assert len(blocks) == 1, "INTEGRATION.md has one runnable pytest module"
    module = tmp_path / "test_integration_example.py"
    module.write_text(blocks[0])
    env = harness.child_env({"MOCK_AS_BINARY": str(built_binaries() / harness.AUTH_BINARY)})
    proc = subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(module)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert re.search(r"\b4 passed\b", proc.stdout), proc.stdout[-2000:]


VALUE_FLAGS = {"--mode", "--server", "--client-id", "--redirect-uri", "--scope", "--login-hint", "--token-file",
               "--timeout", "--config", "--target"}


def client_command(line: str) -> str | None:
    """The subcommand of a `go run ./cmd/http-oauth2-client [flags] <command>` line, if any."""
    words = line.split("#", 1)[0].split()
    if "./cmd/http-oauth2-client" not in words:
        return None
    rest = words[words.index("./cmd/http-oauth2-client") + 1:]
    i = 0
    while i < len(rest) and rest[i].startswith("-"):
        i += 2 if rest[i] in VALUE_FLAGS else 1
    return rest[i] if i < len(rest) else "demo"


def _start_go_run(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(["go", "run", *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop_group(proc: subprocess.Popen) -> None:
    """`go run` does not pass signals on reliably: stop its whole process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def test_readme_three_terminals_with_the_shipped_configs(tmp_path):
    """The three `go run` lines of "Three terminals", with the shipped TOMLs from config/, on free
    ports (listen address and URL moved together through the environment, as the README's
    Configuration section says) and the client headless (the README's line opens a browser)."""
    text = README.read_text()
    block = next(b for b in CODE_BLOCK_RE.findall(text) if "# terminal 1:" in b)
    lines = [line.split("#", 1)[0].split() for line in block.strip().splitlines()]
    assert [words[:3] for words in lines] == [
        ["go", "run", "./cmd/http-oauth2-mock-server"], ["go", "run", "./cmd/http-mcp-mock-server"],
        ["go", "run", "./cmd/http-oauth2-client"]], lines
    auth_port, mcp_port = two_free_ports()
    issuer, resource = f"http://localhost:{auth_port}", f"http://localhost:{mcp_port}/mcp"
    gocache = subprocess.run(["go", "env", "GOCACHE"], capture_output=True, text=True, timeout=30).stdout.strip()
    # A private cache directory for the client's tokens; the Go build cache stays the usual one.
    base = harness.child_env({"XDG_CACHE_HOME": str(tmp_path / "cache"), "GOCACHE": gocache})
    auth = _start_go_run(lines[0][2:], {**base, "AUTH_SERVER_LISTEN": f"127.0.0.1:{auth_port}",
                                         "AUTH_SERVER_ISSUER": issuer}, tmp_path / "auth.log")
    mcp = _start_go_run(lines[1][2:], {**base, "MCP_SERVER_LISTEN": f"127.0.0.1:{mcp_port}",
                                        "MCP_SERVER_RESOURCE": resource, "MCP_AUTH_ISSUER": issuer,
                                        "MCP_AUDIT_FILE": str(tmp_path / "audit.jsonl")}, tmp_path / "mcp.log")
    try:
        for proc, url, log in ((auth, f"http://127.0.0.1:{auth_port}/healthz", "auth.log"),
                               (mcp, f"http://127.0.0.1:{mcp_port}/readyz", "mcp.log")):
            try:  # go run compiles first: seconds with a warm build cache
                harness.bounded_wait(lambda: proc.poll() is None and harness.http_status(url) == 200, timeout=90,
                                     what=url)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{log}:\n{(tmp_path / log).read_text()[-3000:]}") from None
        client = subprocess.run(
            ["go", "run", lines[2][2], "--mode", "headless", *lines[2][3:]],
            cwd=REPO, env={**base, "CLIENT_MCP_SERVER_URL": resource}, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120,
        )
        out = client.stdout + client.stderr
        assert client.returncode == 0, out[-3000:]
        assert "the server attributes this call to: alice" in out, out[-3000:]
    finally:
        _stop_group(mcp)
        _stop_group(auth)
    assert port_free(auth_port) and port_free(mcp_port)


def test_readme_commands_outside_runnable_blocks_name_real_commands():
    """`go run ./cmd/X`, `make T` and client subcommands in any README block exist."""
    text = README.read_text()
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.M))
    client_commands = {"demo", "login", "logout", "status", "token", "tools", "call", "resources", "read",
                       "prompts", "probe", "conformance"}
    for block in CODE_BLOCK_RE.findall(text):
        for name in re.findall(r"go run \./cmd/([a-z0-9-]+)", block):
            assert (REPO / "cmd" / name).is_dir(), f"README runs ./cmd/{name}, which does not exist"
        for target in re.findall(r"(?:^|[\s;&|(])make ([a-z][a-z0-9-]*)", block):
            assert target in targets, f"README runs make {target}, which the Makefile lacks"
        for line in block.splitlines():
            command = client_command(line)
            if command is not None:
                assert command in client_commands, f"README uses client command {command!r}: {line}"
    assert (REPO / "docs/examples/README.md").exists() and "docs/examples/README.md" in text


TROUBLESHOOTING_MESSAGES = [
    # what README's Troubleshooting quotes, as the code prints it
    "is already in use", "no PEM block found", "authorization server keys not available yet; retrying",
    "token not valid yet", "token expired", "token issued in the future", "token not issued for this resource",
    "wrong issuer", "this call needs", "not an access token (typ must be at+jwt)",
]


def test_troubleshooting_quotes_real_messages():
    text = README.read_text()
    section = " ".join(text[text.index("## Troubleshooting"):].split())  # lines wrap inside quotes
    sources = "\n".join(p.read_text() for d in ("pkg", "cmd") for p in (REPO / d).rglob("*.go")
                        if not p.name.endswith("_test.go"))
    sources += (REPO / "scripts" / "demo.sh").read_text()
    for message in TROUBLESHOOTING_MESSAGES:
        assert message in section, f"Troubleshooting no longer quotes {message!r}"
        assert message in sources, f"no code prints {message!r} any more: update README's Troubleshooting"


# ---------------------------------------------------------------------------------------------
# 3. links, code references and test names in the docs

LINK_RE = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_REF_RE = re.compile(r"\]\(([^)\s]+\.go)\)\s+`([^`]+)`")


def markdown_files() -> list[Path]:
    files = [README] + sorted((REPO / "docs").rglob("*.md"))
    return [f for f in files if "node_modules" not in f.parts]


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation (backticks too) dropped, spaces to hyphens."""
    s = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return s.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    text = CODE_BLOCK_RE.sub("", md.read_text())
    seen: dict[str, int] = {}
    out = set()
    for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M):
        base = slug(h)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def strip_code(text: str) -> str:
    """The Markdown without fenced blocks (links inside code are not links)."""
    return CODE_BLOCK_RE.sub("", text)


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_markdown_links_resolve(md: Path):
    bad = []
    for target in LINK_RE.findall(strip_code(md.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = (md.parent / path_part).resolve() if path_part else md
        if not dest.exists():
            bad.append(f"{target}: no such file")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
    assert not bad, f"{md.relative_to(REPO)}: broken links:\n" + "\n".join(bad)


def declared(go_file: Path, name: str) -> bool:
    """Whether go_file declares the function, method, type, const or var `name`."""
    src = go_file.read_text()
    return bool(re.search(
        rf"^func (?:\([^)]*\) )?{re.escape(name)}\b|^type {re.escape(name)}\b|^\t{re.escape(name)}\b.*=|"
        rf"^(?:const|var) {re.escape(name)}\b|^\t{re.escape(name)}\s+\S",
        src, re.M,
    ))


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_linked_go_names_exist(md: Path):
    """"[`pkg/x/y.go`](../pkg/x/y.go) `(*Server).name`" must name something y.go declares."""
    bad = []
    for target, ref in CODE_REF_RE.findall(strip_code(md.read_text())):
        go_file = (md.parent / target.partition("#")[0]).resolve()
        if not go_file.exists():
            continue  # reported by test_markdown_links_resolve
        for part in re.split(r",\s*", ref):
            name = re.sub(r"\(.*$", "", part.split(".")[-1]) if "." in part else re.sub(r"\(.*$", "", part)
            if re.fullmatch(r"[A-Za-z_]\w*", name) and not declared(go_file, name):
                bad.append(f"{target} does not declare {name} ({ref})")
    assert not bad, f"{md.relative_to(REPO)}:\n" + "\n".join(bad)


MERMAID_RE = re.compile(r"^```mermaid\n(.*?)^```", re.M | re.S)


def test_flow_diagrams_avoid_mermaid_pitfalls():
    """The sequence diagrams of OAUTH2_FLOW.md were checked to render with mermaid 11 in Chromium;
    this keeps out what broke them then: `;` and `#` end or escape a statement in message text,
    and a message between participants that were never declared."""
    blocks = MERMAID_RE.findall((REPO / "docs" / "OAUTH2_FLOW.md").read_text())
    assert len(blocks) >= 8, "discovery, registration, authorization, token, MCP calls, refresh, step-up, revocation"
    for block in blocks:
        lines = block.strip().splitlines()
        assert lines[0].strip() == "sequenceDiagram", lines[0]
        declared_ids = set(re.findall(r"^\s*participant (\w+)", block, re.M))
        for line in lines[1:]:
            assert ";" not in line and "#" not in line, f"mermaid pitfall in: {line}"
            m = re.match(r"\s*(\w+)\s*-[->x)]+\s*(\w+)\s*:", line)
            if m:
                assert {m.group(1), m.group(2)} <= declared_ids, f"undeclared participant in: {line}"


def test_security_doc_names_only_existing_tests():
    doc = (REPO / "docs" / "SECURITY.md").read_text()
    py_sources = "\n".join(p.read_text() for p in (REPO / "tests").glob("test_*.py"))
    go_sources = "\n".join(p.read_text() for p in (REPO / "pkg").rglob("*_test.go"))
    names = set(re.findall(r"`(test_\w+|Test\w+|Fuzz\w+|Benchmark\w+)`", doc))
    assert len(names) >= 20, "SECURITY.md names the tests that prove each defence"
    missing = sorted(
        n for n in names
        if not re.search(rf"def {n}\b" if n.startswith("test_") else rf"func {n}\b",
                         py_sources if n.startswith("test_") else go_sources)
    )
    assert not missing, f"SECURITY.md names tests that do not exist: {missing}"
