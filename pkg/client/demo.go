package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// demoStep is one step of the walk-through, for the JSON output.
type demoStep struct {
	Step    string   `json:"step"`
	Details []string `json:"details"`
}

// demo prints the walk-through as it goes (human mode) or collects it.
type demo struct {
	a     *App
	steps []*demoStep
}

func (d *demo) step(title string) {
	d.steps = append(d.steps, &demoStep{Step: title})
	if !d.a.json {
		fmt.Fprintf(d.a.out, "\n[%d] %s\n", len(d.steps), title)
	}
}

func (d *demo) line(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	cur := d.steps[len(d.steps)-1]
	cur.Details = append(cur.Details, s)
	if !d.a.json {
		fmt.Fprintln(d.a.out, "    "+s)
	}
}

// cmdDemo walks through the whole flow with clear output: discovery,
// registration, login, token, MCP initialize, tools/list, whoami, a
// resource read and a forced refresh. It always logs in afresh (reusing a
// cached dynamic registration) so every step is shown.
func (a *App) cmdDemo(ctx context.Context) error {
	d := &demo{a: a}
	err := a.runDemo(ctx, d)
	if a.json {
		if e := a.emit(map[string]any{"ok": err == nil, "steps": d.steps}, nil); e != nil {
			return e
		}
	}
	return err
}

func (a *App) runDemo(ctx context.Context, d *demo) error {
	ctx, cancel := context.WithTimeout(ctx, 2*a.opTimeout())
	defer cancel()
	server := a.cfg.MCP.ServerURL

	d.step("Discovery (RFC 9728 protected resource metadata, RFC 8414 authorization server metadata)")
	ch, err := FetchChallenge(ctx, a.oauthClient, server)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	d.line("POST %s without a token -> HTTP %d", server, ch.Status)
	if v := ch.Header.Get("WWW-Authenticate"); v != "" {
		d.line("WWW-Authenticate: %s", v)
	}
	disc, err := Discover(ctx, a.oauthClient, server, ch)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	describeDiscovery(d, disc)

	d.step("Registration (RFC 7591), login (RFC 6749 §4.1 authorization code + RFC 7636 PKCE S256, RFC 9207 iss, RFC 8707 resource), token")
	h, err := a.handler(server, a.cache, func(e Event) { d.line("%s: %s", e.Step, e.Detail) })
	if err != nil {
		return err
	}
	if err := h.Login(ctx); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	info := h.LastLogin()
	granted, _ := h.Current().Current().Extra("scope").(string)
	d.line("logged in: client %s (%s), granted scope %q", info.ClientID, info.Registration, granted)

	d.step("Token (RFC 6749 §5.1 response, RFC 9068 JWT access token; claims decoded for display only; secrets masked)")
	tok := h.Current().Current()
	sum := Summarize(TokenRecordFrom(tok, ""), a.now())
	d.line("access token:  %s (expires in %s)", sum.AccessToken, sum.ExpiresIn)
	d.line("refresh token: %s", sum.RefreshToken)
	for _, k := range []string{"iss", "sub", "aud", "scope", "client_id", "email", "jti"} {
		if v := claimString(sum.Claims, k); v != "" {
			d.line("claim %s: %s", k, v)
		}
	}

	d.step("MCP initialize (MCP Streamable HTTP transport, RFC 6750 Authorization: Bearer)")
	s, err := a.connect(ctx, h, nil, false)
	if err != nil {
		return err
	}
	defer s.Close()
	if ir := s.InitializeResult(); ir != nil && ir.ServerInfo != nil {
		d.line("server %s %s, protocol %s", ir.ServerInfo.Name, ir.ServerInfo.Version, ir.ProtocolVersion)
	}
	return a.demoSession(ctx, d, h, s)
}

func describeDiscovery(d *demo, disc *Discovery) {
	if disc.PRMURL != "" {
		d.line("protected resource metadata: %s", disc.PRMURL)
		d.line("  resource: %s", disc.PRM.Resource)
		d.line("  authorization_servers: %s", strings.Join(disc.PRM.AuthorizationServers, " "))
		d.line("  scopes_supported: %s", strings.Join(disc.PRM.ScopesSupported, " "))
	} else {
		d.line("no protected resource metadata: using the 2025-03-26 fallback (server origin is the AS)")
	}
	asm := disc.ASM
	if disc.ASMFallback {
		d.line("no authorization server metadata: default endpoints under %s", asm.Issuer)
		return
	}
	d.line("authorization server metadata: issuer %s", asm.Issuer)
	d.line("  authorization_endpoint: %s", asm.AuthorizationEndpoint)
	d.line("  token_endpoint: %s", asm.TokenEndpoint)
	d.line("  registration_endpoint: %s", orNone(asm.RegistrationEndpoint))
	d.line("  revocation_endpoint: %s", orNone(asm.RevocationEndpoint))
	d.line("  code_challenge_methods_supported: %s (S256 required: ok)", strings.Join(asm.CodeChallengeMethodsSupported, " "))
	d.line("  authorization_response_iss_parameter_supported: %v", asm.AuthorizationResponseIssParameterSupported)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func (a *App) demoSession(ctx context.Context, d *demo, h *Handler, s *mcp.ClientSession) error {
	d.step("tools/list (MCP tools; the bearer token goes with every request)")
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("tools/list: %w", err)
	}
	var names []string
	for _, t := range tools.Tools {
		names = append(names, t.Name)
	}
	d.line("%d tools: %s", len(names), strings.Join(names, ", "))

	d.step("tools/call whoami (MCP tools; the server attributes the call to the token's user)")
	if slices.Contains(names, "whoami") {
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}})
		if err != nil {
			return fmt.Errorf("tools/call whoami: %w", err)
		}
		text := contentText(res.Content)
		d.line("%s", oneLine(text))
		if who := attributedUser(text, res.StructuredContent); who != "" {
			d.line("the server attributes this call to: %s", who)
		}
	} else {
		d.line("the server has no whoami tool: skipped")
	}

	d.step("resources/read (MCP resources)")
	if err := demoRead(ctx, d, s); err != nil {
		return err
	}

	d.step("Forced refresh (RFC 6749 §6 refresh_token grant; rotation expected, OAuth 2.1 §4.3.1)")
	ts := h.Current()
	before := ts.Current()
	after, err := ts.ForceRefresh(ctx, "")
	if err != nil {
		return fmt.Errorf("refresh: %w", err)
	}
	d.line("access token:  %s -> %s", Fingerprint(before.AccessToken), Fingerprint(after.AccessToken))
	d.line("refresh token rotated: %v", before.RefreshToken != after.RefreshToken)
	if _, err := s.ListTools(ctx, nil); err != nil {
		return fmt.Errorf("tools/list with the refreshed token: %w", err)
	}
	d.line("tools/list with the new access token: ok")
	d.line("tokens cached in %s", orNone(a.cache.Path()))
	return nil
}

func demoRead(ctx context.Context, d *demo, s *mcp.ClientSession) error {
	list, err := s.ListResources(ctx, nil)
	if err != nil {
		return fmt.Errorf("resources/list: %w", err)
	}
	if len(list.Resources) == 0 {
		d.line("the server lists no resources: skipped")
		return nil
	}
	uri := list.Resources[0].URI
	for _, r := range list.Resources {
		if r.URI == "file://demo/readme.txt" {
			uri = r.URI
		}
	}
	res, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
	if err != nil {
		return fmt.Errorf("resources/read %s: %w", uri, err)
	}
	var text string
	for _, c := range res.Contents {
		text += c.Text
	}
	if text == "" {
		return errors.New("resources/read " + uri + ": empty content")
	}
	first, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	d.line("%s: %q", uri, first)
	return nil
}

// attributedUser reads subject and email from whoami's answer (structured
// content, else its JSON text).
func attributedUser(text string, structured any) string {
	var v map[string]any
	if m, ok := structured.(map[string]any); ok {
		v = m
	} else if json.Unmarshal([]byte(text), &v) != nil {
		return ""
	}
	sub := claimString(v, "subject")
	if sub == "" {
		sub = claimString(v, "sub")
	}
	if sub == "" {
		return ""
	}
	if email := claimString(v, "email"); email != "" {
		sub += " <" + email + ">"
	}
	if c := claimString(v, "client_id"); c != "" {
		sub += " via client " + c
	}
	return sub
}
