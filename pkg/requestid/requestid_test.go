package requestid

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveWithID runs Middleware around a handler that records the id it saw in
// its context, and returns that id and the response.
func serveWithID(t *testing.T, incoming string) (seen string, rec *httptest.ResponseRecorder) {
	t.Helper()
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if incoming != "" {
		req.Header.Set(Header, incoming)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return seen, rec
}

func TestMiddlewareKeepsSaneIncomingID(t *testing.T) {
	for _, id := range []string{
		"3f2504e0-4f89-41d3-9a0c-0305e82c3301",
		"01ARZ3NDEKTSV4RRFFQ69G5FAV",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"a",
		"svc.a:b_c-d",
		strings.Repeat("x", MaxLength),
	} {
		seen, rec := serveWithID(t, id)
		assert.Equal(t, id, seen, "context id for %q", id)
		assert.Equal(t, id, rec.Header().Get(Header), "response id for %q", id)
	}
}

func TestMiddlewareReplacesUnsafeIncomingID(t *testing.T) {
	for name, id := range map[string]string{
		"too long":   strings.Repeat("x", MaxLength+1),
		"newline":    "abc\nlevel=ERROR msg=forged",
		"space":      "abc def",
		"quote":      `abc"def`,
		"non-ascii":  "abcé",
		"control":    "abc\x00",
		"equals":     "a=b",
		"slash":      "a/b",
		"whitespace": " ",
	} {
		seen, rec := serveWithID(t, id)
		assert.NotEqual(t, id, seen, name)
		assert.True(t, Valid(seen), "%s: generated id %q must be valid", name, seen)
		assert.Equal(t, seen, rec.Header().Get(Header), name)
	}
}

func TestMiddlewareGeneratesDistinctIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id, rec := serveWithID(t, "")
		require.True(t, Valid(id), "generated id %q", id)
		require.Equal(t, id, rec.Header().Get(Header))
		require.False(t, seen[id], "duplicate id %q", id)
		seen[id] = true
	}
}

func TestFromContextWithoutID(t *testing.T) {
	assert.Empty(t, FromContext(context.Background()))
	assert.True(t, Attr(context.Background()).Equal(slog.Attr{}))
}

func TestAttr(t *testing.T) {
	ctx := NewContext(context.Background(), "req-1")
	assert.Equal(t, slog.String("request_id", "req-1"), Attr(ctx))

	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	logger.Info("with id", Attr(ctx))
	logger.Info("without id", Attr(context.Background()))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], "request_id=req-1")
	assert.NotContains(t, lines[1], "request_id")
}

func TestLogHandlerAddsIDFromContext(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("service", "test")
	logger.InfoContext(NewContext(context.Background(), "req-2"), "served")
	logger.InfoContext(context.Background(), "background")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2)
	assert.Contains(t, lines[0], `"request_id":"req-2"`)
	assert.Contains(t, lines[0], `"service":"test"`)
	assert.NotContains(t, lines[1], "request_id")
}

func TestTransportPropagatesID(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Header.Get(Header))
	}))
	defer srv.Close()
	client := &http.Client{Transport: &Transport{Base: srv.Client().Transport}}

	do := func(ctx context.Context, preset string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		if preset != "" {
			req.Header.Set(Header, preset)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, preset, req.Header.Get(Header), "caller's request must not be modified")
	}
	ctx := NewContext(context.Background(), "req-3")
	do(ctx, "")
	do(ctx, "caller-set")
	do(context.Background(), "")
	assert.Equal(t, []string{"req-3", "caller-set", ""}, got)
}

// Example shows a server putting the id in its logs and a client forwarding
// it to the next service.
func Example() {
	logger := slog.New(LogHandler(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	handler := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		logger.InfoContext(r.Context(), "handling") // carries request_id
		outgoing, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://127.0.0.1:3002/jwks", nil)
		_ = outgoing // sent through &http.Client{Transport: &Transport{}} it carries X-Request-Id
	}))
	_ = handler
}
