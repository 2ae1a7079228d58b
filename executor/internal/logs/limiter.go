// Package logs is the task's log stream: the executor's stdout and stderr,
// line by line, through Diego's per-instance log rate limiter.
package logs

import (
	"fmt"
	"sync"
	"time"
)

// overageInterval follows Diego's LogRateLimitExceededLogInterval: after an
// overage every line is dropped for one second.
const overageInterval = time.Second

// Limiter is Diego's logRateLimiter (executor depot/log_streamer/
// log_rate_limiter.go) for bytes per second: a token bucket of rate N and
// burst N, charged the length of each line.
//   - N < 0: unlimited.
//   - N == 0: every line is dropped, silently (Diego: "Not allowed to log").
//   - A line the bucket cannot pay for is dropped, the notice
//     "app instance exceeded log rate limit (N bytes/sec)" is logged once, and
//     every line in the next second is dropped without a further notice.
type Limiter struct {
	mu          sync.Mutex
	rate        int64
	tokens      float64
	last        time.Time
	lastOverage time.Time
	now         func() time.Time
}

func NewLimiter(bytesPerSecond int64) *Limiter {
	now := time.Now()
	return &Limiter{rate: bytesPerSecond, tokens: float64(bytesPerSecond), last: now,
		lastOverage: now.Add(-overageInterval), now: time.Now}
}

// Allow reports whether a line of n bytes may be logged, and the notice to
// log in its place when this line starts an overage.
func (l *Limiter) Allow(n int) (ok bool, notice string) {
	if l == nil || l.rate < 0 {
		return true, ""
	}
	if l.rate == 0 {
		return false, ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.lastOverage.Add(overageInterval).After(now) {
		return false, ""
	}
	l.tokens += now.Sub(l.last).Seconds() * float64(l.rate)
	if l.tokens > float64(l.rate) {
		l.tokens = float64(l.rate)
	}
	l.last = now
	if float64(n) > l.tokens {
		l.lastOverage = now
		return false, fmt.Sprintf("app instance exceeded log rate limit (%d bytes/sec)", l.rate)
	}
	l.tokens -= float64(n)
	return true, ""
}
