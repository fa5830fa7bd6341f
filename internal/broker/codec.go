package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Wire encoding of a Message between nodes (the payload of a Redis PUBLISH):
//
//	version  1 byte  (codecVersion)
//	kind     1 byte  (Kind)
//	frame    uvarint length, then the bytes
//	userID   uvarint length, then the bytes
//	reason   uvarint length, then the bytes
//	maxLen   zig-zag varint (MaxMessageLength)
//	maxRate  zig-zag varint (MaxMessageRate)
//	updated  zig-zag varint (UpdateTime in Unix nanoseconds; 0 = zero time)
//	review   uvarint length, then the bytes (ReviewURI)
//	fallback uvarint length, then the bytes (ReviewFallback)
//	history  uvarint (History+1; 0 = not said)
//
// updated, review and fallback were appended after the first release; a
// message that ends after maxRate (from an older node) decodes with them
// zero. history was appended with recent messages on join; a message that
// ends before it decodes with History -1 (the receiver keeps its setting).
//
// Every field is written for every kind: an absent field costs one byte,
// which is cheaper than a presence bitmap's branching and keeps the decoder
// trivially total. A MESSAGE frame of n bytes therefore travels as n+9 or
// n+10 bytes. Bytes after the last field are ignored so that a later release can
// append fields without a version bump (older nodes skip them during a
// rolling upgrade); a changed meaning of an existing field needs a new
// version byte, which older nodes refuse.
const codecVersion = 1

var errShortMessage = errors.New("broker: truncated message")

// appendMessage appends the wire encoding of m to dst.
func appendMessage(dst []byte, m Message) []byte {
	dst = append(dst, codecVersion, byte(m.Kind))
	dst = binary.AppendUvarint(dst, uint64(len(m.Frame)))
	dst = append(dst, m.Frame...)
	dst = binary.AppendUvarint(dst, uint64(len(m.UserID)))
	dst = append(dst, m.UserID...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Reason)))
	dst = append(dst, m.Reason...)
	dst = binary.AppendVarint(dst, int64(m.MaxMessageLength))
	dst = binary.AppendVarint(dst, int64(m.MaxMessageRate))
	var updated int64
	if !m.UpdateTime.IsZero() {
		updated = m.UpdateTime.UnixNano()
	}
	dst = binary.AppendVarint(dst, updated)
	dst = binary.AppendUvarint(dst, uint64(len(m.ReviewURI)))
	dst = append(dst, m.ReviewURI...)
	dst = binary.AppendUvarint(dst, uint64(len(m.ReviewFallback)))
	dst = append(dst, m.ReviewFallback...)
	dst = binary.AppendUvarint(dst, uint64(max(m.History, -1)+1))
	return dst
}

// decodeMessage parses a payload written by appendMessage. It takes a string
// because that is what the Redis client hands over; the Frame it returns is
// a fresh copy that subscribers may share. It returns an error, never
// panics, on any input.
func decodeMessage(p string) (Message, error) {
	if len(p) < 2 {
		return Message{}, errShortMessage
	}
	if p[0] != codecVersion {
		return Message{}, fmt.Errorf("broker: unknown message encoding version %d", p[0])
	}
	m := Message{Kind: Kind(p[1])}
	if m.Kind < KindFrame || m.Kind > KindRoomUpdated {
		return Message{}, fmt.Errorf("broker: unknown message kind %d", p[1])
	}
	d := decoder{p: p[2:]}
	frame := d.bytes()
	m.UserID = d.bytes()
	m.Reason = d.bytes()
	m.MaxMessageLength = d.int()
	m.MaxMessageRate = d.int()
	if d.p != "" {
		if updated := d.int64(); updated != 0 {
			m.UpdateTime = time.Unix(0, updated).UTC()
		}
		m.ReviewURI = d.bytes()
		m.ReviewFallback = d.bytes()
	}
	m.History = -1
	if d.p != "" && d.err == nil {
		h, k := uvarint(d.p)
		switch {
		case k <= 0:
			d.err = errShortMessage
		case h > math.MaxInt32:
			d.err = fmt.Errorf("broker: history %d out of range", h)
		default:
			d.p = d.p[k:]
			m.History = int(h) - 1
		}
	}
	if d.err != nil {
		return Message{}, d.err
	}
	if frame != "" {
		m.Frame = []byte(frame)
	}
	return m, nil
}

// decoder reads fields from p; after the first error every read returns a
// zero value and err keeps that first error.
type decoder struct {
	p   string
	err error
}

func (d *decoder) bytes() string {
	if d.err != nil {
		return ""
	}
	n, k := uvarint(d.p)
	if k <= 0 {
		d.err = errShortMessage
		return ""
	}
	d.p = d.p[k:]
	if n > uint64(len(d.p)) {
		d.err = errShortMessage
		return ""
	}
	s := d.p[:n]
	d.p = d.p[n:]
	return s
}

func (d *decoder) int() int {
	v := d.int64()
	if v < math.MinInt || v > math.MaxInt {
		d.err = fmt.Errorf("broker: integer %d out of range", v)
		return 0
	}
	return int(v)
}

func (d *decoder) int64() int64 {
	if d.err != nil {
		return 0
	}
	u, k := uvarint(d.p)
	if k <= 0 {
		d.err = errShortMessage
		return 0
	}
	d.p = d.p[k:]
	// Zig-zag, as binary.AppendVarint writes it.
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// uvarint is binary.Uvarint over a string, so that decoding does not copy
// the payload just to read its length prefixes.
func uvarint(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -(i + 1) // overflow
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}
