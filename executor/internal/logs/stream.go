package logs

import (
	"bytes"
	"io"
	"sync"
)

// maxLine bounds a buffered line; a longer line is emitted in pieces, as
// Diego's stream destination splits long messages.
const maxLine = 64 * 1024

// Stream is the task's log stream: two destinations (stdout, stderr) sharing
// one rate limiter. Diego routes the user's output and its own step messages
// (download, upload, progress, exit status) through the same limiter; only
// the limiter's notice bypasses it.
type Stream struct {
	mu      sync.Mutex
	out     io.Writer
	err     io.Writer
	limiter *Limiter
}

func NewStream(stdout, stderr io.Writer, limiter *Limiter) *Stream {
	return &Stream{out: stdout, err: stderr, limiter: limiter}
}

func (s *Stream) emit(w io.Writer, line []byte) {
	ok, notice := s.limiter.Allow(len(line))
	s.mu.Lock()
	defer s.mu.Unlock()
	if notice != "" {
		io.WriteString(s.out, notice+"\n")
	}
	if ok {
		w.Write(append(line[:len(line):len(line)], '\n'))
	}
}

// Stdout returns a new line writer onto stdout; Close flushes a last partial line.
func (s *Stream) Stdout() *LineWriter { return &LineWriter{s: s, w: s.out} }

// Stderr returns a new line writer onto stderr.
func (s *Stream) Stderr() *LineWriter { return &LineWriter{s: s, w: s.err} }

// Printf-free helpers for the executor's own one-line messages.
func (s *Stream) Out(line string) { s.emit(s.out, []byte(line)) }
func (s *Stream) Err(line string) { s.emit(s.err, []byte(line)) }

// LineWriter splits what it is given into lines and emits each one.
type LineWriter struct {
	mu  sync.Mutex
	s   *Stream
	w   io.Writer
	buf []byte
}

func (l *LineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.s.emit(l.w, l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	for len(l.buf) >= maxLine {
		l.s.emit(l.w, l.buf[:maxLine])
		l.buf = l.buf[maxLine:]
	}
	if len(l.buf) == 0 {
		l.buf = nil
	}
	return len(p), nil
}

// Close emits a trailing line without newline, if any.
func (l *LineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.s.emit(l.w, l.buf)
		l.buf = nil
	}
	return nil
}
