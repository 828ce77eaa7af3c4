package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/config"
	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/requestid"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/pflag"
)

// Version is reported as the MCP client implementation version.
const Version = "0.1.0"

// App is one run of the CLI: configuration, output, HTTP clients, cache.
type App struct {
	cfg    Config
	json   bool
	in     io.Reader
	out    io.Writer
	errOut io.Writer
	now    func() time.Time

	oauthClient *http.Client
	mcpClient   *http.Client
	// requestID is sent as X-Request-Id on every request of this run's
	// command (requestid.go), so one command is one id in the servers' logs.
	requestID string
	cache     *Cache

	args     []string // positional arguments after the command
	toolArgs []string // --arg key=value
	toolJSON string   // --json '{…}' after call
	target   string   // probe --target

	warnMu sync.Mutex      // warnings come from concurrent requests
	warned map[string]bool // warnings already printed
}

// maxWarnings bounds the warnings remembered (and printed) by one run.
const maxWarnings = 64

// Main runs the CLI with args (without the program name) and returns the
// exit status: 0 on success, 1 with one line "error: <what>: <why>" on
// stderr otherwise.
func Main(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	app, cmd, err := newApp(args, in, out, errOut)
	if err == nil {
		err = app.run(ctx, cmd)
	}
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(errOut, "error: "+oneLine(err.Error()))
		return 1
	}
	return 0
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// splitToolJSON takes `--json {…}` (a value starting with "{") out of args:
// after `call NAME` it gives the tool's arguments, while a bare --json
// switches the output to JSON.
func splitToolJSON(args []string) (rest []string, toolJSON string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--json" && i+1 < len(args) && strings.HasPrefix(strings.TrimSpace(args[i+1]), "{"):
			toolJSON = args[i+1]
			i++
		case strings.HasPrefix(a, "--json={"):
			toolJSON = strings.TrimPrefix(a, "--json=")
		default:
			rest = append(rest, a)
		}
	}
	return rest, toolJSON
}

func newApp(rawArgs []string, in io.Reader, out, errOut io.Writer) (*App, string, error) {
	args, toolJSON := splitToolJSON(rawArgs)
	fs := pflag.NewFlagSet("http-oauth2-client", pflag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.Usage = func() { fmt.Fprint(errOut, usage); fs.PrintDefaults() }
	fs.String("config", DefaultConfigFile, "configuration file")
	fs.String("server", "", "MCP server URL (mcp.server_url)")
	fs.String("client-id", "", "preregistered client id (oauth.client_id)")
	fs.String("redirect-uri", "", "redirect URI (oauth.redirect_uri)")
	fs.String("scope", "", "scopes to request, space or comma separated (oauth.scopes)")
	fs.String("mode", "", "code fetch mode: loopback, headless or paste (oauth.mode)")
	fs.String("login-hint", "", "login_hint sent to /authorize (oauth.login_hint)")
	fs.String("token-file", "", "token cache file (cache.token_file)")
	fs.Bool("no-cache", false, "keep tokens in memory only (cache.disabled)")
	fs.Duration("timeout", 0, "per-request timeout (http.timeout)")
	jsonOut := fs.Bool("json", false, "JSON output")
	toolArgs := fs.StringArray("arg", nil, "call: tool argument key=value (repeatable)")
	target := fs.String("target", "", "probe: MCP server URL to check")
	if err := fs.Parse(args); err != nil {
		return nil, "", err
	}
	cfgFile, required := config.FileFromArgs(args, DefaultConfigFile)
	var cfg Config
	if err := config.Load(config.Options{EnvPrefix: "CLIENT", File: cfgFile, Required: required, Defaults: Defaults()}, &cfg); err != nil {
		return nil, "", fmt.Errorf("configuration: %w", err)
	}
	applyFlags(fs, &cfg)
	if cfg.Cache.TokenFile == "" {
		p, err := DefaultTokenFile()
		if err != nil {
			return nil, "", fmt.Errorf("configuration: cache.token_file: %w", err)
		}
		cfg.Cache.TokenFile = p
	}
	if err := cfg.Validate(); err != nil {
		return nil, "", fmt.Errorf("configuration: %w", err)
	}
	setupLogging(cfg, errOut)
	pos := fs.Args()
	cmd := "demo"
	if len(pos) > 0 {
		cmd, pos = pos[0], pos[1:]
	}
	app := &App{cfg: cfg, json: *jsonOut, in: in, out: out, errOut: errOut, now: time.Now,
		args: pos, toolArgs: *toolArgs, toolJSON: toolJSON, target: *target}
	app.requestID = requestid.New()
	oauthClient, mcpClient := NewHTTPClients(cfg.HTTP.Timeout, cfg.HTTP.MaxRetries)
	app.oauthClient, app.mcpClient = withRequestID(oauthClient, app.requestID), withRequestID(mcpClient, app.requestID)
	path := cfg.Cache.TokenFile
	if cfg.Cache.Disabled {
		path = ""
	}
	app.cache = NewCache(path)
	app.cache.Warn = app.warn
	return app, cmd, nil
}

const usage = `usage: http-oauth2-client [flags] <command> [args]

commands:
  demo               the whole walk-through (default)
  login              authorize and cache the tokens
  logout             revoke the refresh token (RFC 7009) and forget the tokens;
                     with no tokens cached, forget the client registration
  status             what is cached: user, scopes, expiry
  token              print a valid access token (for curl)
  tools              list the server's tools
  call NAME          call a tool: --arg key=value ... or --json '{...}'
  resources          list resources
  read URI           read a resource
  prompts            list prompts
  probe --target URL check a server's authorization set-up step by step
  conformance URL    run a scenario of the MCP conformance suite (client mode)

flags:
`

func applyFlags(fs *pflag.FlagSet, cfg *Config) {
	str := func(name string, dst *string) {
		if f := fs.Lookup(name); f != nil && f.Changed {
			*dst = f.Value.String()
		}
	}
	str("server", &cfg.MCP.ServerURL)
	str("client-id", &cfg.OAuth.ClientID)
	str("redirect-uri", &cfg.OAuth.RedirectURI)
	str("mode", &cfg.OAuth.Mode)
	str("login-hint", &cfg.OAuth.LoginHint)
	str("token-file", &cfg.Cache.TokenFile)
	if f := fs.Lookup("scope"); f.Changed {
		cfg.OAuth.Scopes = strings.FieldsFunc(f.Value.String(), func(r rune) bool { return r == ' ' || r == ',' })
	}
	if f := fs.Lookup("no-cache"); f.Changed {
		cfg.Cache.Disabled = f.Value.String() == "true"
	}
	if f := fs.Lookup("timeout"); f.Changed {
		if d, err := time.ParseDuration(f.Value.String()); err == nil {
			cfg.HTTP.Timeout = d
		}
	}
}

func setupLogging(cfg Config, w io.Writer) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	slog.SetDefault(slog.New(requestid.LogHandler(h)))
}

func (a *App) run(ctx context.Context, cmd string) error {
	commands := map[string]func(context.Context) error{
		"demo": a.cmdDemo, "login": a.cmdLogin, "logout": a.cmdLogout, "status": a.cmdStatus,
		"token": a.cmdToken, "tools": a.cmdTools, "call": a.cmdCall, "resources": a.cmdResources,
		"read": a.cmdRead, "prompts": a.cmdPrompts, "probe": a.cmdProbe, "conformance": a.cmdConformance,
	}
	fn, ok := commands[cmd]
	if !ok {
		return fmt.Errorf("command %q: unknown (see --help)", cmd)
	}
	// One id for the whole command: its requests to both servers can be
	// found by it in their logs and in the MCP audit log.
	ctx = requestid.NewContext(ctx, a.requestID)
	slog.DebugContext(ctx, "command started", "command", cmd)
	if err := fn(ctx); err != nil {
		return fmt.Errorf("%s: %w", cmd, describeError(err))
	}
	return nil
}

// describeError adds the plain-words cause to errors whose text is cryptic.
func describeError(err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(msg, "Client.Timeout") ||
		strings.Contains(msg, "timeout awaiting response headers"):
		return fmt.Errorf("timed out: %w", err)
	case strings.Contains(msg, "connection refused"):
		return fmt.Errorf("server unreachable: %w", err)
	case strings.Contains(msg, "state mismatch"):
		return fmt.Errorf("state mismatch (the redirect does not belong to this login): %w", err)
	case strings.Contains(msg, "does not match expected issuer") || strings.Contains(msg, "iss parameter"):
		return fmt.Errorf("issuer mismatch (RFC 9207): %w", err)
	case strings.Contains(msg, "does not implement PKCE"):
		return fmt.Errorf("PKCE not supported: %w", err)
	}
	return err
}

// warn prints a one-line warning once: the same condition (a corrupt or
// unwritable cache) is met by every cache access of a run, and saying it
// again adds nothing.
func (a *App) warn(msg string) {
	line := "warning: " + oneLine(msg)
	a.warnMu.Lock()
	defer a.warnMu.Unlock()
	if a.warned == nil {
		a.warned = map[string]bool{}
	}
	if a.warned[line] || len(a.warned) >= maxWarnings {
		return
	}
	a.warned[line] = true
	fmt.Fprintln(a.errOut, line)
}

// progress is where flow steps go: stderr in human mode (stdout stays
// data), nowhere in JSON mode.
func (a *App) progress() io.Writer {
	if a.json {
		return io.Discard
	}
	return a.errOut
}

// fetcher builds the configured code fetcher; prompts go to stderr.
func (a *App) fetcher(mode string) auth.AuthorizationCodeFetcher {
	switch mode {
	case ModeHeadless:
		return HeadlessFetcher(a.oauthClient, a.cfg.OAuth.RedirectURI)
	case ModePaste:
		return PasteFetcher(a.in, a.errOut)
	}
	l := &LoopbackFetcher{RedirectURI: a.cfg.OAuth.RedirectURI, Timeout: a.cfg.OAuth.LoginTimeout, Out: a.errOut}
	return l.Fetch
}

// handler builds the OAuth handler for serverURL with events to w.
func (a *App) handler(serverURL string, cache *Cache, events func(Event)) (*Handler, error) {
	return NewHandler(HandlerConfig{
		ServerURL: serverURL, RedirectURI: a.cfg.OAuth.RedirectURI,
		ClientID: a.cfg.OAuth.ClientID, ClientSecret: a.cfg.OAuth.ClientSecret,
		CIMDURL: a.cfg.OAuth.ClientIDMetadataURL, Scopes: a.cfg.OAuth.Scopes,
		LoginHint: a.cfg.OAuth.LoginHint, Fetcher: a.fetcher(a.cfg.OAuth.Mode),
		HTTPClient: a.oauthClient, Cache: cache, Now: a.now, Events: events, Warn: a.warn,
	})
}

func (a *App) printEvents(w io.Writer) func(Event) {
	return func(e Event) { fmt.Fprintf(w, "  - %s: %s\n", e.Step, e.Detail) }
}

// opTimeout bounds one command step that may include an interactive login.
func (a *App) opTimeout() time.Duration { return a.cfg.OAuth.LoginTimeout + 2*a.cfg.HTTP.Timeout }

// connect opens an MCP session through the OAuth handler.
func (a *App) connect(ctx context.Context, h *Handler, opts *mcp.ClientOptions, standaloneSSE bool) (*mcp.ClientSession, error) {
	c := mcp.NewClient(&mcp.Implementation{Name: "http-oauth2-client", Version: Version}, opts)
	tr := &mcp.StreamableClientTransport{Endpoint: h.cfg.ServerURL, HTTPClient: a.mcpClient,
		OAuthHandler: h, DisableStandaloneSSE: !standaloneSSE}
	cctx, cancel := context.WithTimeout(ctx, a.opTimeout())
	defer cancel()
	s, err := c.Connect(cctx, tr, nil)
	if err != nil {
		return nil, fmt.Errorf("MCP initialize: %w", err)
	}
	return s, nil
}

// session builds the handler for the configured server and connects.
func (a *App) session(ctx context.Context) (*mcp.ClientSession, *Handler, error) {
	h, err := a.handler(a.cfg.MCP.ServerURL, a.cache, a.printEvents(a.progress()))
	if err != nil {
		return nil, nil, err
	}
	s, err := a.connect(ctx, h, nil, false)
	if err != nil {
		return nil, nil, err
	}
	return s, h, nil
}

// emit writes v as JSON in JSON mode, else calls human.
func (a *App) emit(v any, human func(w io.Writer)) error {
	if a.json {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(a.out)
	return nil
}
