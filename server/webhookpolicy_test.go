package server

import (
	"net/netip"
	"strings"
	"testing"
)

// TestWebhookPolicyDefaults: private webhook targets are open by default
// only in development (loopback listener, no public URL); otherwise only
// the operator's settings open them. Validate names a bad CIDR's setting.
func TestWebhookPolicyDefaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		cfg         Config
		private     bool
		allowed     []string
		loopbackOK  bool
		metadataOK  bool
		validateErr string
	}{
		{name: "development", cfg: Config{Addr: "127.0.0.1:8080"}, private: true, loopbackOK: true},
		{name: "development on ::1", cfg: Config{Addr: "[::1]:8080"}, private: true, loopbackOK: true},
		{name: "development on localhost", cfg: Config{Addr: "localhost:8080"}, private: true, loopbackOK: true},
		{name: "loopback behind a public URL", cfg: Config{Addr: "127.0.0.1:8080", PublicURL: "https://auth.example.com"}},
		{name: "every interface", cfg: Config{Addr: "0.0.0.0:8080", PublicURL: "https://auth.example.com"}},
		{name: "a LAN address", cfg: Config{Addr: "192.168.1.5:8080"}},
		{name: "operator allows private", cfg: Config{Addr: "0.0.0.0:8080", PublicURL: "https://auth.example.com", WebhookAllowPrivate: true}, private: true, loopbackOK: true},
		{name: "operator lists CIDRs", cfg: Config{Addr: "0.0.0.0:8080", PublicURL: "https://auth.example.com", WebhookAllowCIDRs: []string{" 127.0.0.0/8", "169.254.169.254/32"}},
			allowed: []string{"127.0.0.0/8", "169.254.169.254/32"}, loopbackOK: true, metadataOK: true},
		{name: "a bad CIDR", cfg: Config{Addr: "127.0.0.1:8080", WebhookAllowCIDRs: []string{"10.0.0.0/8", "10.1.2.3/16"}}, private: true, allowed: []string{"10.0.0.0/8"}, loopbackOK: true,
			validateErr: `AUTHGATE_WEBHOOK_ALLOW_CIDRS: "10.1.2.3/16" has host bits set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.WithDefaults().Validate()
			if tc.validateErr == "" && err != nil || tc.validateErr != "" && (err == nil || !strings.Contains(err.Error(), tc.validateErr)) {
				t.Fatalf("Validate = %v; want %q", err, tc.validateErr)
			}
			p := tc.cfg.webhookPolicy()
			var got []string
			for _, pf := range p.Allow {
				got = append(got, pf.String())
			}
			if p.AllowPrivate != tc.private || strings.Join(got, " ") != strings.Join(tc.allowed, " ") {
				t.Fatalf("policy %+v; want private=%v allow=%v", p, tc.private, tc.allowed)
			}
			if err := p.Check(netip.MustParseAddr("127.0.0.1")); (err == nil) != tc.loopbackOK {
				t.Errorf("127.0.0.1: %v", err)
			}
			if err := p.Check(netip.MustParseAddr("169.254.169.254")); (err == nil) != tc.metadataOK {
				t.Errorf("169.254.169.254: %v", err)
			}
		})
	}
}
