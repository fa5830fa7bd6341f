package chatlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// prober is implemented by every sink: it checks, without writing a chat
// record, that the destination can be reached and written.
type prober interface {
	probe(ctx context.Context) error
}

// Probe checks that a logging configuration's destination exists and can be
// reached, so the control plane can move the configuration to ACTIVE, or to
// CREATE_FAILED/UPDATE_FAILED with the reason.
func (p *Pipeline) Probe(ctx context.Context, d chat.Destination) error {
	kind, name := destinationOf(d)
	if kind == "" {
		return errors.New("no destination set")
	}
	s, err := p.newSink(ctx, kind, name)
	if err != nil {
		return err
	}
	pr, ok := s.(prober)
	if !ok {
		return fmt.Errorf("chatlog: %s destinations cannot be probed", kind)
	}
	return pr.probe(ctx)
}

func (s *s3Sink) probe(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)}); err != nil {
		return fmt.Errorf("s3 bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *cwlSink) probe(ctx context.Context) error {
	out, err := s.client.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(s.group)})
	if err != nil {
		return fmt.Errorf("cloudwatch logs group %s: %w", s.group, err)
	}
	for _, g := range out.LogGroups {
		if aws.ToString(g.LogGroupName) == s.group {
			return nil
		}
	}
	return fmt.Errorf("cloudwatch logs group %s does not exist", s.group)
}

func (s *firehoseSink) probe(ctx context.Context) error {
	if _, err := s.client.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String(s.stream)}); err != nil {
		return fmt.Errorf("firehose delivery stream %s: %w", s.stream, err)
	}
	return nil
}

func (s *localS3Sink) probe(context.Context) error { return probeDir(safePath(s.root, s.bucket)) }
func (s *localCWLSink) probe(context.Context) error {
	return probeDir(safePath(s.root, s.group))
}
func (s *localFirehoseSink) probe(context.Context) error { return probeDir(s.root) }

// probeDir checks that dir can be created and written.
func probeDir(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(filepath.Clean(name))
}
