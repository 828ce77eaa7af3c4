package mcpserver

// This file implements OAuth 2.0 Protected Resource Metadata. See RFC 9728.
// The document is served at the root well-known URL and at the
// path-inserted one for the MCP endpoint (§3.1), and its URL is what every
// WWW-Authenticate challenge points to (§5.1).

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

const wellKnownProtectedResource = "/.well-known/oauth-protected-resource"

// resourceName is the human-readable resource_name (§2, RECOMMENDED).
const resourceName = "MCP OAuth2 mock server"

// protectedResourceMetadata builds the document. offline_access is never in
// scopes_supported: refresh tokens are the authorization server's concern,
// not this resource's (MCP authorization, 2026-07-28).
func protectedResourceMetadata(resource, issuer string, scopes []string) *oauthex.ProtectedResourceMetadata {
	return &oauthex.ProtectedResourceMetadata{
		Resource:               resource,
		AuthorizationServers:   []string{issuer},
		ScopesSupported:        scopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           resourceName,
	}
}

// resourceMetadataURL is the path-inserted metadata URL of resource (§3.1):
// https://host/mcp -> https://host/.well-known/oauth-protected-resource/mcp.
func resourceMetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return "", fmt.Errorf("parse server.resource %q: %w", resource, err)
	}
	u.Path = wellKnownProtectedResource + strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String(), nil
}

// resourceMetadataPaths are the local paths the document is served at: the
// root one, the one for /mcp, and the one for the configured resource's path
// (when a proxy maps a different public path to /mcp).
func resourceMetadataPaths(resource string) []string {
	paths := []string{wellKnownProtectedResource, wellKnownProtectedResource + "/mcp"}
	if u, err := url.Parse(resource); err == nil {
		p := wellKnownProtectedResource + strings.TrimSuffix(u.Path, "/")
		if p != paths[0] && p != paths[1] {
			paths = append(paths, p)
		}
	}
	return paths
}
