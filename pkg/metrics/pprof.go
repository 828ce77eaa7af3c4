package metrics

import (
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"strings"
)

// PprofPrefix is where Pprof's handlers live; net/http/pprof's index links
// assume it.
const PprofPrefix = "/debug/pprof"

// Pprof returns the net/http/pprof handlers (index, named profiles, cmdline,
// profile, symbol, trace) under PprofPrefix, answering 403 to any caller
// that is not on this machine (see LoopbackOnly). Profiles reveal
// memory contents and let a caller burn CPU, so they are for the operator on
// the machine only. Mount it when the server's pprof switch is on:
//
//	r.Mount(metrics.PprofPrefix, metrics.Pprof())
//
// The check reads the connection's RemoteAddr: do not install a middleware
// that rewrites RemoteAddr from X-Forwarded-For (chi's RealIP) in front of
// it, or any client could claim to be loopback. A CPU profile or trace runs
// for its ?seconds= (default 30), so the server's write timeout must exceed
// it for those to complete.
func Pprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(PprofPrefix+"/", pprof.Index) // also serves heap, goroutine, allocs, ...
	mux.HandleFunc(PprofPrefix+"/cmdline", pprof.Cmdline)
	mux.HandleFunc(PprofPrefix+"/profile", pprof.Profile)
	mux.HandleFunc(PprofPrefix+"/symbol", pprof.Symbol)
	mux.HandleFunc(PprofPrefix+"/trace", pprof.Trace)
	return LoopbackOnly(mux)
}

// LoopbackOnly wraps next so that only the operator on this machine reaches
// it; others get 403. The connection must come from a loopback address, the
// Host header must name loopback (localhost, 127.0.0.0/8 or [::1], any port)
// and an Origin header, when present, must be a loopback origin too. The
// address alone is not enough: a web page whose name an attacker rebinds
// to 127.0.0.1 (DNS rebinding) makes the victim's browser connect from
// loopback, but with Host and Origin naming the attacker's site.
func LoopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r.RemoteAddr) || !loopbackHost(r.Host) || !loopbackOrigin(r.Header.Values("Origin")) {
			http.Error(w, "forbidden: loopback callers only", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fromLoopback reports whether remoteAddr ("host:port") is a loopback IP,
// including an IPv4-mapped IPv6 loopback. Anything unparsable is refused.
func fromLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	return loopbackIP(host)
}

// loopbackHost reports whether a Host header value (host, host:port,
// [v6] or [v6]:port) names this machine: "localhost" or a loopback IP.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return strings.EqualFold(host, "localhost") || loopbackIP(host)
}

// loopbackOrigin accepts no Origin header, or exactly one http(s) origin
// whose host is loopback. "null" and anything unparsable are refused.
func loopbackOrigin(origins []string) bool {
	if len(origins) == 0 {
		return true
	}
	if len(origins) > 1 {
		return false
	}
	u, err := url.Parse(origins[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" || u.User != nil {
		return false
	}
	return loopbackHost(u.Host)
}

// loopbackIP reports whether s is a loopback IP address literal.
func loopbackIP(s string) bool {
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Unmap().IsLoopback()
}
