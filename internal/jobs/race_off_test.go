//go:build !race

package jobs_test

// raceDetector says the tests run with -race (see race_on_test.go).
const raceDetector = false
