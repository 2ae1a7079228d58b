package main

import (
	"fmt"
	"strings"
	"time"

	"code.cloudfoundry.org/bbs/models"
)

// Assertions return nil on success and an error describing the mismatch otherwise.

// wantOK expects no error.
func wantOK(err error) error {
	if err != nil {
		return fmt.Errorf("unexpected error: %s", describeErr(err))
	}
	return nil
}

// wantBBSError expects a *models.Error of the given type and, when msg != "", that exact message
// (the real BBS's message; see bbs-tasks.md §4/§6).
func wantBBSError(err error, typ models.Error_Type, msg string) error {
	if err == nil {
		return fmt.Errorf("no error, want %s %q", typ, msg)
	}
	me, ok := err.(*models.Error)
	if !ok {
		return fmt.Errorf("error %T %q is not a BBS models.Error, want %s", err, err, typ)
	}
	if me.Type != typ {
		return fmt.Errorf("got %s, want %s %q", describeErr(err), typ, msg)
	}
	if msg != "" && me.Message != msg {
		return fmt.Errorf("got %s with message %q, want message %q", me.Type, me.Message, msg)
	}
	return nil
}

func describeErr(err error) string {
	if me, ok := err.(*models.Error); ok {
		return fmt.Sprintf("%s %q", me.Type, me.Message)
	}
	return fmt.Sprintf("%T %q", err, err.Error())
}

func transitionMsg(from, to models.Task_State) string {
	return models.NewTaskTransitionError(from, to).Message
}

// fieldCheck is one expected property of a task.
type fieldCheck struct {
	name string
	ok   bool
	got  interface{}
	want interface{}
}

func eq(name string, got, want interface{}) fieldCheck {
	return fieldCheck{name: name, ok: got == want, got: got, want: want}
}

func collect(checks ...fieldCheck) error {
	var bad []string
	for _, c := range checks {
		if !c.ok {
			bad = append(bad, fmt.Sprintf("%s: got %v, want %v", c.name, c.got, c.want))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

// plausibleNanos is true for a Unix timestamp in nanoseconds within a day of now.
func plausibleNanos(ts int64) bool {
	now := time.Now().UnixNano()
	return ts > now-int64(24*time.Hour) && ts < now+int64(24*time.Hour)
}

// taskExpectation describes what a task returned by the server must look like.
type taskExpectation struct {
	guid, domain    string
	state           models.Task_State
	cellID          string
	failed          bool
	failureReason   string
	result          string
	rejectionCount  int32
	rejectionReason string
	definition      *models.TaskDefinition // when set, must be Equal to the task's definition
	completedSet    bool                   // first_completed_at must be set (else must be 0)
}

func (e taskExpectation) verify(t *models.Task) error {
	if t == nil {
		return fmt.Errorf("nil task")
	}
	checks := []fieldCheck{
		eq("task_guid", t.TaskGuid, e.guid),
		eq("domain", t.Domain, e.domain),
		eq("state", t.State.String(), e.state.String()),
		eq("cell_id", t.CellId, e.cellID),
		eq("failed", t.Failed, e.failed),
		eq("failure_reason", t.FailureReason, e.failureReason),
		eq("result", t.Result, e.result),
		eq("rejection_count", t.RejectionCount, e.rejectionCount),
		eq("rejection_reason", t.RejectionReason, e.rejectionReason),
		{name: "created_at (Unix ns, near now)", ok: plausibleNanos(t.CreatedAt), got: t.CreatedAt, want: "now in ns"},
		{name: "updated_at (>= created_at, ns)", ok: plausibleNanos(t.UpdatedAt) && t.UpdatedAt >= t.CreatedAt, got: t.UpdatedAt, want: ">= created_at"},
		{name: "task_definition present", ok: t.TaskDefinition != nil, got: t.TaskDefinition != nil, want: true},
	}
	if e.completedSet {
		checks = append(checks, fieldCheck{name: "first_completed_at (ns, set)", ok: plausibleNanos(t.FirstCompletedAt), got: t.FirstCompletedAt, want: "now in ns"})
	} else {
		checks = append(checks, eq("first_completed_at", t.FirstCompletedAt, int64(0)))
	}
	if e.definition != nil && t.TaskDefinition != nil {
		checks = append(checks, fieldCheck{name: "task_definition round-trip", ok: e.definition.Equal(t.TaskDefinition),
			got: fmt.Sprintf("%+v", t.TaskDefinition), want: fmt.Sprintf("%+v", e.definition)})
	}
	return collect(checks...)
}

func summary(t *models.Task) string {
	if t == nil {
		return "nil task"
	}
	return fmt.Sprintf("guid=%s state=%s cell=%q failed=%v reason=%q result=%q rejections=%d",
		t.TaskGuid, t.State, t.CellId, t.Failed, t.FailureReason, t.Result, t.RejectionCount)
}

// findTask returns the task with the guid in a list, or nil.
func findTask(tasks []*models.Task, guid string) *models.Task {
	for _, t := range tasks {
		if t != nil && t.TaskGuid == guid {
			return t
		}
	}
	return nil
}

// wantListed checks a list call's result: no error and the guid present (or absent).
func wantListed(tasks []*models.Task, err error, guid string, present bool) (string, error) {
	if err != nil {
		return "", wantOK(err)
	}
	found := findTask(tasks, guid) != nil
	if found != present {
		if present {
			return "", fmt.Errorf("%s missing from %d tasks", guid, len(tasks))
		}
		return "", fmt.Errorf("%s listed but must not be (%d tasks)", guid, len(tasks))
	}
	if present {
		return fmt.Sprintf("listed among %d tasks", len(tasks)), nil
	}
	return fmt.Sprintf("not listed among %d tasks", len(tasks)), nil
}
