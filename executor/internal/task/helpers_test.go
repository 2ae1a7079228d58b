package task

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"taskop.dev/executor/internal/actions"
	"taskop.dev/executor/internal/spec"
)

func TestMain(m *testing.M) {
	actions.MaybeNofileHelper(os.Args) // the test binary stands in for the executor
	os.Exit(m.Run())
}

// buf is a goroutine-safe bytes.Buffer.
type buf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type taskRun struct {
	out, err  buf
	outcome   Outcome
	msg       map[string]any
	duration  time.Duration
	specPath  string
	termPath  string
	resultDir string
}

func needSh(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on this machine")
	}
}

// runSpec parses specJSON (with TERM replaced by a temp termination path) and
// runs it with a short grace.
func runSpec(t *testing.T, specJSON string, opts ...func(*Options)) *taskRun {
	t.Helper()
	r := &taskRun{termPath: filepath.Join(t.TempDir(), "termination-log")}
	if !strings.Contains(specJSON, "terminationMessagePath") {
		specJSON = strings.Replace(specJSON, "{", `{"terminationMessagePath":`+quote(r.termPath)+",", 1)
	}
	s, err := spec.Parse([]byte(specJSON))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	r.termPath = s.TerminationMessagePath
	o := Options{Stdout: &r.out, Stderr: &r.err, Grace: 2 * time.Second, AckTimeout: 2 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	start := time.Now()
	r.outcome = Run(s, o)
	r.duration = time.Since(start)
	data, err := os.ReadFile(r.termPath)
	if err != nil {
		t.Fatalf("termination message: %v", err)
	}
	if !bytes.Equal(data, r.outcome.Message) {
		t.Fatalf("termination file %q differs from outcome %q", data, r.outcome.Message)
	}
	if err := json.Unmarshal(data, &r.msg); err != nil {
		t.Fatalf("termination message %q: %v", data, err)
	}
	return r
}

func (r *taskRun) failed() bool   { return r.msg["failed"] == true }
func (r *taskRun) reason() string { s, _ := r.msg["failureReason"].(string); return s }

func (r *taskRun) wantSuccess(t *testing.T) {
	t.Helper()
	if r.failed() || r.outcome.ExitCode != 0 {
		t.Fatalf("want success, got exit %d, message %s\nstdout:\n%s\nstderr:\n%s", r.outcome.ExitCode, r.outcome.Message, r.out.String(), r.err.String())
	}
}

func (r *taskRun) wantFailure(t *testing.T, reasonPart string, code int) {
	t.Helper()
	if !r.failed() {
		t.Fatalf("want failure, got %s\nstdout:\n%s", r.outcome.Message, r.out.String())
	}
	if !strings.Contains(r.reason(), reasonPart) {
		t.Fatalf("failure reason %q does not contain %q", r.reason(), reasonPart)
	}
	if r.outcome.ExitCode != code {
		t.Fatalf("exit code %d, want %d (reason %q)", r.outcome.ExitCode, code, r.reason())
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// sh is a run action of sh -c script.
func sh(script string) string {
	return `{"run":{"path":"sh","args":["-c",` + quote(script) + `]}}`
}

type entry struct {
	name, body, link string
	mode             int64
	dir, symlink     bool
}

func makeTar(t *testing.T, entries []entry, gz bool) []byte {
	t.Helper()
	var b bytes.Buffer
	var w = &b
	var gzw *gzip.Writer
	var tw *tar.Writer
	if gz {
		gzw = gzip.NewWriter(w)
		tw = tar.NewWriter(gzw)
	} else {
		tw = tar.NewWriter(w)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.symlink:
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	if gzw != nil {
		gzw.Close()
	}
	return b.Bytes()
}

func makeZip(t *testing.T, entries []entry) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := os.FileMode(e.mode)
		if e.symlink {
			mode |= os.ModeSymlink
		}
		if e.dir {
			mode |= os.ModeDir
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if e.symlink {
			w.Write([]byte(e.link))
		} else {
			w.Write([]byte(e.body))
		}
	}
	zw.Close()
	return b.Bytes()
}
