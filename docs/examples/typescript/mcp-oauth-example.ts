/**
 * An MCP client that logs in with OAuth 2.1, built on the TypeScript MCP SDK.
 *
 * The SDK does the protocol: on the server's 401 its `auth()` flow discovers the authorization
 * server (RFC 9728, RFC 8414), registers a client (RFC 7591), starts an authorization with PKCE
 * S256 and `resource` (RFC 7636, RFC 8707) and, once given the code, requests the token
 * (RFC 6749 §4.1.3). This file supplies what the SDK leaves to the application, an
 * `OAuthClientProvider`: where state lives, how the user is sent to the login page, and the
 * checks the SDK does not make (PKCE S256 advertised, the metadata's issuer, RFC 9207 `iss`).
 *
 *   npm ci && npm run build
 *   node dist/mcp-oauth-example.js              # headless: the mock approves at once
 *   node dist/mcp-oauth-example.js --browser    # log in through the browser
 *
 * Secrets (codes, verifiers, tokens) are never printed in full. Exit status 0 on success,
 * 1 with one line `error: ...` on stderr on any failure.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  UnauthorizedError,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
} from '@modelcontextprotocol/sdk/client/auth.js';
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from '@modelcontextprotocol/sdk/shared/auth.js';

/** A bad command line ends like every other failure: one line, exit status 1. */
function fail(message: string): never {
  console.error(`error: ${message}`);
  process.exit(1);
}

function readOptions() {
  try {
    return parseArgs({
      options: {
        server: { type: 'string', default: process.env.MCP_SERVER_URL ?? 'http://localhost:3003/mcp' },
        // The authorization server the MCP server must name; empty: trust its metadata.
        'auth-server': { type: 'string', default: process.env.AUTH_SERVER_URL ?? 'http://localhost:3002' },
        browser: { type: 'boolean', default: false },
        port: { type: 'string', default: '0' }, // loopback callback port for --browser (0: any)
        user: { type: 'string', default: 'alice' }, // login_hint for the headless mock
        timeout: { type: 'string', default: '10' }, // seconds per HTTP request
        'login-timeout': { type: 'string', default: '300' }, // seconds to wait for --browser
      },
    }).values;
  } catch (err) {
    return fail((err as Error).message);
  }
}

const opts = readOptions();
const serverUrl = URL.canParse(opts.server) ? new URL(opts.server) : fail(`--server ${opts.server} is not a URL`);
const timeoutMs = Number(opts.timeout) * 1000;
if (!(timeoutMs > 0) || !(Number(opts['login-timeout']) > 0)) fail('--timeout and --login-timeout take a number of seconds');

/** Show enough of a secret to recognise it, never enough to use it. */
function mask(secret: string): string {
  const digest = createHash('sha256').update(secret).digest('hex').slice(0, 8);
  return `${secret.slice(0, 4)}…(${secret.length} chars, sha256 ${digest})`;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The standard each request follows, printed as a heading when it changes. */
let endpoints: { registration?: string; token?: string } = {};
let lastHeading = '';
function heading(url: URL, init?: RequestInit): string {
  const path = url.pathname;
  if (path.includes('/.well-known/oauth-protected-resource')) return 'Protected resource metadata  [RFC 9728 §3]';
  if (path.includes('/.well-known/oauth-authorization-server')) return 'Authorization server metadata  [RFC 8414 §3]';
  if (path.includes('/.well-known/openid-configuration')) return 'OpenID provider metadata  [OIDC Discovery]';
  if (url.href === endpoints.registration) return 'Dynamic client registration  [RFC 7591 §3]';
  if (url.href === endpoints.token) return 'Token request with the PKCE verifier  [RFC 6749 §4.1.3, RFC 7636, RFC 8707]';
  let method = init?.method === 'GET' || !init?.method ? 'GET (server-to-client event stream)' : `${init.method} (end the session)`;
  if (typeof init?.body === 'string') method = jsonRpcMethod(init.body);
  return `MCP ${method}  [MCP 2025-11-25, Streamable HTTP]`;
}

function jsonRpcMethod(body: string): string {
  try {
    const message = JSON.parse(body) as { method?: string };
    return message.method ?? 'response';
  } catch {
    return 'POST';
  }
}

/** Every request the SDK makes goes through here: printed, and bounded in time. */
async function loggingFetch(input: string | URL, init?: RequestInit): Promise<Response> {
  const url = new URL(input);
  const method = init?.method ?? 'GET';
  const title = heading(url, init);
  // The standalone GET event stream stays open by design; the SDK aborts it on close.
  const isStream = method === 'GET' && new Headers(init?.headers).get('accept') === 'text/event-stream';
  const signals = [init?.signal, isStream ? undefined : AbortSignal.timeout(timeoutMs)];
  const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => s != null));
  const res = await fetch(url, { ...init, signal }).catch((err: Error) => {
    throw new Error(`${method} ${url.href}: ${String((err.cause as Error | undefined)?.message ?? err.message)}`);
  });
  // Printed when the answer is in, so that concurrent requests do not interleave.
  if (title !== lastHeading) console.log(`\n== ${title}`);
  lastHeading = title;
  console.log(`   ${method} ${url.href} -> ${res.status}`);
  const challenge = res.headers.get('www-authenticate');
  if (res.status === 401 && challenge) console.log(`   WWW-Authenticate: ${challenge}  [RFC 6750 §3, RFC 9728 §5.1]`);
  return res;
}

/**
 * The application's half of the SDK's OAuth flow, kept in memory for one run. A real client
 * stores client information and tokens where other users cannot read them.
 */
class ExampleProvider implements OAuthClientProvider {
  private client?: OAuthClientInformationMixed;
  private saved?: OAuthTokens;
  private verifier = '';
  private sentState = '';
  private discovery?: OAuthDiscoveryState;
  authorizationCode?: string;

  constructor(
    private readonly callbackUrl: string,
    private readonly waitForCallback?: (authUrl: URL) => Promise<URLSearchParams>,
  ) {}

  get redirectUrl(): string {
    return this.callbackUrl;
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'mcp-oauth-example.ts',
      redirect_uris: [this.callbackUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none', // a public client: PKCE instead of a secret
    };
  }

  state(): string {
    this.sentState = randomBytes(24).toString('base64url'); // binds the answer to this request (CSRF)
    return this.sentState;
  }

  discoveryState(): OAuthDiscoveryState | undefined {
    return this.discovery;
  }

  /** Called once discovery is done: print it and make the checks the SDK leaves to us. */
  saveDiscoveryState(state: OAuthDiscoveryState): void {
    if (this.discovery) return;
    const prm = state.resourceMetadata;
    const as = state.authorizationServerMetadata;
    // The SDK checks that `resource` fits the server URL; MCP wants it to name this endpoint.
    if (prm?.resource !== serverUrl.href) throw new Error(`resource metadata names ${prm?.resource}, not ${serverUrl.href}`);
    if (opts['auth-server'] && state.authorizationServerUrl !== opts['auth-server']) {
      throw new Error(`the MCP server names ${state.authorizationServerUrl}, not the expected ${opts['auth-server']}`);
    }
    if (!as) throw new Error(`no authorization server metadata for ${state.authorizationServerUrl}`);
    // RFC 8414 §3.3: a document for another issuer is an impostor's (the SDK does not check).
    if (as.issuer !== state.authorizationServerUrl) throw new Error(`metadata issuer ${as.issuer} is not ${state.authorizationServerUrl}`);
    // MCP requires PKCE: without S256 advertised we cannot know the server checks it.
    if (!as.code_challenge_methods_supported?.includes('S256')) throw new Error('the authorization server does not advertise PKCE S256; refusing it');
    console.log(`   resource = ${prm.resource}, authorization_servers = ${JSON.stringify(prm.authorization_servers)}`);
    console.log(`   issuer = ${as.issuer}, PKCE methods = ${as.code_challenge_methods_supported.join(' ')}`);
    endpoints = { registration: as.registration_endpoint, token: as.token_endpoint };
    this.discovery = state;
  }

  clientInformation(): OAuthClientInformationMixed | undefined {
    return this.client;
  }

  saveClientInformation(info: OAuthClientInformationMixed): void {
    this.client = info;
    console.log(`   client_id = ${info.client_id}  (redirect_uri ${this.callbackUrl})`);
  }

  tokens(): OAuthTokens | undefined {
    return this.saved;
  }

  saveTokens(tokens: OAuthTokens): void {
    this.saved = tokens;
    console.log(`   access_token = ${mask(tokens.access_token)}, expires_in = ${tokens.expires_in}, scope = ${tokens.scope}`);
  }

  saveCodeVerifier(verifier: string): void {
    this.verifier = verifier;
  }

  codeVerifier(): string {
    return this.verifier;
  }

  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }

  /** Send the user to the login page: headless against the mock, or through a browser. */
  async redirectToAuthorization(authUrl: URL): Promise<void> {
    console.log('\n== Authorization request with PKCE S256, state and resource  [RFC 6749 §4.1, RFC 7636, RFC 8707]');
    const q = authUrl.searchParams;
    console.log(`   code_challenge = ${q.get('code_challenge')} (S256 of verifier ${mask(this.verifier)})`);
    console.log(`   state = ${mask(this.sentState)}, resource = ${q.get('resource')}, scope = ${q.get('scope')}`);
    const answer = this.waitForCallback ? await this.waitForCallback(authUrl) : await this.headless(authUrl);
    this.checkAnswer(answer);
  }

  /** Headless: the mock approves at once and answers with a redirect; read its Location. */
  private async headless(authUrl: URL): Promise<URLSearchParams> {
    if (opts.user) authUrl.searchParams.set('login_hint', opts.user);
    const res = await fetch(authUrl, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    const location = res.headers.get('location') ?? '';
    console.log(`   GET ${authUrl.origin}${authUrl.pathname}?… -> ${res.status} (not followed: the code is in Location)`);
    if (![302, 303].includes(res.status) || !location.startsWith(this.callbackUrl)) {
      throw new Error(`/authorize answered ${res.status} without a redirect to ${this.callbackUrl} ` +
        '(a login page? start the mock with mock.auto_approve, or use --browser)');
    }
    return new URL(location).searchParams;
  }

  private checkAnswer(answer: URLSearchParams): void {
    const issuer = this.discovery?.authorizationServerMetadata?.issuer;
    const meta = this.discovery?.authorizationServerMetadata as Record<string, unknown> | undefined;
    // RFC 9207 §2.4: the iss parameter tells which server answered (mix-up attacks).
    if (meta?.authorization_response_iss_parameter_supported === true || answer.has('iss')) {
      if (answer.get('iss') !== issuer) throw new Error(`redirect iss ${answer.get('iss')} is not ${issuer}`);
    }
    if (!safeEqual(answer.get('state') ?? '', this.sentState)) throw new Error("the redirect's state does not match the one sent: refusing it");
    if (answer.has('error')) throw new Error(`authorization denied: ${answer.get('error')}: ${answer.get('error_description') ?? ''}`);
    const code = answer.get('code');
    if (!code) throw new Error('the redirect carries no code');
    console.log(`   redirect: code = ${mask(code)}, state matches, iss = ${answer.get('iss')}  [RFC 9207]`);
    this.authorizationCode = code;
  }
}

/** --browser: a one-shot listener on 127.0.0.1 (RFC 8252 §7.3) and the system browser. */
async function loopbackListener(port: number): Promise<{ server: Server; url: string; wait: (u: URL) => Promise<URLSearchParams> }> {
  let deliver: (q: URLSearchParams) => void = () => {};
  const received = new Promise<URLSearchParams>((resolve) => (deliver = resolve));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Done. You can close this tab and go back to the terminal.\n');
    deliver(url.searchParams);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  const address = server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const wait = async (authUrl: URL) => {
    console.log(`   opening your browser; if it does not open, visit:\n   ${authUrl.href}`);
    openBrowser(authUrl);
    const limit = Number(opts['login-timeout']) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no login within ${limit / 1000}s`)), limit)));
    try {
      return await Promise.race([received, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  return { server, url: `http://127.0.0.1:${actualPort}/callback`, wait };
}

function openBrowser(url: URL): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`refusing to open ${url.protocol} URL`);
  // Arguments, never a shell: a URL must not be able to run a command. $BROWSER (one program,
  // as Python's webbrowser and xdg-open read it) picks another browser.
  const [cmd, args] =
    process.env.BROWSER ? [process.env.BROWSER, [url.href]]
    : process.platform === 'darwin' ? ['open', [url.href]]
    : process.platform === 'win32' ? ['rundll32', ['url.dll,FileProtocolHandler', url.href]]
    : ['xdg-open', [url.href]];
  spawn(cmd, args, { stdio: 'ignore', detached: true }).on('error', () => {}).unref();
}

async function main(): Promise<void> {
  const listener = opts.browser ? await loopbackListener(Number(opts.port)) : undefined;
  // Headless: this redirect URI is registered but never contacted.
  const provider = new ExampleProvider(listener?.url ?? 'http://127.0.0.1:3001/callback', listener?.wait);
  const client = new Client({ name: 'mcp-oauth-example.ts', version: '1.0.0' });
  const newTransport = () => new StreamableHTTPClientTransport(serverUrl, { authProvider: provider, fetch: loggingFetch });
  let transport = newTransport();
  try {
    try {
      await client.connect(transport); // 401 → discovery, registration, authorization: the SDK's auth()
    } catch (err) {
      if (!(err instanceof UnauthorizedError) || !provider.authorizationCode) throw err;
      // The code came back: the SDK exchanges it for a token, then we connect again.
      transport = newTransport();
      await transport.finishAuth(provider.authorizationCode);
      await client.connect(transport);
    }
    const info = client.getServerVersion();
    console.log(`\n== Connected to ${info?.name} ${info?.version} with the access token  [MCP authorization]`);

    const { tools } = await client.listTools();
    console.log(`   tools = ${tools.map((t) => t.name).join(', ')}`);

    const result = await client.callTool({ name: 'whoami', arguments: {} });
    const content = (result.content ?? []) as Array<{ type: string; text?: string }>;
    const text = content.filter((c) => c.type === 'text').map((c) => c.text).join(' ');
    if (result.isError) throw new Error(`whoami failed: ${text}`);
    console.log(`   whoami: ${text}`);
    await transport.terminateSession(); // DELETE: the server can forget the session now
    console.log('\nDone: discovered, registered, logged in with PKCE and called whoami.');
  } finally {
    await client.close().catch(() => {});
    listener?.server.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => fail(err instanceof Error ? err.message : String(err)),
);
