package chatlog

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ivschatd/ivschatd/internal/chat"
)

func TestProbe(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("exists"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer s3srv.Close()
	cwl := newAWSJSONServer(t, map[string]func([]byte) (int, any){
		"Logs_20140328.DescribeLogGroups": func(body []byte) (int, any) {
			var in struct{ LogGroupNamePrefix string }
			json.Unmarshal(body, &in)
			groups := []map[string]string{}
			for _, g := range []string{"ivs", "ivs-chat"} {
				if len(g) >= len(in.LogGroupNamePrefix) && g[:len(in.LogGroupNamePrefix)] == in.LogGroupNamePrefix {
					groups = append(groups, map[string]string{"logGroupName": g})
				}
			}
			return 200, map[string]any{"logGroups": groups}
		},
	})
	opts := testOptions(t, newMemStore())
	opts.Destinations.S3 = staticEndpoint(s3srv.URL)
	opts.Destinations.S3.UsePathStyle = true
	opts.Destinations.CloudWatchLogs = staticEndpoint(cwl.URL)
	p := mustOpen(t, opts)
	defer closeP(t, p, time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cases := []struct {
		d  chat.Destination
		ok bool
	}{
		{chat.Destination{S3BucketName: "exists"}, true},
		{chat.Destination{S3BucketName: "missing"}, false},
		{chat.Destination{CloudWatchLogGroupName: "ivs-chat"}, true},
		{chat.Destination{CloudWatchLogGroupName: "ivs-ch"}, false},   // a prefix of a group is not the group
		{chat.Destination{FirehoseDeliveryStreamName: "local"}, true}, // local-files default
		{chat.Destination{}, false},
	}
	for _, tc := range cases {
		if err := p.Probe(ctx, tc.d); (err == nil) != tc.ok {
			t.Errorf("Probe(%+v) = %v, want ok %v", tc.d, err, tc.ok)
		}
	}
}
