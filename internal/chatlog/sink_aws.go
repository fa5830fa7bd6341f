package chatlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	fhtypes "github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Service limits the batches respect.
const (
	cwlMaxEvents       = 10000
	cwlMaxBytes        = 1 << 20 // sum of (message bytes + 26) per PutLogEvents
	cwlEventOverhead   = 26
	cwlMaxSpan         = 24 * time.Hour // events of one call must lie within 24 h
	firehoseMaxRecords = 500
	firehoseMaxBytes   = 4 << 20
)

// awsConfig builds the SDK configuration of one destination kind. Static
// credentials when given; otherwise the SDK's default chain (environment,
// shared files, instance roles), as with any AWS tool. The SDK's own retries
// are off: the deliverer retries forever with its own backoff, and stacking
// the two would only stretch each attempt.
func awsConfig(ctx context.Context, ep Endpoint, opts Options) (aws.Config, error) {
	region := ep.Region
	if region == "" {
		region = opts.Region
	}
	var cfg aws.Config
	if ep.AccessKeyID != "" {
		cfg = aws.Config{
			Region:      region,
			Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, ep.SessionToken),
		}
	} else {
		var err error
		cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(region))
		if err != nil {
			return aws.Config{}, fmt.Errorf("chatlog: AWS configuration: %w", err)
		}
	}
	cfg.RetryMaxAttempts = 1
	cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	cfg.BaseEndpoint = aws.String(ep.Endpoint)
	return cfg, nil
}

// s3Sink PUTs one object per room and hour of each batch.
type s3Sink struct {
	client                  *s3.Client
	bucket, region, account string
	batchBytes              int
	linger                  time.Duration
}

func newS3Sink(ctx context.Context, ep Endpoint, opts Options, bucket string) (*s3Sink, error) {
	cfg, err := awsConfig(ctx, ep, opts)
	if err != nil {
		return nil, err
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = ep.UsePathStyle
		// Checksums only where the API requires them: many S3-compatible
		// stores reject the newer default trailing checksums.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	return &s3Sink{client: c, bucket: bucket, region: opts.Region, account: opts.AccountID,
		batchBytes: opts.S3BatchBytes, linger: opts.S3BatchInterval}, nil
}

func (s *s3Sink) batching() (time.Duration, int, int) { return s.linger, 1 << 30, s.batchBytes }
func (s *s3Sink) cost(e *entry) int                   { return len(e.record) + 1 }

func (s *s3Sink) deliver(ctx context.Context, batch []entry) ([]entry, error) {
	return deliverS3Objects(ctx, s.account, s.region, batch, func(ctx context.Context, key string, body []byte) error {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:          aws.String(s.bucket),
			Key:             aws.String(key),
			Body:            bytes.NewReader(body),
			ContentLength:   aws.Int64(int64(len(body))),
			ContentType:     aws.String("text/plain"),
			ContentEncoding: aws.String("gzip"),
		})
		if err != nil {
			return fmt.Errorf("s3 PutObject %s/%s: %w", s.bucket, key, err)
		}
		return nil
	})
}

// cwlSink sends PutLogEvents per room stream, creating streams on demand.
type cwlSink struct {
	client *cloudwatchlogs.Client
	group  string
	linger time.Duration
	log    *slog.Logger
}

func newCWLSink(ctx context.Context, ep Endpoint, opts Options, group string, log *slog.Logger) (*cwlSink, error) {
	cfg, err := awsConfig(ctx, ep, opts)
	if err != nil {
		return nil, err
	}
	return &cwlSink{client: cloudwatchlogs.NewFromConfig(cfg), group: group, linger: opts.StreamBatchInterval, log: log}, nil
}

func (s *cwlSink) batching() (time.Duration, int, int) {
	return s.linger, cwlMaxEvents, cwlMaxBytes
}
func (s *cwlSink) cost(e *entry) int { return len(e.record) + cwlEventOverhead }

func (s *cwlSink) deliver(ctx context.Context, batch []entry) ([]entry, error) {
	var remaining []entry
	var firstErr error
	for _, g := range groupByRoom(batch) {
		// PutLogEvents wants chronological order; the spool is in receive
		// order, which can differ by a few ms across concurrent senders.
		slices.SortStableFunc(g, func(a, b entry) int { return a.at.Compare(b.at) })
		for _, chunk := range splitSpan(g, cwlMaxSpan) {
			if err := s.put(ctx, cwlStream(chunk[0].roomID), chunk); err != nil {
				remaining = append(remaining, chunk...)
				if firstErr == nil {
					firstErr = err
				}
			}
		}
	}
	return remaining, firstErr
}

// splitSpan cuts time-sorted entries into runs spanning less than span.
func splitSpan(es []entry, span time.Duration) [][]entry {
	var out [][]entry
	start := 0
	for i := range es {
		if es[i].at.Sub(es[start].at) >= span {
			out = append(out, es[start:i])
			start = i
		}
	}
	return append(out, es[start:])
}

func (s *cwlSink) put(ctx context.Context, stream string, es []entry) error {
	events := make([]cwltypes.InputLogEvent, len(es))
	for i, e := range es {
		events[i] = cwltypes.InputLogEvent{Message: aws.String(string(e.record)), Timestamp: aws.Int64(e.at.UnixMilli())}
	}
	in := &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(s.group), LogStreamName: aws.String(stream), LogEvents: events}
	out, err := s.client.PutLogEvents(ctx, in)
	var rnf *cwltypes.ResourceNotFoundException
	if errors.As(err, &rnf) {
		// The stream does not exist yet (or the group does not: then
		// CreateLogStream fails too and we retry later).
		_, cerr := s.client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(s.group), LogStreamName: aws.String(stream)})
		var exists *cwltypes.ResourceAlreadyExistsException
		if cerr != nil && !errors.As(cerr, &exists) {
			return fmt.Errorf("cloudwatchlogs CreateLogStream %s/%s: %w", s.group, stream, cerr)
		}
		out, err = s.client.PutLogEvents(ctx, in)
	}
	if err != nil {
		return fmt.Errorf("cloudwatchlogs PutLogEvents %s/%s: %w", s.group, stream, err)
	}
	if r := out.RejectedLogEventsInfo; r != nil {
		// Rejected events (too old, too new, past retention) are rejected
		// for good: retrying cannot help, so they are logged and counted as
		// delivered rather than blocking the spool forever.
		s.log.Warn("chatlog: CloudWatch Logs rejected events", "group", s.group, "stream", stream,
			"too_old_end", aws.ToInt32(r.TooOldLogEventEndIndex), "too_new_start", aws.ToInt32(r.TooNewLogEventStartIndex),
			"expired_end", aws.ToInt32(r.ExpiredLogEventEndIndex))
	}
	return nil
}

// firehoseSink sends PutRecordBatch; failed entries are returned for retry.
type firehoseSink struct {
	client *firehose.Client
	stream string
	linger time.Duration
}

func newFirehoseSink(ctx context.Context, ep Endpoint, opts Options, stream string) (*firehoseSink, error) {
	cfg, err := awsConfig(ctx, ep, opts)
	if err != nil {
		return nil, err
	}
	return &firehoseSink{client: firehose.NewFromConfig(cfg), stream: stream, linger: opts.StreamBatchInterval}, nil
}

func (s *firehoseSink) batching() (time.Duration, int, int) {
	return s.linger, firehoseMaxRecords, firehoseMaxBytes
}
func (s *firehoseSink) cost(e *entry) int { return len(e.record) + 1 }

func (s *firehoseSink) deliver(ctx context.Context, batch []entry) ([]entry, error) {
	recs := make([]fhtypes.Record, len(batch))
	for i, e := range batch {
		// Newline-terminated so that records concatenated by Firehose into
		// S3 objects stay one per line.
		data := make([]byte, 0, len(e.record)+1)
		data = append(append(data, e.record...), '\n')
		recs[i] = fhtypes.Record{Data: data}
	}
	out, err := s.client.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String(s.stream), Records: recs})
	if err != nil {
		return batch, fmt.Errorf("firehose PutRecordBatch %s: %w", s.stream, err)
	}
	if aws.ToInt32(out.FailedPutCount) == 0 {
		return nil, nil
	}
	if len(out.RequestResponses) != len(batch) {
		return batch, fmt.Errorf("firehose PutRecordBatch %s: %d failed and %d responses for %d records",
			s.stream, aws.ToInt32(out.FailedPutCount), len(out.RequestResponses), len(batch))
	}
	var remaining []entry
	var code, msg string
	for i, r := range out.RequestResponses {
		if aws.ToString(r.ErrorCode) != "" {
			remaining = append(remaining, batch[i])
			code, msg = aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage)
		}
	}
	if len(remaining) == 0 {
		remaining = batch // FailedPutCount without per-record codes: resend all
	}
	return remaining, fmt.Errorf("firehose PutRecordBatch %s: %d records failed (%s: %s)", s.stream, len(remaining), code, msg)
}
