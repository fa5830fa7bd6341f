package chat

import "testing"

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 10000 {
		id := NewID()
		if !IsID(id) {
			t.Fatalf("NewID() = %q, not 12 alphanumerics", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestParseARN(t *testing.T) {
	good := []struct {
		in   string
		want ARN
	}{
		{"arn:aws:ivschat:us-west-2:123456789012:room/AbCdEf123456", ARN{"us-west-2", "123456789012", KindRoom, "AbCdEf123456"}},
		{"arn:aws:ivschat:eu-central-1:1:logging-configuration/x-y", ARN{"eu-central-1", "1", KindLoggingConfiguration, "x-y"}},
	}
	for _, tc := range good {
		got, ok := ParseARN(tc.in)
		if !ok || got != tc.want || got.String() != tc.in {
			t.Errorf("ParseARN(%q) = %+v, %v", tc.in, got, ok)
		}
	}
	for _, bad := range []string{
		"", "arn:aws:ivschat:us-west-2:123456789012:room/", "arn:aws:ivschat:us-west-2:123456789012:channel/abc",
		"arn:aws:ivs:us-west-2:123456789012:room/abc", "arn:aws-cn:ivschat:cn-north-1:123456789012:room/abc",
		"arn:aws:ivschat:US-WEST-2:123456789012:room/abc", "arn:aws:ivschat:us-west-2:12a:room/abc",
		"arn:aws:ivschat:us-west-2:123456789012:room/ab_c", "arn:aws:ivschat::123456789012:room/abc",
		"arn:aws:ivschat:us-west-2:123456789012:room/a/b",
	} {
		if a, ok := ParseARN(bad); ok {
			t.Errorf("ParseARN(%q) accepted: %+v", bad, a)
		}
	}
}
