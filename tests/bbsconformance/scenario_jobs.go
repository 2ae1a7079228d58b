package main

import (
	"fmt"
	"strings"

	"code.cloudfoundry.org/bbs/models"
)

// The Job scenarios desire an ordinary task in -domain and let the server run it (taskop runs it
// as a Kubernetes Job). They need a server that executes that domain, hence not in "all".

func runRunToCompletion(s *session) {
	cfg, c, l := s.cfg, s.client, s.logger
	guid := s.guid("job")
	def := jobDefinition(cfg, "echo hello > /tmp/result")
	var final *models.Task

	s.runSteps([]step{
		{"desire-task", func() (string, error) {
			return "guid " + guid + " in domain " + cfg.Domain, wantOK(c.DesireTask(l, "", guid, cfg.Domain, def))
		}},
		s.reachesCompleted(guid, &final),
		{"completed-not-failed", func() (string, error) {
			if final == nil {
				return "", fmt.Errorf("no completed task")
			}
			return summary(final), collect(
				eq("state", final.State.String(), models.Task_Completed.String()),
				eq("failed", final.Failed, false),
				eq("failure_reason", final.FailureReason, ""),
				eq("cell_id", final.CellId, ""),
				fieldCheck{name: "first_completed_at (ns)", ok: plausibleNanos(final.FirstCompletedAt), got: final.FirstCompletedAt, want: "now in ns"},
			)
		}},
		{"result", func() (string, error) {
			if final == nil {
				return "", fmt.Errorf("no completed task")
			}
			if !cfg.CheckResult {
				return fmt.Sprintf("result %q (not checked; pass -expect-result to check)", final.Result), nil
			}
			got := strings.TrimRight(final.Result, "\n")
			want := strings.TrimRight(cfg.ExpectResult, "\n")
			return fmt.Sprintf("result %q", final.Result), collect(eq("result (trailing newlines ignored)", got, want))
		}},
		{"resolving-task", func() (string, error) {
			return "resolving", wantOK(c.ResolvingTask(l, "", guid))
		}},
		{"delete-task", func() (string, error) {
			return "deleted", wantOK(c.DeleteTask(l, "", guid))
		}},
		{"task-by-guid-deleted", func() (string, error) {
			_, err := c.TaskByGuid(l, "", guid)
			return "ResourceNotFound", wantBBSError(err, models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
		}},
	})
}

func runCancelRunning(s *session) {
	cfg, c, l := s.cfg, s.client, s.logger
	guid := s.guid("jobcancel")
	def := jobDefinition(cfg, "sleep 3600")

	s.runSteps([]step{
		{"desire-task", func() (string, error) {
			return "guid " + guid + " in domain " + cfg.Domain, wantOK(c.DesireTask(l, "", guid, cfg.Domain, def))
		}},
		{"reaches-running", func() (string, error) {
			t, seen, err := s.waitForState(guid, cfg.Timeout, models.Task_Running)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("states seen %v; %s", seen, summary(t)), collect(
				fieldCheck{name: "cell_id set while Running", ok: t.CellId != "", got: t.CellId, want: "non-empty"})
		}},
		{"cancel-task", func() (string, error) {
			return "cancelled", wantOK(c.CancelTask(l, "", guid))
		}},
		{"task-by-guid-cancelled", func() (string, error) {
			t, err := c.TaskByGuid(l, "", guid)
			if err != nil {
				return "", wantOK(err)
			}
			return summary(t), collect(
				eq("state", t.State.String(), models.Task_Completed.String()),
				eq("failed", t.Failed, true),
				eq("failure_reason", t.FailureReason, "task was cancelled"),
				eq("result", t.Result, ""),
				eq("cell_id", t.CellId, ""),
			)
		}},
		{"cancel-task-again", func() (string, error) {
			return "InvalidStateTransition", wantBBSError(c.CancelTask(l, "", guid), models.Error_InvalidStateTransition, transitionMsg(models.Task_Completed, models.Task_Completed))
		}},
		{"resolving-task", func() (string, error) {
			return "resolving", wantOK(c.ResolvingTask(l, "", guid))
		}},
		{"delete-task", func() (string, error) {
			return "deleted", wantOK(c.DeleteTask(l, "", guid))
		}},
	})
}
