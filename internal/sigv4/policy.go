package sigv4

import (
	"unicode"
	"unicode/utf8"
)

// Policy is an allow-only access policy, a small subset of IAM: a request is
// allowed if any statement matches both its action and its resource. There
// is no Deny and no Condition, which keeps evaluation obvious for operators
// writing a config file. The zero Policy allows everything, so keys
// configured without a policy keep full access.
type Policy struct{ Statements []Statement }

// Statement allows the listed actions on the listed resources.
type Statement struct {
	// Actions such as "ivschat:CreateChatToken", "ivschat:*" or
	// "ivschat:Get*", matched case-insensitively like IAM actions.
	Actions []string
	// Resources are ARN patterns such as "arn:aws:ivschat:*:*:room/*" or "*",
	// matched case-sensitively like IAM resources.
	Resources []string
}

// Allows reports whether p permits action on resource.
func (p Policy) Allows(action, resource string) bool {
	if len(p.Statements) == 0 {
		return true
	}
	for _, s := range p.Statements {
		if matchAny(s.Actions, action, true) && matchAny(s.Resources, resource, false) {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		if Match(p, s, foldCase) {
			return true
		}
	}
	return false
}

// Match reports whether s matches pattern, where '*' matches any run of
// characters (including '/' and ':', unlike path globs, because IAM's '*'
// spans ARN separators) and '?' exactly one character. With foldCase, letters
// compare under Unicode simple case folding.
//
// It is the classic greedy matcher that backtracks only to the last '*', so
// it runs in O(len(pattern)·len(s)) at worst, allocates nothing, and cannot be
// driven into exponential time by hostile patterns the way naive recursion
// can.
func Match(pattern, s string, foldCase bool) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[i:])
				p++
				i += n
				continue
			default:
				// ASCII fast path, inline: ARNs and action names are ASCII.
				if pc, sc := pattern[p], s[i]; pc < utf8.RuneSelf && sc < utf8.RuneSelf {
					if pc == sc || foldCase && pc|0x20 == sc|0x20 && 'a' <= pc|0x20 && pc|0x20 <= 'z' {
						p++
						i++
						continue
					}
					break
				}
				if pn, sn, ok := sameRune(pattern[p:], s[i:], foldCase); ok {
					p += pn
					i += sn
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last '*' swallow one more character and retry after it.
		_, n := utf8.DecodeRuneInString(s[starI:])
		starI += n
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// sameRune compares the first characters of a and b, at least one of which
// is not ASCII (Match handles ASCII pairs itself), and returns their byte
// lengths. Invalid UTF-8 bytes compare as bytes, so distinct invalid bytes
// are never equal. Folding covers non-ASCII letters that fold to ASCII ones,
// such as the Kelvin sign and k.
func sameRune(a, b string, foldCase bool) (int, int, bool) {
	ra, na := utf8.DecodeRuneInString(a)
	rb, nb := utf8.DecodeRuneInString(b)
	if ra == utf8.RuneError && na == 1 || rb == utf8.RuneError && nb == 1 {
		return na, nb, na == nb && a[0] == b[0]
	}
	if ra == rb {
		return na, nb, true
	}
	if !foldCase {
		return na, nb, false
	}
	for r := unicode.SimpleFold(ra); r != ra; r = unicode.SimpleFold(r) {
		if r == rb {
			return na, nb, true
		}
	}
	return na, nb, false
}
