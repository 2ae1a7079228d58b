package main

import (
	"bytes"
	"fmt"
	"net/http"

	"code.cloudfoundry.org/bbs"
	"code.cloudfoundry.org/bbs/format"
	"code.cloudfoundry.org/bbs/models"
)

// ---------------------------------------------------------------------------------------------
// ping

func runPing(s *session) {
	s.runSteps([]step{
		{"client-ping", func() (string, error) {
			if !s.client.Ping(s.logger, "") {
				return "", fmt.Errorf("Ping() returned false (any transport, status, content-type or decode problem makes it false)")
			}
			return "Ping() = true", nil
		}},
		{"raw-ping-wire", func() (string, error) {
			r, err := s.conn.rawPost(bbs.PingRoute_r0, nil)
			if err != nil {
				return "", err
			}
			return "HTTP 200, application/x-protobuf, body 08 01", collect(
				eq("status", r.Status, http.StatusOK),
				eq("content-type", r.ContentType, bbs.ProtoContentType),
				fieldCheck{name: "body", ok: bytes.Equal(r.Body, []byte{0x08, 0x01}), got: fmt.Sprintf("% x", r.Body), want: "08 01"},
			)
		}},
	})
}

// ---------------------------------------------------------------------------------------------
// lifecycle-external

func runLifecycleExternal(s *session) {
	s.runSteps(mainLifecycleSteps(s))
	s.runSteps(sideLifecycleSteps(s))
	s.runSteps(invalidRequestSteps(s))
}

// mainLifecycleSteps drives one task through Pending → Running → Completed → Resolving → deleted,
// checking every list filter and every invalid transition on the way.
func mainLifecycleSteps(s *session) []step {
	cfg, c, l := s.cfg, s.client, s.logger
	guid := s.guid("main")
	def := richDefinition(cfg)
	cellA, cellB := cfg.Cell, cfg.Cell+"-other"
	otherDomain := cfg.Domain + "-other-" + s.runID
	var stored *models.Task // last task read with TaskByGuid (.r3)

	byGuid := func(exp taskExpectation) func() (string, error) {
		return func() (string, error) {
			t, err := c.TaskByGuid(l, "", guid)
			if err != nil {
				return "", wantOK(err)
			}
			stored = t
			return summary(t), exp.verify(t)
		}
	}
	expect := func(state models.Task_State) taskExpectation {
		return taskExpectation{guid: guid, domain: cfg.Domain, state: state, definition: def}
	}
	pending := expect(models.Task_Pending)
	running := expect(models.Task_Running)
	running.cellID = cellA
	completed := expect(models.Task_Completed)
	completed.result, completed.completedSet = "hello", true
	resolving := completed
	resolving.state = models.Task_Resolving

	return []step{
		{"desire-task", func() (string, error) {
			return "guid " + guid, wantOK(c.DesireTask(l, "", guid, cfg.Domain, def))
		}},
		{"task-by-guid-pending", byGuid(pending)},
		{"desire-task-duplicate", func() (string, error) {
			return "ResourceExists", wantBBSError(c.DesireTask(l, "", guid, cfg.Domain, def), models.Error_ResourceExists, models.ErrResourceExists.Message)
		}},
		{"tasks-includes", func() (string, error) {
			tasks, err := c.Tasks(l, "")
			detail, lerr := wantListed(tasks, err, guid, true)
			if lerr != nil {
				return "", lerr
			}
			if t := findTask(tasks, guid); stored != nil && !t.Equal(stored) {
				return "", fmt.Errorf("listed task differs from TaskByGuid: %s vs %s", summary(t), summary(stored))
			}
			return detail + ", equal to TaskByGuid", nil
		}},
		{"tasks-by-domain-includes", func() (string, error) {
			tasks, err := c.TasksByDomain(l, "", cfg.Domain)
			return wantListed(tasks, err, guid, true)
		}},
		{"tasks-by-domain-other-excludes", func() (string, error) {
			tasks, err := c.TasksByDomain(l, "", otherDomain)
			return wantListed(tasks, err, guid, false)
		}},
		{"tasks-by-cell-excludes-pending", func() (string, error) {
			tasks, err := c.TasksByCellID(l, "", cellA)
			return wantListed(tasks, err, guid, false)
		}},
		{"tasks-r2-downgraded", func() (string, error) {
			resp := &models.TasksResponse{}
			if err := s.conn.rawCall(bbs.TasksRoute_r2, &models.TasksRequest{Domain: cfg.Domain}, resp); err != nil {
				return "", err
			}
			if resp.Error != nil {
				return "", fmt.Errorf("list.r2 returned error %s", describeErr(resp.Error))
			}
			return checkDowngraded(findTask(resp.Tasks, guid), stored, "list.r2")
		}},
		{"task-by-guid-r2-downgraded", func() (string, error) {
			resp := &models.TaskResponse{}
			if err := s.conn.rawCall(bbs.TaskByGuidRoute_r2, &models.TaskByGuidRequest{TaskGuid: guid}, resp); err != nil {
				return "", err
			}
			if resp.Error != nil {
				return "", fmt.Errorf("get_by_task_guid.r2 returned error %s", describeErr(resp.Error))
			}
			return checkDowngraded(resp.Task, stored, "get_by_task_guid.r2")
		}},
		{"start-task", func() (string, error) {
			should, err := c.StartTask(l, "", guid, cellA)
			if err != nil {
				return "", wantOK(err)
			}
			return "should_start=true", collect(eq("should_start", should, true))
		}},
		{"task-by-guid-running", byGuid(running)},
		{"start-task-same-cell", func() (string, error) {
			should, err := c.StartTask(l, "", guid, cellA)
			if err != nil {
				return "", wantOK(err)
			}
			return "should_start=false, no error", collect(eq("should_start", should, false))
		}},
		{"start-task-other-cell", func() (string, error) {
			_, err := c.StartTask(l, "", guid, cellB)
			return "InvalidStateTransition", wantBBSError(err, models.Error_InvalidStateTransition, transitionMsg(models.Task_Running, models.Task_Running))
		}},
		{"tasks-by-cell-includes-running", func() (string, error) {
			tasks, err := c.TasksByCellID(l, "", cellA)
			return wantListed(tasks, err, guid, true)
		}},
		{"tasks-with-filter-domain-and-cell", func() (string, error) {
			tasks, err := c.TasksWithFilter(l, "", models.TaskFilter{Domain: cfg.Domain, CellID: cellA})
			return wantListed(tasks, err, guid, true)
		}},
		{"tasks-with-filter-other-domain-excludes", func() (string, error) {
			tasks, err := c.TasksWithFilter(l, "", models.TaskFilter{Domain: otherDomain, CellID: cellA})
			return wantListed(tasks, err, guid, false)
		}},
		{"tasks-with-filter-other-cell-excludes", func() (string, error) {
			tasks, err := c.TasksWithFilter(l, "", models.TaskFilter{Domain: cfg.Domain, CellID: cellB})
			return wantListed(tasks, err, guid, false)
		}},
		{"complete-task-other-cell", func() (string, error) {
			err := c.CompleteTask(l, "", guid, cellB, false, "", "hello")
			return "RunningOnDifferentCell", wantBBSError(err, models.Error_RunningOnDifferentCell, models.NewRunningOnDifferentCellError(cellB, cellA).Message)
		}},
		{"complete-task", func() (string, error) {
			return "completed on " + cellA, wantOK(c.CompleteTask(l, "", guid, cellA, false, "", "hello"))
		}},
		{"task-by-guid-completed", byGuid(completed)},
		{"tasks-by-cell-excludes-completed", func() (string, error) {
			tasks, err := c.TasksByCellID(l, "", cellA)
			return wantListed(tasks, err, guid, false)
		}},
		{"cancel-task-completed", func() (string, error) {
			return "InvalidStateTransition", wantBBSError(c.CancelTask(l, "", guid), models.Error_InvalidStateTransition, transitionMsg(models.Task_Completed, models.Task_Completed))
		}},
		{"start-task-completed", func() (string, error) {
			_, err := c.StartTask(l, "", guid, cellA)
			return "InvalidStateTransition", wantBBSError(err, models.Error_InvalidStateTransition, transitionMsg(models.Task_Completed, models.Task_Running))
		}},
		{"reject-task-completed", func() (string, error) {
			// Reference quirk (§8.11): RejectTask on a finished task is InvalidRequest.
			return "InvalidRequest", wantBBSError(c.RejectTask(l, "", guid, "late"), models.Error_InvalidRequest, models.ErrBadRequest.Message)
		}},
		{"resolving-task", func() (string, error) {
			return "resolving", wantOK(c.ResolvingTask(l, "", guid))
		}},
		{"task-by-guid-resolving", byGuid(resolving)},
		{"resolving-task-again", func() (string, error) {
			return "InvalidStateTransition", wantBBSError(c.ResolvingTask(l, "", guid), models.Error_InvalidStateTransition, transitionMsg(models.Task_Resolving, models.Task_Resolving))
		}},
		{"delete-task", func() (string, error) {
			return "deleted", wantOK(c.DeleteTask(l, "", guid))
		}},
		{"task-by-guid-deleted", func() (string, error) {
			_, err := c.TaskByGuid(l, "", guid)
			return "ResourceNotFound", wantBBSError(err, models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
		}},
		{"tasks-excludes-deleted", func() (string, error) {
			tasks, err := c.Tasks(l, "")
			return wantListed(tasks, err, guid, false)
		}},
	}
}

// checkDowngraded compares a task served on a deprecated route with what the real models
// produce from the .r3 task (Task.VersionDownTo(format.V2)).
func checkDowngraded(got, r3 *models.Task, route string) (string, error) {
	if got == nil {
		return "", fmt.Errorf("%s: task not returned", route)
	}
	if r3 == nil {
		return "", fmt.Errorf("%s: no .r3 task to compare with (earlier TaskByGuid failed)", route)
	}
	want := r3.VersionDownTo(format.V2)
	if !got.Equal(want) {
		return "", fmt.Errorf("%s: task differs from VersionDownTo(V2) of the .r3 task:\n got  %+v\n want %+v", route, got.TaskDefinition, want.TaskDefinition)
	}
	if len(got.ImageLayers) != 0 {
		return "", fmt.Errorf("%s: image_layers not cleared", route)
	}
	return fmt.Sprintf("%s equals VersionDownTo(V2): %d cached deps, image layers moved", route, len(got.CachedDependencies)), nil
}

// sideLifecycleSteps covers RejectTask, FailTask, CancelTask on Pending tasks, invalid
// transitions from Pending, and unknown guids.
func sideLifecycleSteps(s *session) []step {
	cfg, c, l := s.cfg, s.client, s.logger
	rejected, failed, cancelled := s.guid("reject"), s.guid("fail"), s.guid("cancel")
	unknown := "conf-unknown-" + s.runID
	def := simpleDefinition(cfg)
	pending := func(guid string) taskExpectation {
		return taskExpectation{guid: guid, domain: cfg.Domain, state: models.Task_Pending, definition: def}
	}
	verify := func(guid string, exp taskExpectation) func() (string, error) {
		return func() (string, error) {
			t, err := c.TaskByGuid(l, "", guid)
			if err != nil {
				return "", wantOK(err)
			}
			return summary(t), exp.verify(t)
		}
	}
	rejectedOnce := pending(rejected)
	rejectedOnce.rejectionCount, rejectedOnce.rejectionReason = 1, "no capacity"
	rejectedTwice := rejectedOnce
	rejectedTwice.rejectionCount, rejectedTwice.rejectionReason = 2, "still no capacity"
	failedExp := pending(failed)
	failedExp.state, failedExp.failed, failedExp.failureReason, failedExp.completedSet = models.Task_Completed, true, "boom", true
	cancelledExp := pending(cancelled)
	cancelledExp.state, cancelledExp.failed, cancelledExp.failureReason, cancelledExp.completedSet = models.Task_Completed, true, "task was cancelled", true

	return []step{
		{"desire-side-tasks", func() (string, error) {
			for _, g := range []string{rejected, failed, cancelled} {
				if err := c.DesireTask(l, "", g, cfg.Domain, def); err != nil {
					return "", fmt.Errorf("DesireTask %s: %s", g, describeErr(err))
				}
			}
			return "3 pending tasks", nil
		}},
		{"reject-task-pending", func() (string, error) {
			return "rejected", wantOK(c.RejectTask(l, "", rejected, "no capacity"))
		}},
		{"task-by-guid-rejected-once", verify(rejected, rejectedOnce)},
		{"reject-task-pending-again", func() (string, error) {
			return "rejected", wantOK(c.RejectTask(l, "", rejected, "still no capacity"))
		}},
		{"task-by-guid-rejected-twice", verify(rejected, rejectedTwice)},
		{"delete-task-pending", func() (string, error) {
			// Reference quirk (§8.11): the message names Resolving as the target.
			return "InvalidStateTransition", wantBBSError(c.DeleteTask(l, "", rejected), models.Error_InvalidStateTransition, transitionMsg(models.Task_Pending, models.Task_Resolving))
		}},
		{"resolving-task-pending", func() (string, error) {
			return "InvalidStateTransition", wantBBSError(c.ResolvingTask(l, "", rejected), models.Error_InvalidStateTransition, transitionMsg(models.Task_Pending, models.Task_Resolving))
		}},
		{"complete-task-pending", func() (string, error) {
			return "InvalidStateTransition", wantBBSError(c.CompleteTask(l, "", rejected, cfg.Cell, false, "", "x"), models.Error_InvalidStateTransition, transitionMsg(models.Task_Pending, models.Task_Completed))
		}},
		{"fail-task-pending", func() (string, error) {
			return "failed", wantOK(c.FailTask(l, "", failed, "boom"))
		}},
		{"task-by-guid-failed", verify(failed, failedExp)},
		{"fail-task-completed", func() (string, error) {
			return "InvalidStateTransition", wantBBSError(c.FailTask(l, "", failed, "again"), models.Error_InvalidStateTransition, transitionMsg(models.Task_Completed, models.Task_Completed))
		}},
		{"cancel-task-pending", func() (string, error) {
			return "cancelled", wantOK(c.CancelTask(l, "", cancelled))
		}},
		{"task-by-guid-cancelled", verify(cancelled, cancelledExp)},
		{"task-by-guid-unknown", func() (string, error) {
			_, err := c.TaskByGuid(l, "", unknown)
			return "ResourceNotFound", wantBBSError(err, models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
		}},
		{"task-by-guid-r2-unknown", func() (string, error) {
			resp := &models.TaskResponse{}
			if err := s.conn.rawCall(bbs.TaskByGuidRoute_r2, &models.TaskByGuidRequest{TaskGuid: unknown}, resp); err != nil {
				return "", err
			}
			if resp.Task != nil {
				return "", fmt.Errorf("a task was returned with the error")
			}
			return "ResourceNotFound", wantBBSError(resp.Error.ToError(), models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
		}},
		{"cancel-task-unknown", func() (string, error) {
			return "ResourceNotFound", wantBBSError(c.CancelTask(l, "", unknown), models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
		}},
		{"start-task-unknown", func() (string, error) {
			_, err := c.StartTask(l, "", unknown, cfg.Cell)
			return "ResourceNotFound", wantBBSError(err, models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
		}},
		{"delete-task-unknown", func() (string, error) {
			return "ResourceNotFound", wantBBSError(c.DeleteTask(l, "", unknown), models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
		}},
	}
}

// invalidRequestSteps sends requests that fail validation. The expected message is what the real
// models' Validate() says, which the real BBS returns verbatim as an InvalidRequest.
func invalidRequestSteps(s *session) []step {
	cfg, c, l := s.cfg, s.client, s.logger
	valid := s.guid("invalid") // never created
	noAction := simpleDefinition(cfg)
	noAction.Action = nil
	noRootFS := simpleDefinition(cfg)
	noRootFS.RootFs = ""

	type desireCase struct {
		name   string
		guid   string
		domain string
		def    *models.TaskDefinition
	}
	cases := []desireCase{
		{"desire-task-invalid-guid", "bad guid!", cfg.Domain, simpleDefinition(cfg)},
		{"desire-task-missing-action", valid, cfg.Domain, noAction},
		{"desire-task-missing-domain", valid, "", simpleDefinition(cfg)},
		{"desire-task-missing-rootfs", valid, cfg.Domain, noRootFS},
		{"desire-task-missing-definition", valid, cfg.Domain, nil},
	}
	var steps []step
	for _, tc := range cases {
		tc := tc
		steps = append(steps, step{tc.name, func() (string, error) {
			req := &models.DesireTaskRequest{TaskGuid: tc.guid, Domain: tc.domain, TaskDefinition: tc.def}
			verr := req.Validate()
			if verr == nil {
				return "", fmt.Errorf("test bug: request is valid")
			}
			err := c.DesireTask(l, "", tc.guid, tc.domain, tc.def)
			return fmt.Sprintf("InvalidRequest %q", verr.Error()), wantBBSError(err, models.Error_InvalidRequest, verr.Error())
		}})
	}
	internal := []struct {
		name string
		req  interface{ Validate() error }
		call func() error
	}{
		{"start-task-missing-cell", &models.StartTaskRequest{TaskGuid: valid}, func() error { _, err := c.StartTask(l, "", valid, ""); return err }},
		{"fail-task-missing-reason", &models.FailTaskRequest{TaskGuid: valid}, func() error { return c.FailTask(l, "", valid, "") }},
		{"reject-task-missing-reason", &models.RejectTaskRequest{TaskGuid: valid}, func() error { return c.RejectTask(l, "", valid, "") }},
		{"complete-task-missing-cell", &models.CompleteTaskRequest{TaskGuid: valid}, func() error { return c.CompleteTask(l, "", valid, "", false, "", "") }},
	}
	for _, tc := range internal {
		tc := tc
		steps = append(steps, step{tc.name, func() (string, error) {
			verr := tc.req.Validate()
			if verr == nil {
				return "", fmt.Errorf("test bug: request is valid")
			}
			return fmt.Sprintf("InvalidRequest %q", verr.Error()), wantBBSError(tc.call(), models.Error_InvalidRequest, verr.Error())
		}})
	}
	return steps
}
