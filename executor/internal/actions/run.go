package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"taskop.dev/executor/internal/spec"
)

// defaultPath is the PATH garden-runc gives a process whose env has none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// run follows Diego's run step: exec path with args (no shell), env = the
// executor's environment overlaid with the action's, output to the log
// stream unless suppressed, "Exit status N" written to stdout when the
// process ends, and a non-zero status fails with "Exited with status N".
// A process killed by a signal has status 128+signo, as garden reports it.
// A cancelled process gets SIGTERM (to its process group), then SIGKILL
// after the graceful shutdown interval.
func (e *Env) run(ctx context.Context, a *spec.RunAction) error {
	if ctx.Err() != nil {
		return &CancelledError{}
	}
	env := mergeEnv(e.Environ, a.Env, e.Refs)
	var stdout, stderr io.WriteCloser = nopCloser{io.Discard}, nopCloser{io.Discard}
	if !a.SuppressLogOutput {
		stdout, stderr = e.Logs.Stdout(), e.Logs.Stderr()
	}
	say := func(line string) {
		if !a.SuppressLogOutput {
			e.Logs.Out(line)
		}
	}

	path, err := lookPath(a.Path, a.Dir, env)
	if err != nil {
		say("failed-creating-process: " + err.Error())
		return err
	}
	cmd := &exec.Cmd{
		Path:        path,
		Args:        append([]string{a.Path}, a.Args...),
		Dir:         a.Dir,
		Env:         env,
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		WaitDelay:   time.Second, // do not hang on pipes a stray grandchild keeps open
	}
	var report *os.File
	if a.ResourceLimits != nil && a.ResourceLimits.Nofile != nil {
		if report, err = e.viaNofileHelper(cmd, *a.ResourceLimits.Nofile); err != nil {
			say("failed-creating-process: " + err.Error())
			return err
		}
	}
	if err := cmd.Start(); err != nil {
		if report != nil {
			report.Close()
		}
		say("failed-creating-process: " + err.Error())
		return err
	}
	if report != nil {
		// The helper closes its end on exec (close-on-exec) or writes why it
		// could not set the limit or exec.
		for _, f := range cmd.ExtraFiles {
			f.Close()
		}
		msg, _ := io.ReadAll(report)
		report.Close()
		if len(msg) > 0 {
			cmd.Wait()
			stdout.Close()
			stderr.Close()
			err := errors.New(string(msg))
			say("failed-creating-process: " + err.Error())
			return err
		}
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pgid := cmd.Process.Pid
	var graceC <-chan time.Time
	cancelled, killed := false, false
	ctxDone, kill := ctx.Done(), e.Kill
	for {
		select {
		case <-ctxDone:
			cancelled, ctxDone = true, nil
			syscall.Kill(-pgid, syscall.SIGTERM)
			t := time.NewTimer(e.Grace)
			defer t.Stop()
			graceC = t.C
			continue
		case <-graceC:
			killed, graceC = true, nil
			syscall.Kill(-pgid, syscall.SIGKILL)
			continue
		case <-kill:
			kill = nil
			syscall.Kill(-pgid, syscall.SIGKILL)
			continue
		case <-done:
		}
		break
	}
	syscall.Kill(-pgid, syscall.SIGKILL) // leftovers of the group go with it, as with a garden process
	stdout.Close()
	stderr.Close()

	status := exitStatus(cmd.ProcessState)
	msg := fmt.Sprintf("Exit status %d", status)
	if killed {
		msg += fmt.Sprintf(" (exceeded %s graceful shutdown interval)", e.Grace)
	}
	say(msg)
	switch {
	case killed:
		return &ExceededGracefulShutdownIntervalError{}
	case cancelled:
		return &CancelledError{}
	case status != 0:
		return &ExitError{Status: status}
	}
	return nil
}

func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// mergeEnv overlays the action's variables on the base environment; a
// variable whose FromEnv is not among refs is left out, as Kubernetes leaves
// out an optional secretKeyRef whose Secret or key is missing.
func mergeEnv(base []string, vars []spec.EnvVar, refs map[string]string) []string {
	index := map[string]int{}
	var env []string
	add := func(name, kv string) {
		if i, ok := index[name]; ok {
			env[i] = kv
			return
		}
		index[name] = len(env)
		env = append(env, kv)
	}
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		add(name, kv)
	}
	for _, v := range vars {
		value := v.Value
		if v.FromEnv != "" {
			var ok bool
			if value, ok = refs[v.FromEnv]; !ok {
				continue
			}
		}
		add(v.Name, v.Name+"="+value)
	}
	return env
}

// lookPath resolves a path without a slash in the PATH of the process's own
// environment, as garden-runc does; a path with a slash is used as given.
func lookPath(file, dir string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	pathEnv, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv, found = v, true
		}
	}
	if !found {
		pathEnv = defaultPath
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, file)
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
}

// nofileHelperArg is the hidden command of the executor that sets
// RLIMIT_NOFILE and then execs the real program, so that only the child gets
// the limit (the executor could not raise its own hard limit back).
const nofileHelperArg = "__taskop-exec-nofile"

func (e *Env) viaNofileHelper(cmd *exec.Cmd, n uint64) (*os.File, error) {
	self := e.Self
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("setting nofile to %d: %w", n, err)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Args = append([]string{self, nofileHelperArg, strconv.FormatUint(n, 10), cmd.Path}, cmd.Args...)
	cmd.Path = self
	cmd.ExtraFiles = []*os.File{w}
	return r, nil
}

// MaybeNofileHelper runs the nofile helper when args ask for it, and never
// returns then. main (and tests' TestMain) call it first.
// args: [self, nofileHelperArg, N, path, argv0, argv...]; fd 3 reports errors.
func MaybeNofileHelper(args []string) {
	if len(args) < 5 || args[1] != nofileHelperArg {
		return
	}
	report := os.NewFile(3, "report")
	fail := func(msg string) {
		report.WriteString(msg)
		os.Exit(127)
	}
	n, err := strconv.ParseUint(args[2], 10, 64)
	if err != nil {
		fail("bad nofile value " + args[2])
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		fail(fmt.Sprintf("failed to set resource limit nofile to %d: %v", n, err))
	}
	syscall.CloseOnExec(3)
	err = syscall.Exec(args[3], args[4:], os.Environ())
	fail(fmt.Sprintf("fork/exec %s: %v", args[3], err))
}
