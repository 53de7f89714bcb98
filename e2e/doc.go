// Package e2e holds the end-to-end tests: they build the real authgate
// binary, run it as separate processes on loopback and drive it through its
// HTTP API and CLI, the way an operator and a client would. Nothing here is
// mocked; these tests must never reach into internal packages to arrange state.
package e2e
