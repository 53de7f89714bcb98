package storagetest

import (
	"os"
	"testing"
)

// PostgresEnv names the PostgreSQL server the PostgreSQL suites run against.
// .ci/run always sets it; a laptop without PostgreSQL leaves it empty and
// the suites skip.
const PostgresEnv = "AUTHGATE_TEST_POSTGRES"

// PostgresSkipMessage is the one message every skipped PostgreSQL suite
// prints, so a newcomer reads one instruction however many suites skipped.
const PostgresSkipMessage = "PostgreSQL suites skipped: set " + PostgresEnv +
	"=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run them (.ci/run does)"

// PostgresDSN returns the server named by AUTHGATE_TEST_POSTGRES, or skips t.
// Once the variable is set an unreachable server fails the test: CI must not
// pass by skipping.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(PostgresEnv)
	if dsn == "" {
		t.Skip(PostgresSkipMessage)
	}
	return dsn
}
