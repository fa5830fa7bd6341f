package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

func allowList(t *testing.T, s string) *AllowList {
	t.Helper()
	var l AllowList
	if err := l.Set(s); err != nil {
		t.Fatalf("Set(%q): %v", s, err)
	}
	return &l
}

func reasonOf(err error) string {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Reason
	}
	if err != nil {
		return "unexpected error: " + err.Error()
	}
	return ""
}

func TestCheckHost(t *testing.T) {
	open := &AllowList{}
	restricted := allowList(t, "hooks.example.com, *.internal.example, 10.0.0.0/8, 127.0.0.1")
	namesOnly := allowList(t, "hooks.example.com")
	for _, tc := range []struct {
		list *AllowList
		host string
		want string
	}{
		// Link-local, in every spelling, whatever the list says.
		{open, "169.254.169.254", ReasonLinkLocal},
		{open, "169.254.170.2", ReasonLinkLocal},
		{open, "::ffff:169.254.169.254", ReasonLinkLocal},
		{open, "::ffff:a9fe:a9fe", ReasonLinkLocal},
		{open, "::169.254.169.254", ReasonLinkLocal},
		{open, "::ffff:0:169.254.169.254", ReasonLinkLocal},
		{open, "64:ff9b::169.254.169.254", ReasonLinkLocal},
		{open, "2002:a9fe:a9fe::1", ReasonLinkLocal},
		{open, "fe80::1", ReasonLinkLocal},
		{open, "fe80::1%eth0", ReasonLinkLocal},
		{open, "febf::1", ReasonLinkLocal},
		{open, "fd00:ec2::254", ReasonLinkLocal},
		{open, "FD00:EC2::254", ReasonLinkLocal},
		{open, "224.0.0.1", ReasonLinkLocal},
		{open, "ff02::1", ReasonLinkLocal},
		{restricted, "169.254.169.254", ReasonLinkLocal},
		// Numbers that resolvers read as 169.254.169.254.
		{open, "2852039166", ReasonNumeric},
		{open, "0xa9.0xfe.0xa9.0xfe", ReasonNumeric},
		{open, "169.254.43518", ReasonNumeric},
		{open, "0xa9fea9fe", ReasonNumeric},
		// Everything else, including loopback, with an empty list.
		{open, "127.0.0.1", ""},
		{open, "::1", ""},
		{open, "localhost", ""},
		{open, "10.1.2.3", ""},
		{open, "169.255.0.1", ""},
		{open, "fd00:ec2::253", ""},
		{open, "hooks.example.com", ""},
		{open, "1password.com", ""},
		// A configured list.
		{restricted, "hooks.example.com", ""},
		{restricted, "HOOKS.example.com.", ""},
		{restricted, "a.internal.example", ""},
		{restricted, "10.9.8.7", ""},
		{restricted, "::ffff:10.9.8.7", ""},
		{restricted, "127.0.0.1", ""},
		{restricted, "127.0.0.2", ReasonNotAllowed},
		{restricted, "192.168.1.1", ReasonNotAllowed},
		// Names are judged by name, addresses by network.
		{restricted, "other.example.com", ReasonNotAllowed},
		{restricted, "localhost", ReasonNotAllowed},
		{restricted, "hooks.example.com.evil.test", ReasonNotAllowed},
		{restricted, "a.b.internal.example", ""},
		{restricted, "internal.example", ReasonNotAllowed},
		{namesOnly, "other.example.com", ReasonNotAllowed},
		{namesOnly, "example.com", ReasonNotAllowed},
		{namesOnly, "localhost", ReasonNotAllowed},
		{namesOnly, "127.0.0.1", ReasonNotAllowed},
		{allowList(t, "*.example.com"), "example.com", ReasonNotAllowed},
		{allowList(t, "*.example.com"), "a.b.example.com", ""},
	} {
		if got := reasonOf(tc.list.CheckHost(tc.host)); got != tc.want {
			t.Errorf("list %q, host %q: got %q, want %q", tc.list, tc.host, got, tc.want)
		}
	}
}

func TestSet(t *testing.T) {
	l := allowList(t, " Hooks.Example.com. ,10.1.2.3/8,::ffff:127.0.0.1, *.x.test,, fd00::/8")
	if got, want := l.String(), "hooks.example.com,10.0.0.0/8,127.0.0.1,*.x.test,fd00::/8"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if !allowList(t, "").Empty() || !allowList(t, " , ").Empty() || l.Empty() {
		t.Error("Empty() is wrong")
	}
	for _, bad := range []string{
		"169.254.169.254", "169.254.0.0/16", "169.254.169.0/24", "fe80::/10", "fe80::1", "fd00:ec2::254",
		"::ffff:169.254.169.254", "::ffff:10.0.0.0/104", "fe80::1%eth0",
		"hooks.example.com:8443", "http://hooks.example.com", "a..b", "-a.example", "*", "*.", "2852039166", "a b",
	} {
		var l AllowList
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted it as %q", bad, l.String())
		}
	}
	// Networks that merely contain link-local addresses are fine; those
	// addresses stay refused.
	wide := allowList(t, "0.0.0.0/0,::/0")
	if got := reasonOf(wide.CheckHost("169.254.169.254")); got != ReasonLinkLocal {
		t.Errorf("0.0.0.0/0 let 169.254.169.254 through: %q", got)
	}
}

// dial runs l's dial function against address, checking that a refusal
// happens before the connection is attempted.
func dial(t *testing.T, l *AllowList, d *net.Dialer, address string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := l.DialContext(d)(ctx, "tcp", address)
	if err == nil {
		conn.Close()
	}
	return err
}

func TestDialContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	// Refused before any connection is attempted.
	for _, addr := range []string{"169.254.169.254:80", "[::ffff:169.254.169.254]:80", "[fd00:ec2::254]:80", "[fe80::1%lo]:80"} {
		if got := reasonOf(dial(t, &AllowList{}, &net.Dialer{}, addr)); got != ReasonLinkLocal {
			t.Errorf("%s: got %q, want a link-local refusal", addr, got)
		}
	}
	for _, tc := range []struct {
		list, addr, want string
	}{
		{"", "127.0.0.1:" + port, ""},
		{"", "localhost:" + port, ""},
		{"127.0.0.0/8", "127.0.0.1:" + port, ""},
		{"localhost", "localhost:" + port, ""},
		{"10.0.0.0/8", "127.0.0.1:" + port, ReasonNotAllowed},
		{"hooks.example.com", "localhost:" + port, ReasonNotAllowed},
		// Listing an address does not allow the names that resolve to it.
		{"127.0.0.1", "localhost:" + port, ReasonNotAllowed},
	} {
		if got := reasonOf(dial(t, allowList(t, tc.list), &net.Dialer{}, tc.addr)); got != tc.want {
			t.Errorf("list %q, %s: got %q, want %q", tc.list, tc.addr, got, tc.want)
		}
	}
}

// The control hook judges the address actually dialed (after resolution),
// names it in the error, and runs before connect(2), so nothing leaves the
// machine. (A name resolving to such an address end to end: see the review
// package's tests.)
func TestCheckDialed(t *testing.T) {
	check := checkDialed("metadata.example", &net.Dialer{})
	for _, addr := range []string{"169.254.169.254:80", "[::ffff:169.254.169.254]:80", "[64:ff9b::a9fe:a9fe]:80", "[fd00:ec2::254]:443", "[fe80::1%eth0]:80"} {
		err := check(context.Background(), "tcp", addr, nil)
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != ReasonLinkLocal || re.Target != "metadata.example ("+addr+")" {
			t.Errorf("%s: got %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:80", "[::1]:80", "10.0.0.1:80", "[2001:db8::1]:80"} {
		if err := check(context.Background(), "tcp", addr, nil); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

// The dialer's own control hook still runs, after the check.
func TestDialContextChainsControl(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	var called []string
	d := &net.Dialer{Control: func(_, address string, _ syscall.RawConn) error {
		called = append(called, address)
		return nil
	}}
	if err := dial(t, &AllowList{}, d, srv.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	dial(t, &AllowList{}, d, "169.254.169.254:80")
	if len(called) != 1 || called[0] != srv.Listener.Addr().String() {
		t.Fatalf("the dialer's Control saw %q", called)
	}
}
