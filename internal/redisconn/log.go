package redisconn

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// SetLogger sends go-redis's own messages (connection-pool dial failures and
// the like) to log at Debug level instead of straight to stderr, where they
// would break the one-line start failure and the log format. The same
// failures reach the callers as command errors, which they log with context.
// go-redis has one process-wide logger, so the last call wins.
func SetLogger(log *slog.Logger) {
	redis.SetLogger(slogPrintf{log})
}

type slogPrintf struct{ log *slog.Logger }

func (l slogPrintf) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}
