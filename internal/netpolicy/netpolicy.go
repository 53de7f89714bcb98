// Package netpolicy decides which network addresses authgate may connect to
// on a tenant's behalf (webhook endpoints today). A tenant controls the URL
// and its DNS, so without a policy it could make the server POST to
// loopback, the cloud metadata service or the operator's private network
// (SSRF). The policy is applied twice: to the URL when it is registered
// (CheckURL: a literal address directly, a name resolved and every answer
// checked) and to the address actually dialled (Policy.Control, a
// net.Dialer hook), because a DNS answer can change between the two.
//
// It must never let an address through on the strength of its host name,
// nor dial anything itself; Client's connections go only to addresses the
// hook accepted, with no proxy from the environment and no redirects.
package netpolicy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Settings an operator uses to open the policy; errors name them so whoever
// reads a refusal knows the way out.
const (
	SettingAllowPrivate = "AUTHGATE_WEBHOOK_ALLOW_PRIVATE"
	SettingAllowCIDRs   = "AUTHGATE_WEBHOOK_ALLOW_CIDRS"
)

// Range is a special-purpose address block that is not an ordinary public
// destination.
type Range struct {
	Prefix netip.Prefix
	// Name says what the block is, for messages.
	Name string
	// Private blocks (loopback, RFC 1918, unique local, CGNAT) are where an
	// operator's own receivers live; Policy.AllowPrivate opens them. Every
	// other block opens only through the CIDR allow-list.
	Private bool
}

func r(prefix, name string, private bool) Range {
	return Range{Prefix: netip.MustParsePrefix(prefix), Name: name, Private: private}
}

// ranges are checked in order, so a narrower block comes before the block
// that holds it (a metadata address before its private block).
var ranges = []Range{
	// IPv4 (RFC 6890 and the IANA special-purpose registry).
	r("0.0.0.0/8", "in \"this network\" (RFC 791; 0.0.0.0 reaches the local host)", false),
	r("10.0.0.0/8", "private (RFC 1918)", true),
	r("100.100.100.200/32", "a cloud metadata service (Alibaba Cloud)", false),
	r("100.64.0.0/10", "shared address space (CGNAT, RFC 6598)", true),
	r("127.0.0.0/8", "loopback", true),
	r("168.63.129.16/32", "a cloud platform service (Azure WireServer: VM agent configuration, reachable from every Azure VM)", false),
	r("169.254.0.0/16", "link-local (RFC 3927; cloud metadata at 169.254.169.254)", false),
	r("172.16.0.0/12", "private (RFC 1918)", true),
	r("192.0.0.0/24", "reserved for IETF protocol assignments (RFC 6890)", false),
	r("192.0.2.0/24", "reserved for documentation (TEST-NET-1, RFC 5737)", false),
	r("192.88.99.0/24", "6to4 relay anycast (RFC 7526)", false),
	r("192.168.0.0/16", "private (RFC 1918)", true),
	r("198.18.0.0/15", "reserved for benchmarking (RFC 2544)", false),
	r("198.51.100.0/24", "reserved for documentation (TEST-NET-2, RFC 5737)", false),
	r("203.0.113.0/24", "reserved for documentation (TEST-NET-3, RFC 5737)", false),
	r("224.0.0.0/4", "multicast", false),
	r("255.255.255.255/32", "limited broadcast", false),
	r("240.0.0.0/4", "reserved (RFC 1112)", false),

	// IPv6. IPv4-mapped (::ffff:0:0/96) and NAT64 (64:ff9b::/96)
	// addresses are unwrapped before this list is read.
	r("::/128", "unspecified", false),
	r("::1/128", "loopback", true),
	r("::/96", "IPv4-compatible (deprecated, RFC 4291)", false),
	r("::ffff:0:0:0/96", "IPv4-translated (RFC 2765)", false),
	r("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)", false),
	r("100::/64", "discard-only (RFC 6666)", false),
	r("2001::/32", "Teredo (RFC 4380; embeds an IPv4 address)", false),
	r("2001:db8::/32", "reserved for documentation (RFC 3849)", false),
	r("2001::/23", "reserved for IETF protocol assignments (RFC 2928)", false),
	r("2002::/16", "6to4 (RFC 3056; embeds an IPv4 address)", false),
	r("3fff::/20", "reserved for documentation (RFC 9637)", false),
	r("fd00:ec2::254/128", "a cloud metadata service (AWS, IPv6)", false),
	r("fc00::/7", "unique local (private, RFC 4193)", true),
	r("fe80::/10", "link-local", false),
	r("fec0::/10", "site-local (deprecated, RFC 3879)", false),
	r("ff00::/8", "multicast", false),
}

var (
	// globalUnicast6 is the only IPv6 block IANA allocates for global
	// unicast; anything outside it (and not unwrapped to IPv4) is refused.
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
)

// Unwrap returns the IPv4 address an IPv4-mapped (::ffff:a.b.c.d) or
// well-known-prefix NAT64 (64:ff9b::a.b.c.d) address reaches, and says
// which form it was; any other address comes back as it is, without zone.
// The embedded IPv4 address is what decides: ::ffff:127.0.0.1 is loopback,
// and a NAT64 gateway turns 64:ff9b::a9fe:a9fe into 169.254.169.254.
func Unwrap(a netip.Addr) (netip.Addr, string) {
	a = a.WithZone("")
	switch {
	case a.Is4In6():
		return a.Unmap(), "IPv4-mapped"
	case nat64.Contains(a):
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:])), "NAT64"
	}
	return a, ""
}

// Classify returns the special-purpose range a (once unwrapped) is in, or
// false for an ordinary public unicast address. It is the pure heart of the
// policy.
func Classify(a netip.Addr) (Range, bool) {
	t, _ := Unwrap(a)
	for _, rg := range ranges {
		if rg.Prefix.Contains(t) {
			return rg, true
		}
	}
	if t.Is6() && !globalUnicast6.Contains(t) {
		return Range{Prefix: netip.MustParsePrefix("::/0"), Name: "not global unicast (outside 2000::/3)"}, true
	}
	return Range{}, false
}

// Policy says which addresses may be dialled. The zero value is the
// strictest: public unicast addresses only.
type Policy struct {
	// AllowPrivate opens the private ranges: loopback, RFC 1918, unique
	// local and CGNAT. Link-local (metadata), unspecified, multicast,
	// broadcast, documentation and other special ranges stay closed; list
	// them in Allow to open them.
	AllowPrivate bool
	// Allow opens these prefixes whatever range they are in.
	Allow []netip.Prefix
	// Resolver looks host names up for CheckURL (default
	// net.DefaultResolver). Dialling uses the dialer's own resolver: the
	// Control hook sees its answer.
	Resolver Resolver
}

// Resolver looks up a host's addresses; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// RefusedError is an address the policy refuses.
type RefusedError struct {
	Addr netip.Addr
	// Host is the name that resolved to Addr ("" for a literal address).
	Host  string
	Range Range
}

func (e *RefusedError) Error() string {
	if !e.Addr.IsValid() {
		return "not an IP address: refused by the webhook address policy"
	}
	what := e.Addr.String()
	if t, how := Unwrap(e.Addr); how != "" {
		what += " (" + how + " " + t.String() + ")"
	}
	if e.Host != "" {
		what = e.Host + " resolves to " + what + ", which"
	}
	fix := "list its range in " + SettingAllowCIDRs
	if e.Range.Private {
		fix = "set " + SettingAllowPrivate + "=true or list its range in " + SettingAllowCIDRs
	}
	return fmt.Sprintf("%s is %s: refused by the webhook address policy (an operator may %s)", what, e.Range.Name, fix)
}

// Check returns nil if a may be dialled, else a *RefusedError.
func (p Policy) Check(a netip.Addr) error {
	if !a.IsValid() {
		return &RefusedError{Addr: a, Range: Range{Name: "not an IP address"}}
	}
	t, _ := Unwrap(a)
	for _, pf := range p.Allow {
		if pf.Contains(t) || pf.Contains(a.WithZone("")) {
			return nil
		}
	}
	rg, special := Classify(a)
	if !special || (rg.Private && p.AllowPrivate) {
		return nil
	}
	return &RefusedError{Addr: a, Range: rg}
}

// Control is a net.Dialer Control hook: it refuses a connection whose
// address the policy refuses, before anything is sent. It sees the address
// the dialer is about to connect to, after DNS, so a name that resolved to
// a public address at registration and to a private one now is caught.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("dial %s %s: refused by the webhook address policy (only TCP)", network, address)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: refused by the webhook address policy: %w", address, err)
	}
	return p.Check(ap.Addr())
}

// ErrNumericHost is a host that is neither a name nor a canonical address.
var ErrNumericHost = errors.New("a host ending in a number must be a dotted-quad IPv4 address")

// CheckURL checks where u points: a literal address directly; a host name
// by resolving it and checking every answer (one refused answer refuses the
// URL, since the dialer may pick any). A resolution error is returned
// wrapped (a *net.DNSError says whether the name exists).
func (p Policy) CheckURL(ctx context.Context, u *url.URL) error {
	host := u.Hostname()
	if host == "" {
		return errors.New("the URL has no host")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return p.Check(a)
	}
	if endsInNumber(host) {
		// 127.1, 2130706433 and 0x7f.0.0.1 are 127.0.0.1 to browsers and
		// to the C resolver; refuse the spelling rather than guess.
		return fmt.Errorf("%q: %w", host, ErrNumericHost)
	}
	var addrs []netip.Addr
	if name := strings.ToLower(strings.TrimSuffix(host, ".")); name == "localhost" || strings.HasSuffix(name, ".localhost") {
		// Loopback by definition (RFC 6761): no need to ask DNS.
		addrs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}
	} else {
		res := p.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		var err error
		if addrs, err = res.LookupNetIP(ctx, "ip", host); err != nil {
			return fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	if len(addrs) == 0 {
		return fmt.Errorf("resolve %s: no addresses", host)
	}
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			var re *RefusedError
			if errors.As(err, &re) {
				re.Host = host
			}
			return err
		}
	}
	return nil
}

// endsInNumber reports whether the last label of host is a decimal or hex
// number: the WHATWG URL parser then reads the whole host as IPv4.
func endsInNumber(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if h, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// ParsePrefix parses one allow-list entry: a CIDR prefix in canonical form
// (10.1.0.0/16, fd12:3456::/32) or a single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: want a CIDR prefix such as 10.1.0.0/16 or an IP address", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	pf, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: want a CIDR prefix such as 10.1.0.0/16", s)
	}
	if pf != pf.Masked() {
		// 10.1.2.3/16 is ambiguous (one host or the /16?): say which.
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %s?", s, pf.Masked())
	}
	return pf, nil
}

// Transport is an HTTP transport whose every connection passes p's Control
// hook. It ignores HTTP(S)_PROXY: through a proxy the hook would only ever
// see the proxy's address.
func Transport(p Policy) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: p.Control}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Client is an HTTP client for tenant-supplied URLs: connections through
// Transport(p), redirects returned to the caller instead of followed (a
// redirect could point anywhere, and a webhook sender treats a 3xx as a
// failed delivery), and timeout for the whole exchange.
func Client(p Policy, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: Transport(p),
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
