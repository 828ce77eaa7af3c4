// Command loadtest drives the project's running binaries on loopback for a
// bounded time and concurrency and prints, per scenario, requests per
// second, p50 and p99 latency and errors, plus the JWKS fetches the MCP
// server made during the run (from its /metrics).
//
//	go run ./scripts/loadtest -h
//	go run ./scripts/loadtest -scenario mcp-echo,mcp-echo-noauth -duration 10s -concurrency 64
//
// Scenarios:
//
//	mcp-echo         MCP tools/call of echo with a valid bearer token, one
//	                 initialized session per worker on a keep-alive connection
//	mcp-echo-noauth  the same against a second MCP server with auth.enabled=false
//	mcp-echo-noauth-bearer
//	                 mcp-echo-noauth, but sending the bearer token all the same
//	                 (ignored): what receiving the header costs, apart from
//	                 checking it
//	token-cc         POST /token, client_credentials (mcp-service, Basic auth)
//	refresh          refresh-token rotation, one chain per worker, each started
//	                 by an authorization-code login with PKCE
//	invalid-token    requests with unknown-kid, forged-signature and non-JWT
//	                 tokens: the 401 path
//	mcp-soak         one session, -soak-calls echo calls; reads the server's
//	                 RSS after -soak-checkpoint calls and at the end
//
// -requests fixes the calls per scenario: scripts/bench.sh counts the
// instructions a server under valgrind executes for a known number of calls.
//
// Helper modes for scripts/bench.sh: -wait-ready URL (time from
// -since-unix-micro to the first 200) and -sign-bench KEYFILE (JWT
// signatures per second on all cores: the bound on /token).
//
// Targets must be loopback: the tool refuses anything else, at parse time
// and again when dialing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	scenarios      string
	duration       time.Duration
	warmup         time.Duration
	concurrency    int
	timeout        time.Duration
	asURL          string
	mcpURL         string
	noauthURL      string
	resource       string
	metricsURL     string
	jwksMetric     string
	clientID       string
	clientSecret   string
	ccScope        string
	publicClient   string
	redirectURI    string
	user           string
	scope          string
	mcpTokenGrant  string
	echoArgs       string
	soakCalls      int64
	soakCheckpoint int64
	soakTimeout    time.Duration
	mcpPID         int
	noauthPID      int
	asPID          int
	jsonOut        bool
	requests       int64

	waitReady    string
	sinceMicro   int64
	readyTimeout time.Duration
	signBench    string
	signAlg      string
	signWorkers  int
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenarios, "scenario", defaultScenarios, "comma-separated scenarios, or \"all\": "+strings.Join(scenarioNames, ", "))
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario (1s to 10m)")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each scenario's measured period (0 to 1m; not for mcp-soak)")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent workers, each with its own keep-alive connection (1 to 1024)")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&o.asURL, "as", "http://127.0.0.1:3002", "authorization server base URL (loopback)")
	fs.StringVar(&o.mcpURL, "mcp", "http://127.0.0.1:3003/mcp", "MCP endpoint with auth (loopback; empty: none)")
	fs.StringVar(&o.noauthURL, "mcp-noauth", "http://127.0.0.1:3004/mcp", "MCP endpoint of a server with auth.enabled=false (loopback)")
	fs.StringVar(&o.resource, "resource", "", "resource (aud) to request tokens for; default: from the MCP server's protected resource metadata")
	fs.StringVar(&o.metricsURL, "metrics", "", "the MCP server's metrics URL; default: its origin + /metrics")
	fs.StringVar(&o.jwksMetric, "jwks-metric", "mcp_jwks_refreshes_total", "counter of JWKS fetches on the MCP server (all label sets summed); empty: do not scrape /metrics for it")
	fs.StringVar(&o.clientID, "client-id", "mcp-service", "confidential client for token-cc")
	fs.StringVar(&o.clientSecret, "client-secret", "mcp-service-dev-secret", "its secret")
	fs.StringVar(&o.ccScope, "cc-scope", "mcp:read", "scope for token-cc")
	fs.StringVar(&o.publicClient, "public-client", "http-oauth2-client", "public client for logins and refresh")
	fs.StringVar(&o.redirectURI, "redirect-uri", "http://127.0.0.1:3001/callback", "its registered redirect URI (never contacted)")
	fs.StringVar(&o.user, "user", "alice", "login_hint: the user the auto-approving AS logs in")
	fs.StringVar(&o.scope, "scope", "openid mcp:read offline_access", "scope for logins")
	fs.StringVar(&o.mcpTokenGrant, "mcp-token-grant", "code", "how mcp-echo workers get their token: code or client_credentials")
	fs.StringVar(&o.echoArgs, "echo-args", `{"message":"hello from loadtest"}`, "arguments of the echo tool (JSON object)")
	fs.Int64Var(&o.soakCalls, "soak-calls", 100000, "mcp-soak: calls in the one session")
	fs.Int64Var(&o.soakCheckpoint, "soak-checkpoint", 10000, "mcp-soak: read RSS after this many calls too")
	fs.DurationVar(&o.soakTimeout, "soak-timeout", 3*time.Minute, "mcp-soak: give up after this long")
	fs.IntVar(&o.mcpPID, "mcp-pid", 0, "pid of the MCP server with auth: its CPU time per request, and mcp-soak's RSS, from /proc (default for RSS: process_resident_memory_bytes from /metrics)")
	fs.IntVar(&o.noauthPID, "mcp-noauth-pid", 0, "pid of the MCP server without auth: its CPU time per request")
	fs.IntVar(&o.asPID, "as-pid", 0, "pid of the authorization server: its CPU time per request")
	fs.BoolVar(&o.jsonOut, "json", false, "print results as JSON")
	fs.Int64Var(&o.requests, "requests", 0, "measured requests per scenario (0: as many as -duration allows; the run still ends at -duration)")
	fs.StringVar(&o.waitReady, "wait-ready", "", "mode: poll this URL every 1 ms until 200 and print the ms since -since-unix-micro")
	fs.Int64Var(&o.sinceMicro, "since-unix-micro", 0, "with -wait-ready: the start time (bash: ${EPOCHREALTIME/./}); default now")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 10*time.Second, "with -wait-ready: give up after this long")
	fs.StringVar(&o.signBench, "sign-bench", "", "mode: sign JWTs with this PEM private key on all cores and print signatures/s")
	fs.StringVar(&o.signAlg, "sign-alg", "", "with -sign-bench: RS256 or ES256 (default: from the key type)")
	fs.IntVar(&o.signWorkers, "sign-workers", runtime.NumCPU(), "with -sign-bench: goroutines")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./scripts/loadtest [flags]\n\n"+
			"Loads the running binaries on loopback and prints req/s, p50, p99 and errors per scenario.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	return o, o.validate()
}

// validate enforces the bounds that keep a run finite and sane.
func (o *options) validate() error {
	switch {
	case o.duration < time.Second || o.duration > 10*time.Minute:
		return fmt.Errorf("-duration %s: want 1s to 10m", o.duration)
	case o.warmup < 0 || o.warmup > time.Minute:
		return fmt.Errorf("-warmup %s: want 0 to 1m", o.warmup)
	case o.concurrency < 1 || o.concurrency > 1024:
		return fmt.Errorf("-concurrency %d: want 1 to 1024", o.concurrency)
	case o.timeout <= 0 || o.timeout > time.Minute:
		return fmt.Errorf("-timeout %s: want up to 1m", o.timeout)
	case o.soakCalls < 1 || o.soakCalls > 10_000_000:
		return fmt.Errorf("-soak-calls %d: want 1 to 10000000", o.soakCalls)
	case o.soakTimeout <= 0 || o.soakTimeout > 30*time.Minute:
		return fmt.Errorf("-soak-timeout %s: want up to 30m", o.soakTimeout)
	case o.signWorkers < 1 || o.signWorkers > 256:
		return fmt.Errorf("-sign-workers %d: want 1 to 256", o.signWorkers)
	case o.requests < 0 || o.requests > 10_000_000:
		return fmt.Errorf("-requests %d: want 0 to 10000000", o.requests)
	}
	if !strings.HasPrefix(strings.TrimSpace(o.echoArgs), "{") {
		return fmt.Errorf("-echo-args must be a JSON object")
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	switch {
	case o.waitReady != "":
		return runWaitReady(ctx, o, stdout)
	case o.signBench != "":
		return runSignBench(o, stdout)
	}
	e, err := newEnv(ctx, o)
	if err != nil {
		return err
	}
	names, err := selectScenarios(o.scenarios)
	if err != nil {
		return err
	}
	report := runReport{Concurrency: o.concurrency, Duration: o.duration.String(), Results: []result{}}
	failed := 0
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		if !o.jsonOut {
			fmt.Fprintf(stderr, "running %s for %s at concurrency %d...\n", name, durationFor(o, name), o.concurrency)
		}
		res := e.runScenario(ctx, name)
		if res.Error != "" {
			failed++
		}
		report.Results = append(report.Results, res)
	}
	if err := report.write(stdout, o.jsonOut); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d scenario(s) could not run", failed)
	}
	return ctx.Err()
}

// newEnv checks every target is loopback and builds the shared client.
func newEnv(ctx context.Context, o options) (*env, error) {
	e := &env{opts: o, client: newHTTPClient(o.concurrency, o.timeout), resource: o.resource}
	var err error
	if e.asBase, err = checkLoopbackURL(ctx, o.asURL); err != nil {
		return nil, err
	}
	if o.mcpURL != "" {
		if e.mcpURL, err = checkLoopbackURL(ctx, o.mcpURL); err != nil {
			return nil, err
		}
	}
	if o.noauthURL != "" {
		if e.noauth, err = checkLoopbackURL(ctx, o.noauthURL); err != nil {
			return nil, err
		}
	}
	if o.metricsURL != "" {
		if _, err = checkLoopbackURL(ctx, o.metricsURL); err != nil {
			return nil, err
		}
	} else if e.mcpURL != nil {
		m := url.URL{Scheme: e.mcpURL.Scheme, Host: e.mcpURL.Host, Path: "/metrics"}
		e.opts.metricsURL = m.String()
	}
	return e, nil
}

func selectScenarios(list string) ([]string, error) {
	if list == "all" {
		return scenarioNames, nil
	}
	var names []string
	for n := range strings.SplitSeq(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		known := false
		for _, k := range scenarioNames {
			known = known || k == n
		}
		if !known {
			return nil, fmt.Errorf("unknown scenario %q (known: %s)", n, strings.Join(scenarioNames, ", "))
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, errors.New("no scenario selected")
	}
	return names, nil
}

func durationFor(o options, name string) string {
	if name == "mcp-soak" {
		return fmt.Sprintf("%d calls (at most %s)", o.soakCalls, o.soakTimeout)
	}
	return o.duration.String()
}

func runWaitReady(ctx context.Context, o options, stdout io.Writer) error {
	if _, err := checkLoopbackURL(ctx, o.waitReady); err != nil {
		return err
	}
	since := time.Now()
	if o.sinceMicro > 0 {
		since = time.UnixMicro(o.sinceMicro)
	}
	client := newHTTPClient(1, 100*time.Millisecond)
	d, err := waitReady(ctx, client, o.waitReady, since, o.readyTimeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%.1f\n", float64(d.Microseconds())/1000)
	return nil
}
