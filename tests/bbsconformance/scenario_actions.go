package main

import (
	"fmt"
	"strings"
	"time"

	"code.cloudfoundry.org/bbs/models"
)

// actionsDefinition is Cloud Controller's buildpack app task (cloud-controller-tasks.md §1):
// Serial[Download the droplet, Run it], plus the lifecycle as a cached dependency.
func actionsDefinition(cfg *config) *models.TaskDefinition {
	def := &models.TaskDefinition{
		RootFs: cfg.RootFS,
		Action: models.WrapAction(models.Serial(
			&models.DownloadAction{
				Artifact:          "droplet",
				From:              cfg.DownloadURL,
				To:                "/tmp/app",
				CacheKey:          "",
				User:              "root",
				ChecksumAlgorithm: "sha256",
				ChecksumValue:     cfg.DownloadSHA256,
			},
			&models.RunAction{
				Path: "/tmp/app/bin/hello.sh",
				Args: []string{"from the Go BBS client"},
				User: "root",
			},
		)),
		CachedDependencies: []*models.CachedDependency{{
			Name:     "lifecycle",
			From:     cfg.DependencyURL,
			To:       "/tmp/lifecycle",
			CacheKey: "buildpack-cflinuxfs4-lifecycle",
		}},
		MemoryMb:              64,
		DiskMb:                64,
		LogGuid:               "bbsconformance",
		LogSource:             "APP/TASK/serial-download",
		ResultFile:            "/tmp/result",
		CompletionCallbackUrl: cfg.CallbackURL,
	}
	if cfg.PlacementTag != "" {
		def.PlacementTags = []string{cfg.PlacementTag}
	}
	return def
}

func runSerialDownload(s *session) {
	cfg, c, l := s.cfg, s.client, s.logger
	guid := s.guid("serial")
	var final *models.Task

	s.runSteps([]step{
		{"desire-task", func() (string, error) {
			if cfg.DownloadURL == "" || cfg.DependencyURL == "" {
				return "", fmt.Errorf("serial-download needs -download-url and -dependency-url")
			}
			return "Serial[Download, Run] + cached dependency, guid " + guid, wantOK(c.DesireTask(l, "", guid, cfg.Domain, actionsDefinition(cfg)))
		}},
		{"stored-as-desired", func() (string, error) {
			t, err := c.TaskByGuid(l, "", guid)
			if err != nil {
				return "", err
			}
			serial := t.TaskDefinition.Action.GetSerialAction()
			if serial == nil || len(serial.Actions) != 2 || serial.Actions[0].GetDownloadAction() == nil {
				return "", fmt.Errorf("TaskByGuid action is %v, want Serial[Download, Run]", t.TaskDefinition.Action)
			}
			deps := t.TaskDefinition.CachedDependencies
			return "action and cached dependency as desired", collect(
				eq("cached dependencies", len(deps), 1),
				eq("cached dependency to", deps[0].To, "/tmp/lifecycle"),
				eq("download checksum", serial.Actions[0].GetDownloadAction().ChecksumValue, cfg.DownloadSHA256),
			)
		}},
		s.reachesCompleted(guid, &final),
		{"result-through-task-by-guid", func() (string, error) {
			if final == nil {
				return "", fmt.Errorf("no completed task")
			}
			checks := []fieldCheck{eq("failed", final.Failed, false), eq("failure_reason", final.FailureReason, "")}
			if cfg.CheckResult {
				checks = append(checks, eq("result", strings.TrimRight(final.Result, "\n"), strings.TrimRight(cfg.ExpectResult, "\n")))
			}
			return fmt.Sprintf("result %q", final.Result), collect(checks...)
		}},
		{"deleted-after-the-callback", func() (string, error) {
			if cfg.CallbackURL == "" {
				return "no callback url: resolving and deleting", firstError(c.ResolvingTask(l, "", guid), c.DeleteTask(l, "", guid))
			}
			deadline := time.Now().Add(cfg.Timeout)
			for time.Now().Before(deadline) {
				_, err := c.TaskByGuid(l, "", guid)
				if err != nil {
					return "ResourceNotFound once the callback was delivered", wantBBSError(err, models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
				}
				time.Sleep(500 * time.Millisecond)
			}
			return "", fmt.Errorf("the task was not deleted within %s of completing (callback not delivered?)", cfg.Timeout)
		}},
	})
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
