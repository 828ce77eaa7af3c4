//go:build !unix

package client

import "time"

// lockFile is a no-op where flock is not available: the in-process mutex
// still serialises writers of one process.
func lockFile(string, time.Duration) (func(), error) { return func() {}, nil }
