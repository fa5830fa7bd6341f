package messaging

import "time"

// A connection is judged a slow consumer on the frames that were offered to
// it at least a grace ago (offerLog), not on what the previous flush
// offered. Under load a flush may offer a whole burst at once (1,000
// SendEvents of ~1.1 KB: more than the default budget), and in a room that
// flushes on arrival the next flush starts a millisecond later: judged
// against that flush's offer, a reader whose goroutine was starved of CPU
// for that millisecond was dropped with 1008, a viewer kicked during a
// legitimate burst. Judged against what was offered a grace ago, only a
// client that stays more than Options.MaxPendingBytes behind for the grace
// is slow.
//
// The grace is a tenth of Options.WriteTimeout: 1 s by default.
//
//   - Long next to the stalls of a healthy reader: a goroutine or a
//     browser's main thread kept from running for tens to hundreds of
//     milliseconds on a busy machine, a TCP retransmission on a lossy
//     mobile link (Linux's least retransmission timeout is 200 ms), a
//     spread walk reaching the connection up to Options.WriteCoalesce after
//     its flush started.
//   - Short next to WriteTimeout, so that the byte budget stays the rule
//     that acts first on a client that does not keep up in a busy room:
//     what the room's ring holds for it is MaxPendingBytes plus about a
//     grace of the room's broadcasts (offerLog's marks add up to a quarter
//     of a grace), shared with every other connection of the room — at 100
//     messages/s of 1 KB, 100 KB more — where a blocked write is given all
//     of WriteTimeout. maxRingFrames still bounds a room whatever its rate.
//   - A share of WriteTimeout rather than a constant: WriteTimeout is how
//     long the deployment lets a client take nothing before giving up on
//     it, so an embedder that shortens it to fail fast gets a shorter grace
//     too, and the grace never outlasts a blocked write.
const slowGraceShare = 10

// slowConsumerGrace is how long frames must have been offered to a
// connection before they count against Options.MaxPendingBytes.
func (o *Options) slowConsumerGrace() time.Duration {
	return o.WriteTimeout / slowGraceShare
}

// Resolution of the offer log: its marks are about grace/offerResolution
// apart, so the offer a connection is judged on is that of the newest flush
// that started at least a grace ago, or of one at most a quarter of a grace
// before it. Marks two apart are always at least a step apart (see record),
// so at most 2 × offerResolution marks are younger than the grace, plus the
// one being recorded.
const (
	offerResolution = 4
	offerMarks      = 2*offerResolution + 2
)

// offerLog remembers, per room, how far the room's flushes had offered its
// frames when, so that a flush can tell which frames every connection it
// walks was offered at least a grace ago. It is a handful of marks per room
// (176 bytes, no allocation) and is updated once per flush start under
// room.mu; the walk gets one number from it, so judging a connection costs
// what it did before.
//
// The zero value is an empty log: nothing was offered a grace ago.
type offerLog struct {
	// marks[:n] are flush starts, oldest first, all younger than the grace
	// as of the last record. The newest mark slides forward with every
	// flush until it is a resolution step after the one before it (record).
	marks [offerMarks]offerMark
	n     int
	// judged is head as of the newest mark that reached the grace.
	judged uint64
}

type offerMark struct {
	at   time.Duration // since offerEpoch: 16 bytes a mark instead of 32
	head uint64        // every frame below it was offered at that time
}

// offerEpoch is the origin of offerMark.at. Durations between time.Now
// readings use the monotonic clock, so the marks do not jump with the
// wall clock.
var offerEpoch = time.Now()

// lastOffer is head as of the last recorded flush (zero before the first):
// every connection that flush walked has been offered the frames below it.
// After a record the log always holds that flush's mark.
func (l *offerLog) lastOffer() uint64 {
	if l.n == 0 {
		return 0
	}
	return l.marks[l.n-1].head
}

// record notes that a flush starting at now offers the frames below head,
// and returns head as of the newest flush that started at least grace ago
// (at most a resolution step earlier than that flush, when a later one
// moved its mark): every frame below it was offered that long ago. Zero
// when no flush is that old.
func (l *offerLog) record(now time.Time, head uint64, grace time.Duration) uint64 {
	at := now.Sub(offerEpoch)
	aged := 0
	for aged < l.n && at-l.marks[aged].at >= grace {
		l.judged = l.marks[aged].head
		aged++
	}
	if aged > 0 {
		l.n = copy(l.marks[:], l.marks[aged:l.n])
	}
	mark := offerMark{at: at, head: head}
	switch {
	case l.n >= 2 && at-l.marks[l.n-2].at < grace/offerResolution,
		l.n == len(l.marks): // only if the step rounds down (a grace of nanoseconds): never grow
		// The mark before the newest is less than a step ago: move the
		// newest here rather than add one, so that marks two apart stay a
		// step apart (the log stays small) and the newest mark is always
		// the last flush (a room that goes quiet is judged on everything
		// its last flush offered).
		l.marks[l.n-1] = mark
	default:
		l.marks[l.n] = mark
		l.n++
	}
	return l.judged
}
