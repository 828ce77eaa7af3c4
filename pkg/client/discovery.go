package client

// This file finds out how an MCP server is protected: the 401 challenge
// (RFC 6750 §3, RFC 9728 §5.1), the protected resource metadata (RFC 9728)
// and the authorization server metadata (RFC 8414 / OIDC Discovery). The
// SDK's handler does the same discovery again when it authorizes; this copy
// exists so the client can key its token cache by issuer, refuse an AS
// without S256 before any login, and show each step (demo, probe).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// ErrNoS256 is returned for an authorization server whose metadata does not
// list S256 in code_challenge_methods_supported (MCP authorization: PKCE
// S256 is mandatory; "plain" gives no protection against code interception).
var ErrNoS256 = errors.New("authorization server does not advertise PKCE S256 in code_challenge_methods_supported")

// Challenge is the server's answer to an unauthenticated request.
type Challenge struct {
	Status     int
	Header     http.Header
	Challenges []oauthex.Challenge
	// Request is the request that was answered (the SDK handler needs it).
	Request *http.Request
}

// ResourceMetadataURL is the header's resource_metadata parameter, if any.
func (c *Challenge) ResourceMetadataURL() string {
	for _, ch := range c.Challenges {
		if u := ch.Params["resource_metadata"]; u != "" {
			return u
		}
	}
	return ""
}

// Param returns a parameter of the Bearer challenge.
func (c *Challenge) Param(name string) string {
	for _, ch := range c.Challenges {
		if ch.Scheme == "bearer" {
			return ch.Params[name]
		}
	}
	return ""
}

// initializeProbe is a minimal MCP initialize request, sent without a token
// to provoke the 401 challenge.
const initializeProbe = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"http-oauth2-client","version":"probe"}}}`

// FetchChallenge sends an unauthenticated MCP initialize to serverURL.
func FetchChallenge(ctx context.Context, client *http.Client, serverURL string) (*Challenge, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, serverURL, bytes.NewReader([]byte(initializeProbe)))
	if err != nil {
		return nil, fmt.Errorf("build request to %s: %w", serverURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("MCP server unreachable: %w", err)
	}
	drain(resp)
	chs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil {
		return nil, fmt.Errorf("malformed WWW-Authenticate header: %w", err)
	}
	return &Challenge{Status: resp.StatusCode, Header: resp.Header, Challenges: chs, Request: req}, nil
}

// Discovery is what the client learned about the server's authorization.
type Discovery struct {
	// PRMURL is where the protected resource metadata was found ("" when
	// none was, and the 2025-03-26 fallback applies).
	PRMURL string
	PRM    *oauthex.ProtectedResourceMetadata
	// PRMTried lists the metadata URLs tried and why each failed.
	PRMTried []string
	// ASM is the authorization server metadata.
	ASM *oauthex.AuthServerMeta
	// ASMFallback is set when the AS publishes no metadata and the
	// 2025-03-26 default endpoints are used.
	ASMFallback bool
}

// Issuer is the authorization server's issuer.
func (d *Discovery) Issuer() string { return d.ASM.Issuer }

// Resource is the protected resource identifier (RFC 8707 resource).
func (d *Discovery) Resource() string { return d.PRM.Resource }

// Discover finds the protected resource metadata and the authorization
// server metadata, in the order the MCP authorization spec gives: the
// challenge's resource_metadata, then the path-inserted well-known URL, then
// the root one. It returns ErrNoS256 (wrapped) for an AS without S256.
func Discover(ctx context.Context, client *http.Client, serverURL string, ch *Challenge) (*Discovery, error) {
	d := &Discovery{}
	headerURL := ""
	if ch != nil {
		headerURL = ch.ResourceMetadataURL()
	}
	var mismatch error
	for _, cand := range prmCandidates(headerURL, serverURL) {
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, cand.url, cand.resource, client)
		if err != nil || prm == nil {
			d.PRMTried = append(d.PRMTried, fmt.Sprintf("%s: %v", cand.url, err))
			if err != nil && strings.Contains(err.Error(), "got metadata resource") && cand.resource == serverURL && mismatch == nil {
				mismatch = fmt.Errorf("protected resource metadata %s is for another resource (RFC 9728 §3.3: it must name %s): %w", cand.url, serverURL, err)
			}
			continue
		}
		if len(prm.AuthorizationServers) == 0 {
			return nil, fmt.Errorf("protected resource metadata %s lists no authorization_servers", cand.url)
		}
		d.PRMURL, d.PRM = cand.url, prm
		break
	}
	if d.PRM == nil && mismatch != nil {
		// Metadata exists but describes another resource: a token obtained
		// for it must not be sent here (and vice versa), so stop rather
		// than fall back to the pre-metadata rules.
		return nil, mismatch
	}
	if d.PRM == nil && headerURL != "" {
		// A server that names its resource metadata in the challenge
		// speaks 2025-06-18 or later: the 2025-03-26 fallback below would
		// send the login to the MCP server's origin instead of its AS.
		return nil, fmt.Errorf("protected resource metadata %s (named by the 401 challenge) not found: tried %s", headerURL, strings.Join(d.PRMTried, "; "))
	}
	if d.PRM == nil {
		// 2025-03-26 fallback: the MCP server's origin is the AS.
		u, err := url.Parse(serverURL)
		if err != nil {
			return nil, fmt.Errorf("parse MCP server URL: %w", err)
		}
		u.Path, u.RawQuery = "", ""
		d.PRM = &oauthex.ProtectedResourceMetadata{Resource: serverURL, AuthorizationServers: []string{u.String()}}
	}
	issuer := d.PRM.AuthorizationServers[0]
	asm, err := auth.GetAuthServerMetadata(ctx, issuer, client)
	if err != nil {
		return nil, fmt.Errorf("authorization server metadata for %s: %w", issuer, err)
	}
	if asm == nil && d.PRMURL != "" {
		// RFC 9728 names the AS: it must publish RFC 8414 metadata (the
		// default endpoints are only for 2025-03-26 servers).
		return nil, fmt.Errorf("authorization server metadata for %s: not found (RFC 8414), it is not an authorization server", issuer)
	}
	if asm == nil {
		d.ASMFallback = true
		asm = &oauthex.AuthServerMeta{Issuer: issuer, AuthorizationEndpoint: issuer + "/authorize",
			TokenEndpoint: issuer + "/token", RegistrationEndpoint: issuer + "/register"}
	} else if !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
		return nil, fmt.Errorf("%s: %w (advertised: %s)", asm.Issuer, ErrNoS256, strings.Join(asm.CodeChallengeMethodsSupported, ","))
	} else if asm.AuthorizationEndpoint == "" || asm.TokenEndpoint == "" {
		return nil, fmt.Errorf("authorization server metadata for %s lacks authorization_endpoint or token_endpoint (RFC 8414 §2)", issuer)
	}
	d.ASM = asm
	return d, nil
}

type prmCandidate struct{ url, resource string }

// prmCandidates mirrors the SDK's order (and its resource check: the root
// document describes the origin).
func prmCandidates(headerURL, serverURL string) []prmCandidate {
	var out []prmCandidate
	if headerURL != "" {
		out = append(out, prmCandidate{headerURL, serverURL})
	}
	ru, err := url.Parse(serverURL)
	if err != nil {
		return out
	}
	mu := *ru
	mu.RawQuery = ""
	mu.Path = "/.well-known/oauth-protected-resource/" + strings.TrimLeft(ru.Path, "/")
	out = append(out, prmCandidate{mu.String(), serverURL})
	mu.Path = "/.well-known/oauth-protected-resource"
	root := *ru
	root.Path, root.RawQuery = "", ""
	return append(out, prmCandidate{mu.String(), root.String()})
}
