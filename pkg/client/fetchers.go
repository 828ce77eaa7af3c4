package client

// This file gets the authorization code of RFC 6749 §4.1 in three ways:
// a loopback listener (RFC 8252 §7.3), a headless request for automatic
// approval, and a pasted redirect URL. PKCE, the state check and the RFC
// 9207 issuer check are done by the SDK's handler with what these return.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// AuthorizationError is an error answer from the authorization endpoint
// (RFC 6749 §4.1.2.1), e.g. access_denied when the user refused.
type AuthorizationError struct {
	Code        string
	Description string
}

// Error implements error.
func (e *AuthorizationError) Error() string {
	if e.Code == "access_denied" {
		return "login denied by the authorization server (access_denied" + descSuffix(e.Description) + ")"
	}
	return "authorization endpoint returned " + e.Code + descSuffix(e.Description)
}

func descSuffix(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}

// resultFromRedirect reads the authorization response from the URL the
// authorization server redirected to.
func resultFromRedirect(u *url.URL) (*auth.AuthorizationResult, error) {
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return nil, &AuthorizationError{Code: e, Description: q.Get("error_description")}
	}
	code := q.Get("code")
	if code == "" {
		return nil, errors.New("authorization response has no code")
	}
	return &auth.AuthorizationResult{Code: code, State: q.Get("state"), Iss: q.Get("iss")}, nil
}

// sameEndpoint reports whether u is at the redirect URI (scheme, host, path),
// the exact-match rule of OAuth 2.1 with the RFC 8252 §7.3 port exception
// left to the authorization server.
func sameEndpoint(u, redirect *url.URL) bool {
	return u.Scheme == redirect.Scheme && strings.EqualFold(u.Host, redirect.Host) && u.Path == redirect.Path
}

// expectedState is the state the SDK put in the authorization URL: a
// callback carrying another state is not ours (a forged or stale request).
func expectedState(authURL string) string {
	u, err := url.Parse(authURL)
	if err != nil {
		return ""
	}
	return u.Query().Get("state")
}

// HeadlessFetcher requests the authorization URL itself and takes the code
// from the redirect, without following it: for an authorization server that
// approves at once (the mock's auto-approve, CI, the conformance suite).
func HeadlessFetcher(client *http.Client, redirectURI string) auth.AuthorizationCodeFetcher {
	noFollow := *client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		if err := checkBrowsable(args.URL); err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, args.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("authorization request: %w", err)
		}
		req.Header.Set("Accept", "application/json, text/html;q=0.9")
		resp, err := noFollow.Do(req)
		if err != nil {
			return nil, fmt.Errorf("authorization request: %w", err)
		}
		defer drain(resp)
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return nil, authorizationPageError(resp)
		}
		loc, err := resp.Location()
		if err != nil {
			return nil, fmt.Errorf("authorization response: redirect without a valid Location: %w", err)
		}
		redirect, err := url.Parse(redirectURI)
		if err != nil {
			return nil, fmt.Errorf("redirect URI: %w", err)
		}
		if !sameEndpoint(loc, redirect) {
			if loc.Query().Get("error") != "" && loc.Query().Get("code") == "" {
				return resultFromRedirect(loc)
			}
			return nil, fmt.Errorf("authorization server redirected to %s, not to the redirect URI: interactive login needed (use --mode loopback or paste)", loc.Redacted())
		}
		return resultFromRedirect(loc)
	}
}

// authorizationPageError describes an authorization endpoint that answered
// without redirecting (e.g. a login page, or an error for an unknown client
// that must not be redirected: RFC 6749 §4.1.2.1).
func authorizationPageError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) == nil && oe.Error != "" {
		return &AuthorizationError{Code: oe.Error, Description: oe.Description}
	}
	// An error page meant for a browser (HTML) still names the RFC 6749
	// error code; invalid_client matters because it tells us to register
	// again.
	if resp.StatusCode >= 400 && strings.Contains(string(body), "invalid_client") {
		return &AuthorizationError{Code: "invalid_client", Description: fmt.Sprintf("HTTP %d error page", resp.StatusCode)}
	}
	if resp.StatusCode == http.StatusOK {
		return errors.New("authorization server showed a page instead of redirecting: interactive login needed (use --mode loopback or paste)")
	}
	return fmt.Errorf("authorization endpoint answered HTTP %d without a redirect", resp.StatusCode)
}

// LoopbackFetcher listens on the (loopback) redirect URI, shows the
// authorization URL, opens the browser when one is available, and waits for
// the redirect until timeout. Only a callback carrying the state of this
// authorization request is accepted; others get 400 and are ignored.
type LoopbackFetcher struct {
	// RedirectURI is where the listener runs (http, loopback host).
	RedirectURI string
	// Timeout bounds the wait for the user.
	Timeout time.Duration
	// Out receives the "open this URL" message.
	Out io.Writer
	// OpenBrowser opens a URL; nil uses OpenBrowser. Tests plug in a fake
	// browser here.
	OpenBrowser func(url string) error
	// Ready, when set, receives the listener's address once it listens.
	Ready func(addr string)
}

// Fetch implements auth.AuthorizationCodeFetcher.
func (l *LoopbackFetcher) Fetch(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
	if err := checkBrowsable(args.URL); err != nil {
		return nil, err
	}
	redirect, err := url.Parse(l.RedirectURI)
	if err != nil || redirect.Scheme != "http" || !isLoopbackHost(redirect.Hostname()) {
		return nil, fmt.Errorf("loopback login needs an http loopback redirect URI, got %q", l.RedirectURI)
	}
	ln, err := net.Listen("tcp", redirect.Host)
	if err != nil {
		return nil, fmt.Errorf("listen on redirect URI %s: %w", redirect.Host, err)
	}
	results := make(chan callbackResult, 1)
	srv := &http.Server{
		Handler:           callbackHandler(redirect.Path, expectedState(args.URL), results),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if l.Ready != nil {
		l.Ready(ln.Addr().String())
	}
	if l.Out != nil {
		fmt.Fprintf(l.Out, "Open this URL to log in (waiting up to %s):\n  %s\n", l.Timeout, args.URL)
	}
	opener := l.OpenBrowser
	if opener == nil {
		opener = OpenBrowser
	}
	if err := opener(args.URL); err != nil && l.Out != nil {
		fmt.Fprintf(l.Out, "(could not open a browser: %v)\n", err)
	}
	timer := time.NewTimer(l.Timeout)
	defer timer.Stop()
	select {
	case r := <-results:
		return r.res, r.err
	case <-timer.C:
		return nil, fmt.Errorf("login timed out after %s waiting for the redirect to %s", l.Timeout, l.RedirectURI)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type callbackResult struct {
	res *auth.AuthorizationResult
	err error
}

func callbackHandler(path, state string, results chan<- callbackResult) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		if state != "" && r.URL.Query().Get("state") != state {
			http.Error(w, "unknown or missing state", http.StatusBadRequest)
			return
		}
		res, err := resultFromRedirect(r.URL)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		// The page must not pass the URL (with the code) on to anything.
		w.Header().Set("Referrer-Policy", "no-referrer")
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			_ = failurePage.Execute(w, failureReason(err))
		} else {
			fmt.Fprint(w, "<!doctype html><title>Logged in</title><p>Login complete. You can close this window.")
		}
		select {
		case results <- callbackResult{res: res, err: err}:
		default: // a result is already waiting; the first one wins
		}
	})
}

// failurePage tells the user why the login failed. html/template escapes
// the error code and description: both come from the redirect's query,
// which anyone able to send the browser a link controls.
var failurePage = template.Must(template.New("failed").Parse(`<!doctype html><title>Login failed</title>
<p>Login failed: <code>{{.Code}}</code>{{if .Description}}: {{.Description}}{{end}}.</p>
<p>You can close this window and check the client's output.</p>
`))

type failureInfo struct{ Code, Description string }

// failureReason names the OAuth error (RFC 6749 §4.1.2.1) of a failed
// callback, or says what was wrong with a callback carrying none.
func failureReason(err error) failureInfo {
	var ae *AuthorizationError
	if errors.As(err, &ae) {
		return failureInfo{Code: ae.Code, Description: ae.Description}
	}
	return failureInfo{Code: "invalid_response", Description: err.Error()}
}

// PasteFetcher shows the authorization URL and reads, from in, the URL the
// browser was redirected to (for machines where nothing can listen on the
// redirect URI, e.g. over SSH).
func PasteFetcher(in io.Reader, out io.Writer) auth.AuthorizationCodeFetcher {
	reader := bufio.NewReaderSize(in, 8<<10)
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		if err := checkBrowsable(args.URL); err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "Open this URL in a browser, log in, then paste the full URL you were redirected to:\n  %s\n> ", args.URL)
		line, err := readLine(ctx, reader)
		if err != nil {
			return nil, fmt.Errorf("read pasted redirect URL: %w", err)
		}
		u, err := url.Parse(strings.TrimSpace(line))
		if err != nil || u.RawQuery == "" {
			return nil, errors.New("pasted text is not a redirect URL with a query")
		}
		if want := expectedState(args.URL); want != "" && u.Query().Get("state") != want && u.Query().Get("error") == "" {
			return nil, errors.New("state mismatch: the pasted URL belongs to another login")
		}
		return resultFromRedirect(u)
	}
}

// readLine reads one bounded line, giving up when ctx ends.
func readLine(ctx context.Context, r *bufio.Reader) (string, error) {
	type lineResult struct {
		s   string
		err error
	}
	ch := make(chan lineResult, 1)
	go func() {
		line, isPrefix, err := r.ReadLine()
		if isPrefix {
			err = errors.New("line too long")
		}
		ch <- lineResult{string(line), err}
	}()
	select {
	case lr := <-ch:
		return lr.s, lr.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// checkBrowsable refuses to hand anything but an http(s) URL to a browser
// or an HTTP client: a malicious authorization_endpoint such as
// "javascript:" or "file:" must never be opened.
func checkBrowsable(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("refusing to open authorization URL that is not http(s): %q", raw)
	}
	return nil
}

// OpenBrowser opens an http(s) URL with the platform's opener, executed
// directly (no shell, so the URL cannot inject commands). It does nothing
// and returns an error when no graphical session is available.
func OpenBrowser(raw string) error {
	if err := checkBrowsable(raw); err != nil {
		return err
	}
	var name string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		return errors.New("no browser opener on this platform")
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no graphical session")
		}
		name = "xdg-open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, raw)
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// withLoginHint adds login_hint (OIDC Core §3.1.2.1) to the authorization URL.
func withLoginHint(authURL, hint string) (string, error) {
	if hint == "" {
		return authURL, nil
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("authorization URL: %w", err)
	}
	q := u.Query()
	q.Set("login_hint", hint)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// describeAuthURL summarises an authorization request without the state
// or the code challenge values.
func describeAuthURL(authURL string) string {
	u, err := url.Parse(authURL)
	if err != nil {
		return "authorization request"
	}
	q := u.Query()
	parts := []string{"GET " + u.Scheme + "://" + u.Host + u.Path}
	parts = append(parts, "client_id="+q.Get("client_id"))
	parts = append(parts, "code_challenge_method="+q.Get("code_challenge_method"))
	if s := q.Get("scope"); s != "" {
		parts = append(parts, "scope=\""+s+"\"")
	}
	if r := q.Get("resource"); r != "" {
		parts = append(parts, "resource="+r)
	}
	if q.Get("state") != "" {
		parts = append(parts, "state=(random)")
	}
	return strings.Join(parts, " ")
}

// clientIDOf reads client_id from an authorization URL.
func clientIDOf(authURL string) string {
	u, err := url.Parse(authURL)
	if err != nil {
		return ""
	}
	return u.Query().Get("client_id")
}
