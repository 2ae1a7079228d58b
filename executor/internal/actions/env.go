package actions

import (
	"context"
	"time"

	"taskop.dev/executor/internal/logs"
	"taskop.dev/executor/internal/spec"
)

// Step runs one action; it stops early when ctx is cancelled.
type Step func(ctx context.Context) error

// Env is what the steps share.
type Env struct {
	Logs *logs.Stream
	// Grace is Diego's graceful shutdown interval: a cancelled process gets
	// SIGTERM, then SIGKILL after Grace.
	Grace time.Duration
	// Kill, when closed, SIGKILLs every running process at once.
	Kill <-chan struct{}
	// Environ is the executor's own environment, under the actions' env.
	Environ []string
	// Refs are the values run actions take by reference (spec.EnvVar.FromEnv),
	// by the name of the executor's variable holding them; not in Environ.
	Refs map[string]string
	// Self is the executor binary, re-executed to set a child's nofile limit.
	Self string
}

// Build turns an action tree into a step.
func (e *Env) Build(a *spec.Action) Step {
	switch {
	case a.Run != nil:
		return func(ctx context.Context) error { return e.run(ctx, a.Run) }
	case a.Download != nil:
		d := a.Download
		return e.DownloadStep(Download{Artifact: d.Artifact, From: d.From, To: d.To,
			ChecksumAlgorithm: d.ChecksumAlgorithm, ChecksumValue: d.ChecksumValue})
	case a.Upload != nil:
		return func(ctx context.Context) error { return e.upload(ctx, a.Upload) }
	case a.Timeout != nil:
		return timeout(e.Build(a.Timeout.Action), time.Duration(a.Timeout.TimeoutMs)*time.Millisecond)
	case a.EmitProgress != nil:
		p := a.EmitProgress
		return e.emitProgress(e.Build(p.Action), p.StartMessage, p.SuccessMessage, p.FailureMessagePrefix)
	case a.Try != nil:
		return try(e.Build(a.Try.Action))
	case a.Serial != nil:
		return Serial(e.buildAll(a.Serial.Actions)...)
	case a.Parallel != nil:
		return Parallel(e.buildAll(a.Parallel.Actions)...)
	case a.Codependent != nil:
		return codependent(e.buildAll(a.Codependent.Actions))
	}
	panic("actions: empty action") // spec.Parse rejects it
}

func (e *Env) buildAll(as []*spec.Action) []Step {
	steps := make([]Step, len(as))
	for i, a := range as {
		steps[i] = e.Build(a)
	}
	return steps
}
