package logs

import (
	"bytes"
	"testing"
	"time"
)

func TestLimiterDropsForOneSecondAfterAnOverageThenRecovers(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(10)
	l.now = func() time.Time { return now }
	l.last, l.lastOverage = now, now.Add(-time.Second)
	if ok, _ := l.Allow(8); !ok {
		t.Fatal("first line within the burst was dropped")
	}
	ok, notice := l.Allow(5)
	if ok || notice != "app instance exceeded log rate limit (10 bytes/sec)" {
		t.Fatalf("overage: ok=%v notice=%q", ok, notice)
	}
	now = now.Add(900 * time.Millisecond) // tokens are back, but the overage second is not over
	if ok, notice := l.Allow(1); ok || notice != "" {
		t.Fatalf("within the overage second: ok=%v notice=%q", ok, notice)
	}
	now = now.Add(200 * time.Millisecond)
	if ok, _ := l.Allow(5); !ok {
		t.Fatal("not recovered after one second")
	}
}

func TestStreamKeepsStdoutAndStderrApartAndFlushesPartialLines(t *testing.T) {
	var out, errb bytes.Buffer
	s := NewStream(&out, &errb, NewLimiter(-1))
	o, e := s.Stdout(), s.Stderr()
	o.Write([]byte("a\nb"))
	e.Write([]byte("err\n"))
	o.Write([]byte("c"))
	o.Close()
	if out.String() != "a\nbc\n" || errb.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", out.String(), errb.String())
	}
}
