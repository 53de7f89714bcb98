package netpolicy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate"
	"github.com/authgate/authgate/internal/netpolicy"
)

// Nothing here dials anything but 127.0.0.1: every other address is only
// handed to the policy function or the Control hook.

// TestCheck: each special-purpose range under the strict policy, with the
// private ranges opened, and public addresses either way.
func TestCheck(t *testing.T) {
	t.Parallel()
	const (
		public  = iota // allowed by every policy
		private        // opened by AllowPrivate
		never          // opened only by the allow-list
	)
	for _, tc := range []struct {
		addr string
		kind int
		in   string // a word of the range's name, for refused addresses
	}{
		// IPv4
		{"0.0.0.0", never, "this network"},
		{"0.1.2.3", never, "this network"},
		{"10.0.0.1", private, "RFC 1918"},
		{"10.255.255.255", private, "RFC 1918"},
		{"100.64.0.1", private, "CGNAT"},
		{"100.127.255.255", private, "CGNAT"},
		{"100.100.100.200", never, "metadata"},
		{"100.128.0.1", public, ""},
		{"168.63.129.16", never, "WireServer"},
		{"::ffff:168.63.129.16", never, "WireServer"},
		{"168.63.129.17", public, ""},
		{"127.0.0.1", private, "loopback"},
		{"127.255.255.254", private, "loopback"},
		{"169.254.169.254", never, "link-local"},
		{"169.254.0.1", never, "link-local"},
		{"172.16.0.1", private, "RFC 1918"},
		{"172.31.255.255", private, "RFC 1918"},
		{"172.15.255.255", public, ""},
		{"172.32.0.1", public, ""},
		{"192.0.0.170", never, "IETF"},
		{"192.0.2.1", never, "documentation"},
		{"192.88.99.1", never, "6to4"},
		{"192.168.1.1", private, "RFC 1918"},
		{"198.18.0.1", never, "benchmarking"},
		{"198.19.255.255", never, "benchmarking"},
		{"198.51.100.7", never, "documentation"},
		{"203.0.113.9", never, "documentation"},
		{"224.0.0.1", never, "multicast"},
		{"239.255.255.250", never, "multicast"},
		{"240.0.0.1", never, "reserved"},
		{"255.255.255.255", never, "broadcast"},
		{"8.8.8.8", public, ""},
		{"1.1.1.1", public, ""},
		{"93.184.216.34", public, ""},
		// IPv6
		{"::", never, "unspecified"},
		{"::1", private, "loopback"},
		{"::127.0.0.1", never, "IPv4-compatible"},
		{"::ffff:0:10.0.0.1", never, "IPv4-translated"},
		{"fe80::1", never, "link-local"},
		{"fe80::1%eth0", never, "link-local"},
		{"febf:ffff::1", never, "link-local"},
		{"fec0::1", never, "site-local"},
		{"fc00::1", private, "unique local"},
		{"fd12:3456::1", private, "unique local"},
		{"fd00:ec2::254", never, "metadata"},
		{"ff02::1", never, "multicast"},
		{"ff0e::1", never, "multicast"},
		{"100::1", never, "discard"},
		{"64:ff9b:1::a00:1", never, "local-use NAT64"},
		{"2001::1", never, "Teredo"},
		{"2001:2::1", never, "IETF"},
		{"2001:db8::1", never, "documentation"},
		{"2002:7f00:1::1", never, "6to4"},
		{"3fff::1", never, "documentation"},
		{"4000::1", never, "outside 2000::/3"},
		{"e000::1", never, "outside 2000::/3"},
		{"2606:4700:4700::1111", public, ""},
		{"2001:4860:4860::8888", public, ""},
		// IPv4 inside IPv6: the IPv4 address decides.
		{"::ffff:127.0.0.1", private, "loopback"},
		{"::ffff:10.1.2.3", private, "RFC 1918"},
		{"::ffff:169.254.169.254", never, "link-local"},
		{"::ffff:0.0.0.0", never, "this network"},
		{"::ffff:8.8.8.8", public, ""},
		{"64:ff9b::a9fe:a9fe", never, "link-local"}, // NAT64 of 169.254.169.254
		{"64:ff9b::7f00:1", private, "loopback"},
		{"64:ff9b::808:808", public, ""},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			a := netip.MustParseAddr(tc.addr)
			strict := netpolicy.Policy{}.Check(a)
			opened := netpolicy.Policy{AllowPrivate: true}.Check(a)
			switch tc.kind {
			case public:
				if strict != nil || opened != nil {
					t.Fatalf("public address refused: %v / %v", strict, opened)
				}
				if rg, special := netpolicy.Classify(a); special {
					t.Fatalf("Classify = %+v", rg)
				}
				return
			case private:
				if opened != nil {
					t.Fatalf("AllowPrivate refuses it: %v", opened)
				}
			case never:
				if opened == nil {
					t.Fatal("AllowPrivate admits it")
				}
			}
			var re *netpolicy.RefusedError
			if !errors.As(strict, &re) || re.Addr != a {
				t.Fatalf("strict policy: %v; want a *RefusedError for %s", strict, a)
			}
			if !strings.Contains(strict.Error(), tc.in) {
				t.Errorf("%q does not name the range (%q)", strict, tc.in)
			}
			// The message names the way out, and AllowPrivate only where
			// it would help.
			if !strings.Contains(strict.Error(), netpolicy.SettingAllowCIDRs) ||
				strings.Contains(strict.Error(), netpolicy.SettingAllowPrivate) != (tc.kind == private) {
				t.Errorf("%q names the wrong settings", strict)
			}
			// The exact address in the allow-list opens any range, in
			// either IPv4 spelling.
			t4, _ := netpolicy.Unwrap(a)
			if err := (netpolicy.Policy{Allow: []netip.Prefix{netip.PrefixFrom(t4, t4.BitLen())}}).Check(a); err != nil {
				t.Errorf("allow-listed: %v", err)
			}
		})
	}
}

// TestEveryRangeRefused walks the first and last address of every range
// Classify knows, so a block added to the table cannot go untested.
func TestEveryRangeRefused(t *testing.T) {
	t.Parallel()
	seen := 0
	for _, a := range []string{"0.0.0.0", "10.0.0.0", "100.64.0.0", "127.0.0.0", "169.254.0.0", "172.16.0.0", "192.0.0.0", "192.0.2.0",
		"192.88.99.0", "192.168.0.0", "198.18.0.0", "198.51.100.0", "203.0.113.0", "224.0.0.0", "240.0.0.0", "::", "::1", "::2", "100::",
		"2001::", "2001:db8::", "2001:100::", "2002::", "3fff::", "fc00::", "fe80::", "fec0::", "ff00::", "64:ff9b:1::", "::ffff:0:0:0"} {
		rg, ok := netpolicy.Classify(netip.MustParseAddr(a))
		if !ok {
			t.Errorf("%s: not special", a)
			continue
		}
		seen++
		last := lastAddr(rg.Prefix)
		if err := (netpolicy.Policy{}).Check(last); err == nil {
			t.Errorf("%s, last of %s (%s): admitted", last, rg.Prefix, rg.Name)
		}
	}
	if seen == 0 {
		t.Fatal("nothing checked")
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestAllowList: a CIDR allow-list opens just its prefixes, matched
// against the IPv4 address inside mapped and NAT64 forms too.
func TestAllowList(t *testing.T) {
	t.Parallel()
	var allow []netip.Prefix
	for _, s := range []string{"10.1.0.0/16", "169.254.169.254", "fd12::/16"} {
		pf, err := netpolicy.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		allow = append(allow, pf)
	}
	p := netpolicy.Policy{Allow: allow}
	for addr, ok := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "64:ff9b::a01:203": true, "10.2.0.1": false, "127.0.0.1": false,
		"169.254.169.254": true, "169.254.169.253": false, "fd12::1": true, "fd13::1": false, "8.8.8.8": true,
	} {
		if err := p.Check(netip.MustParseAddr(addr)); (err == nil) != ok {
			t.Errorf("%s: %v; want allowed=%v", addr, err, ok)
		}
	}
	for _, bad := range []string{"10.1.2.3/16", "10.1.0.0/33", "example.com", "", "fe80::1%eth0", "10.1.0.0/-1"} {
		if _, err := netpolicy.ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", bad)
		}
	}
	if _, err := netpolicy.ParsePrefix("10.1.2.3/16"); err == nil || !strings.Contains(err.Error(), "10.1.0.0/16") {
		t.Errorf("host bits: %v; want the masked prefix suggested", err)
	}
}

// TestControl: the dialer hook refuses by the address actually dialled.
func TestControl(t *testing.T) {
	t.Parallel()
	strict := netpolicy.Policy{}
	for _, tc := range []struct {
		network, address string
		ok               bool
	}{
		{"tcp4", "169.254.169.254:80", false},
		{"tcp4", "10.0.0.7:443", false},
		{"tcp4", "127.0.0.1:8080", false},
		{"tcp4", "0.0.0.0:80", false},
		{"tcp6", "[::1]:443", false},
		{"tcp6", "[::ffff:169.254.169.254]:80", false},
		{"tcp6", "[fe80::1%eth0]:443", false},
		{"tcp6", "[fd00:ec2::254]:80", false},
		{"tcp6", "[64:ff9b::a9fe:a9fe]:80", false},
		{"tcp4", "93.184.216.34:443", true},
		{"tcp6", "[2606:4700:4700::1111]:443", true},
		{"udp4", "93.184.216.34:53", false},
		{"tcp4", "not-an-address:80", false},
	} {
		err := strict.Control(tc.network, tc.address, nil)
		if (err == nil) != tc.ok {
			t.Errorf("Control(%s, %s) = %v; want ok=%v", tc.network, tc.address, err, tc.ok)
		}
	}
	if err := (netpolicy.Policy{AllowPrivate: true}).Control("tcp4", "10.0.0.7:443", nil); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
	if err := (netpolicy.Policy{AllowPrivate: true}).Control("tcp4", "169.254.169.254:80", nil); err == nil {
		t.Error("AllowPrivate opened the metadata address")
	}
}

// resolver answers from a table, so no test asks real DNS.
type resolver map[string][]string

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := r[strings.ToLower(host)] // DNS names are case-insensitive
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// TestCheckURL: literal hosts are checked as they are, names by every
// answer, and numeric spellings of IPv4 are refused outright.
func TestCheckURL(t *testing.T) {
	t.Parallel()
	res := resolver{
		"hooks.example.com": {"93.184.216.34", "2606:2800:220:1::1"},
		"mixed.example.com": {"93.184.216.34", "10.0.0.5"},
		"meta.example.com":  {"169.254.169.254"},
		"mapped.example":    {"::ffff:127.0.0.1"},
	}
	strict := netpolicy.Policy{Resolver: res}
	for raw, want := range map[string]string{
		"https://hooks.example.com/h":      "",
		"https://HOOKS.example.com:8443/h": "",
		"https://93.184.216.34/h":          "",
		"https://[2606:4700::1]/h":         "",
		"https://mixed.example.com/h":      "mixed.example.com resolves to 10.0.0.5",
		"https://meta.example.com/h":       "link-local",
		"https://mapped.example/h":         "IPv4-mapped 127.0.0.1",
		"http://127.0.0.1:8080/h":          "loopback",
		"http://[::1]:8080/h":              "loopback",
		"http://[::ffff:127.0.0.1]/h":      "IPv4-mapped 127.0.0.1",
		"http://[::ffff:7f00:1]/h":         "IPv4-mapped 127.0.0.1",
		"http://[fe80::1%25eth0]/h":        "link-local",
		"http://localhost:8080/h":          "loopback",
		"http://api.LOCALHOST./h":          "loopback",
		"http://0.0.0.0/h":                 "this network",
		"http://169.254.169.254/latest":    "link-local",
		"http://127.1/h":                   "dotted-quad",
		"http://2130706433/h":              "dotted-quad",
		"http://0x7f.0.0.1/h":              "dotted-quad",
		"http://0177.0.0.1/h":              "dotted-quad",
		"http://0x7f000001/h":              "dotted-quad",
		"http://nowhere.example/h":         "no such host",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		err = strict.CheckURL(context.Background(), u)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", raw, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error with %q", raw, err, want)
		}
	}
}

// TestCheckEndpoint: what the API and CLI answer a tenant.
func TestCheckEndpoint(t *testing.T) {
	t.Parallel()
	p := netpolicy.Policy{Resolver: resolver{"hooks.example.com": {"93.184.216.34"}}}
	for raw, want := range map[string]authgate.Class{
		"https://hooks.example.com/h": "",
		"http://127.0.0.1:9/h":        authgate.ClassInvalidRequest,
		"http://127.1/h":              authgate.ClassInvalidRequest,
		"https://nowhere.example/h":   authgate.ClassInvalidRequest,
	} {
		u, _ := url.Parse(raw)
		err := p.CheckEndpoint(context.Background(), u)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", raw, err)
			}
			continue
		}
		var ae *authgate.Error
		if !errors.As(err, &ae) || ae.Class != want || len(ae.Errors) != 1 || ae.Errors[0].Field != "url" {
			t.Errorf("%s: %#v; want %s on field url", raw, err, want)
		}
	}
	u, _ := url.Parse("http://127.0.0.1:9/h")
	err := p.CheckEndpoint(context.Background(), u)
	if !strings.Contains(err.Error(), netpolicy.SettingAllowPrivate+"=true") {
		t.Errorf("%v does not name %s", err, netpolicy.SettingAllowPrivate)
	}
}

// receiver counts the requests it gets, on 127.0.0.1.
func receiver(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hs.Close)
	return hs, &hits
}

// TestClientDialsThroughTheHook: Client's connections pass the Control
// hook, so a loopback receiver is unreachable under the strict policy and
// reachable once opened; redirects are answered, not followed.
func TestClientDialsThroughTheHook(t *testing.T) {
	t.Parallel()
	hs, hits := receiver(t)
	post := func(p netpolicy.Policy, u string) (*http.Response, error) {
		c := netpolicy.Client(p, 5*time.Second)
		defer c.CloseIdleConnections()
		resp, err := c.Post(u, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	_, err := post(netpolicy.Policy{}, hs.URL+"/hook")
	var re *netpolicy.RefusedError
	if !errors.As(err, &re) || re.Addr != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("strict: %v; want a *RefusedError for 127.0.0.1", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the receiver got %d requests through a refused dial", n)
	}
	for _, p := range []netpolicy.Policy{{AllowPrivate: true}, {Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}} {
		resp, err := post(p, hs.URL+"/hook")
		if err != nil || resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%+v: %v %v", p, resp, err)
		}
	}
	before := hits.Load()
	resp, err := post(netpolicy.Policy{AllowPrivate: true}, hs.URL+"/redirect")
	if err != nil || resp.StatusCode != http.StatusFound || hits.Load() != before+1 {
		t.Fatalf("redirect: %v %v, %d requests; want the 302 itself, one request", resp, err, hits.Load()-before)
	}
}

// TestRebindingCaughtAtConnect: a name whose answer at registration was
// public but is loopback when the delivery connects. Registration (with
// that first answer) passes; the connection is refused by the Control
// hook before a byte is sent. "localhost" stands in for the rebound name:
// the system resolver answers it from /etc/hosts, so no DNS query leaves
// the machine and nothing but 127.0.0.1 is ever dialled.
func TestRebindingCaughtAtConnect(t *testing.T) {
	t.Parallel()
	hs, hits := receiver(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(hs.URL, "http://"))
	p := netpolicy.Policy{Resolver: resolver{"rebind.example.com": {"93.184.216.34"}}}
	if err := p.CheckURL(context.Background(), &url.URL{Scheme: "http", Host: "rebind.example.com:" + port}); err != nil {
		t.Fatalf("registration: %v", err)
	}
	// The dialer's answer now is 127.0.0.1 (or ::1): the hook refuses it.
	c := netpolicy.Client(p, 5*time.Second)
	_, err := c.Post(fmt.Sprintf("http://localhost:%s/hook", port), "application/json", strings.NewReader("{}"))
	var re *netpolicy.RefusedError
	if !errors.As(err, &re) || !re.Addr.IsLoopback() {
		t.Fatalf("delivery: %v; want refused at connect", err)
	}
	if hits.Load() != 0 {
		t.Fatal("the receiver was reached")
	}
	// The same, called as the dialer calls it, for answers no test may dial.
	for _, addr := range []string{"10.0.0.7:443", "169.254.169.254:80", "[fd00:ec2::254]:80", "100.64.1.1:443"} {
		network := "tcp4"
		if strings.HasPrefix(addr, "[") {
			network = "tcp6"
		}
		if err := p.Control(network, addr, nil); !errors.As(err, &re) {
			t.Errorf("Control(%s): %v", addr, err)
		}
	}
}
