package client

// This file gives every HTTP request of one CLI command the same
// X-Request-Id (pkg/requestid), so the command can be followed across the
// authorization server's logs, the MCP server's logs and its audit records.

import (
	"net/http"

	"github.com/mcp-oauth2/mcp-oauth2-mock/pkg/requestid"
)

// commandIDTransport puts the command's request id into the context of every
// request that has none, for the requestid.Transport below it to send. The
// command's context carries the id already (App.run), but a few requests are
// made under contexts that do not descend from it: a token refresh through
// oauth2.TokenSource.Token(), which takes no context, and the SDK's own
// session requests. Those must carry the id too.
type commandIDTransport struct {
	id   string
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t commandIDTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.id != "" && requestid.FromContext(r.Context()) == "" {
		r = r.WithContext(requestid.NewContext(r.Context(), t.id))
	}
	return t.base.RoundTrip(r)
}

// withRequestID returns a copy of c whose requests carry id unless their
// context names another.
func withRequestID(c *http.Client, id string) *http.Client {
	cp := *c
	cp.Transport = commandIDTransport{id: id, base: c.Transport}
	return &cp
}
