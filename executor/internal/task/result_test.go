package task

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"taskop.dev/executor/internal/result"
)

func resultSpec(resFile, resDir, action string) string {
	return `{"resultFile":` + quote(resFile) + `,"resultDir":` + quote(resDir) + `,"action":` + action + `}`
}

func TestSmallResultIsInlineInTheTerminationMessage(t *testing.T) {
	needSh(t)
	res := filepath.Join(t.TempDir(), "result.json")
	r := runSpec(t, resultSpec(res, t.TempDir(), sh(`printf '{"a":"<b>"}' > `+res)))
	r.wantSuccess(t)
	if string(r.outcome.Message) != `{"taskop":"executor/v1","failed":false,"result":"{\"a\":\"<b>\"}"}` {
		t.Fatalf("message %s", r.outcome.Message)
	}
}

func TestLargeResultGoesThroughTheSidecar(t *testing.T) {
	needSh(t)
	dir := t.TempDir()
	res := filepath.Join(dir, "result.txt")
	content := strings.Repeat("abcdefghij", 5000) // 50,000 bytes
	os.WriteFile(res, []byte(content), 0o644)
	resultDir := filepath.Join(dir, "shared")
	os.Mkdir(resultDir, 0o755)

	var frame buf
	stop := make(chan os.Signal, 1)
	sidecarDone := make(chan int, 1)
	go func() { sidecarDone <- result.Sidecar(resultDir, &frame, stop) }()

	r := runSpec(t, resultSpec(res, resultDir, sh("true")))
	r.wantSuccess(t)
	sum := sha256.Sum256([]byte(content))
	want := `{"taskop":"executor/v1","failed":false,"resultLog":{"bytes":50000,"sha256":"` + hex.EncodeToString(sum[:]) + `"}}`
	if string(r.outcome.Message) != want {
		t.Fatalf("message %s", r.outcome.Message)
	}
	stop <- syscall.SIGTERM
	if code := <-sidecarDone; code != 0 {
		t.Fatalf("sidecar exit %d", code)
	}
	sc := bufio.NewScanner(strings.NewReader(frame.String()))
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if lines[0] != "taskop-result v1 bytes=50000 sha256="+hex.EncodeToString(sum[:]) || lines[len(lines)-1] != "taskop-result end" {
		t.Fatalf("frame %q ... %q", lines[0], lines[len(lines)-1])
	}
	for _, l := range lines[1 : len(lines)-1] {
		if len(l) > 4096 {
			t.Fatalf("base64 line of %d characters", len(l))
		}
	}
	decoded, err := base64.StdEncoding.DecodeString(strings.Join(lines[1:len(lines)-1], ""))
	if err != nil || string(decoded) != content {
		t.Fatalf("decoded result differs: %v", err)
	}
}

func TestLargeResultWithoutSidecarFails(t *testing.T) {
	res := filepath.Join(t.TempDir(), "r")
	os.WriteFile(res, []byte(strings.Repeat("x", 5000)), 0o644)
	r := runSpec(t, resultSpec(res, t.TempDir(), `{"serial":{"actions":[]}}`))
	r.wantFailure(t, "failed to fetch result: the result sidecar did not answer", 1)
}

func TestResultOverTheLimitFails(t *testing.T) {
	res := filepath.Join(t.TempDir(), "r")
	os.WriteFile(res, []byte(strings.Repeat("x", 51201)), 0o644)
	r := runSpec(t, resultSpec(res, t.TempDir(), `{"serial":{"actions":[]}}`))
	r.wantFailure(t, "result file is 51201 bytes, over the limit of 51200 bytes", 1)
}

func TestMissingResultFileFails(t *testing.T) {
	r := runSpec(t, resultSpec(filepath.Join(t.TempDir(), "nope"), t.TempDir(), `{"serial":{"actions":[]}}`))
	r.wantFailure(t, "failed to fetch result", 1)
	if r.reason() != "failed to fetch result" {
		t.Fatalf("reason %q", r.reason())
	}
}

func TestResultThatIsNotUTF8Fails(t *testing.T) {
	res := filepath.Join(t.TempDir(), "r")
	os.WriteFile(res, []byte{0xff, 0xfe}, 0o644)
	r := runSpec(t, resultSpec(res, t.TempDir(), `{"serial":{"actions":[]}}`))
	r.wantFailure(t, "result file is not valid UTF-8", 1)
}

func TestFailedActionsWinOverTheResult(t *testing.T) {
	needSh(t)
	res := filepath.Join(t.TempDir(), "r")
	os.WriteFile(res, []byte("fine"), 0o644)
	r := runSpec(t, resultSpec(res, t.TempDir(), sh("exit 1")))
	r.wantFailure(t, "Exited with status 1", 1)
	if _, ok := r.msg["result"]; ok {
		t.Fatal("result reported for a failed task")
	}
}

func TestLongFailureReasonIsTruncatedToFitTheMessage(t *testing.T) {
	msg := result.Failure(strings.Repeat("é\"", 3000))
	if len(msg) > 4096 || !strings.HasSuffix(string(msg), `"}`) {
		t.Fatalf("message of %d bytes: %.60s...", len(msg), msg)
	}
}
