package main

import (
	"strings"
	"testing"
)

// TestProviderJobRateSetting: AUTHGATE_PROVIDER_JOB_RATE reaches the
// server's configuration, and a value that is not a positive rate is
// refused with a message naming the setting.
func TestProviderJobRateSetting(t *testing.T) {
	g := &globals{db: "sqlite:" + t.TempDir() + "/authgate.db"}
	t.Setenv("AUTHGATE_PROVIDER_JOB_RATE", "28.5")
	cfg, err := g.config()
	if err != nil || cfg.ProviderJobRate != 28.5 {
		t.Fatalf("rate %v, %v; want 28.5", cfg.ProviderJobRate, err)
	}
	for _, bad := range []string{"0", "-3", "fast", "NaN", "1e9"} {
		t.Setenv("AUTHGATE_PROVIDER_JOB_RATE", bad)
		if _, err := g.config(); err == nil || !strings.Contains(err.Error(), "AUTHGATE_PROVIDER_JOB_RATE") {
			t.Errorf("AUTHGATE_PROVIDER_JOB_RATE=%s: %v; want a refusal naming the setting", bad, err)
		}
	}
}
