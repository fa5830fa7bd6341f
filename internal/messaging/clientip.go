package messaging

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address of the client behind a request: the TCP peer, or,
// when the peer is one of the trusted proxies (a TLS-terminating load
// balancer), the nearest address in X-Forwarded-For that is not itself a
// trusted proxy. Untrusted peers cannot choose their address by sending the
// header. The address is what review handlers receive as Sender.Ip.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer := hostOf(r.RemoteAddr)
	addr, err := netip.ParseAddr(peer)
	if err != nil || !isTrusted(addr, trusted) {
		return peer
	}
	// Entries are appended by each proxy, so the rightmost untrusted one is
	// the client as seen by the first proxy we trust.
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		a, err := netip.ParseAddr(hostOf(hop))
		if err != nil {
			break // garbage: stop at the last address we could trust
		}
		addr = a.Unmap()
		if !isTrusted(addr, trusted) {
			return addr.String()
		}
	}
	return addr.String()
}

// hostOf strips a port, if any, from an address.
func hostOf(s string) string {
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
