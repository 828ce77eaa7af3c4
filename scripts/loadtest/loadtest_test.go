package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckLoopbackURL(t *testing.T) {
	ctx := context.Background()
	for _, ok := range []string{
		"http://127.0.0.1:3002", "http://127.0.0.1:3003/mcp", "https://127.0.0.2:1", "http://[::1]:3003/mcp",
	} {
		_, err := checkLoopbackURL(ctx, ok)
		assert.NoError(t, err, ok)
	}
	for _, bad := range []string{
		"http://192.0.2.1:3002", "http://[2001:db8::1]/mcp", "http://10.0.0.1", "ftp://127.0.0.1/",
		"127.0.0.1:3002", "http:///mcp", "http://example.invalid/mcp", "http://0.0.0.0:3002",
	} {
		_, err := checkLoopbackURL(ctx, bad)
		assert.Error(t, err, bad)
	}
}

func TestRefuseNonLoopbackAtDial(t *testing.T) {
	assert.NoError(t, refuseNonLoopback("tcp4", "127.0.0.1:80", nil))
	assert.NoError(t, refuseNonLoopback("tcp6", "[::1]:80", nil))
	assert.Error(t, refuseNonLoopback("tcp4", "192.0.2.1:80", nil))
	assert.Error(t, refuseNonLoopback("tcp6", "[2001:db8::1]:80", nil))
	assert.Error(t, refuseNonLoopback("tcp", "nonsense", nil))
}

func TestReadSSEResponse(t *testing.T) {
	stream := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n" +
		"id: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"ok\":true}}\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":9,\"result\":{}}\n\n"
	msg, err := readSSEResponse(strings.NewReader(stream), 9)
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(msg.Result))

	msg, err = readSSEResponse(strings.NewReader("data: {\"jsonrpc\":\"2.0\",\"id\":3,\n"+
		"data: \"error\":{\"code\":-32602,\"message\":\"bad\"}}\n"), 3)
	require.NoError(t, err, "multi-line data and a stream ending without a blank line")
	require.NotNil(t, msg.Error)
	assert.Equal(t, -32602, msg.Error.Code)

	_, err = readSSEResponse(strings.NewReader(stream), 42)
	assert.ErrorIs(t, err, errNoResponse)
}

func TestSumSeries(t *testing.T) {
	text := `# HELP mcp_jwks_refreshes_total HTTP fetches.
# TYPE mcp_jwks_refreshes_total counter
mcp_jwks_refreshes_total{outcome="error"} 1
mcp_jwks_refreshes_total{outcome="ok",note="a } b"} 4
mcp_jwks_refreshes_total_other 100
mcp_audit_writes_total 7 1700000000000
`
	v, found, err := sumSeries(strings.NewReader(text), "mcp_jwks_refreshes_total")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, 5.0, v)

	v, found, err = sumSeries(strings.NewReader(text), "mcp_audit_writes_total")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, 7.0, v)

	_, found, err = sumSeries(strings.NewReader(text), "absent_total")
	require.NoError(t, err)
	assert.False(t, found)

	_, _, err = sumSeries(strings.NewReader("x_total{a=\"b\"} notanumber\n"), "x_total")
	assert.Error(t, err)
}

func TestSummarizePercentiles(t *testing.T) {
	rec := newRecorder(1)
	for i := 1; i <= 100; i++ {
		var err error
		if i%50 == 0 {
			err = assert.AnError
		}
		rec.observe(time.Duration(i)*time.Millisecond, err)
	}
	s := summarize([]*recorder{rec}, 2*time.Second)
	assert.Equal(t, int64(100), s.Requests)
	assert.Equal(t, int64(2), s.Errors)
	assert.Equal(t, 50.0, s.RPS)
	assert.Equal(t, 50.0, s.P50Millis)
	assert.Equal(t, 99.0, s.P99Millis)
	assert.Equal(t, 100.0, s.MaxMillis)
	assert.Equal(t, map[string]int64{assert.AnError.Error(): 2}, s.ErrorKinds)
}

func TestRecorderStaysBounded(t *testing.T) {
	rec := newRecorder(1)
	for i := range 3 * maxSamplesPerWorker {
		rec.observe(time.Duration(i%1000)*time.Microsecond, nil)
	}
	for i := range 100 {
		rec.observe(time.Millisecond, &distinctError{i})
	}
	assert.Len(t, rec.samples, maxSamplesPerWorker)
	assert.Len(t, rec.errKind, maxErrorKinds)
	assert.Equal(t, int64(100), rec.errors)
	// The reservoir is a uniform sample: its median is near the true one.
	s := summarize([]*recorder{rec}, time.Second)
	assert.InDelta(t, 0.5, s.P50Millis, 0.05)
}

type distinctError struct{ n int }

func (e *distinctError) Error() string {
	return "error " + string(rune('a'+e.n%26)) + strings.Repeat("x", e.n)
}

func TestParseFlagsBounds(t *testing.T) {
	var stderr bytes.Buffer
	_, err := parseFlags([]string{"-duration", "0s"}, &stderr)
	assert.Error(t, err)
	_, err = parseFlags([]string{"-concurrency", "100000"}, &stderr)
	assert.Error(t, err)
	_, err = parseFlags([]string{"-echo-args", "[1]"}, &stderr)
	assert.Error(t, err)
	_, err = parseFlags([]string{"-requests", "-1"}, &stderr)
	assert.Error(t, err)
	_, err = parseFlags([]string{"-requests", "10000001"}, &stderr)
	assert.Error(t, err)
	o, err := parseFlags([]string{"-duration", "2s", "-concurrency", "4"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, o.duration)

	_, err = selectScenarios("mcp-echo, token-cc")
	assert.NoError(t, err)
	_, err = selectScenarios("mcp-echo,nope")
	assert.Error(t, err)
	all, err := selectScenarios("all")
	require.NoError(t, err)
	assert.Equal(t, scenarioNames, all)
}

func TestRefusesNonLoopbackTarget(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := realMain(context.Background(), []string{"-as", "http://192.0.2.1:3002", "-scenario", "token-cc"}, &stdout, &stderr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a loopback address")
}

// echoServer is an MCP server from the official SDK with an echo tool, the
// same handler the project's MCP server builds on, so the tool's hand-written
// Streamable HTTP client is checked against the real protocol.
func echoServer(t *testing.T, opts *mcp.StreamableHTTPOptions, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	server := mcp.NewServer(&mcp.Implementation{Name: "echo-test", Version: "1"}, nil)
	type echoArgs struct {
		Message string `json:"message"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
		calls.Add(1)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Message}}}, nil, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, opts))
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("mcp_jwks_refreshes_total{outcome=\"ok\"} 1\nprocess_resident_memory_bytes 1.2e+07\n"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestEchoScenarioAgainstSDKServer(t *testing.T) {
	for name, opts := range map[string]*mcp.StreamableHTTPOptions{
		"stateful SSE":   nil,
		"stateful JSON":  {JSONResponse: true},
		"stateless JSON": {Stateless: true, JSONResponse: true},
	} {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int64
			srv := echoServer(t, opts, &calls)
			var stdout, stderr bytes.Buffer
			err := realMain(context.Background(), []string{
				"-scenario", "mcp-echo-noauth", "-mcp-noauth", srv.URL + "/mcp", "-mcp", "",
				"-duration", "1s", "-warmup", "0", "-concurrency", "4", "-json",
				// The test server runs in this process, so its CPU is ours.
				"-mcp-noauth-pid", strconv.Itoa(os.Getpid()),
			}, &stdout, &stderr)
			require.NoError(t, err, stderr.String())
			var report runReport
			require.NoError(t, json.Unmarshal(stdout.Bytes(), &report))
			require.Len(t, report.Results, 1)
			res := report.Results[0]
			assert.Empty(t, res.Error)
			assert.Zero(t, res.Errors, "%v", res.ErrorKinds)
			assert.Positive(t, res.Requests)
			assert.Equal(t, res.Requests, calls.Load(), "every measured request is one tools/call")
			assert.Positive(t, res.RPS)
			assert.Positive(t, res.P99Millis)
			require.NotNil(t, res.ServerCPUMicros)
			assert.Positive(t, *res.ServerCPUMicros)
		})
	}
}

func TestSoakScenarioCountsCallsAndReadsRSS(t *testing.T) {
	var calls atomic.Int64
	srv := echoServer(t, nil, &calls)
	e, err := newEnv(context.Background(), options{
		asURL: srv.URL, mcpURL: srv.URL + "/mcp", concurrency: 3, timeout: 5 * time.Second,
		jwksMetric: "mcp_jwks_refreshes_total", echoArgs: `{"message":"x"}`,
		soakCalls: 200, soakCheckpoint: 50, soakTimeout: 30 * time.Second,
	})
	require.NoError(t, err)
	// The test server needs no token; mcp-soak logs in first.
	newWorker, err := e.sharedSessionWorkers(context.Background(), e.mcpURL, false)
	require.NoError(t, err)
	rss := map[string]int64{}
	sum, err := run(context.Background(), newWorker, runLimits{
		concurrency: 3, duration: 30 * time.Second, maxRequests: 200, onRequest: e.rssRecorder(context.Background(), rss),
	})
	require.NoError(t, err)
	assert.Equal(t, int64(200), sum.Requests)
	assert.Equal(t, int64(200), calls.Load())
	assert.Equal(t, map[string]int64{"50": 12_000_000, "200": 12_000_000}, rss)
	fetches, ok := e.jwksCount(context.Background(), "mcp-soak")
	assert.True(t, ok)
	assert.Equal(t, 1.0, fetches)
}

// countingWorker counts its requests.
type countingWorker struct{ n *atomic.Int64 }

func (w countingWorker) do(context.Context) error { w.n.Add(1); return nil }
func (w countingWorker) close(context.Context)    {}

func TestWarmupIsNotMeasured(t *testing.T) {
	var total atomic.Int64
	var atStart int64
	sum, err := run(context.Background(), func(context.Context, int) (worker, error) {
		return countingWorker{&total}, nil
	}, runLimits{
		concurrency: 2, duration: 200 * time.Millisecond, warmup: 200 * time.Millisecond,
		atMeasureStart: func() { atStart = total.Load() },
	})
	require.NoError(t, err)
	assert.Positive(t, atStart, "warm-up requests were sent")
	assert.Equal(t, total.Load()-atStart, sum.Requests, "only requests after the warm-up are counted")
	assert.InDelta(t, 0.2, sum.Seconds, 0.1)
}

func TestProcessCPUAdvances(t *testing.T) {
	start, err := processCPU(os.Getpid())
	require.NoError(t, err)
	// Burn CPU until the kernel's 10 ms accounting shows it, for at most 5 s.
	deadline := time.Now().Add(5 * time.Second)
	now := start
	for x := 0; now == start && time.Now().Before(deadline); x++ {
		for i := range 1_000_000 {
			x ^= i
		}
		now, err = processCPU(os.Getpid())
		require.NoError(t, err)
	}
	assert.Greater(t, now, start)
	_, err = processCPU(-1)
	assert.Error(t, err)
}

func TestWaitReady(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if hits.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	d, err := waitReady(context.Background(), srv.Client(), srv.URL, time.Now(), 5*time.Second)
	require.NoError(t, err)
	assert.Positive(t, d)
	assert.GreaterOrEqual(t, hits.Load(), int64(3))

	down, _ := url.Parse(srv.URL)
	srv.Close()
	_, err = waitReady(context.Background(), newHTTPClient(1, 50*time.Millisecond), down.String(), time.Now(), 100*time.Millisecond)
	assert.Error(t, err)
}

func TestInvalidTokenSource(t *testing.T) {
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","kid":"real-kid","n":"AQAB","e":"AQAB"}]}`))
	}))
	defer jwks.Close()
	as := &oauthClient{issuer: "http://127.0.0.1:1", jwksURL: jwks.URL}
	src, err := newInvalidTokenSource(context.Background(), jwks.Client(), as, "http://127.0.0.1:2/mcp")
	require.NoError(t, err)

	header := func(tok string) map[string]string {
		parts := strings.Split(tok, ".")
		require.Len(t, parts, 3, tok)
		raw, err := base64.RawURLEncoding.DecodeString(parts[0])
		require.NoError(t, err)
		var h map[string]string
		require.NoError(t, json.Unmarshal(raw, &h))
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		require.NoError(t, err)
		assert.Len(t, sig, 256, "an RS256 signature's length")
		return h
	}
	unknownKids := map[string]bool{}
	for range 300 {
		unknown, forged, garbage := src.token(), src.token(), src.token()
		h := header(unknown)
		assert.Equal(t, "RS256", h["alg"])
		assert.False(t, unknownKids[h["kid"]], "unknown kid %q repeated", h["kid"])
		unknownKids[h["kid"]] = true
		assert.Equal(t, "real-kid", header(forged)["kid"])
		assert.True(t, strings.HasPrefix(garbage, "not-a-jwt-"), garbage)
	}
}

// TestRequestsFixesTheCalls: with -requests the measured window has exactly
// that many calls (bench.sh divides a server's instruction count by it), and
// no more reach the server.
func TestRequestsFixesTheCalls(t *testing.T) {
	var calls atomic.Int64
	srv := echoServer(t, nil, &calls)
	var stdout, stderr bytes.Buffer
	err := realMain(context.Background(), []string{
		"-scenario", "mcp-echo-noauth", "-mcp-noauth", srv.URL + "/mcp", "-mcp", "",
		"-requests", "50", "-duration", "30s", "-warmup", "0", "-concurrency", "3", "-json",
	}, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	var report runReport
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report))
	require.Len(t, report.Results, 1)
	assert.Empty(t, report.Results[0].Error)
	assert.Equal(t, int64(50), report.Results[0].Requests)
	assert.Equal(t, int64(50), calls.Load(), "no call beyond -requests")
}
