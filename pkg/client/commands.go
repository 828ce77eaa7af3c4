package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"
)

// cmdLogin authorizes now and caches the tokens.
func (a *App) cmdLogin(ctx context.Context) error {
	h, err := a.handler(a.cfg.MCP.ServerURL, a.cache, a.printEvents(a.progress()))
	if err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, a.opTimeout())
	defer cancel()
	if err := h.Login(lctx); err != nil {
		return err
	}
	if err := h.CacheError(); err != nil {
		return a.loginNotCached(lctx, h, err)
	}
	return a.printStatus(a.cache.FindByResource(a.cfg.MCP.ServerURL))
}

// loginNotCached fails a login whose tokens could not be written to the
// cache: caching them is the whole point of login, and the next command
// would find nothing. The refresh token that nobody holds now is revoked
// (RFC 7009, best effort) so that no live grant is left behind.
func (a *App) loginNotCached(ctx context.Context, h *Handler, cause error) error {
	msg := "logged in, but the tokens could not be cached: " + cause.Error()
	ts, d := h.Current(), h.Discovery()
	if ts == nil || d == nil || d.ASM == nil || d.ASM.RevocationEndpoint == "" {
		return errors.New(msg)
	}
	tok := ts.Current()
	if tok == nil || tok.RefreshToken == "" {
		return errors.New(msg)
	}
	oc := ts.Config()
	rec := &ClientRecord{ClientID: oc.ClientID, ClientSecret: oc.ClientSecret, AuthStyle: int(oc.Endpoint.AuthStyle)}
	if err := Revoke(ctx, a.oauthClient, d.ASM.RevocationEndpoint, rec, tok.RefreshToken, "refresh_token"); err != nil {
		return fmt.Errorf("%s (the unsaved refresh token could not be revoked: %w)", msg, err)
	}
	return errors.New(msg + " (the unsaved refresh token was revoked)")
}

// statusView is the JSON form of status.
type statusView struct {
	LoggedIn  bool          `json:"logged_in"`
	Server    string        `json:"server"`
	CacheFile string        `json:"cache_file,omitempty"`
	Resource  string        `json:"resource,omitempty"`
	Issuer    string        `json:"issuer,omitempty"`
	Client    *clientView   `json:"client,omitempty"`
	User      string        `json:"user,omitempty"`
	Token     *TokenSummary `json:"token,omitempty"`
}

type clientView struct {
	ClientID     string     `json:"client_id"`
	Registration string     `json:"registration"`
	RegisteredAt *time.Time `json:"registered_at,omitempty"`
}

func (a *App) cmdStatus(context.Context) error {
	return a.printStatus(a.cache.FindByResource(a.cfg.MCP.ServerURL))
}

func (a *App) printStatus(e *Entry) error {
	v := statusView{Server: a.cfg.MCP.ServerURL, CacheFile: a.cache.Path()}
	if e != nil {
		v.Resource, v.Issuer = e.Resource, e.Issuer
		if e.Client != nil {
			v.Client = &clientView{ClientID: e.Client.ClientID, Registration: e.Client.Registration}
			if !e.Client.RegisteredAt.IsZero() {
				t := e.Client.RegisteredAt.UTC()
				v.Client.RegisteredAt = &t
			}
		}
		if e.Token != nil {
			s := Summarize(e.Token, a.now())
			v.Token, v.LoggedIn = &s, true
			v.User = userOf(s.Claims)
		}
	}
	return a.emit(v, func(w io.Writer) {
		if !v.LoggedIn {
			fmt.Fprintf(w, "not logged in to %s\n", v.Server)
		}
		fmt.Fprintf(w, "server:        %s\n", v.Server)
		if v.CacheFile != "" {
			fmt.Fprintf(w, "cache file:    %s\n", v.CacheFile)
		}
		if e == nil {
			return
		}
		fmt.Fprintf(w, "resource:      %s\nissuer:        %s\n", v.Resource, v.Issuer)
		if v.Client != nil {
			fmt.Fprintf(w, "client:        %s (%s)\n", v.Client.ClientID, v.Client.Registration)
		}
		if v.Token != nil {
			printTokenSummary(w, v.User, *v.Token)
		}
	})
}

func userOf(claims map[string]any) string {
	user := claimString(claims, "sub")
	if email := claimString(claims, "email"); email != "" {
		user += " <" + email + ">"
	}
	return user
}

func printTokenSummary(w io.Writer, user string, s TokenSummary) {
	if user != "" {
		fmt.Fprintf(w, "user:          %s\n", user)
	}
	fmt.Fprintf(w, "scope:         %s\n", s.Scope)
	exp := "no expiry given"
	if s.ExpiresAt != nil {
		exp = s.ExpiresAt.Format(time.RFC3339) + " (" + s.ExpiresIn + ")"
	}
	fmt.Fprintf(w, "access token:  %s, expires %s\n", s.AccessToken, exp)
	fmt.Fprintf(w, "refresh token: %s\n", s.RefreshToken)
	if s.Claims != nil {
		for _, k := range []string{"iss", "sub", "aud", "scope", "client_id", "jti", "exp"} {
			if v := claimString(s.Claims, k); v != "" {
				fmt.Fprintf(w, "  claim %-9s %s\n", k+":", v)
			}
		}
	}
}

// cmdToken prints a valid access token (logging in or refreshing as needed).
func (a *App) cmdToken(ctx context.Context) error {
	h, err := a.handler(a.cfg.MCP.ServerURL, a.cache, a.printEvents(a.progress()))
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, a.opTimeout())
	defer cancel()
	tok, err := validToken(tctx, h)
	if err != nil {
		return err
	}
	v := map[string]any{"access_token": tok.AccessToken, "token_type": tok.Type()}
	if !tok.Expiry.IsZero() {
		v["expires_at"] = tok.Expiry.UTC()
	}
	return a.emit(v, func(w io.Writer) { fmt.Fprintln(w, tok.AccessToken) })
}

// validToken returns a usable token: the cached one, refreshed when due,
// or a new login when there is none or the refresh token is dead.
func validToken(ctx context.Context, h *Handler) (*oauth2.Token, error) {
	if ts := h.Current(); ts != nil {
		tok, err := ts.Token()
		if err == nil {
			return tok, nil
		}
		if !isInvalidGrant(err) {
			return nil, fmt.Errorf("refresh: %w", err)
		}
	}
	if err := h.Login(ctx); err != nil {
		return nil, err
	}
	return h.Current().Token()
}

// cmdLogout revokes the refresh token (RFC 7009) and forgets the cached
// tokens. The client registration (RFC 7591) stays, so the next login
// reuses it instead of registering one more client at the authorization
// server (one the server no longer knows is replaced on invalid_client); a
// logout with no tokens cached forgets the registration too, for when it
// should be made again (other scopes, another redirect).
func (a *App) cmdLogout(ctx context.Context) error {
	e := a.cache.FindByResource(a.cfg.MCP.ServerURL)
	if e == nil {
		return a.emit(map[string]any{"logged_out": false, "reason": "not logged in"}, func(w io.Writer) {
			fmt.Fprintf(w, "not logged in to %s: nothing to do\n", a.cfg.MCP.ServerURL)
		})
	}
	if e.Token == nil {
		if err := a.cache.Delete(e.Key()); err != nil {
			return fmt.Errorf("delete cache entry: %w", err)
		}
		return a.emit(map[string]any{"logged_out": false, "reason": "no tokens cached", "registration_forgotten": true}, func(w io.Writer) {
			fmt.Fprintf(w, "no tokens cached for %s: forgot the client registration\n", e.Resource)
		})
	}
	revokeErr := a.revokeEntry(ctx, e)
	if err := a.cache.Update(e.Key(), forgetTokens); err != nil {
		return fmt.Errorf("delete cached tokens: %w", err)
	}
	if revokeErr != nil {
		return fmt.Errorf("%w (local tokens deleted)", revokeErr)
	}
	return a.emit(map[string]any{"logged_out": true, "revoked": true, "issuer": e.Issuer}, func(w io.Writer) {
		fmt.Fprintf(w, "logged out of %s: refresh token revoked at %s, cached tokens deleted (client registration kept; logout again to forget it)\n", e.Resource, e.Issuer)
	})
}

// forgetTokens drops an entry's tokens and keeps its client registration;
// an entry left with neither is removed.
func forgetTokens(e *Entry) *Entry {
	if e == nil || e.Client == nil {
		return nil
	}
	e.Token = nil
	return e
}

func (a *App) revokeEntry(ctx context.Context, e *Entry) error {
	if e.Token == nil || e.Client == nil {
		return nil
	}
	endpoint := e.RevocationEndpoint
	if endpoint == "" {
		asm, err := auth.GetAuthServerMetadata(ctx, e.Issuer, a.oauthClient)
		if err != nil || asm == nil || asm.RevocationEndpoint == "" {
			return errors.New("revoke: the authorization server publishes no revocation_endpoint")
		}
		endpoint = asm.RevocationEndpoint
	}
	token, hint := e.Token.RefreshToken, "refresh_token"
	if token == "" {
		token, hint = e.Token.AccessToken, "access_token"
	}
	if err := Revoke(ctx, a.oauthClient, endpoint, e.Client, token, hint); err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	return nil
}

// withSession runs fn on a connected session and closes it.
func (a *App) withSession(ctx context.Context, fn func(context.Context, *mcp.ClientSession) error) error {
	s, _, err := a.session(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	cctx, cancel := context.WithTimeout(ctx, a.opTimeout())
	defer cancel()
	return fn(cctx, s)
}

func (a *App) cmdTools(ctx context.Context) error {
	return a.withSession(ctx, func(ctx context.Context, s *mcp.ClientSession) error {
		res, err := s.ListTools(ctx, nil)
		if err != nil {
			return fmt.Errorf("tools/list: %w", err)
		}
		return a.emit(res.Tools, func(w io.Writer) {
			for _, t := range res.Tools {
				fmt.Fprintf(w, "%-12s %s\n", t.Name, t.Description)
			}
		})
	})
}

func (a *App) cmdCall(ctx context.Context) error {
	if len(a.args) != 1 {
		return errors.New("usage: call NAME [--arg key=value]... [--json '{...}']")
	}
	name := a.args[0]
	return a.withSession(ctx, func(ctx context.Context, s *mcp.ClientSession) error {
		tools, err := s.ListTools(ctx, nil)
		if err != nil {
			return fmt.Errorf("tools/list: %w", err)
		}
		var schema any
		found := false
		for _, t := range tools.Tools {
			if t.Name == name {
				schema, found = t.InputSchema, true
			}
		}
		if !found {
			return fmt.Errorf("tool %q: not offered by the server", name)
		}
		args, err := ToolArguments(schema, a.toolArgs, a.toolJSON)
		if err != nil {
			return err
		}
		res, err := s.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil {
			return fmt.Errorf("tools/call %s: %w", name, err)
		}
		if err := a.emit(res, func(w io.Writer) { printContent(w, res.Content, res.StructuredContent) }); err != nil {
			return err
		}
		if res.IsError {
			return fmt.Errorf("tool %s reported an error: %s", name, contentText(res.Content))
		}
		return nil
	})
}

func contentText(cs []mcp.Content) string {
	var parts []string
	for _, c := range cs {
		if t, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, " ")
}

func printContent(w io.Writer, cs []mcp.Content, structured any) {
	for _, c := range cs {
		switch v := c.(type) {
		case *mcp.TextContent:
			fmt.Fprintln(w, v.Text)
		default:
			raw, _ := json.Marshal(v)
			fmt.Fprintln(w, string(raw))
		}
	}
	if len(cs) == 0 && structured != nil {
		raw, _ := json.MarshalIndent(structured, "", "  ")
		fmt.Fprintln(w, string(raw))
	}
}

func (a *App) cmdResources(ctx context.Context) error {
	return a.withSession(ctx, func(ctx context.Context, s *mcp.ClientSession) error {
		res, err := s.ListResources(ctx, nil)
		if err != nil {
			return fmt.Errorf("resources/list: %w", err)
		}
		return a.emit(res.Resources, func(w io.Writer) {
			for _, r := range res.Resources {
				fmt.Fprintf(w, "%-28s %-16s %s\n", r.URI, r.MIMEType, r.Name)
			}
		})
	})
}

func (a *App) cmdRead(ctx context.Context) error {
	if len(a.args) != 1 {
		return errors.New("usage: read URI")
	}
	return a.withSession(ctx, func(ctx context.Context, s *mcp.ClientSession) error {
		res, err := s.ReadResource(ctx, &mcp.ReadResourceParams{URI: a.args[0]})
		if err != nil {
			return fmt.Errorf("resources/read %s: %w", a.args[0], err)
		}
		return a.emit(res, func(w io.Writer) { printResource(w, res) })
	})
}

func printResource(w io.Writer, res *mcp.ReadResourceResult) {
	for _, c := range res.Contents {
		if c.Text != "" {
			fmt.Fprintln(w, strings.TrimRight(c.Text, "\n"))
		} else {
			fmt.Fprintf(w, "(%s: %d bytes of binary content)\n", c.MIMEType, len(c.Blob))
		}
	}
}

func (a *App) cmdPrompts(ctx context.Context) error {
	return a.withSession(ctx, func(ctx context.Context, s *mcp.ClientSession) error {
		res, err := s.ListPrompts(ctx, nil)
		if err != nil {
			return fmt.Errorf("prompts/list: %w", err)
		}
		return a.emit(res.Prompts, func(w io.Writer) {
			for _, p := range res.Prompts {
				var args []string
				for _, arg := range p.Arguments {
					args = append(args, arg.Name)
				}
				fmt.Fprintf(w, "%-16s %s (arguments: %s)\n", p.Name, p.Description, strings.Join(args, ", "))
			}
		})
	})
}
