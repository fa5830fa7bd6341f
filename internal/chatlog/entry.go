package chatlog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"
)

// Spool entry layout (little-endian):
//
//	u32 bodyLen | u32 crc32c(body) | body
//	body = u8 version(1) | i64 unix ms | u16 len(roomID) | roomID | record JSON
//
// The length prefix lets the reader step from entry to entry; the checksum
// covers the whole body so a torn tail after kill -9 (a header whose body was
// only partly written, or garbage left by a partial write) is detected rather
// than delivered. The record JSON is the exact line that destinations
// receive, so replay after a restart sends byte-identical records.
const (
	entryHeaderLen = 8
	bodyVersion    = 1
	bodyFixedLen   = 1 + 8 + 2
	// maxEntryBody bounds one entry. It is far above any chat frame (messages
	// are limited to a few KiB) and below what every destination accepts per
	// record, and it lets the decoder reject a garbage length without
	// allocating it.
	maxEntryBody = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errShortEntry means the buffer ends before the entry does: at the tail
	// of the log that is a torn write.
	errShortEntry = errors.New("chatlog: truncated spool entry")
	// errCorruptEntry means the bytes are not a valid entry.
	errCorruptEntry = errors.New("chatlog: corrupt spool entry")
)

// entry is one spooled record.
type entry struct {
	lsn    uint64 // position in the destination's log (set by the reader)
	size   int    // encoded size including the header
	at     time.Time
	roomID string
	record []byte // one JSON record, no trailing newline
}

// encodeBody builds the checksummed part of an entry. The result is shared,
// read-only, by every destination the record goes to.
func encodeBody(at time.Time, roomID string, record []byte) []byte {
	b := make([]byte, entryHeaderLen, entryHeaderLen+bodyFixedLen+len(roomID)+len(record))
	b = append(b, bodyVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(at.UnixMilli()))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(roomID)))
	b = append(b, roomID...)
	b = append(b, record...)
	body := b[entryHeaderLen:]
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[4:8], crc32.Checksum(body, castagnoli))
	return b
}

// decodeEntry decodes the entry at the start of b and returns its encoded
// length. The returned entry's slices alias b.
func decodeEntry(b []byte) (entry, int, error) {
	if len(b) < entryHeaderLen {
		return entry{}, 0, errShortEntry
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n < bodyFixedLen || n > maxEntryBody {
		return entry{}, 0, errCorruptEntry
	}
	if uint64(len(b)-entryHeaderLen) < uint64(n) {
		return entry{}, 0, errShortEntry
	}
	body := b[entryHeaderLen : entryHeaderLen+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:8]) {
		return entry{}, 0, errCorruptEntry
	}
	e, err := decodeBody(body)
	if err != nil {
		return entry{}, 0, err
	}
	e.size = entryHeaderLen + int(n)
	return e, e.size, nil
}

func decodeBody(body []byte) (entry, error) {
	if len(body) < bodyFixedLen || body[0] != bodyVersion {
		return entry{}, errCorruptEntry
	}
	ms := int64(binary.LittleEndian.Uint64(body[1:9]))
	rl := int(binary.LittleEndian.Uint16(body[9:11]))
	if len(body)-bodyFixedLen < rl {
		return entry{}, errCorruptEntry
	}
	return entry{
		at:     time.UnixMilli(ms).UTC(),
		roomID: string(body[bodyFixedLen : bodyFixedLen+rl]),
		record: body[bodyFixedLen+rl:],
	}, nil
}
