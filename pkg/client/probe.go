package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// ProbeStep is one checked step of `probe`.
type ProbeStep struct {
	Name   string `json:"name"`
	Status string `json:"status"` // pass, fail, skip
	Detail string `json:"detail"`
}

// probe steps, in order.
var probeSteps = []string{
	"401 challenge", "protected resource metadata", "authorization server metadata",
	"PKCE S256 advertised", "client registration", "authorization", "token", "authenticated initialize",
}

type probeReport struct {
	mu    sync.Mutex
	steps map[string]*ProbeStep
}

func (r *probeReport) set(name, status, detail string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps[name] = &ProbeStep{Name: name, Status: status, Detail: detail}
}

func (r *probeReport) list() []ProbeStep {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ProbeStep, 0, len(probeSteps))
	for _, n := range probeSteps {
		if s, ok := r.steps[n]; ok {
			out = append(out, *s)
		} else {
			out = append(out, ProbeStep{Name: n, Status: "skip", Detail: "not reached"})
		}
	}
	return out
}

// cmdProbe checks any MCP server's authorization set-up step by step and
// exits non-zero when a step fails. It never reads or writes the token
// cache: every run registers (or uses the configured client) and logs in
// afresh, so what it reports is what a new client would see.
func (a *App) cmdProbe(ctx context.Context) error {
	target := a.target
	if target == "" && len(a.args) == 1 {
		target = a.args[0]
	}
	if target == "" {
		target = a.cfg.MCP.ServerURL
	}
	if err := checkHTTPURL(target); err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*a.opTimeout())
	defer cancel()
	r := &probeReport{steps: map[string]*ProbeStep{}}
	a.runProbe(ctx, target, r)
	steps := r.list()
	failed := slices.ContainsFunc(steps, func(s ProbeStep) bool { return s.Status == "fail" })
	err := a.emit(map[string]any{"target": target, "ok": !failed, "steps": steps}, func(w io.Writer) {
		fmt.Fprintf(w, "probe %s\n", target)
		for _, s := range steps {
			fmt.Fprintf(w, "%-4s  %-30s %s\n", strings.ToUpper(s.Status), s.Name, s.Detail)
		}
	})
	if err != nil {
		return err
	}
	if failed {
		first := steps[slices.IndexFunc(steps, func(s ProbeStep) bool { return s.Status == "fail" })]
		return fmt.Errorf("step %q failed: %s", first.Name, first.Detail)
	}
	return nil
}

func (a *App) runProbe(ctx context.Context, target string, r *probeReport) {
	ch, err := FetchChallenge(ctx, a.oauthClient, target)
	if err != nil {
		r.set("401 challenge", "fail", err.Error())
		return
	}
	if ch.Status != http.StatusUnauthorized {
		r.set("401 challenge", "fail", fmt.Sprintf("unauthenticated initialize answered HTTP %d, want 401", ch.Status))
		return
	}
	if ch.Param("resource_metadata") == "" && !hasBearer(ch) {
		r.set("401 challenge", "fail", "401 without a Bearer WWW-Authenticate challenge")
		return
	}
	detail := "401 with Bearer challenge"
	if u := ch.ResourceMetadataURL(); u != "" {
		detail += ", resource_metadata=" + u
	} else {
		detail += " (no resource_metadata: well-known fallback)"
	}
	r.set("401 challenge", "pass", detail)

	disc, err := Discover(ctx, a.oauthClient, target, ch)
	if !a.probeDiscovery(r, disc, err) {
		return
	}
	a.probeLogin(ctx, target, disc, r)
}

func hasBearer(ch *Challenge) bool {
	return slices.ContainsFunc(ch.Challenges, func(c oauthex.Challenge) bool { return c.Scheme == "bearer" })
}

// probeDiscovery records the metadata steps; false when the probe stops.
func (a *App) probeDiscovery(r *probeReport, disc *Discovery, err error) bool {
	if err != nil {
		switch {
		case strings.Contains(err.Error(), ErrNoS256.Error()):
			r.set("protected resource metadata", "pass", "found")
			r.set("authorization server metadata", "pass", "found")
			r.set("PKCE S256 advertised", "fail", err.Error())
		case strings.Contains(err.Error(), "protected resource metadata"):
			r.set("protected resource metadata", "fail", err.Error())
		default:
			r.set("protected resource metadata", "pass", "found")
			r.set("authorization server metadata", "fail", err.Error())
		}
		return false
	}
	if disc.PRMURL == "" {
		r.set("protected resource metadata", "fail", "not found at: "+strings.Join(disc.PRMTried, "; "))
		return false
	}
	r.set("protected resource metadata", "pass", fmt.Sprintf("%s: resource %s, authorization_servers %s",
		disc.PRMURL, disc.PRM.Resource, strings.Join(disc.PRM.AuthorizationServers, " ")))
	if disc.ASMFallback {
		r.set("authorization server metadata", "fail", "no RFC 8414 / OIDC metadata for "+disc.ASM.Issuer)
		return false
	}
	r.set("authorization server metadata", "pass", "issuer "+disc.ASM.Issuer)
	r.set("PKCE S256 advertised", "pass", "code_challenge_methods_supported: "+strings.Join(disc.ASM.CodeChallengeMethodsSupported, " "))
	return true
}

// probeLogin runs the real flow (in memory) and maps its events to steps.
func (a *App) probeLogin(ctx context.Context, target string, disc *Discovery, r *probeReport) {
	reached := map[string]bool{}
	events := func(e Event) {
		switch e.Step {
		case "registration":
			reached["client registration"] = true
			r.set("client registration", "pass", e.Detail)
		case "authorization":
			reached["client registration"] = true
			if _, ok := r.steps["client registration"]; !ok {
				r.set("client registration", "pass", "client ID metadata document or preregistered client")
			}
		case "code":
			reached["authorization"] = true
			r.set("authorization", "pass", e.Detail)
		}
	}
	if a.cfg.OAuth.ClientID == "" && disc.ASM.RegistrationEndpoint == "" && a.cfg.OAuth.ClientIDMetadataURL == "" {
		r.set("client registration", "fail", "the AS has no registration_endpoint (RFC 7591) and no client id is configured")
		return
	}
	h, err := a.handler(target, NewCache(""), events)
	if err != nil {
		r.set("client registration", "fail", err.Error())
		return
	}
	if err := h.Login(ctx); err != nil {
		step := "client registration"
		msg := err.Error()
		if reached["authorization"] && !strings.Contains(msg, "state mismatch") && !strings.Contains(msg, "issuer") {
			step = "token"
		} else if reached["authorization"] {
			step = "authorization"
		} else if reached["client registration"] {
			step = "authorization"
		}
		r.set(step, "fail", err.Error())
		return
	}
	tok := h.Current().Current()
	claims := DecodeClaims(tok.AccessToken)
	detail := "access token " + Fingerprint(tok.AccessToken)
	if aud := claimString(claims, "aud"); aud != "" {
		detail += ", aud " + aud
	}
	if tok.RefreshToken != "" {
		detail += ", refresh token issued"
	}
	r.set("token", "pass", detail)
	s, err := a.connect(ctx, h, nil, false)
	if err != nil {
		r.set("authenticated initialize", "fail", err.Error())
		return
	}
	defer s.Close()
	detail = "session established"
	if ir := s.InitializeResult(); ir != nil && ir.ServerInfo != nil {
		detail = fmt.Sprintf("server %s %s, protocol %s", ir.ServerInfo.Name, ir.ServerInfo.Version, ir.ProtocolVersion)
	}
	r.set("authenticated initialize", "pass", detail)
}
