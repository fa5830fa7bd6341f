package messaging

import (
	"encoding/binary"
	"slices"
	"time"
	"unicode/utf8"
)

// Server frames are encoded by hand rather than with encoding/json for two
// reasons: the spec fixes the key order of every frame (byte-level diffing
// against the real service), and a broadcast is encoded once straight into the
// buffer that also holds its WebSocket header, so every connection in the room
// writes the same immutable bytes.

// maxHeaderLen is the longest unmasked server frame header (RFC 6455 §5.2:
// 2 bytes + 8-byte extended length).
const maxHeaderLen = 10

// frameBuilder accumulates a JSON payload behind maxHeaderLen bytes of head
// room; finish writes the header right-aligned in the head room so the frame
// is one contiguous slice without a copy.
type frameBuilder struct {
	b []byte
}

func newFrameBuilder(sizeHint int) frameBuilder {
	b := make([]byte, maxHeaderLen, maxHeaderLen+sizeHint)
	return frameBuilder{b: b}
}

// finish returns the complete text frame (FIN set, opcode 1, unmasked).
func (f *frameBuilder) finish() []byte {
	n := len(f.b) - maxHeaderLen
	var start int
	switch {
	case n <= 125:
		start = maxHeaderLen - 2
		f.b[start+1] = byte(n)
	case n <= 0xFFFF:
		start = maxHeaderLen - 4
		f.b[start+1] = 126
		binary.BigEndian.PutUint16(f.b[start+2:], uint16(n))
	default:
		start = 0
		f.b[1] = 127
		binary.BigEndian.PutUint64(f.b[2:], uint64(n))
	}
	f.b[start] = 0x80 | 0x1 // FIN + text
	return f.b[start:]
}

// controlFrame encodes an unmasked control frame (ping, pong or close).
// Control payloads are at most 125 bytes (RFC 6455 §5.5).
func controlFrame(op byte, payload []byte) []byte {
	if len(payload) > 125 {
		payload = payload[:125]
	}
	b := make([]byte, 2, 2+len(payload))
	b[0] = 0x80 | op
	b[1] = byte(len(payload))
	return append(b, payload...)
}

// WebSocket opcodes used by the gateway.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// closeFrame encodes a close frame with status code and a reason truncated to
// fit the 125-byte control payload without splitting a UTF-8 sequence.
func closeFrame(code uint16, reason string) []byte {
	const maxReason = 125 - 2
	if len(reason) > maxReason {
		cut := maxReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, code)
	p = append(p, reason...)
	return controlFrame(opClose, p)
}

// pingFrame is shared by every connection: it is immutable.
var pingFrame = controlFrame(opPing, nil)

// attr is one attribute in the order it is written. System events use a fixed
// order (the one captured from the real service); client and control-plane
// maps are written sorted by key, as encoding/json would.
type attr struct{ k, v string }

func sortedAttrs(m map[string]string) []attr {
	if len(m) == 0 {
		return nil
	}
	out := make([]attr, 0, len(m))
	for k, v := range m {
		out = append(out, attr{k, v})
	}
	slices.SortFunc(out, func(a, b attr) int {
		switch {
		case a.k < b.k:
			return -1
		case a.k > b.k:
			return 1
		}
		return 0
	})
	return out
}

func appendAttrs(b []byte, attrs []attr) []byte {
	b = append(b, '{')
	for i, a := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a.k)
		b = append(b, ':')
		b = appendJSONString(b, a.v)
	}
	return append(b, '}')
}

func attrsLen(attrs []attr) int {
	n := 2
	for _, a := range attrs {
		n += len(a.k) + len(a.v) + 6
	}
	return n
}

// appendSendTime writes SendTime as the real service does: RFC 3339 in UTC
// with nanoseconds, trailing zeros trimmed (time.RFC3339Nano).
func appendSendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// encodeSender pre-encodes a connection's Sender object once at connect
// time, so broadcasting a message copies it instead of re-encoding it.
func encodeSender(userID string, attrs map[string]string) []byte {
	b := make([]byte, 0, 32+len(userID))
	b = append(b, `{"UserId":`...)
	b = appendJSONString(b, userID)
	b = append(b, `,"Attributes":`...)
	b = appendAttrs(b, sortedAttrs(attrs))
	return append(b, '}')
}

// encodeMessage encodes a MESSAGE frame. Key order: Type, Id, RequestId,
// Attributes, Content, SendTime, Sender.
func encodeMessage(id, requestID string, attrs []attr, content string, sendTime time.Time, sender []byte) []byte {
	f := newFrameBuilder(110 + len(id) + len(requestID) + attrsLen(attrs) + len(content) + len(sender))
	b := f.b
	b = append(b, `{"Type":"MESSAGE","Id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"RequestId":`...)
	b = appendJSONString(b, requestID)
	b = append(b, `,"Attributes":`...)
	b = appendAttrs(b, attrs)
	b = append(b, `,"Content":`...)
	b = appendJSONString(b, content)
	b = append(b, `,"SendTime":`...)
	b = appendSendTime(b, sendTime)
	b = append(b, `,"Sender":`...)
	b = append(b, sender...)
	b = append(b, '}')
	f.b = b
	return f.finish()
}

// encodeEvent encodes an EVENT frame. Key order: Type, Id, RequestId,
// EventName, Attributes, SendTime.
func encodeEvent(id, requestID, eventName string, attrs []attr, sendTime time.Time) []byte {
	f := newFrameBuilder(100 + len(id) + len(requestID) + len(eventName) + attrsLen(attrs))
	b := f.b
	b = append(b, `{"Type":"EVENT","Id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"RequestId":`...)
	b = appendJSONString(b, requestID)
	b = append(b, `,"EventName":`...)
	b = appendJSONString(b, eventName)
	b = append(b, `,"Attributes":`...)
	b = appendAttrs(b, attrs)
	b = append(b, `,"SendTime":`...)
	b = appendSendTime(b, sendTime)
	b = append(b, '}')
	f.b = b
	return f.finish()
}

// encodeError encodes an ERROR frame. ErrorCode is a JSON number: the JS SDK
// drops an ERROR whose code is a string.
func encodeError(id, requestID string, code int, message string) []byte {
	f := newFrameBuilder(80 + len(id) + len(requestID) + len(message))
	b := f.b
	b = append(b, `{"Type":"ERROR","Id":`...)
	b = appendJSONString(b, id)
	b = append(b, `,"RequestId":`...)
	b = appendJSONString(b, requestID)
	b = append(b, `,"ErrorCode":`...)
	b = appendInt(b, code)
	b = append(b, `,"ErrorMessage":`...)
	b = appendJSONString(b, message)
	b = append(b, '}')
	f.b = b
	return f.finish()
}

// System event names and their attribute keys (spec §4.3).
const (
	eventDeleteMessage  = "aws:DELETE_MESSAGE"
	eventDisconnectUser = "aws:DISCONNECT_USER"
)

// deleteMessageAttrs sends both MessageId (current) and MessageID
// (deprecated): JS SDK 1.1.1 reads only MessageID and drops the event without
// it, newer clients read MessageId. Reason is omitted when none was given.
func deleteMessageAttrs(messageID, reason string) []attr {
	a := []attr{{"MessageId", messageID}, {"MessageID", messageID}}
	if reason != "" {
		a = append(a, attr{"Reason", reason})
	}
	return a
}

func disconnectUserAttrs(userID, reason string) []attr {
	if reason == "" {
		return []attr{{"UserId", userID}}
	}
	return []attr{{"Reason", reason}, {"UserId", userID}}
}

func appendInt(b []byte, n int) []byte {
	if n < 0 {
		b = append(b, '-')
		n = -n
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string the way encoding/json does
// without HTML escaping: quotes, backslashes and control characters escaped,
// invalid UTF-8 replaced by U+FFFD, and U+2028/U+2029 escaped because some
// JavaScript parsers treat them as line terminators.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
