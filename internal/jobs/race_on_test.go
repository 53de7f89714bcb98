//go:build race

package jobs_test

// raceDetector says the tests run with -race, which makes SQLite (pure Go
// here) and the sandbox's RSA signing several times slower.
const raceDetector = true
