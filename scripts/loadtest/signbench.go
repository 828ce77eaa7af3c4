package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signBenchDuration is how long -sign-bench signs.
const signBenchDuration = 2 * time.Second

// runSignBench measures how many access tokens per second signing alone
// allows on this machine with the authorization server's own key: the same
// claims shape, golang-jwt as the server uses, on -sign-workers goroutines.
// It is the ceiling /token throughput is judged against (issue 7: RS256
// /token within 10% of what the signing cost allows).
//
// It prints "ALG SIGNATURES_PER_SECOND CPU_MICROSECONDS_PER_SIGNATURE". The
// second figure is the process's CPU time (getrusage) per signature: on a
// machine shared with other work, wall-clock rates depend on what else runs,
// while CPU time per operation hardly does, so bench.sh compares the
// server's CPU time per token with it.
func runSignBench(o options, stdout io.Writer) error {
	key, alg, err := readSigningKey(o.signBench, o.signAlg)
	if err != nil {
		return err
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		return fmt.Errorf("-sign-alg %q: unknown algorithm", alg)
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(signBenchDuration)
	start := time.Now()
	cpuStart, err := cpuTime()
	if err != nil {
		return err
	}
	var firstErr atomic.Value
	for range o.signWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				now := time.Now()
				tok := jwt.NewWithClaims(method, jwt.MapClaims{
					"iss": "http://127.0.0.1:3002", "sub": "mcp-service", "aud": "http://127.0.0.1:3003/mcp",
					"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
					"jti": fmt.Sprintf("bench-%d", i), "scope": "mcp:read", "client_id": "mcp-service",
				})
				tok.Header["kid"] = "bench"
				if _, err := tok.SignedString(key); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return fmt.Errorf("sign: %w", err)
	}
	elapsed := time.Since(start)
	cpuEnd, err := cpuTime()
	if err != nil {
		return err
	}
	n := float64(total.Load())
	fmt.Fprintf(stdout, "%s %.0f %.1f\n", alg, n/elapsed.Seconds(), float64((cpuEnd-cpuStart).Microseconds())/n)
	return nil
}

// cpuTime is the user plus system CPU time this process has used.
func cpuTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// readSigningKey parses a PEM private key (PKCS#1 or PKCS#8 RSA, SEC 1 or
// PKCS#8 EC) and picks the algorithm from its type unless one is given.
func readSigningKey(path, alg string) (crypto.Signer, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, "", fmt.Errorf("read key %s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parse key %s: %w", path, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if alg == "" {
			alg = "RS256"
		}
		return k, alg, nil
	case *ecdsa.PrivateKey:
		if alg == "" {
			alg = "ES256"
		}
		return k, alg, nil
	}
	return nil, "", fmt.Errorf("key %s: unsupported type %T", path, key)
}
