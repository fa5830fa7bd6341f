package review

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// lambdaARN is a parsed arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER].
type lambdaARN struct{ region string }

func parseLambdaARN(s string) (lambdaARN, bool) {
	p := strings.Split(s, ":")
	if len(p) < 7 || len(p) > 8 || p[0] != "arn" || p[1] == "" || p[2] != "lambda" ||
		p[3] == "" || p[4] == "" || p[5] != "function" || p[6] == "" {
		return lambdaARN{}, false
	}
	return lambdaARN{region: p[3]}, true
}

// newLambdaClient builds the Lambda client. Credentials come from opts, or,
// when none are given, from the SDK's default chain, which is loaded on the
// first invocation so that a server without Lambda handlers never reads AWS
// configuration.
func newLambdaClient(opts LambdaOptions, hc *http.Client) (*lambda.Client, error) {
	o := lambda.Options{
		Region:     opts.Region,
		HTTPClient: hc,
		// A retry could not finish within the review timeout, and would run
		// the function twice for one message.
		Retryer: aws.NopRetryer{},
	}
	if opts.Endpoint != "" {
		o.BaseEndpoint = aws.String(opts.Endpoint)
	}
	switch {
	case opts.AccessKeyID != "" || opts.SecretAccessKey != "":
		if opts.AccessKeyID == "" || opts.SecretAccessKey == "" {
			return nil, fmt.Errorf("review: Lambda.AccessKeyID and Lambda.SecretAccessKey must be set together")
		}
		o.Credentials = credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, "")
	default:
		o.Credentials = newDefaultChain()
	}
	return lambda.New(o), nil
}

// defaultChain resolves credentials the way the AWS CLI does. The chain is
// loaded once, on first use; the provider it yields caches and refreshes the
// credentials itself.
type defaultChain struct {
	load func() (aws.CredentialsProvider, error)
}

func newDefaultChain() *defaultChain {
	return &defaultChain{load: sync.OnceValues(func() (aws.CredentialsProvider, error) {
		// Not the invocation's context: its 200 ms must not decide the
		// configuration of every later invocation.
		cfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("review: loading AWS configuration for Lambda: %w", err)
		}
		if cfg.Credentials == nil {
			return nil, fmt.Errorf("review: no AWS credentials found for Lambda")
		}
		return cfg.Credentials, nil
	})}
}

func (d *defaultChain) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p, err := d.load()
	if err != nil {
		return aws.Credentials{}, err
	}
	return p.Retrieve(ctx)
}

func (r *Reviewer) invokeLambda(ctx context.Context, arn string, body []byte) ([]byte, error) {
	a, ok := parseLambdaARN(arn)
	if !ok {
		return nil, fmt.Errorf("unsupported handler URI %q: want arn:aws:lambda:REGION:ACCOUNT:function:NAME or an http(s) URL", arn)
	}
	var optFns []func(*lambda.Options)
	if r.region == "" {
		optFns = append(optFns, func(o *lambda.Options) { o.Region = a.region })
	}
	out, err := r.lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(arn),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        body,
	}, optFns...)
	if err != nil {
		return nil, err
	}
	if out.FunctionError != nil {
		// The payload is the function's error object, not an answer.
		return nil, &handlerError{fmt.Sprintf("Lambda function error %q", *out.FunctionError)}
	}
	if len(out.Payload) > maxResponseBytes {
		return nil, invalid("answer larger than %d bytes", maxResponseBytes)
	}
	return out.Payload, nil
}
