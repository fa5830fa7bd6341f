package chatlog

import (
	"errors"
	"io/fs"
	"sync"
	"sync/atomic"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/ivschatd/ivschatd/internal/chat"
)

// ConfigurationErrors counts the failed delivery attempts of the
// destination of one logging configuration, for the IVS Chat metrics
// LogDestinationErrors, LogDestinationAccessDeniedError and
// LogDestinationResourceNotFoundErrors (dimension LoggingConfiguration).
type ConfigurationErrors struct {
	Errors         uint64 // every failed attempt
	AccessDenied   uint64 // the destination refused access (403, AccessDenied…)
	ResourceAbsent uint64 // the destination does not exist (404, NoSuchBucket, ResourceNotFound…)
}

// lcErrors is one logging configuration's ConfigurationErrors. Several
// configurations naming the same destination share its spool and its
// failures: each one's counters count them.
type lcErrors struct {
	errors, accessDenied, notFound atomic.Uint64
}

// configurations is the set of logging configurations whose records a
// destination has taken, so that its failures are counted for each.
type configurations struct {
	mu  sync.Mutex
	set map[string]*lcErrors
}

func (c *configurations) add(arn string, e *lcErrors) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		c.set = map[string]*lcErrors{}
	}
	c.set[arn] = e
}

// failed counts one failed delivery attempt against every configuration
// of the destination (the failure path only).
func (c *configurations) failed(err error) {
	denied, absent := classify(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.set {
		e.errors.Add(1)
		if denied {
			e.accessDenied.Add(1)
		}
		if absent {
			e.notFound.Add(1)
		}
	}
}

// configErrors returns the counters of logging configuration id, created
// on first use. They live as long as the pipeline: configurations are few
// (a quota of the control plane) and counters must not go backwards.
func (p *Pipeline) configErrors(id string) (string, *lcErrors) {
	arn := chat.ARN{Region: p.opts.Region, Account: p.opts.AccountID, Kind: chat.KindLoggingConfiguration, ID: id}.String()
	p.lcErrMu.Lock()
	defer p.lcErrMu.Unlock()
	e := p.lcErr[arn]
	if e == nil {
		e = &lcErrors{}
		p.lcErr[arn] = e
	}
	return arn, e
}

func (p *Pipeline) configurationStats() map[string]ConfigurationErrors {
	p.lcErrMu.Lock()
	defer p.lcErrMu.Unlock()
	m := make(map[string]ConfigurationErrors, len(p.lcErr))
	for arn, e := range p.lcErr {
		m[arn] = ConfigurationErrors{Errors: e.errors.Load(), AccessDenied: e.accessDenied.Load(), ResourceAbsent: e.notFound.Load()}
	}
	return m
}

// classify tells an access-denied and a resource-not-found failure from the
// others: by the AWS error code of the S3, CloudWatch Logs and Firehose APIs,
// else the HTTP status, and for the local destinations by the file error.
func classify(err error) (denied, absent bool) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "Forbidden":
			return true, false
		case "NoSuchBucket", "ResourceNotFoundException", "NotFound":
			return false, true
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case 403:
			return true, false
		case 404:
			return false, true
		}
	}
	return errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist)
}
