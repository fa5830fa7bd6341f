package sigv4

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

const roomARN = "arn:aws:ivschat:us-west-2:123456789012:room/AbCdEf123456"

func TestPolicyAllows(t *testing.T) {
	tokensOnly := Policy{Statements: []Statement{{Actions: []string{"ivschat:CreateChatToken"}, Resources: []string{"*"}}}}
	readOnly := Policy{Statements: []Statement{{Actions: []string{"ivschat:Get*", "ivschat:List*"}, Resources: []string{"*"}}}}
	oneRegion := Policy{Statements: []Statement{{Actions: []string{"ivschat:*"}, Resources: []string{"arn:aws:ivschat:us-west-2:*:room/*"}}}}
	twoStatements := Policy{Statements: []Statement{
		{Actions: []string{"ivschat:SendEvent"}, Resources: []string{"arn:aws:ivschat:*:*:room/AbC???123456"}},
		{Actions: []string{"ivschat:DeleteMessage", "ivschat:DisconnectUser"}, Resources: []string{roomARN}},
	}}

	tests := []struct {
		name     string
		policy   Policy
		action   string
		resource string
		want     bool
	}{
		{"zero policy allows all", Policy{}, "ivschat:DeleteRoom", roomARN, true},
		{"empty statements allow all", Policy{Statements: []Statement{}}, "ivschat:Anything", "*", true},
		{"exact action", tokensOnly, "ivschat:CreateChatToken", roomARN, true},
		{"exact action, other action", tokensOnly, "ivschat:CreateRoom", roomARN, false},
		{"exact action is not a prefix", tokensOnly, "ivschat:CreateChatTokens", roomARN, false},
		{"action case-insensitive", tokensOnly, "IVSCHAT:createchattoken", roomARN, true},
		{"prefix wildcard Get", readOnly, "ivschat:GetRoom", roomARN, true},
		{"prefix wildcard List", readOnly, "ivschat:ListTagsForResource", roomARN, true},
		{"prefix wildcard case-insensitive", readOnly, "ivschat:getloggingconfiguration", "*", true},
		{"prefix wildcard, other action", readOnly, "ivschat:UpdateRoom", roomARN, false},
		{"ivschat:* matches every action", oneRegion, "ivschat:DeleteRoom", roomARN, true},
		{"ivschat:* does not match other services", oneRegion, "ivs:DeleteChannel", roomARN, false},
		{"resource region pattern", oneRegion, "ivschat:GetRoom", "arn:aws:ivschat:eu-west-1:123456789012:room/AbCdEf123456", false},
		{"resource pattern is case-sensitive", oneRegion, "ivschat:GetRoom", "arn:aws:ivschat:US-WEST-2:123456789012:room/AbCdEf123456", false},
		{"resource type pattern", oneRegion, "ivschat:GetLoggingConfiguration", "arn:aws:ivschat:us-west-2:123456789012:logging-configuration/abc", false},
		{"? wildcard", twoStatements, "ivschat:SendEvent", roomARN, true},
		{"? needs exactly one char", twoStatements, "ivschat:SendEvent", "arn:aws:ivschat:us-west-2:123456789012:room/AbC123456", false},
		{"second statement", twoStatements, "ivschat:DisconnectUser", roomARN, true},
		{"action from one statement, resource from another", twoStatements, "ivschat:DeleteMessage", "arn:aws:ivschat:eu-west-1:1:room/AbCxyz123456", false},
	}
	for _, tc := range tests {
		if got := tc.policy.Allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("%s: Allows(%q, %q) = %v, want %v", tc.name, tc.action, tc.resource, got, tc.want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		fold, want bool
	}{
		{"", "", false, true},
		{"", "a", false, false},
		{"*", "", false, true},
		{"*", "arn:aws:ivschat:x:y:room/z", false, true},
		{"a*", "a", false, true},
		{"*a", "ba", false, true},
		{"*a", "ab", false, false},
		{"a*b*c", "aXXbYYc", false, true},
		{"a*b*c", "aXXbYYcZ", false, false},
		{"a*b*c*", "abcabc", false, true},
		{"*room/*", "arn:aws:ivschat:us-west-2:1:room/abc", false, true},
		{"?", "", false, false},
		{"?", "é", false, true}, // one character, two bytes
		{"??", "é", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"**", "x", false, true},
		{"*?", "", false, false},
		{"*?", "x", false, true},
		{"ABC", "abc", false, false},
		{"ABC", "abc", true, true},
		{"a*Z", "AbcZ", true, true},
		{"Straße", "STRASSE", true, false}, // simple folding only, like IAM
		{"ÉTÉ", "été", true, true},
		{"k", "\u212a", true, true}, // Kelvin sign folds to k
		{"\xff", "\xfe", false, false},
		{"\xff", "\xff", false, true},
		{"[a]", "a", false, false}, // no character classes
		{"a\\*", "a\\xyz", false, true},
	}
	for _, tc := range tests {
		if got := Match(tc.pattern, tc.s, tc.fold); got != tc.want {
			t.Errorf("Match(%q, %q, %v) = %v, want %v", tc.pattern, tc.s, tc.fold, got, tc.want)
		}
	}
}

// TestMatchPathological makes sure many stars cannot blow up matching time.
func TestMatchPathological(t *testing.T) {
	pattern := strings.Repeat("a*", 50) + "b"
	s := strings.Repeat("a", 5000)
	if Match(pattern, s, false) {
		t.Fatal("matched")
	}
}

func BenchmarkPolicyAllows(b *testing.B) {
	p := Policy{Statements: []Statement{
		{Actions: []string{"ivschat:Get*", "ivschat:List*"}, Resources: []string{"*"}},
		{Actions: []string{"ivschat:CreateChatToken"}, Resources: []string{"arn:aws:ivschat:*:*:room/*"}},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if !p.Allows("ivschat:CreateChatToken", roomARN) {
			b.Fatal("denied")
		}
	}
}

// FuzzMatch checks Match against the equivalent regular expression (fine in
// a test; Match exists so the hot path needs none).
func FuzzMatch(f *testing.F) {
	f.Add("arn:aws:ivschat:*:*:room/*", roomARN, false)
	f.Add("ivschat:Get*", "IVSCHAT:getroom", true)
	f.Add("a*b?c*", "aXbYcZ", false)
	f.Add("k?", "\u212aé", true)
	f.Fuzz(func(t *testing.T, pattern, s string, fold bool) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			return // regexp reads invalid bytes as U+FFFD; Match compares bytes
		}
		if len(pattern) > 256 || len(s) > 256 {
			return // long inputs add nothing but make minimisation crawl
		}
		var re strings.Builder
		re.WriteString("^")
		if fold {
			re.WriteString("(?i)")
		}
		for _, r := range pattern {
			switch r {
			case '*':
				re.WriteString("(?s:.*)")
			case '?':
				re.WriteString("(?s:.)")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString("$")
		want := regexp.MustCompile(re.String()).MatchString(s)
		if got := Match(pattern, s, fold); got != want {
			t.Fatalf("Match(%q, %q, %v) = %v, regexp %s says %v", pattern, s, fold, got, re.String(), want)
		}
	})
}
