package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/ivschatd/ivschatd/internal/chat"
)

const headerRequestID = "x-amzn-RequestId"

// timeFormat renders the model's Time shape: RFC 3339, UTC, milliseconds, as
// the real service does. SDKs accept any RFC 3339 value.
const timeFormat = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types are marshalled; they cannot fail.
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

type reviewHandlerJSON struct {
	URI            string `json:"uri"`
	FallbackResult string `json:"fallbackResult"`
}

// roomJSON is the Room output shape (Create/Get/UpdateRoom) and, without the two
// limits, the RoomSummary shape of ListRooms. name, tags and
// loggingConfigurationIdentifiers are always present; an absent review handler
// is omitted (README, "Compatibility notes").
type roomJSON struct {
	ARN                             string             `json:"arn"`
	ID                              string             `json:"id"`
	Name                            string             `json:"name"`
	CreateTime                      string             `json:"createTime"`
	UpdateTime                      string             `json:"updateTime"`
	MaximumMessageRatePerSecond     int                `json:"maximumMessageRatePerSecond,omitempty"`
	MaximumMessageLength            int                `json:"maximumMessageLength,omitempty"`
	MessageReviewHandler            *reviewHandlerJSON `json:"messageReviewHandler,omitempty"`
	Tags                            map[string]string  `json:"tags"`
	LoggingConfigurationIdentifiers []string           `json:"loggingConfigurationIdentifiers"`
}

func (h *Handler) roomJSON(r *chat.Room, summary bool) roomJSON {
	out := roomJSON{
		ARN:                             h.arn(chat.KindRoom, r.ID),
		ID:                              r.ID,
		Name:                            r.Name,
		CreateTime:                      formatTime(r.CreateTime),
		UpdateTime:                      formatTime(r.UpdateTime),
		Tags:                            nonNilTags(r.Tags),
		LoggingConfigurationIdentifiers: make([]string, 0, len(r.LoggingConfigurationIDs)),
	}
	if !summary {
		out.MaximumMessageRatePerSecond = r.MaximumMessageRatePerSecond
		out.MaximumMessageLength = r.MaximumMessageLength
	}
	if r.MessageReviewHandler != nil {
		out.MessageReviewHandler = &reviewHandlerJSON{URI: r.MessageReviewHandler.URI, FallbackResult: r.MessageReviewHandler.FallbackResult}
	}
	for _, id := range r.LoggingConfigurationIDs {
		out.LoggingConfigurationIdentifiers = append(out.LoggingConfigurationIdentifiers, h.arn(chat.KindLoggingConfiguration, id))
	}
	return out
}

type s3JSON struct {
	BucketName string `json:"bucketName"`
}
type cloudWatchLogsJSON struct {
	LogGroupName string `json:"logGroupName"`
}
type firehoseJSON struct {
	DeliveryStreamName string `json:"deliveryStreamName"`
}

// destinationJSON is the union DestinationConfiguration; exactly one member is
// set on output.
type destinationJSON struct {
	S3             *s3JSON             `json:"s3,omitempty"`
	CloudWatchLogs *cloudWatchLogsJSON `json:"cloudWatchLogs,omitempty"`
	Firehose       *firehoseJSON       `json:"firehose,omitempty"`
}

func toDestinationJSON(d chat.Destination) destinationJSON {
	switch {
	case d.S3BucketName != "":
		return destinationJSON{S3: &s3JSON{d.S3BucketName}}
	case d.CloudWatchLogGroupName != "":
		return destinationJSON{CloudWatchLogs: &cloudWatchLogsJSON{d.CloudWatchLogGroupName}}
	default:
		return destinationJSON{Firehose: &firehoseJSON{d.FirehoseDeliveryStreamName}}
	}
}

type loggingConfigurationJSON struct {
	ARN                      string            `json:"arn"`
	ID                       string            `json:"id"`
	Name                     string            `json:"name"`
	CreateTime               string            `json:"createTime"`
	UpdateTime               string            `json:"updateTime"`
	DestinationConfiguration destinationJSON   `json:"destinationConfiguration"`
	State                    string            `json:"state"`
	Tags                     map[string]string `json:"tags"`
}

func (h *Handler) loggingConfigurationJSON(lc *chat.LoggingConfiguration) loggingConfigurationJSON {
	return loggingConfigurationJSON{
		ARN:                      h.arn(chat.KindLoggingConfiguration, lc.ID),
		ID:                       lc.ID,
		Name:                     lc.Name,
		CreateTime:               formatTime(lc.CreateTime),
		UpdateTime:               formatTime(lc.UpdateTime),
		DestinationConfiguration: toDestinationJSON(lc.Destination),
		State:                    lc.State,
		Tags:                     nonNilTags(lc.Tags),
	}
}

func nonNilTags(t map[string]string) map[string]string {
	if t == nil {
		return map[string]string{}
	}
	return t
}
