// Package httpserve runs an http.Server until its context ends and then shuts
// it down gracefully: the serve-and-stop loop both servers' mains share.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ShutdownTimeout bounds how long in-flight requests get to finish after the
// context ends; long-lived SSE streams never finish by themselves, so what is
// still open then is closed.
const ShutdownTimeout = 10 * time.Second

// TLSFiles names a certificate and key in PEM; when both are empty the server
// speaks plain HTTP.
type TLSFiles struct {
	CertFile, KeyFile string
}

// Serve serves srv on ln until ctx is done or serving fails, then shuts down.
// A shutdown that outlasts ShutdownTimeout closes the remaining connections
// and is not an error: the process is stopping either way.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, tls TLSFiles, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() {
		if tls.CertFile != "" || tls.KeyFile != "" {
			errc <- srv.ServeTLS(ln, tls.CertFile, tls.KeyFile)
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("graceful shutdown timed out; closing remaining connections", "error", err)
		_ = srv.Close()
	}
	return nil
}
