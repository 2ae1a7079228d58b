package actions

import (
	"context"
	"sync"
	"time"
)

// Serial runs steps in order and stops at the first failure (Diego's serial
// step). A cancellation between steps stops it too.
func Serial(steps ...Step) Step {
	return func(ctx context.Context) error {
		for _, s := range steps {
			if err := s(ctx); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return &CancelledError{}
			}
		}
		return nil
	}
}

// Parallel runs steps at once, waits for all, and fails with the aggregate
// of their failures (Diego's parallel step).
func Parallel(steps ...Step) Step {
	return func(ctx context.Context) error {
		errs := make([]error, len(steps))
		var wg sync.WaitGroup
		for i, s := range steps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s(ctx)
			}()
		}
		wg.Wait()
		var agg MultiError
		for _, err := range errs {
			if err != nil {
				agg = append(agg, err)
			}
		}
		if agg == nil {
			return nil
		}
		return agg
	}
}

// codependent runs steps at once; the first to exit, with success or
// failure, cancels the others. It follows Diego's codependent step as the
// transformer builds it for a CodependentAction (errorOnExit = true): a step
// that exits successfully counts as the failure "Codependent step exited".
// The failures are aggregated in the order they happened.
func codependent(steps []Step) Step {
	return func(ctx context.Context) error {
		if len(steps) == 0 {
			return nil
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, len(steps))
		for _, s := range steps {
			go func() { done <- s(ctx) }()
		}
		var agg MultiError
		for range steps {
			err := <-done
			if err == nil {
				err = ErrCodependentStepExited
			}
			agg = append(agg, err)
			cancel()
		}
		return agg
	}
}

// try runs its step and turns a failure into success (Diego's try step only
// logs the error to the executor's own log, which the user does not see).
func try(step Step) Step {
	return func(ctx context.Context) error {
		step(ctx)
		return nil
	}
}

// timeout cancels its step after d and fails with Diego's timeout text,
// "exceeded <d> timeout", followed by "; <the step's error>" when that error
// is fit for the user.
func timeout(step Step, d time.Duration) Step {
	return func(ctx context.Context) error {
		inner, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- step(inner) }()
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case err := <-done:
			return err
		case <-timer.C:
			cancel()
			err := <-done
			msg := "exceeded " + d.String() + " timeout"
			if err != nil && isEmittable(err) {
				msg += "; " + err.Error()
			}
			return &Emittable{Msg: msg, Wrapped: err}
		}
	}
}

// emitProgress follows Diego's emit progress step: the start message on
// stdout before; on success the success message on stdout; on failure, if
// there is a failure prefix, the prefix on stderr followed by ": <error>"
// when the error is fit for the user.
func (e *Env) emitProgress(step Step, start, success, failure string) Step {
	return func(ctx context.Context) error {
		if start != "" {
			e.Logs.Out(start)
		}
		err := step(ctx)
		switch {
		case err == nil && success != "":
			e.Logs.Out(success)
		case err != nil && failure != "":
			if isEmittable(err) {
				e.Logs.Err(failure + ": " + err.Error())
			} else {
				e.Logs.Err(failure)
			}
		}
		return err
	}
}
