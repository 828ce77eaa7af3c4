"""The login and consent page in a real browser (issue 5, "A real browser").

Starts the authorization server with `mock.auto_approve = false` (so /authorize shows its login and
consent page) and the MCP server that trusts it, both on free 127.0.0.1 ports with private configs.
Runs `http-oauth2-client login --mode loopback` with a redirect URI on another free loopback port
(the shipped public client registers http://127.0.0.1:3001/callback; RFC 8252 §7.3 lets a loopback
redirect differ in port), reads the authorization URL the client prints, and drives the page in the
system's headless Chromium through playwright-core (tests/browser/consent.mjs; npm, no browser
download). Checked: picking bob and approving ends the client's login and `call whoami` answers as
bob; Deny ends the client with access_denied and exit 1; the form carries a CSRF token, and a
submission whose token was changed, or that arrives without the CSRF cookie, is refused and no code
is issued. Screenshots go to tests/.output/<test name>/ (git-ignored).

Chromium is installed with apt-get when missing (bounded); the tests skip, saying why, only when
that is impossible. Every wait and every child process is bounded in time.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import harness

REPO = harness.REPO_ROOT
DRIVER_DIR = REPO / "tests" / "browser"
DRIVER = DRIVER_DIR / "consent.mjs"
OUTPUT = REPO / "tests" / ".output"

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
APT_UPDATE_TIMEOUT = 300  # seconds
APT_INSTALL_TIMEOUT = 900  # seconds: Chromium and its libraries are a large download
NPM_TIMEOUT = 300  # seconds for `npm ci`
BROWSER_TIMEOUT = 120  # seconds for one run of the driver (browser start included)
STEP_TIMEOUT_MS = 30_000  # each browser step
URL_TIMEOUT = 60  # seconds for the client to print the authorization URL
CLIENT_TIMEOUT = 60  # seconds for the client to finish once the browser is done
LOGIN_TIMEOUT = "90s"  # the client's own loopback listener timeout (longer than our waits)

# The client prints the URL indented on the line after "Open this URL to log in".
AUTH_URL_LINE = re.compile(r"^\s+(http://127\.0\.0\.1:\d+/authorize\?\S+)\s*$")
JWT_SHAPE = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,}")


# ---------------------------------------------------------------------------------------------
# the browser and its driver


def _find_chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def _install_chromium() -> str:
    """apt-get install chromium (bounded); returns why it failed, or '' on success."""
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    sudo: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo") or subprocess.run(["sudo", "-n", "true"], capture_output=True, timeout=10).returncode:
            return "not root and no password-less sudo"
        sudo = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    steps = (
        (sudo + ["apt-get", "update", "-qq"], APT_UPDATE_TIMEOUT),
        (sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "chromium-driver"],
         APT_INSTALL_TIMEOUT),
    )
    for cmd, timeout in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(cmd)}` did not finish in {timeout}s"
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()[-500:]}"
    return ""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system Chromium, installed from Debian when missing."""
    path = _find_chromium()
    if path:
        return path
    why = _install_chromium()
    path = _find_chromium()
    if not path:
        pytest.skip(f"Chromium is not installed and could not be installed ({why or 'no chromium binary after install'}): "
                    "the real-browser tests of the consent page cannot run")
    return path


@pytest.fixture(scope="module")
def driver(chromium: str) -> list[str]:
    """The command that runs tests/browser/consent.mjs, after `npm ci` when needed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm are not installed: playwright-core cannot drive Chromium")
    # npm keeps a copy of the lock it installed; a different one means package-lock.json changed.
    installed = DRIVER_DIR / "node_modules" / ".package-lock.json"
    wanted = json.loads((DRIVER_DIR / "package-lock.json").read_text())["packages"]
    if not installed.exists() or json.loads(installed.read_text()).get("packages", {}).get(
        "node_modules/playwright-core", {}
    ).get("version") != wanted["node_modules/playwright-core"]["version"]:
        try:
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=DRIVER_DIR, capture_output=True,
                                  text=True, timeout=NPM_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm ci in tests/browser did not finish in {NPM_TIMEOUT}s", pytrace=False)
        if proc.returncode != 0:
            pytest.fail(f"npm ci in tests/browser failed: {proc.stderr.strip()[-1000:]}", pytrace=False)
    return [node, str(DRIVER)]


# ---------------------------------------------------------------------------------------------
# the two servers


def _auth_config(port: int, workdir: Path) -> str:
    """The harness's configuration, but with the login and consent page shown (no auto-approval)."""
    return harness.render_toml(
        {
            "server": {"listen": f"127.0.0.1:{port}", "issuer": f"http://127.0.0.1:{port}"},
            "log": {"level": "debug"},
            "keys": {"private_key_file": str(workdir / "keys" / "private_key.pem"), "algorithm": "RS256"},
            "storage": {"driver": "memory"},
            "mock": {"auto_approve": False, "default_user": "alice", "control_api": True},
        },
        {"users": harness.USERS, "clients": harness.SHIPPED_CLIENTS},
    )


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """(AuthServer, MCPServer) started for this module; the AS shows its consent page."""
    tmp = tmp_path_factory.mktemp("browser-services")
    started: list[harness.ServiceProcess] = []
    try:
        auth_dir = tmp / "auth"
        auth_dir.mkdir()
        auth_proc = harness.start_with_free_port(
            lambda port: harness.ServiceProcess(harness.AUTH_BINARY, auth_dir, _auth_config(port, auth_dir), port)
        )
        started.append(auth_proc)
        auth = harness.AuthServer(auth_proc.base_url, auth_proc)
        mcp_dir = tmp / "mcp"
        mcp_dir.mkdir()
        audit = mcp_dir / "logs" / "audit.jsonl"
        mcp_proc = harness.start_with_free_port(
            lambda port: harness.ServiceProcess(
                harness.MCP_BINARY, mcp_dir, harness.mcp_server_config(port, auth.issuer, audit), port
            )
        )
        started.append(mcp_proc)
        # /readyz turns 200 once the MCP server has loaded the JWKS from the authorization server.
        harness.bounded_wait(
            lambda: _status(mcp_proc.base_url + "/readyz") == 200,
            timeout=harness.STARTUP_TIMEOUT,
            what="MCP server /readyz",
        )
        yield auth, harness.MCPServer(mcp_proc.base_url + "/mcp", mcp_proc, audit)
    except (RuntimeError, AssertionError) as exc:
        pytest.fail(f"the servers did not start: {exc}", pytrace=False)
    finally:
        for proc in reversed(started):
            proc.stop()


def _status(url: str) -> int:
    try:
        return harness.requests.get(url, timeout=1.0).status_code
    except harness.requests.RequestException:
        return 0


# ---------------------------------------------------------------------------------------------
# the client


class LoopbackLogin:
    """`http-oauth2-client login --mode loopback` running in the background.

    stderr (where the client prints the URL and its progress) is read by a thread, line by line,
    so the test can wait for the URL with a bound while the client keeps running."""

    def __init__(self, mcp_url: str, workdir: Path, command: list[str] | None = None):
        self.workdir = workdir
        self.token_file = workdir / "tokens.json"
        self.redirect_uri = f"http://127.0.0.1:{harness.free_port()}/callback"
        self.args = [
            str(harness.ensure_binary(harness.CLIENT_BINARY)),
            "--server", mcp_url,
            "--client-id", harness.PUBLIC_CLIENT,
            "--redirect-uri", self.redirect_uri,
            "--token-file", str(self.token_file),
        ]
        # No graphical session: the client cannot open a browser and must say so, not block.
        env = harness.child_env({"CLIENT_OAUTH_LOGIN_TIMEOUT": LOGIN_TIMEOUT})
        for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"):
            env.pop(name, None)
        self.env = env
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        self.stdout = ""
        self.stdout_path = workdir / "client-stdout.txt"
        with open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.args + ["--mode", "loopback"] + (command or ["login"]),
                cwd=workdir,  # no config/client_config.toml here: built-in defaults plus our flags
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
                text=True,
            )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)
        self.lines.put(None)

    def authorization_url(self, timeout: float = URL_TIMEOUT) -> str:
        """The URL the client printed (waits at most `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        for _ in range(10_000):  # bounded: the client prints a handful of lines before the URL
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            self.stderr.append(line)
            match = AUTH_URL_LINE.match(line)
            if match:
                return match.group(1)
        self.stop()
        raise AssertionError(f"the client printed no authorization URL within {timeout}s:\n{self.output()}")

    def wait(self, timeout: float = CLIENT_TIMEOUT) -> int:
        """Wait for the client to exit; returns its exit status (killed after `timeout`)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"the client did not finish within {timeout}s:\n{self.output()}")
        self._drain()
        return self.proc.returncode

    def _drain(self) -> None:
        """Collect what the (finished) client wrote."""
        self._reader.join(timeout=5)
        self.stdout = self.stdout_path.read_text(errors="replace")
        for _ in range(10_000):
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.stderr.append(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._drain()

    def output(self) -> str:
        return f"exit {self.proc.poll()}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{''.join(self.stderr)[-3000:]}"

    def run(self, *command: str, mode: str = "headless") -> subprocess.CompletedProcess:
        """Another command with the same token cache (headless: the page would block it)."""
        return subprocess.run(self.args + ["--mode", mode, *command], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=CLIENT_TIMEOUT, stdin=subprocess.DEVNULL)


@pytest.fixture
def output_dir(request) -> Path:
    """tests/.output/<test name>/, emptied first."""
    path = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def drive(driver: list[str], chromium: str, url: str, out_dir: Path, tmp: Path, *, user: str, action: str,
          tamper: str = "") -> dict:
    """Run the browser on the consent page; returns what consent.mjs reported."""
    profile = tmp / f"chromium-profile-{action}-{tamper or 'honest'}"
    profile.mkdir()
    options = {
        "url": url, "chromium": chromium, "userDataDir": str(profile), "outDir": str(out_dir),
        "user": user, "action": action, "tamper": tamper, "timeoutMs": STEP_TIMEOUT_MS,
    }
    proc = subprocess.Popen(driver + [json.dumps(options)], cwd=DRIVER_DIR, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        stdout, stderr = proc.communicate(timeout=BROWSER_TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM first: playwright then closes the Chromium it started in its own process group,
        # which a SIGKILL of node would leave running.
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate(timeout=5)
        raise AssertionError(f"the browser driver did not finish within {BROWSER_TIMEOUT}s:\n{(stderr or '')[-2000:]}")
    assert proc.returncode == 0, f"the browser driver failed ({proc.returncode}):\n{stderr[-4000:]}"
    report = json.loads(stdout)
    (out_dir / "browser.json").write_text(json.dumps(report, indent=2))
    # The consent page renders without a refused resource (its CSP is strict) or a script error.
    complaints = [c for c in report["console"] if c["page"] == "/authorize" or c["type"] == "pageerror"]
    assert not complaints, complaints
    return report


def start_login(services, tmp_path, attempts: int = 3) -> tuple[LoopbackLogin, str]:
    """Start the loopback login and read its URL; a new redirect port when the free one was taken
    before the client could listen on it (bounded)."""
    _, mcp = services
    for attempt in range(attempts):
        login = LoopbackLogin(mcp.mcp_url, tmp_path)
        try:
            return login, login.authorization_url()
        except AssertionError:
            login.stop()
            if "address already in use" not in login.output() or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def check_consent_page(consent: dict, issuer: str, mcp_url: str) -> None:
    """What the page must show and how it must be protected, before anything is submitted."""
    assert consent["status"] == 200, consent
    assert consent["title"] == "Sign in to HTTP OAuth2 MCP client", consent["title"]
    assert "HTTP OAuth2 MCP client" in consent["text"] and harness.PUBLIC_CLIENT in consent["text"], consent["text"]
    assert "mcp:read" in consent["scopes"], consent["scopes"]
    assert mcp_url in consent["text"], "the page does not name the resource the token is for"
    # Both users are offered, the configured default is preselected: picking bob is a real choice.
    assert {"alice", "bob"} <= set(consent["users"]), consent["users"]
    assert consent["checkedUser"] == "alice", consent
    assert [b["value"] for b in consent["buttons"]] == ["approve", "deny"], consent["buttons"]
    # The form posts to the decision endpoint with the pending request and a CSRF token.
    assert consent["formMethod"].lower() == "post" and consent["formAction"] == "/authorize/decision", consent
    assert consent["hasRequestID"], consent
    assert consent["csrfLength"] and consent["csrfLength"] >= 22, f"no real CSRF token in the form: {consent}"
    cookies = [c for c in consent["cookies"] if c["name"] == "mock_as_csrf"]
    assert len(cookies) == 1, consent["cookies"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict", cookies[0]
    assert cookies[0]["valueLength"] == consent["csrfLength"], cookies[0]
    headers = consent["headers"]
    assert headers["x-frame-options"] == "DENY", headers
    assert "frame-ancestors 'none'" in (headers["content-security-policy"] or ""), headers
    assert "no-store" in (headers["cache-control"] or ""), headers
    assert issuer.startswith("http://127.0.0.1:")


def code_requests(auth: harness.AuthServer) -> tuple[int, int]:
    """(POST /token requests, authorization_code grants) the AS has seen."""
    stats = auth.control.stats()
    return int(stats.get("requests", {}).get("token", 0)), int(stats.get("grants", {}).get("authorization_code", 0))


# ---------------------------------------------------------------------------------------------
# tests


def test_approve_as_bob_then_whoami(driver, chromium, services, output_dir, tmp_path):
    auth, mcp = services
    login, url = start_login(services, tmp_path)
    try:
        report = drive(driver, chromium, url, output_dir, tmp_path, user="bob", action="approve")
        status = login.wait()
    finally:
        login.stop()
        (output_dir / "client.txt").write_text(login.output())
    check_consent_page(report["consent"], auth.issuer, mcp.mcp_url)

    result = report["result"]
    callback = login.redirect_uri
    # The AS sent the browser to our redirect URI (its port differs from the registered one: RFC
    # 8252 §7.3) with a code, the state and its issuer (RFC 9207); the client's page says done.
    assert result["origin"] + result["path"] == callback, result
    assert {"code", "state", "iss"} <= set(result["params"]) and result["error"] is None, result
    assert result["iss"] == auth.issuer, result
    assert result["documents"][0]["method"] == "POST" and result["documents"][0]["status"] in (302, 303), result
    assert result["title"] == "Logged in" and "Login complete" in result["text"], result

    assert status == 0, login.output()
    err = "".join(login.stderr)
    assert "could not open a browser" in err, f"the client should say it could not open a browser:\n{err}"
    assert not JWT_SHAPE.search(login.stdout + err), "a token was printed in clear"
    assert (output_dir / "consent.png").stat().st_size > 0 and (output_dir / "result.png").stat().st_size > 0

    # The token the browser login obtained is bob's: whoami, from the cache (headless mode would
    # fail on the consent page, so a new login cannot hide here).
    whoami = login.run("call", "whoami", "--json")
    assert whoami.returncode == 0, f"{whoami.stdout}\n{whoami.stderr}"
    subjects = harness.find_values(json.loads(whoami.stdout), "sub") + harness.find_values(
        json.loads(whoami.stdout), "subject"
    )
    assert "bob" in subjects, whoami.stdout
    assert "alice" not in whoami.stdout, whoami.stdout


def test_deny_ends_client_with_access_denied(driver, chromium, services, output_dir, tmp_path):
    auth, mcp = services
    tokens_before, codes_before = code_requests(auth)
    login, url = start_login(services, tmp_path)
    try:
        report = drive(driver, chromium, url, output_dir, tmp_path, user="bob", action="deny")
        status = login.wait()
    finally:
        login.stop()
        (output_dir / "client.txt").write_text(login.output())
    check_consent_page(report["consent"], auth.issuer, mcp.mcp_url)

    result = report["result"]
    assert result["origin"] + result["path"] == login.redirect_uri, result
    assert result["error"] == "access_denied" and "code" not in result["params"], result
    assert "state" in result["params"] and result["iss"] == auth.issuer, result
    assert result["title"] == "Login failed", result

    assert status == 1, login.output()
    error_lines = [line for line in login.stderr if line.startswith("error: ")]
    assert len(error_lines) == 1, login.output()
    assert "login denied" in error_lines[0] and "access_denied" in error_lines[0], error_lines[0]
    assert code_requests(auth) == (tokens_before, codes_before), "a denied login reached /token"
    assert not login.token_file.exists() or "access_token" not in login.token_file.read_text()


@pytest.mark.parametrize("tamper", ["token", "cookie", "cross-site"])
def test_csrf_tampered_submission_is_refused(driver, chromium, services, output_dir, tmp_path, tamper):
    """Refused by the AS with an error page, no redirect, no code, the client still waiting: a
    changed form token; a post without the CSRF cookie; and the page's own fields, token included,
    posted from another site's page (Chromium withholds the SameSite=Strict cookie)."""
    auth, mcp = services
    tokens_before, codes_before = code_requests(auth)
    login, url = start_login(services, tmp_path)
    try:
        report = drive(driver, chromium, url, output_dir, tmp_path, user="bob", action="approve", tamper=tamper)
        still_waiting = login.proc.poll() is None
    finally:
        login.stop()
        (output_dir / "client.txt").write_text(login.output())
    check_consent_page(report["consent"], auth.issuer, mcp.mcp_url)

    result = report["result"]
    assert result["origin"] == auth.base_url and result["path"] == "/authorize/decision", result
    assert [d["status"] for d in result["documents"]] == [400], result["documents"]
    assert "code" not in result["params"], result
    assert "CSRF check failed" in result["text"] and "invalid_request" in result["text"], result["text"]
    # The page must not blame the client's registration for a failed CSRF check (it once did).
    assert "not registered" not in result["text"], result["text"]
    assert still_waiting, f"the client stopped although no redirect reached it:\n{login.output()}"
    assert code_requests(auth) == (tokens_before, codes_before), "a refused submission reached /token"
