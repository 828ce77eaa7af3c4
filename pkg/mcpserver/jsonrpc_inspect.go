package mcpserver

// This file peeks at a JSON-RPC 2.0 request body (a single message or a
// batch, JSON-RPC 2.0 §6) before the SDK reads it, to learn which methods,
// tools and resources a request touches: the per-tool scope check and the
// audit record need them at the HTTP layer, where a 403 insufficient_scope
// answer is still possible. The SDK does the real protocol handling.
//
// The peek is conservative: member names are matched case-insensitively and
// every matching value is collected, so a body crafted with duplicate or
// case-variant keys ("name" and "Name") can only make the check stricter,
// never let a call through with fewer scopes. Tool handlers check scopes
// again (defence in depth).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// rpcMessage is what the server learned about one JSON-RPC message.
type rpcMessage struct {
	Methods []string // usually one; more only for crafted bodies
	Tools   []string // params.name of tools/call
	URIs    []string // params.uri of resources/read, subscribe
	Prompts []string // params.name of prompts/get
}

// rpcSummary is what the server learned about a request body.
type rpcSummary struct {
	Messages []rpcMessage
	Batch    bool
}

// maxBatchMessages bounds the work done on one batch.
const maxBatchMessages = 256

var (
	errNotJSONRPC    = errors.New("body is not a JSON-RPC message or batch")
	errBatchTooLarge = errors.New("JSON-RPC batch has too many messages")
)

// inspectJSONRPC parses body. errNotJSONRPC means the SDK will answer the
// body with its own JSON-RPC parse error, so the caller lets it through with
// the base scope checks only; errBatchTooLarge is refused by the caller.
func inspectJSONRPC(body []byte) (*rpcSummary, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errNotJSONRPC
	}
	var raws []json.RawMessage
	summary := &rpcSummary{}
	if trimmed[0] == '[' {
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, errNotJSONRPC
		}
		if len(raws) > maxBatchMessages {
			return nil, errBatchTooLarge
		}
		summary.Batch = true
	} else {
		raws = []json.RawMessage{trimmed}
	}
	for _, raw := range raws {
		msg, err := inspectMessage(raw)
		if err != nil {
			return nil, err
		}
		summary.Messages = append(summary.Messages, msg)
	}
	return summary, nil
}

func inspectMessage(raw json.RawMessage) (rpcMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return rpcMessage{}, errNotJSONRPC
	}
	msg := rpcMessage{Methods: foldStrings(obj, "method")}
	// Every case variant of "params" is looked at, each on its own.
	var paramSets []map[string]json.RawMessage
	for _, p := range foldValues(obj, "params") {
		var m map[string]json.RawMessage
		if json.Unmarshal(p, &m) == nil && m != nil {
			paramSets = append(paramSets, m)
		}
	}
	for _, method := range msg.Methods {
		for _, params := range paramSets {
			switch method {
			case "tools/call":
				msg.Tools = append(msg.Tools, foldStrings(params, "name")...)
			case "resources/read", "resources/subscribe", "resources/unsubscribe":
				msg.URIs = append(msg.URIs, foldStrings(params, "uri")...)
			case "prompts/get":
				msg.Prompts = append(msg.Prompts, foldStrings(params, "name")...)
			}
		}
	}
	return msg, nil
}

// foldValues returns the values of every member whose name equals key
// case-insensitively.
func foldValues(obj map[string]json.RawMessage, key string) []json.RawMessage {
	var out []json.RawMessage
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			out = append(out, v)
		}
	}
	return out
}

// foldStrings is foldValues restricted to JSON strings.
func foldStrings(obj map[string]json.RawMessage, key string) []string {
	var out []string
	for _, v := range foldValues(obj, key) {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out = append(out, s)
		}
	}
	return out
}

// methods lists every method in the summary, for the audit record.
func (s *rpcSummary) methods() string {
	var all []string
	for _, m := range s.Messages {
		all = append(all, m.Methods...)
	}
	return strings.Join(all, ",")
}

// target lists the tools, resources and prompts touched, for the audit
// record.
func (s *rpcSummary) targets() (tools, resources string) {
	var t, r []string
	for _, m := range s.Messages {
		t = append(t, m.Tools...)
		t = append(t, m.Prompts...)
		r = append(r, m.URIs...)
	}
	return strings.Join(t, ","), strings.Join(r, ",")
}

// toolsCalled lists every tool any tools/call in the summary names.
func (s *rpcSummary) toolsCalled() []string {
	var out []string
	for _, m := range s.Messages {
		out = append(out, m.Tools...)
	}
	return out
}

// peekBody reads a POST body (bounded by server.max_body_bytes), notes what
// JSON-RPC messages it holds, and restores it for the SDK.
func (s *Server) peekBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.Server.MaxBodyBytes))
		_ = r.Body.Close()
		if err != nil {
			st := stateFrom(r.Context())
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				st.outcome, st.reason = OutcomeError, "request body too large"
				writeJSONRPCError(w, http.StatusRequestEntityTooLarge, -32600, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit))
				return
			}
			st.outcome, st.reason = OutcomeError, "read request body"
			writeJSONRPCError(w, http.StatusBadRequest, -32700, "could not read request body")
			return
		}
		summary, err := inspectJSONRPC(body)
		switch {
		case errors.Is(err, errBatchTooLarge):
			st := stateFrom(r.Context())
			st.outcome, st.reason = OutcomeError, err.Error()
			writeJSONRPCError(w, http.StatusBadRequest, -32600, err.Error())
			return
		case err == nil:
			stateFrom(r.Context()).rpc = summary
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}
