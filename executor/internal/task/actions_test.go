package task

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunSucceedsWithArgsEnvAndDir(t *testing.T) {
	needSh(t)
	dir := t.TempDir()
	r := runSpec(t, `{"action":{"run":{"path":"sh","args":["-c","echo $GREETING $HOME_SET; pwd; echo oops >&2"],
		"dir":`+quote(dir)+`,"env":[{"name":"GREETING","value":"hello"},{"name":"HOME_SET","value":"from-action"}]}}}`,
		func(o *Options) { o.Environ = []string{"PATH=" + os.Getenv("PATH"), "HOME_SET=from-executor"} })
	r.wantSuccess(t)
	want := "hello from-action\n" + dir + "\nExit status 0\n"
	if r.out.String() != want {
		t.Fatalf("stdout %q, want %q", r.out.String(), want)
	}
	if r.err.String() != "oops\n" {
		t.Fatalf("stderr %q", r.err.String())
	}
	if string(r.outcome.Message) != `{"taskop":"executor/v1","failed":false,"result":""}` {
		t.Fatalf("message %s", r.outcome.Message)
	}
}

func TestFromEnvGivesAValueToItsOwnProcessOnly(t *testing.T) {
	needSh(t)
	// The operator puts a Secret's value into the container's environment as
	// TASKOP_ACTION_ENV_0 and names it in the spec: the first process gets it
	// as VCAP_SERVICES, no process gets TASKOP_ACTION_ENV_0, nor the second
	// VCAP_SERVICES; a missing reference (an optional key) leaves it unset.
	show := `echo "${VCAP_SERVICES-unset} ${TASKOP_ACTION_ENV_0-unset} ${TASKOP_ACTION_ENV_1-unset} ${OPTIONAL-unset}"`
	r := runSpec(t, `{"action":{"serial":{"actions":[
		{"run":{"path":"sh","args":["-c",`+quote(show)+`],"env":[
			{"name":"VCAP_SERVICES","fromEnv":"TASKOP_ACTION_ENV_0"},{"name":"OPTIONAL","fromEnv":"TASKOP_ACTION_ENV_1"}]}},
		`+sh(show)+`]}}}`,
		func(o *Options) {
			o.Environ = []string{"PATH=" + os.Getenv("PATH"), "TASKOP_ACTION_ENV_0={\"db\":\"s3cret\"}"}
		})
	r.wantSuccess(t)
	want := `{"db":"s3cret"} unset unset unset` + "\nExit status 0\n" + "unset unset unset unset\nExit status 0\n"
	if r.out.String() != want {
		t.Fatalf("stdout %q, want %q", r.out.String(), want)
	}
}

func TestRunNonZeroExitFailsWithDiegoTextAndStatus(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":`+sh("exit 3")+`}`)
	r.wantFailure(t, "Exited with status 3", 3)
	if !strings.Contains(r.out.String(), "Exit status 3\n") {
		t.Fatalf("stdout %q lacks Diego's exit line", r.out.String())
	}
}

func TestRunKilledBySignalHas128PlusSignal(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":`+sh("kill -9 $$")+`}`)
	r.wantFailure(t, "Exited with status 137", 137)
}

func TestRunSuppressLogOutput(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"run":{"path":"sh","args":["-c","echo hidden"],"suppressLogOutput":true}}}`)
	r.wantSuccess(t)
	if r.out.String() != "" {
		t.Fatalf("stdout %q, want nothing", r.out.String())
	}
}

func TestRunUnknownProgramFails(t *testing.T) {
	r := runSpec(t, `{"action":{"run":{"path":"no-such-program-xyz"}}}`)
	r.wantFailure(t, `exec: "no-such-program-xyz": executable file not found in $PATH`, 1)
}

func TestRunNofileLimitReachesOnlyTheChild(t *testing.T) {
	needSh(t)
	var before syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before)
	r := runSpec(t, `{"action":{"run":{"path":"sh","args":["-c","ulimit -n; ulimit -Hn"],"resourceLimits":{"nofile":100}}}}`)
	r.wantSuccess(t)
	if !strings.HasPrefix(r.out.String(), "100\n100\n") {
		t.Fatalf("child reported %q, want soft and hard 100", r.out.String())
	}
	var after syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after)
	if after != before {
		t.Fatalf("executor's own limit changed: %+v -> %+v", before, after)
	}
}

func TestRunNofileThatCannotBeSetFailsNamingIt(t *testing.T) {
	needSh(t)
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if os.Geteuid() == 0 || lim.Max == ^uint64(0) {
		t.Skip("root or unlimited hard limit: any nofile can be set")
	}
	n := lim.Max + 1
	r := runSpec(t, `{"action":{"run":{"path":"sh","args":["-c","true"],"resourceLimits":{"nofile":`+strconv.FormatUint(n, 10)+`}}}}`)
	r.wantFailure(t, "nofile to "+strconv.FormatUint(n, 10)+": operation not permitted", 1)
}

func TestSerialStopsAtFirstFailure(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"serial":{"actions":[`+sh("echo one")+`,`+sh("exit 4")+`,`+sh("echo three")+`]}}}`)
	r.wantFailure(t, "Exited with status 4", 4)
	if strings.Contains(r.out.String(), "three") || !strings.Contains(r.out.String(), "one") {
		t.Fatalf("stdout %q", r.out.String())
	}
}

func TestParallelWaitsForAllAndAggregates(t *testing.T) {
	needSh(t)
	marker := filepath.Join(t.TempDir(), "slow-done")
	r := runSpec(t, `{"action":{"parallel":{"actions":[`+sh("exit 2")+`,`+sh("sleep 0.3; touch "+marker+"; exit 5")+`,`+sh("true")+`]}}}`)
	r.wantFailure(t, "Exited with status 2; Exited with status 5", 2)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("parallel did not wait for the slow action: %v", err)
	}
}

func TestCodependentCancelsItsSiblings(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"codependent":{"actions":[`+sh("exit 0")+`,`+sh("sleep 30")+`]}}}`)
	r.wantFailure(t, "Codependent step exited", 1)
	if r.reason() != "Codependent step exited" {
		t.Fatalf("reason %q: the cancelled sibling should not be displayed", r.reason())
	}
	if r.duration > 5*time.Second {
		t.Fatalf("took %v: the sleeping sibling was not cancelled", r.duration)
	}
}

func TestCodependentFailureIsTheResult(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"codependent":{"actions":[`+sh("exit 6")+`,`+sh("sleep 30")+`]}}}`)
	r.wantFailure(t, "Exited with status 6", 6)
}

func TestTryTurnsFailureIntoSuccess(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"serial":{"actions":[{"try":{"action":`+sh("exit 9")+`}},`+sh("echo after")+`]}}}`)
	r.wantSuccess(t)
	if !strings.Contains(r.out.String(), "after\n") {
		t.Fatalf("stdout %q", r.out.String())
	}
}

func TestTimeoutFires(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"timeout":{"timeoutMs":200,"action":`+sh("sleep 30")+`}}}`)
	r.wantFailure(t, "exceeded 200ms timeout", 1)
	if r.reason() != "exceeded 200ms timeout" {
		t.Fatalf("reason %q", r.reason())
	}
	if r.duration > 5*time.Second {
		t.Fatalf("took %v", r.duration)
	}
}

func TestTimeoutNotReachedIsTheInnerResult(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"timeout":{"timeoutMs":10000,"action":`+sh("exit 7")+`}}}`)
	r.wantFailure(t, "Exited with status 7", 7)
}

func TestTimeoutKillsAProcessIgnoringSIGTERMAfterTheGrace(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"timeout":{"timeoutMs":100,"action":`+sh("trap '' TERM; sleep 30")+`}}}`,
		func(o *Options) { o.Grace = 300 * time.Millisecond })
	r.wantFailure(t, "exceeded 100ms timeout", 1)
	if !strings.Contains(r.out.String(), "(exceeded 300ms graceful shutdown interval)") {
		t.Fatalf("stdout %q", r.out.String())
	}
	if r.duration > 5*time.Second {
		t.Fatalf("took %v", r.duration)
	}
}

func TestEmitProgressOnSuccess(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"emitProgress":{"startMessage":"Starting","successMessage":"Done","failureMessagePrefix":"Failed","action":`+sh("echo work")+`}}}`)
	r.wantSuccess(t)
	if r.out.String() != "Starting\nwork\nExit status 0\nDone\n" {
		t.Fatalf("stdout %q", r.out.String())
	}
}

func TestEmitProgressOnFailurePrintsPrefixAndError(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"action":{"emitProgress":{"startMessage":"Starting","successMessage":"Done","failureMessagePrefix":"Failed","action":`+sh("exit 2")+`}}}`)
	r.wantFailure(t, "Exited with status 2", 2)
	if r.err.String() != "Failed: Exited with status 2\n" {
		t.Fatalf("stderr %q", r.err.String())
	}
	if strings.Contains(r.out.String(), "Done") {
		t.Fatalf("stdout %q", r.out.String())
	}
}

func TestSIGTERMToTheExecutorReachesTheChild(t *testing.T) {
	needSh(t)
	sigs := make(chan os.Signal, 2)
	ready := filepath.Join(t.TempDir(), "ready")
	go func() {
		for {
			if _, err := os.Stat(ready); err == nil {
				sigs <- syscall.SIGTERM
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	r := runSpec(t, `{"action":`+sh("trap 'echo got TERM; exit 0' TERM; touch "+ready+"; sleep 30 & wait")+`}`,
		func(o *Options) { o.Signals = sigs })
	r.wantFailure(t, "received SIGTERM", 128+15)
	if !strings.Contains(r.out.String(), "got TERM\n") {
		t.Fatalf("stdout %q: the child did not get SIGTERM", r.out.String())
	}
	if r.duration > 5*time.Second {
		t.Fatalf("took %v", r.duration)
	}
}

func TestSecondSignalKillsAtOnce(t *testing.T) {
	needSh(t)
	sigs := make(chan os.Signal, 2)
	ready := filepath.Join(t.TempDir(), "ready")
	go func() {
		for {
			if _, err := os.Stat(ready); err == nil {
				sigs <- syscall.SIGINT
				time.Sleep(100 * time.Millisecond)
				sigs <- syscall.SIGINT
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	r := runSpec(t, `{"action":`+sh("trap '' INT TERM; touch "+ready+"; sleep 30")+`}`,
		func(o *Options) { o.Signals = sigs; o.Grace = 20 * time.Second })
	r.wantFailure(t, "received SIGINT", 128+2)
	if r.duration > 5*time.Second {
		t.Fatalf("took %v", r.duration)
	}
}

func TestLogRateLimitDropsLinesWithDiegoNotice(t *testing.T) {
	needSh(t)
	// 10-byte lines against 25 bytes/s: two pass, the third trips the limit.
	r := runSpec(t, `{"logRateLimit":25,"action":{"run":{"path":"sh","args":["-c","for i in 1 2 3 4 5 6; do echo line-$i-xx; done"],"suppressLogOutput":false}}}`)
	r.wantSuccess(t)
	want := "line-1-xx\nline-2-xx\napp instance exceeded log rate limit (25 bytes/sec)\n"
	if r.out.String() != want {
		t.Fatalf("stdout %q, want %q", r.out.String(), want)
	}
}

func TestLogRateLimitZeroDropsEverything(t *testing.T) {
	needSh(t)
	r := runSpec(t, `{"logRateLimit":0,"action":`+sh("echo a; echo b >&2")+`}`)
	r.wantSuccess(t)
	if r.out.String() != "" || r.err.String() != "" {
		t.Fatalf("stdout %q stderr %q", r.out.String(), r.err.String())
	}
}
