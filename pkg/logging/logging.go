// Package logging builds the slog logger both servers use, so their log lines
// have one shape: text or JSON on the given writer, at the configured level,
// with the request id of the request a record was logged for.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/requestid"
)

// New returns a logger writing to w. level is debug, info, warn or error
// (any case); format is "text" or "json". Records logged with a request's
// context carry its request_id, so one request can be followed across both
// servers.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log.level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch strings.ToLower(format) {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log.format %q: want text or json", format)
	}
	return slog.New(requestid.LogHandler(h)), nil
}
