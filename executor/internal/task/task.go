// Package task runs a whole task spec: cached dependencies and image
// layers, the action tree, the result file, the termination message.
package task

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"taskop.dev/executor/internal/actions"
	"taskop.dev/executor/internal/download"
	"taskop.dev/executor/internal/logs"
	"taskop.dev/executor/internal/result"
	"taskop.dev/executor/internal/spec"
)

// Options are the task's surroundings; zero values take the defaults.
type Options struct {
	Stdout, Stderr io.Writer
	Signals        <-chan os.Signal // SIGTERM/SIGINT to the executor
	Grace          time.Duration    // Diego's graceful shutdown interval; 10 s
	AckTimeout     time.Duration    // wait for the sidecar's ack; 30 s
	Environ        []string         // default os.Environ()
	Self           string           // default os.Executable()
}

// Outcome is what Run decided.
type Outcome struct {
	Message  []byte // the termination message
	ExitCode int
}

// Run runs the spec, writes the termination message and returns the outcome.
func Run(s *spec.Spec, o Options) Outcome {
	out := run(s, o)
	if err := result.WriteFile(s.TerminationMessagePath, out.Message); err != nil && out.ExitCode == 0 {
		out.ExitCode = 1 // nothing else can be told; the log stream is the user's
	}
	return out
}

func run(s *spec.Spec, o Options) Outcome {
	if o.Grace == 0 {
		o.Grace = 10 * time.Second
	}
	if o.AckTimeout == 0 {
		o.AckTimeout = 30 * time.Second
	}
	if o.Environ == nil {
		o.Environ = os.Environ()
	}
	rate := int64(-1)
	if s.LogRateLimit != nil {
		rate = *s.LogRateLimit
	}
	environ, refs := splitRefs(o.Environ, s.RefNames())
	kill := make(chan struct{})
	env := &actions.Env{
		Logs:    logs.NewStream(o.Stdout, o.Stderr, logs.NewLimiter(rate)),
		Grace:   o.Grace,
		Kill:    kill,
		Environ: environ,
		Refs:    refs,
		Self:    o.Self,
	}

	// Signals: the first cancels everything (SIGTERM to each process group);
	// a second one, or the graceful interval, SIGKILLs.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sigMu sync.Mutex
	var got os.Signal
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		var grace <-chan time.Time
		for {
			select {
			case sig := <-o.Signals:
				sigMu.Lock()
				first := got == nil
				if first {
					got = sig
				}
				sigMu.Unlock()
				if first {
					cancel()
					grace = time.After(o.Grace)
				} else {
					close(kill)
					return
				}
			case <-grace:
				close(kill)
				return
			case <-stopWatch:
				return
			}
		}
	}()
	signalled := func() os.Signal {
		sigMu.Lock()
		defer sigMu.Unlock()
		return got
	}

	err := setup(ctx, env, s)
	if err == nil {
		err = mainAction(env, s)(ctx)
	}
	if sig := signalled(); sig != nil {
		reason := fmt.Sprintf("cancelled: the executor received %s", sigName(sig))
		return Outcome{result.Failure(reason), 128 + sigNum(sig)}
	}
	if err != nil {
		reason := err.Error()
		if reason == "" {
			reason = "cancelled"
		}
		code := actions.ExitStatus(err)
		if code < 1 || code > 255 {
			code = 1
		}
		return Outcome{result.Failure(reason), code}
	}
	if s.ResultFile == "" {
		return Outcome{result.Inline(nil), 0}
	}
	res, reason := result.ReadResultFile(s.ResultFile)
	if reason != "" {
		return Outcome{result.Failure(reason), 1}
	}
	if msg := result.Inline(res); msg != nil {
		return Outcome{msg, 0}
	}
	if err := result.Handoff(s.ResultDir, res, o.AckTimeout); err != nil {
		return Outcome{result.Failure(err.Error()), 1}
	}
	return Outcome{result.Logged(res), 0}
}

// splitRefs takes the variables named in names out of environ: their values
// go to the run actions that name them, never to every process.
func splitRefs(environ []string, names map[string]bool) ([]string, map[string]string) {
	refs := map[string]string{}
	if len(names) == 0 {
		return environ, refs
	}
	kept := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if names[name] {
			refs[name] = value
			continue
		}
		kept = append(kept, kv)
	}
	return kept, refs
}

// setup downloads the cached dependencies and the SHARED image layers, all
// at once, before the action, as Diego's executor does before it creates
// the container (bbs ImageLayers.ToCachedDependencies; executor
// dependencymanager). The first failure cancels the others and fails the
// task with Diego's "failed to create container: <err>".
func setup(ctx context.Context, env *actions.Env, s *spec.Spec) error {
	var steps []actions.Step
	for _, c := range s.CachedDependencies {
		steps = append(steps, env.DownloadStep(actions.Download{Artifact: c.Name, From: c.From, To: c.To,
			ChecksumAlgorithm: c.ChecksumAlgorithm, ChecksumValue: c.ChecksumValue}))
	}
	for _, l := range s.ImageLayers {
		if l.LayerType == "SHARED" {
			steps = append(steps, env.DownloadStep(layerDownload(l)))
		}
	}
	if len(steps) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(steps))
	for _, st := range steps {
		go func() {
			err := st(ctx)
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range steps {
		if err := <-errs; err != nil && first == nil {
			if _, cancelled := err.(*actions.CancelledError); !cancelled {
				first = err
			}
		}
	}
	if first != nil {
		return fmt.Errorf("failed to create container: %w", first)
	}
	if ctx.Err() != nil {
		return &actions.CancelledError{}
	}
	return nil
}

// mainAction puts the EXCLUSIVE image layers, downloaded in parallel, before
// the action (bbs ImageLayers.ToDownloadActions).
func mainAction(env *actions.Env, s *spec.Spec) actions.Step {
	var layers []actions.Step
	for _, l := range s.ImageLayers {
		if l.LayerType == "EXCLUSIVE" {
			layers = append(layers, env.DownloadStep(layerDownload(l)))
		}
	}
	action := env.Build(s.Action)
	if len(layers) == 0 {
		return action
	}
	return actions.Serial(actions.Parallel(layers...), action)
}

func layerDownload(l spec.ImageLayer) actions.Download {
	d := actions.Download{Artifact: l.Name, From: l.URL, To: l.DestinationPath,
		ChecksumAlgorithm: strings.ToLower(l.DigestAlgorithm), ChecksumValue: l.DigestValue}
	switch l.MediaType {
	case "TGZ":
		d.Format = download.TGZ
	case "TAR":
		d.Format = download.TAR
	case "ZIP":
		d.Format = download.ZIP
	}
	return d
}

func sigNum(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return int(syscall.SIGTERM)
}

func sigName(s os.Signal) string {
	switch sigNum(s) {
	case int(syscall.SIGTERM):
		return "SIGTERM"
	case int(syscall.SIGINT):
		return "SIGINT"
	}
	return s.String()
}
