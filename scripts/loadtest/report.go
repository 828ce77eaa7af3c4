package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// result is one scenario's outcome.
type result struct {
	Scenario string `json:"scenario"`
	Target   string `json:"target"`
	summary
	// JWKSFetches is the growth of -jwks-metric on the MCP server during
	// the measured period; nil when the series is not exported.
	JWKSFetches *float64 `json:"jwks_fetches"`
	// ServerCPUMicros is the CPU time the target server process spent per
	// measured request, in microseconds, when its pid was given (-mcp-pid,
	// -mcp-noauth-pid, -as-pid). It depends much less than req/s on what
	// else the machine runs (see docs/PERFORMANCE.md for how much), so it
	// is the figure for what a path costs.
	ServerCPUMicros *float64 `json:"server_cpu_us_per_request,omitempty"`
	// RSSBytes holds the MCP server's resident memory after N calls
	// (mcp-soak), keyed by N.
	RSSBytes map[string]int64 `json:"rss_bytes,omitempty"`
	// Error says why the scenario could not run at all.
	Error string `json:"error,omitempty"`
}

// runReport is the whole output.
type runReport struct {
	Concurrency int      `json:"concurrency"`
	Duration    string   `json:"duration"`
	Results     []result `json:"results"`
}

// usesAuthMCP lists the scenarios that make the MCP server verify tokens,
// around which the JWKS fetch counter is read.
var usesAuthMCP = map[string]bool{"mcp-echo": true, "invalid-token": true, "mcp-soak": true}

// runScenario runs one scenario and never fails the whole tool: a scenario
// that cannot start is reported with its error and the others still run.
func (e *env) runScenario(ctx context.Context, name string) result {
	res := result{Scenario: name, Target: e.targetOf(name)}
	newWorker, err := e.scenario(ctx, name)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	var before float64
	var haveJWKS bool
	pid := e.pidOf(name)
	var cpuBefore time.Duration
	cpuErr := errors.New("no pid given")
	lim := runLimits{
		concurrency: e.opts.concurrency, duration: e.opts.duration, warmup: e.opts.warmup,
		maxRequests: e.opts.requests,
		atMeasureStart: func() {
			before, haveJWKS = e.jwksCount(ctx, name)
			if pid > 0 {
				cpuBefore, cpuErr = processCPU(pid)
			}
		},
	}
	if name == "mcp-soak" {
		// Every call of the one session counts, from the first.
		lim.warmup = 0
		lim.duration = e.opts.soakTimeout
		lim.maxRequests = e.opts.soakCalls
		res.RSSBytes = map[string]int64{}
		lim.onRequest = e.rssRecorder(ctx, res.RSSBytes)
	}
	sum, err := run(ctx, newWorker, lim)
	res.summary = sum
	if err != nil {
		res.Error = err.Error()
	}
	if cpuErr == nil && sum.Requests > 0 {
		if cpuAfter, err := processCPU(pid); err == nil {
			us := float64((cpuAfter - cpuBefore).Microseconds()) / float64(sum.Requests)
			res.ServerCPUMicros = &us
		}
	}
	if after, ok := e.jwksCount(ctx, name); ok && haveJWKS {
		delta := after - before
		res.JWKSFetches = &delta
	}
	return res
}

// pidOf is the pid of the server a scenario loads, 0 when not given.
func (e *env) pidOf(name string) int {
	switch name {
	case "mcp-echo", "invalid-token", "mcp-soak":
		return e.opts.mcpPID
	case "mcp-echo-noauth", "mcp-echo-noauth-bearer":
		return e.opts.noauthPID
	}
	return e.opts.asPID
}

func (e *env) targetOf(name string) string {
	switch name {
	case "mcp-echo", "invalid-token", "mcp-soak":
		return e.opts.mcpURL
	case "mcp-echo-noauth", "mcp-echo-noauth-bearer":
		return e.opts.noauthURL
	}
	return e.opts.asURL
}

// jwksCount reads the JWKS fetch counter for scenarios that hit the MCP
// server with auth; an empty -jwks-metric turns it off.
func (e *env) jwksCount(ctx context.Context, name string) (float64, bool) {
	if !usesAuthMCP[name] || e.opts.metricsURL == "" || e.opts.jwksMetric == "" {
		return 0, false
	}
	v, found, err := scrapeSum(ctx, e.client, e.opts.metricsURL, e.opts.jwksMetric)
	if err != nil || !found {
		return 0, false
	}
	return v, true
}

// rssRecorder returns the soak's onRequest hook: at the checkpoint and at
// the last call it records the MCP server's RSS.
func (e *env) rssRecorder(ctx context.Context, into map[string]int64) func(int64) {
	var mu sync.Mutex
	return func(n int64) {
		if n != e.opts.soakCheckpoint && n != e.opts.soakCalls {
			return
		}
		rss, err := e.serverRSS(ctx)
		if err != nil {
			return
		}
		mu.Lock()
		into[strconv.FormatInt(n, 10)] = rss
		mu.Unlock()
	}
}

func (e *env) serverRSS(ctx context.Context) (int64, error) {
	if e.opts.mcpPID > 0 {
		return residentBytes(e.opts.mcpPID)
	}
	v, found, err := scrapeSum(ctx, e.client, e.opts.metricsURL, "process_resident_memory_bytes")
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("no process_resident_memory_bytes at %s", e.opts.metricsURL)
	}
	return int64(v), nil
}

func (r runReport) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "scenario\trequests\treq/s\tp50 ms\tp99 ms\terrors\tjwks fetches\tserver CPU µs/req\t\n")
	for _, res := range r.Results {
		if res.Error != "" && res.Requests == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t\n", res.Scenario)
			continue
		}
		jwks := "n/a"
		if res.JWKSFetches != nil {
			jwks = strconv.FormatFloat(*res.JWKSFetches, 'f', 0, 64)
		}
		cpu := "n/a"
		if res.ServerCPUMicros != nil {
			cpu = strconv.FormatFloat(*res.ServerCPUMicros, 'f', 1, 64)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.2f\t%.2f\t%d\t%s\t%s\t\n", res.Scenario, res.Requests, res.RPS,
			res.P50Millis, res.P99Millis, res.Errors, jwks, cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, res := range r.Results {
		if res.Error != "" {
			fmt.Fprintf(w, "%s: could not run: %s\n", res.Scenario, res.Error)
		}
		for msg, n := range res.ErrorKinds {
			fmt.Fprintf(w, "%s: %d× %s\n", res.Scenario, n, strings.TrimSpace(msg))
		}
		for k, v := range res.RSSBytes {
			fmt.Fprintf(w, "%s: server RSS after %s calls: %.1f MiB\n", res.Scenario, k, float64(v)/(1<<20))
		}
	}
	return nil
}
