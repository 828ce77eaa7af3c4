package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// MCP over Streamable HTTP (MCP spec 2025-06-18, "Transports"): every
// JSON-RPC message is POSTed to the endpoint; the answer is either one JSON
// object or an SSE stream whose events carry it. The tool speaks it by hand
// rather than through the SDK's client so that the measured cost is the
// server's, with one request per call and nothing else on the wire.

const (
	mcpProtocolVersion = "2025-06-18"
	// maxResponseBytes bounds what the tool reads from any response.
	maxResponseBytes = 1 << 20
)

// mcpSession is one client's conversation with the MCP server: its bearer
// token (empty against a server without auth) and the session id the server
// assigned at initialize (empty for a stateless server).
type mcpSession struct {
	client    *http.Client
	endpoint  string
	token     string
	sessionID string
	nextID    atomic.Int64
}

// rpcResponse is the part of a JSON-RPC response the tool checks.
type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// initialize performs the MCP handshake: initialize, then the
// notifications/initialized notification. It records the Mcp-Session-Id the
// server answered with, which every later request of this session carries.
func (s *mcpSession) initialize(ctx context.Context) error {
	params := map[string]any{
		"protocolVersion": mcpProtocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "mcp-oauth2-loadtest", "version": "1"},
	}
	resp, header, err := s.call(ctx, "initialize", params)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if resp.Error != nil {
		return fmt.Errorf("initialize: JSON-RPC error %d: %s", resp.Error.Code, resp.Error.Message)
	}
	s.sessionID = header.Get("Mcp-Session-Id")
	if err := s.notify(ctx, "notifications/initialized"); err != nil {
		return fmt.Errorf("initialized notification: %w", err)
	}
	return nil
}

// callTool calls a tool and fails on a transport error, a JSON-RPC error or
// a tool result flagged isError.
func (s *mcpSession) callTool(ctx context.Context, name string, args json.RawMessage) error {
	resp, _, err := s.call(ctx, "tools/call", map[string]any{"name": name, "arguments": args})
	if err != nil {
		return err
	}
	if resp.Error != nil {
		return fmt.Errorf("tools/call %s: JSON-RPC error %d: %s", name, resp.Error.Code, resp.Error.Message)
	}
	var result struct {
		IsError bool `json:"isError"`
	}
	if err := json.Unmarshal(resp.Result, &result); err != nil {
		return fmt.Errorf("tools/call %s: decode result: %w", name, err)
	}
	if result.IsError {
		return fmt.Errorf("tools/call %s: tool reported isError", name)
	}
	return nil
}

// close ends the session (DELETE with its id) so the server can free it.
func (s *mcpSession) close(ctx context.Context) {
	if s.sessionID == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.endpoint, nil)
	if err != nil {
		return
	}
	s.setHeaders(req)
	if resp, err := s.client.Do(req); err == nil {
		drain(resp)
	}
}

func (s *mcpSession) setHeaders(req *http.Request) {
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", mcpProtocolVersion)
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if s.sessionID != "" {
		req.Header.Set("Mcp-Session-Id", s.sessionID)
	}
}

// call sends one JSON-RPC request and returns its response, read from a JSON
// body or from the SSE stream (the first event that answers our id).
func (s *mcpSession) call(ctx context.Context, method string, params any) (*rpcResponse, http.Header, error) {
	id := s.nextID.Add(1)
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", method, err)
	}
	resp, err := s.post(ctx, body)
	if err != nil {
		return nil, nil, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, nil, statusError(resp)
	}
	msg, err := readRPCResponse(resp, id)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", method, err)
	}
	return msg, resp.Header, nil
}

// notify sends a JSON-RPC notification; the server answers 202 Accepted.
func (s *mcpSession) notify(ctx context.Context, method string) error {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method})
	if err != nil {
		return fmt.Errorf("encode %s: %w", method, err)
	}
	resp, err := s.post(ctx, body)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return statusError(resp)
	}
	return nil
}

func (s *mcpSession) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	s.setHeaders(req)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", s.endpoint, err)
	}
	return resp, nil
}

// readRPCResponse decodes the response to request id from a JSON body or an
// SSE stream.
func readRPCResponse(resp *http.Response, id int64) (*rpcResponse, error) {
	body := io.LimitReader(resp.Body, maxResponseBytes)
	ct := resp.Header.Get("Content-Type")
	if strings.HasPrefix(ct, "text/event-stream") {
		return readSSEResponse(body, id)
	}
	var msg rpcResponse
	if err := json.NewDecoder(body).Decode(&msg); err != nil {
		return nil, fmt.Errorf("decode JSON response: %w", err)
	}
	return &msg, nil
}

// errNoResponse means an SSE stream ended without answering the request.
var errNoResponse = errors.New("SSE stream ended without a response")

// readSSEResponse reads SSE events (data lines joined by newlines, events
// separated by a blank line) until one carries the JSON-RPC response with
// the given id; server requests and notifications on the stream are skipped.
func readSSEResponse(r io.Reader, id int64) (*rpcResponse, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxResponseBytes)
	want := fmt.Sprint(id)
	var data strings.Builder
	flush := func() (*rpcResponse, bool) {
		defer data.Reset()
		if data.Len() == 0 {
			return nil, false
		}
		var msg rpcResponse
		if json.Unmarshal([]byte(data.String()), &msg) != nil || string(msg.ID) != want {
			return nil, false
		}
		if msg.Result == nil && msg.Error == nil {
			return nil, false
		}
		return &msg, true
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if msg, ok := flush(); ok {
				return msg, nil
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, "data:"); ok {
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(v, " "))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read SSE stream: %w", err)
	}
	if msg, ok := flush(); ok {
		return msg, nil
	}
	return nil, errNoResponse
}

// statusError describes an unexpected status with the start of the body
// (servers here answer errors with short JSON), for the error summary.
func statusError(resp *http.Response) error {
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(head)))
}

// drain reads the rest of a body (bounded) and closes it, so the keep-alive
// connection goes back to the pool.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
}
