package result

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

const poll = 100 * time.Millisecond

// ErrNoAck is the failure reason when the sidecar does not take the result.
var ErrNoAck = errors.New(FetchFailed + ": the result sidecar did not answer")

// writeAtomic writes path.tmp and renames it to path.
func writeAtomic(path string, data []byte) error {
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// Handoff gives res to the sidecar through dir/result and waits up to
// timeout for dir/ack.
func Handoff(dir string, res []byte, timeout time.Duration) error {
	if err := writeAtomic(filepath.Join(dir, "result"), res); err != nil {
		return fmt.Errorf("%s: %w", FetchFailed, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(filepath.Join(dir, "ack")); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return ErrNoAck
		}
		time.Sleep(poll)
	}
}

// Frame prints res in the sidecar's frame:
//
//	taskop-result v1 bytes=<N> sha256=<hex>
//	<base64, lines of at most 4096 characters>
//	taskop-result end
func Frame(w io.Writer, res []byte) error {
	bw := bufio.NewWriter(w)
	sum := sha256.Sum256(res)
	fmt.Fprintf(bw, "taskop-result v1 bytes=%d sha256=%s\n", len(res), hex.EncodeToString(sum[:]))
	b64 := base64.StdEncoding.EncodeToString(res)
	for len(b64) > 0 {
		n := min(len(b64), 4096)
		bw.WriteString(b64[:n] + "\n")
		b64 = b64[n:]
	}
	bw.WriteString("taskop-result end\n")
	return bw.Flush()
}

// Sidecar waits for dir/result, prints its frame, acknowledges with dir/ack,
// then waits for stop (SIGTERM/SIGINT) and returns 0. A stop before the
// result arrives also returns 0.
func Sidecar(dir string, stdout io.Writer, stop <-chan os.Signal) int {
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		res, err := os.ReadFile(filepath.Join(dir, "result"))
		if err == nil {
			if err := Frame(stdout, res); err != nil {
				fmt.Fprintln(os.Stderr, "taskop-executor result-sidecar:", err)
				return 1
			}
			if f, ok := stdout.(interface{ Sync() error }); ok {
				f.Sync()
			}
			if err := writeAtomic(filepath.Join(dir, "ack"), nil); err != nil {
				fmt.Fprintln(os.Stderr, "taskop-executor result-sidecar:", err)
				return 1
			}
			<-stop
			return 0
		}
		select {
		case <-stop:
			return 0
		case <-tick.C:
		}
	}
}
