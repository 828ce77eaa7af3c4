package httpserve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

func TestServeUntilContextEnds(t *testing.T) {
	ln := listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, srv, ln, TLSFiles{}, slog.New(slog.DiscardHandler)) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok", string(body))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
	_, err = http.Get("http://" + ln.Addr().String() + "/")
	assert.Error(t, err, "the listener is closed after shutdown")
}

func TestServeReportsServeErrors(t *testing.T) {
	ln := listen(t)
	require.NoError(t, ln.Close())
	srv := &http.Server{ReadHeaderTimeout: time.Second}
	err := Serve(context.Background(), srv, ln, TLSFiles{}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "serve")
}

func TestServeTLSWithMissingFilesFails(t *testing.T) {
	ln := listen(t)
	srv := &http.Server{ReadHeaderTimeout: time.Second}
	err := Serve(context.Background(), srv, ln, TLSFiles{CertFile: "/nonexistent/cert.pem", KeyFile: "/nonexistent/key.pem"},
		slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "serve")
}
