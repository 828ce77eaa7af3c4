// Package client is the OAuth2 MCP client behind the http-oauth2-client CLI:
// the example to study for how an MCP client authenticates, following the
// MCP authorization specification.
//
// The protocol work is the MCP Go SDK's: mcp.StreamableClientTransport sends
// the requests and calls an auth.OAuthHandler on 401/403, and the SDK's
// auth.AuthorizationCodeHandler does discovery (RFC 9728, RFC 8414),
// registration (RFC 7591, client ID metadata documents), PKCE S256
// (RFC 7636), the state and RFC 9207 issuer checks, resource indicators
// (RFC 8707) and the code exchange. This package plugs in what an
// application must decide for itself:
//
//   - handler.go: the OAuthHandler wrapping the SDK's: refresh on 401 before
//     a new login, step-up on 403 insufficient_scope with a limit, reuse of a
//     cached dynamic registration and a new one on invalid_client;
//   - discovery.go: the same discovery, to key the cache by issuer, refuse an
//     AS without S256 and refuse metadata for another resource;
//   - fetchers.go: how the authorization code is obtained (loopback,
//     headless, paste);
//   - cache.go: the token cache (0600, atomic, locked);
//   - tokensource.go: refresh before expiry, one refresh for concurrent
//     callers, rotated tokens persisted;
//   - retry.go: timeouts and retries of idempotent requests;
//   - revoke.go: RFC 7009 revocation for logout;
//   - cli.go, commands.go, demo.go, probe.go, conformance.go: the commands.
package client
