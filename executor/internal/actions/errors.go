// Package actions runs a Diego action tree (run, download, upload, timeout,
// emitProgress, try, serial, parallel, codependent) with the semantics of
// cloudfoundry/executor's depot/steps, inside one container.
//
// The fields user, logSource and cacheKey of the actions are accepted and
// ignored: every process runs as the container's user, the log stream is the
// container's stdout/stderr, and there is no cross-pod download cache.
package actions

import (
	"errors"
	"fmt"
	"strings"
)

// Emittable is Diego's EmittableError: a failure whose text is fit for the
// user (emitProgress prints it after the failure prefix; timeout appends it).
type Emittable struct {
	Msg     string
	Wrapped error
}

func (e *Emittable) Error() string { return e.Msg }
func (e *Emittable) Unwrap() error { return e.Wrapped }

// ExitError is a run step's non-zero exit. Its text follows Diego's run step
// ("<logSource>: Exited with status N"), without the log source prefix as
// logSource is ignored here.
type ExitError struct{ Status int }

func (e *ExitError) Error() string { return fmt.Sprintf("Exited with status %d", e.Status) }

// CancelledError and ExceededGracefulShutdownIntervalError are Diego's errors
// of a cancelled step; neither is displayed in an aggregate error.
type CancelledError struct{}

func (*CancelledError) Error() string { return "cancelled" }

type ExceededGracefulShutdownIntervalError struct{}

func (*ExceededGracefulShutdownIntervalError) Error() string {
	return "exceeded graceful shutdown interval"
}

// ErrCodependentStepExited is Diego's CodependentStepExitedError.
var ErrCodependentStepExited = errors.New("Codependent step exited")

func isEmittable(err error) bool {
	switch err.(type) {
	case *Emittable, *ExitError:
		return true
	}
	return false
}

func displayable(err error) bool {
	switch err.(type) {
	case *CancelledError, *ExceededGracefulShutdownIntervalError:
		return false
	}
	return true
}

// MultiError aggregates the failures of parallel and codependent steps; its
// text is Diego's multiErrorFormat: displayable errors joined by "; ".
type MultiError []error

func (m MultiError) Error() string {
	var parts []string
	for _, e := range m {
		if displayable(e) && e.Error() != "" {
			parts = append(parts, e.Error())
		}
	}
	return strings.Join(parts, "; ")
}

func (m MultiError) Unwrap() []error { return m }

// ExitStatus is the exit status of the run step whose failure is err, or 0.
func ExitStatus(err error) int {
	var e *ExitError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}
