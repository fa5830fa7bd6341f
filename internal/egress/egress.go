// Package egress decides which targets the server may connect to on behalf
// of its API callers (webhook review handlers, whose URL any CreateRoom
// caller chooses). Without it, a caller could make the server fetch its own
// cloud credentials from the instance metadata service, or reach any host
// the server can reach.
//
// Link-local addresses are always refused: 169.254.0.0/16 (the metadata
// services of AWS, GCP, Azure and others, ECS task credentials), fe80::/10,
// the link-local multicast ranges, and fd00:ec2::254 (EC2's IPv6 metadata
// address, which is not link-local by prefix). IPv6 forms that carry an IPv4
// address — IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
// IPv4-translated (::ffff:0:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4
// (2002:AABB:CCDD::) — are judged by that IPv4 address.
//
// An AllowList narrows the targets further. When it is not empty, a target
// named by a host name must be on its list of names, and a target named by
// an IP address must be in one of its networks. A target is judged by what
// the URL says, so whether it is allowed is known before anything is
// resolved; only the link-local rule needs the resolved address.
//
// Checking a URL's host once is not enough: a name can resolve to anything,
// and to something else on the next lookup (DNS rebinding). DialContext
// therefore checks every address the dialer actually connects to, after
// resolution, before the connection is attempted.
package egress

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// Reasons of a RefusedError.
const (
	ReasonLinkLocal  = "link-local addresses are never allowed (cloud metadata services live there)"
	ReasonNotAllowed = "not on the allow-list configured for this server"
	ReasonNumeric    = "not a canonical IP address or host name (numeric host names are ambiguous)"
)

// RefusedError is a target the policy does not allow.
type RefusedError struct {
	// Target is the host, with the dialed address when it was refused at
	// dial time ("metadata.example (169.254.169.254:80)").
	Target string
	Reason string
}

func (e *RefusedError) Error() string { return "target " + e.Target + " refused: " + e.Reason }

// AllowList is a set of host names and IP networks. The zero value is empty:
// every target that is not link-local is allowed. An AllowList is not
// changed after Set, so it is safe for concurrent use.
type AllowList struct {
	// hosts are lower case without a trailing dot; "*.example.com" matches
	// every name below example.com, not example.com itself.
	hosts    []string
	prefixes []netip.Prefix
	entries  []string // as String prints them
}

// Set parses a comma-separated list of host names ("hooks.example.com",
// "*.example.com"), IP addresses and CIDR prefixes. It implements
// flag.Value.
func (l *AllowList) Set(v string) error {
	var out AllowList
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			if err := out.add(part); err != nil {
				return err
			}
		}
	}
	*l = out
	return nil
}

func (l *AllowList) String() string { return strings.Join(l.entries, ",") }

// Empty reports whether the list allows every target that is not link-local.
func (l *AllowList) Empty() bool { return len(l.hosts) == 0 && len(l.prefixes) == 0 }

func (l *AllowList) add(s string) error {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() {
			return fmt.Errorf("%q: write IPv4 networks in dotted form (e.g. 10.0.0.0/8)", s)
		}
		p = p.Masked()
		if onlyLinkLocal(p) {
			return fmt.Errorf("%q: link-local addresses are always refused", s)
		}
		l.prefixes = append(l.prefixes, p)
		l.entries = append(l.entries, p.String())
		return nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return fmt.Errorf("%q: an IPv6 zone cannot be allowed", s)
		}
		a = a.Unmap()
		if isLinkLocal(a) {
			return fmt.Errorf("%q: link-local addresses are always refused", s)
		}
		l.prefixes = append(l.prefixes, netip.PrefixFrom(a, a.BitLen()))
		l.entries = append(l.entries, a.String())
		return nil
	}
	name := normalize(s)
	if !validHostPattern(name) {
		return fmt.Errorf("%q is not a host name, IP address or CIDR prefix", s)
	}
	if numeric(name) {
		return fmt.Errorf("%q: %s", s, ReasonNumeric)
	}
	l.hosts = append(l.hosts, name)
	l.entries = append(l.entries, name)
	return nil
}

// CheckHost judges a URL's host (an IP literal without brackets, or a name)
// as far as it can be judged without resolving it: everything but what a
// name resolves to, which DialContext checks.
func (l *AllowList) CheckHost(host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		if isLinkLocal(a) {
			return &RefusedError{Target: host, Reason: ReasonLinkLocal}
		}
	} else if numeric(normalize(host)) {
		// The C resolver reads "2852039166" or "0xa9.0xfe.0xa9.0xfe" as an
		// address; a host name is never all-numeric in its last label.
		return &RefusedError{Target: host, Reason: ReasonNumeric}
	}
	if !l.allowsHost(host) {
		return &RefusedError{Target: host, Reason: ReasonNotAllowed}
	}
	return nil
}

// allowsHost reports whether the list allows a URL's host: an IP literal in
// one of its networks, or one of its names.
func (l *AllowList) allowsHost(host string) bool {
	if l.Empty() {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.WithZone("").Unmap()
		for _, p := range l.prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	name := normalize(host)
	for _, h := range l.hosts {
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			if strings.HasSuffix(name, suffix) && len(name) > len(suffix) {
				return true
			}
		} else if name == h {
			return true
		}
	}
	return false
}

// DialContext returns a dial function for http.Transport that connects only
// to allowed targets: the host of the address must pass CheckHost, and d
// (copied) dials it with every address it tries checked in the socket's
// control hook, after name resolution and before the connection is
// attempted. A refusal is a *RefusedError (wrapped in a *net.OpError at dial
// time). The function must not be used behind a proxy, whose address is all
// it would see.
func (l *AllowList) DialContext(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, err
		}
		if err := l.CheckHost(host); err != nil {
			return nil, err
		}
		dd := *d
		dd.Control, dd.ControlContext = nil, checkDialed(host, d)
		return dd.DialContext(ctx, network, address)
	}
}

// checkDialed returns the control hook that refuses a link-local address
// dialed for host, then runs d's own hook.
func checkDialed(host string, d *net.Dialer) func(ctx context.Context, network, address string, c syscall.RawConn) error {
	next, nextPlain := d.ControlContext, d.Control
	return func(ctx context.Context, network, dialed string, c syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(dialed)
		if err != nil {
			return &RefusedError{Target: host, Reason: "unexpected dialed address " + dialed}
		}
		if isLinkLocal(ap.Addr()) {
			return &RefusedError{Target: host + " (" + dialed + ")", Reason: ReasonLinkLocal}
		}
		switch {
		case next != nil:
			return next(ctx, network, dialed, c)
		case nextPlain != nil:
			return nextPlain(network, dialed, c)
		}
		return nil
	}
}

var (
	linkLocal4   = netip.MustParsePrefix("169.254.0.0/16")
	linkLocal6   = netip.MustParsePrefix("fe80::/10")
	ec2Metadata6 = netip.MustParseAddr("fd00:ec2::254")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	// IPv6 prefixes whose last 32 bits are an IPv4 address.
	embedsIPv4 = []netip.Prefix{
		netip.MustParsePrefix("::/96"),           // IPv4-compatible (RFC 4291 §2.5.5.1)
		netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (RFC 2765)
		netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 well-known prefix (RFC 6052)
	}
)

func isLinkLocal(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a == ec2Metadata6 {
		return true
	}
	if v4, ok := embeddedIPv4(a); ok {
		return isLinkLocal(v4)
	}
	return false
}

// embeddedIPv4 returns the IPv4 address that an IPv6 address carries.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	if sixToFour.Contains(a) {
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	for _, p := range embedsIPv4 {
		if p.Contains(a) {
			return netip.AddrFrom4([4]byte(b[12:16])), true
		}
	}
	return netip.Addr{}, false
}

// onlyLinkLocal reports whether every address of p is link-local, so that an
// allow-list entry p could never match.
func onlyLinkLocal(p netip.Prefix) bool {
	for _, ll := range []netip.Prefix{linkLocal4, linkLocal6} {
		if p.Bits() >= ll.Bits() && ll.Contains(p.Addr()) {
			return true
		}
	}
	return p.Bits() == 128 && p.Addr() == ec2Metadata6
}

func normalize(host string) string { return strings.ToLower(strings.TrimSuffix(host, ".")) }

// numeric reports whether name's last label is a decimal or 0x-hex number:
// no top-level domain is, but inet_aton-style resolvers read such names as
// IPv4 addresses.
func numeric(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// validHostPattern accepts a host name, optionally starting with "*.".
func validHostPattern(name string) bool {
	name = strings.TrimPrefix(name, "*.")
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
