// Package result hands the task's outcome to the operator: the Kubernetes
// termination message, and for a result too big for it, a handoff to the
// result sidecar, which prints the result to its own log.
package result

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"unicode/utf8"
)

const (
	// Version tags every termination message.
	Version = "executor/v1"
	// MaxMessage is Kubernetes' limit on a termination message.
	MaxMessage = 4096
	// MaxResult is Diego's limit on a task's result file (rep: 10 * 5 KiB).
	MaxResult = 51200
	// FetchFailed is the Diego rep's failure reason for an unreadable result file.
	FetchFailed = "failed to fetch result"
)

type ResultLog struct {
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Message is the termination message.
type Message struct {
	Taskop        string     `json:"taskop"`
	Failed        bool       `json:"failed"`
	FailureReason string     `json:"failureReason,omitempty"`
	Result        *string    `json:"result,omitempty"`
	ResultLog     *ResultLog `json:"resultLog,omitempty"`
}

func encode(m Message) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(m) // cannot fail on these types
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// Failure is the message of a failed task, its reason cut (on a UTF-8
// boundary) so that the message stays within MaxMessage bytes.
func Failure(reason string) []byte {
	reason = validUTF8(reason)
	for {
		b := encode(Message{Taskop: Version, Failed: true, FailureReason: reason})
		if len(b) <= MaxMessage {
			return b
		}
		cut := len(reason) - (len(b) - MaxMessage)
		if cut >= len(reason) {
			cut = len(reason) - 1
		}
		if cut < 0 {
			cut = 0
		}
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
}

// Inline is the message of a succeeded task carrying its result, or nil
// when that message would be over MaxMessage bytes.
func Inline(res []byte) []byte {
	s := string(res)
	b := encode(Message{Taskop: Version, Result: &s})
	if len(b) > MaxMessage {
		return nil
	}
	return b
}

// Logged is the message of a succeeded task whose result went to the sidecar.
func Logged(res []byte) []byte {
	sum := sha256.Sum256(res)
	return encode(Message{Taskop: Version, ResultLog: &ResultLog{Bytes: len(res), SHA256: hex.EncodeToString(sum[:])}})
}

// ReadResultFile reads the task's result file with the Diego rep's limits;
// the string is the failure reason when it cannot be used.
func ReadResultFile(path string) ([]byte, string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, FetchFailed
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, FetchFailed
	}
	if fi.Size() > MaxResult {
		return nil, fmt.Sprintf("result file is %d bytes, over the limit of %d bytes", fi.Size(), MaxResult)
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, FetchFailed
	}
	if buf.Len() > MaxResult {
		return nil, fmt.Sprintf("result file is %d bytes, over the limit of %d bytes", buf.Len(), MaxResult)
	}
	if !utf8.Valid(buf.Bytes()) {
		return nil, "result file is not valid UTF-8"
	}
	return buf.Bytes(), ""
}

// WriteFile truncates and writes the termination message.
func WriteFile(path string, msg []byte) error {
	return os.WriteFile(path, msg, 0o644)
}
