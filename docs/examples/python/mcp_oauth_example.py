#!/usr/bin/env python3
"""An MCP client that logs in with OAuth 2.1, in the Python standard library alone.

It walks the MCP authorization flow one request at a time, printing each step and the
standard it follows, then lists the server's tools and calls `whoami`:

  1. POST /mcp without a token: 401 naming the resource metadata   (RFC 9728 §5.1, RFC 6750)
  2. protected resource metadata: which authorization server        (RFC 9728 §3)
  3. authorization server metadata: endpoints, PKCE methods         (RFC 8414 §3)
  4. dynamic client registration                                    (RFC 7591 §3)
  5. authorization code with PKCE S256, state and resource          (RFC 6749 §4.1, RFC 7636,
     RFC 8707, RFC 9207)
  6. token request                                                  (RFC 6749 §4.1.3)
  7. MCP over Streamable HTTP: initialize, tools/list, tools/call   (MCP 2025-11-25)

Run it against `make demo`'s servers (see ../README.md):

  python3 mcp_oauth_example.py                 # headless: the mock approves at once
  python3 mcp_oauth_example.py --browser       # log in through the browser

Secrets (codes, verifiers, tokens) are never printed in full. Exit status 0 on success,
1 with one line `error: ...` on stderr on any failure.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
import webbrowser

PROTOCOL_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "mcp_oauth_example.py", "version": "1.0.0"}
MAX_BODY = 1 << 20  # never read more than 1 MiB from a server


class ExampleError(Exception):
    """A failed step: printed as one line, exit status 1."""


def mask(secret):
    """Show enough of a secret to recognise it, never enough to use it."""
    digest = hashlib.sha256(secret.encode()).hexdigest()[:8]
    return f"{secret[:4]}…({len(secret)} chars, sha256 {digest})"


def step(title, standard):
    print(f"\n== {title}  [{standard}]")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Redirects are data in OAuth (the code arrives in one): never follow them blindly.
    def redirect_request(self, *args, **kwargs):
        return None


class HTTP:
    """Every request goes through here: one timeout, no redirects, bounded bodies."""

    def __init__(self, timeout):
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirect)

    def send(self, method, url, body=None, headers=None, shown=None):
        """Returns (status, headers, response); the caller reads the body."""
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ExampleError(f"refusing a non-HTTP URL: {url}")
        print(f"   -> {method} {shown or url}")
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            resp = self.opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as err:  # 3xx/4xx/5xx still carry headers and a body
            resp = err
        except (urllib.error.URLError, OSError) as err:
            raise ExampleError(f"{method} {url}: {getattr(err, 'reason', err)}") from None
        print(f"   <- {resp.status}")
        return resp.status, resp.headers, resp

    def json(self, method, url, body=None, headers=None, expect=(200,)):
        status, _, resp = self.send(method, url, body, headers)
        text = resp.read(MAX_BODY).decode("utf-8", "replace")
        if status not in expect:
            raise ExampleError(f"{method} {url}: HTTP {status}: {text[:300]}")
        try:
            return json.loads(text)
        except ValueError:
            raise ExampleError(f"{method} {url}: the answer is not JSON: {text[:120]!r}") from None


def parse_www_authenticate(value):
    """auth-params of a `Bearer` challenge (RFC 6750 §3): {'resource_metadata': ..., ...}."""
    if not value.lower().startswith("bearer"):
        return {}
    pairs = re.findall(r'([\w-]+)=("(?:[^"\\]|\\.)*"|[^\s,]+)', value[len("bearer"):])
    return {k.lower(): v[1:-1].replace('\\"', '"') if v.startswith('"') else v for k, v in pairs}


def well_known(base, name):
    """RFC 8414 §3.1 / RFC 9728 §3.1: insert /.well-known/<name> between host and path."""
    parts = urllib.parse.urlsplit(base)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/{name}{path}"


def first_json(http, urls, what):
    """The first of the well-known URLs that answers 200 with JSON (the discovery order)."""
    for url in urls:
        status, _, resp = http.send("GET", url)
        body = resp.read(MAX_BODY)
        if status == 200:
            return json.loads(body)
    raise ExampleError(f"no {what} at {' or '.join(urls)}")


def discover_resource(http, mcp_url):
    step("1. Call the MCP server without a token", "MCP authorization; RFC 9728 §5.1, RFC 6750 §3")
    probe = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}}).encode()
    status, headers, resp = http.send("POST", mcp_url, probe, {
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    resp.read(MAX_BODY)
    if status != 401:
        raise ExampleError(f"expected 401 from {mcp_url} without a token, got {status}")
    challenge = parse_www_authenticate(headers.get("WWW-Authenticate", ""))
    print(f"   WWW-Authenticate: {headers.get('WWW-Authenticate')}")
    # The header's resource_metadata first, else the path-inserted well-known URL, else the root one.
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(mcp_url))
    candidates = [challenge["resource_metadata"]] if "resource_metadata" in challenge else [
        well_known(mcp_url, "oauth-protected-resource"), well_known(origin, "oauth-protected-resource")]

    step("2. Protected resource metadata", "RFC 9728 §3")
    meta = first_json(http, candidates, "protected resource metadata")
    # RFC 9728 §3.3: metadata naming another resource must not be used (impersonation).
    if meta.get("resource") != mcp_url:
        raise ExampleError(f"resource metadata names {meta.get('resource')!r}, not {mcp_url!r}")
    if not meta.get("authorization_servers"):
        raise ExampleError("resource metadata lists no authorization_servers")
    print(f"   resource = {meta['resource']}")
    print(f"   authorization_servers = {meta['authorization_servers']}")
    print(f"   scopes_supported = {meta.get('scopes_supported')}")
    return meta, challenge


def discover_auth_server(http, issuer):
    step("3. Authorization server metadata", "RFC 8414 §3, OpenID Connect Discovery")
    parts = urllib.parse.urlsplit(issuer)
    urls = [well_known(issuer, "oauth-authorization-server"), well_known(issuer, "openid-configuration")]
    if parts.path.strip("/"):  # issuer with a path: OIDC's path-appended form last
        urls.append(issuer.rstrip("/") + "/.well-known/openid-configuration")
    meta = first_json(http, urls, "authorization server metadata")
    # RFC 8414 §3.3: the issuer must be the one we asked for, or the document is an impostor's.
    if meta.get("issuer") != issuer:
        raise ExampleError(f"metadata issuer {meta.get('issuer')!r} is not {issuer!r}")
    # MCP requires PKCE: without S256 advertised we cannot know the server checks it.
    if "S256" not in meta.get("code_challenge_methods_supported", []):
        raise ExampleError("the authorization server does not advertise PKCE S256; refusing it")
    for key in ("authorization_endpoint", "token_endpoint", "registration_endpoint"):
        print(f"   {key} = {meta.get(key)}")
    return meta


def register(http, as_meta, redirect_uri, scope):
    step("4. Dynamic client registration", "RFC 7591 §3")
    if not as_meta.get("registration_endpoint"):
        raise ExampleError("the authorization server offers no registration_endpoint")
    body = {"client_name": "mcp_oauth_example.py", "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
            "token_endpoint_auth_method": "none"}  # a public client: PKCE instead of a secret
    if scope:
        body["scope"] = scope
    client = http.json("POST", as_meta["registration_endpoint"], json.dumps(body).encode(),
                       {"Content-Type": "application/json"}, expect=(200, 201))
    print(f"   client_id = {client['client_id']}  (redirect_uri {redirect_uri})")
    return client["client_id"]


def pkce_pair():
    """RFC 7636 §4.1-4.2: a random verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)  # 64 chars from the unreserved set
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def wait_for_browser(server, auth_url, timeout):
    """Open the login page and wait for the redirect on the loopback listener (RFC 8252 §7.3)."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.serving = True
    print(f"   opening your browser; if it does not open, visit:\n   {auth_url}")
    # Some browsers (any $BROWSER command) block until they exit: never let that stall us.
    threading.Thread(target=webbrowser.open, args=(auth_url,), daemon=True).start()
    if not server.done.wait(timeout):
        raise ExampleError(f"no login within {timeout:.0f}s")
    return server.result


def loopback_listener(port):
    class Callback(http.server.BaseHTTPRequestHandler):
        timeout = 10  # a silent connection must not hold the listener

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path != "/callback":  # favicon and the like
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Done. You can close this tab and go back to the terminal.\n")
            self.server.result = url.query
            self.server.done.set()

        def log_message(self, *args):  # the query holds the code: keep it out of the console
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Callback)
    server.result, server.done, server.serving = None, threading.Event(), False
    return server


def authorize(http, args, as_meta, client_id, redirect_uri, scope, listener):
    step("5. Authorization request with PKCE", "RFC 6749 §4.1, RFC 7636 S256, RFC 8707, RFC 9207")
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)  # binds the answer to this request (CSRF)
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
              "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
              "resource": args.server}  # RFC 8707: the token will name this MCP server as aud
    if scope:
        params["scope"] = scope
    if args.user and not args.browser:
        params["login_hint"] = args.user
    auth_url = as_meta["authorization_endpoint"] + "?" + urllib.parse.urlencode(params)
    print(f"   code_verifier = {mask(verifier)}, code_challenge = {challenge}, state = {mask(state)}")
    if args.browser:
        query = wait_for_browser(listener, auth_url, args.login_timeout)
    else:
        # Headless: the mock approves at once and answers with a redirect; read its Location.
        shown = auth_url.replace(urllib.parse.quote(state), mask(state))
        status, headers, resp = http.send("GET", auth_url, shown=shown)
        resp.read(MAX_BODY)
        location = headers.get("Location", "")
        if status not in (302, 303) or not location.startswith(redirect_uri):
            raise ExampleError(f"/authorize answered {status} without a redirect to {redirect_uri} "
                               "(a login page? start the mock with mock.auto_approve, or use --browser)")
        query = urllib.parse.urlsplit(location).query
    answer = dict(urllib.parse.parse_qsl(query))
    # RFC 9207 §2.4: the iss parameter tells us which server answered (mix-up attacks).
    if as_meta.get("authorization_response_iss_parameter_supported") or "iss" in answer:
        if answer.get("iss") != as_meta["issuer"]:
            raise ExampleError(f"redirect iss {answer.get('iss')!r} is not {as_meta['issuer']!r}")
    if not secrets.compare_digest(answer.get("state", ""), state):
        raise ExampleError("the redirect's state does not match the one sent: refusing it")
    if "error" in answer:
        raise ExampleError(f"authorization denied: {answer['error']}: {answer.get('error_description', '')}")
    if not answer.get("code"):
        raise ExampleError("the redirect carries no code")
    print(f"   redirect: code = {mask(answer['code'])}, state matches, iss = {answer.get('iss')}")
    return answer["code"], verifier


def exchange(http, args, as_meta, client_id, redirect_uri, code, verifier):
    step("6. Token request", "RFC 6749 §4.1.3, RFC 7636 §4.5, RFC 8707 §2.2")
    form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": redirect_uri, "client_id": client_id,
                                   "code_verifier": verifier, "resource": args.server}).encode()
    token = http.json("POST", as_meta["token_endpoint"], form,
                      {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    if token.get("token_type", "").lower() != "bearer" or not token.get("access_token"):
        raise ExampleError(f"unexpected token response: token_type {token.get('token_type')!r}")
    print(f"   access_token = {mask(token['access_token'])}, expires_in = {token.get('expires_in')}, "
          f"scope = {token.get('scope')}")
    return token["access_token"]


class MCPSession:
    """Streamable HTTP (MCP 2025-11-25, Transports): JSON-RPC over POST, JSON or SSE answers."""

    def __init__(self, http, url, token):
        self.http, self.url, self.token = http, url, token
        self.session_id, self.version, self.next_id = None, None, 1

    def _post(self, message):
        headers = {"Authorization": f"Bearer {self.token}",  # on every request, never in a URL
                   "Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.version:
            headers["MCP-Protocol-Version"] = self.version
        status, resp_headers, resp = self.http.send("POST", self.url, json.dumps(message).encode(), headers)
        self.session_id = resp_headers.get("Mcp-Session-Id") or self.session_id
        return status, resp_headers, resp

    def notify(self, method):
        status, _, resp = self._post({"jsonrpc": "2.0", "method": method})
        resp.read(MAX_BODY)
        if status != 202:
            raise ExampleError(f"{method}: expected 202 Accepted, got {status}")

    def request(self, method, params):
        msg_id, self.next_id = self.next_id, self.next_id + 1
        status, headers, resp = self._post({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        if status != 200:
            raise ExampleError(f"{method}: HTTP {status}: {resp.read(300).decode('utf-8', 'replace')}")
        if headers.get_content_type() == "text/event-stream":
            reply = self._read_sse(resp, msg_id)
        else:
            reply = json.loads(resp.read(MAX_BODY))
        if "error" in reply:
            raise ExampleError(f"{method}: JSON-RPC error {reply['error']}")
        return reply["result"]

    @staticmethod
    def _read_sse(resp, msg_id):
        """Read `data:` lines event by event until the answer to msg_id arrives."""
        data, read = [], 0
        for raw in resp:
            read += len(raw)
            if read > MAX_BODY:
                break
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
            elif not line and data:  # a blank line ends an event
                message = json.loads("\n".join(data))
                data = []
                if message.get("id") == msg_id:
                    return message
        raise ExampleError(f"the event stream ended without an answer to request {msg_id}")


def call_mcp(http, url, token):
    mcp = MCPSession(http, url, token)
    step("7. MCP initialize", "MCP 2025-11-25 lifecycle, Streamable HTTP")
    init = mcp.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                      "clientInfo": CLIENT_INFO})
    mcp.version = init["protocolVersion"]
    print(f"   server = {init['serverInfo'].get('name')}, protocolVersion = {mcp.version}, "
          f"Mcp-Session-Id = {mask(mcp.session_id) if mcp.session_id else '(stateless)'}")
    mcp.notify("notifications/initialized")

    step("8. tools/list", "MCP 2025-11-25 tools")
    tools = mcp.request("tools/list", {})["tools"]
    print(f"   tools = {', '.join(t['name'] for t in tools)}")

    step("9. tools/call whoami", "MCP 2025-11-25 tools")
    result = mcp.request("tools/call", {"name": "whoami", "arguments": {}})
    text = " ".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")
    if result.get("isError"):
        raise ExampleError(f"whoami failed: {text}")
    print(f"   whoami: {text}")
    if mcp.session_id:  # be polite: end the session (the server may answer 405 if it keeps none)
        headers = {"Authorization": f"Bearer {token}", "Mcp-Session-Id": mcp.session_id}
        http.send("DELETE", url, None, headers)[2].read(MAX_BODY)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default=os.environ.get("MCP_SERVER_URL", "http://localhost:3003/mcp"),
                        help="the MCP endpoint (env MCP_SERVER_URL)")
    parser.add_argument("--auth-server", default=os.environ.get("AUTH_SERVER_URL", "http://localhost:3002"),
                        help="the authorization server the MCP server must name; empty: trust its "
                             "metadata (env AUTH_SERVER_URL)")
    parser.add_argument("--browser", action="store_true", help="log in through the browser")
    parser.add_argument("--port", type=int, default=0, help="loopback callback port for --browser (0: any)")
    parser.add_argument("--user", default="alice", help="login_hint for the headless mock (default alice)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request")
    parser.add_argument("--login-timeout", type=float, default=300.0, help="seconds to wait for --browser")
    args = parser.parse_args()

    http = HTTP(args.timeout)
    listener = None
    try:
        prm, challenge = discover_resource(http, args.server)
        issuer = prm["authorization_servers"][0]
        if args.auth_server and issuer != args.auth_server:
            raise ExampleError(f"the MCP server names {issuer!r}, not the expected {args.auth_server!r}")
        as_meta = discover_auth_server(http, issuer)
        # Scopes: the challenge's first, else all the resource advertises (MCP authorization).
        scope = challenge.get("scope") or " ".join(prm.get("scopes_supported") or [])
        if args.browser:
            listener = loopback_listener(args.port)
            redirect_uri = f"http://127.0.0.1:{listener.server_address[1]}/callback"
        else:
            redirect_uri = "http://127.0.0.1:3001/callback"  # never contacted in headless mode
        client_id = register(http, as_meta, redirect_uri, scope)
        code, verifier = authorize(http, args, as_meta, client_id, redirect_uri, scope, listener)
        token = exchange(http, args, as_meta, client_id, redirect_uri, code, verifier)
        call_mcp(http, args.server, token)
    except ExampleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # a timeout or a reset while reading an answer
        print(f"error: network: {err}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError) as err:  # a malformed answer from a server
        print(f"error: unexpected answer from a server: {err!r}", file=sys.stderr)
        return 1
    finally:
        if listener:
            if listener.serving:
                listener.shutdown()
            listener.server_close()
    print("\nDone: discovered, registered, logged in with PKCE and called whoami.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
