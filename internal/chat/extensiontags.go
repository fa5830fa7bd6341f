package chat

import "time"

// Extension tags: room options beyond Amazon IVS Chat that ride on ordinary
// tags, so every SDK, the CLI and the console can set them. A room without
// them behaves exactly as the service does. The control plane refuses a room
// tag with one of these keys whose value is out of range
// (ValidationException); everything that reads them treats a missing or
// invalid value as "off" (a value stored before validation existed cannot
// switch anything on by accident). On logging configurations the keys mean
// nothing and are ordinary tags.
const (
	// TagHistory is the number of recent messages replayed to a new
	// connection (1–100).
	TagHistory = "ivschatd:history"
	// TagViewerCountInterval is the period, in seconds (5–300), of the
	// room's ivschatd:VIEWER_COUNT events.
	TagViewerCountInterval = "ivschatd:viewer-count-interval"

	MinHistory                    = 1
	MaxHistory                    = 100
	MinViewerCountIntervalSeconds = 5
	MaxViewerCountIntervalSeconds = 300
)

// ExtensionTag describes the accepted values of one extension tag: a decimal
// integer in [Min, Max], in Unit.
type ExtensionTag struct {
	Key      string
	Min, Max int
	Unit     string
}

// ExtensionTags lists every extension tag a room accepts, in key order.
var ExtensionTags = []ExtensionTag{
	{Key: TagHistory, Min: MinHistory, Max: MaxHistory, Unit: "messages"},
	{Key: TagViewerCountInterval, Min: MinViewerCountIntervalSeconds, Max: MaxViewerCountIntervalSeconds, Unit: "seconds"},
}

// ExtensionTagInt parses the value of an extension tag: only ASCII digits
// (no sign, no spaces, no exponent), within [min, max]. ok is false for any
// other value.
func ExtensionTagInt(value string, min, max int) (n int, ok bool) {
	if value == "" || len(value) > 9 {
		return 0, false
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if n < min || n > max {
		return 0, false
	}
	return n, true
}

// ViewerCountInterval returns the period of a room's viewer-count events,
// and false when the room has none (tag missing or invalid).
func ViewerCountInterval(tags map[string]string) (time.Duration, bool) {
	v, present := tags[TagViewerCountInterval]
	if !present {
		return 0, false
	}
	n, ok := ExtensionTagInt(v, MinViewerCountIntervalSeconds, MaxViewerCountIntervalSeconds)
	if !ok {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}
