// Package integration holds the code of docs/INTEGRATION.md as Example
// functions, so every snippet there compiles and the end-to-end ones run
// (go test ./docs/integration). It exports nothing.
package integration
