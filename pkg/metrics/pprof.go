package metrics

import (
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
)

// PprofPrefix is where Pprof's handlers live; net/http/pprof's index links
// assume it.
const PprofPrefix = "/debug/pprof"

// Pprof returns the net/http/pprof handlers (index, named profiles, cmdline,
// profile, symbol, trace) under PprofPrefix, answering 403 to any caller
// whose connection does not come from a loopback address. Profiles reveal
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

// LoopbackOnly wraps next so that only callers connected from a loopback
// address reach it; others get 403.
func LoopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r.RemoteAddr) {
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
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return addr.Unmap().IsLoopback()
}
