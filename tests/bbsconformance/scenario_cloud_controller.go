package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"code.cloudfoundry.org/bbs"
	"code.cloudfoundry.org/bbs/models"
)

// Cloud Controller's app tasks, field for field as cloud_controller_ng builds them
// (task_recipe_builder.rb build_app_task; docker/ and buildpack/task_action_builder.rb), with
// values of the shapes it uses (cloud-controller-tasks.md §1).

const (
	ccLifecycle   = "/tmp/lifecycle/launcher"
	ccCertPath    = "/etc/cf-system-certificates"
	ccBindingFile = "db/password"
	ccBindingData = "db-s3cret"
)

// ccDefaultSecurityGroups are CF's default running security groups, public_networks and dns,
// as egress_rules.rb sends them: one rule per destination.
func ccDefaultSecurityGroups() []*models.SecurityGroupRule {
	var rules []*models.SecurityGroupRule
	for _, d := range []string{
		"0.0.0.0-9.255.255.255",
		"11.0.0.0-169.253.255.255",
		"169.255.0.0-172.15.255.255",
		"172.32.0.0-192.167.255.255",
		"192.169.0.0-255.255.255.255",
	} {
		rules = append(rules, &models.SecurityGroupRule{
			Protocol: "all", Destinations: []string{d}, Annotations: []string{"security_group_id:public-networks"},
		})
	}
	for _, protocol := range []string{"tcp", "udp"} {
		rules = append(rules, &models.SecurityGroupRule{
			Protocol: protocol, Destinations: []string{"0.0.0.0/0"}, Ports: []uint32{53},
			Annotations: []string{"security_group_id:dns"},
		})
	}
	return rules
}

// ccAppTask is the TaskDefinition CC sends for an app task; the lifecycle type adds the action,
// root_fs and cached dependencies.
func ccAppTask(cfg *config, guid, appGUID, name string, env []*models.EnvironmentVariable) *models.TaskDefinition {
	memoryMB := int32(256)
	vcapApplication, _ := json.Marshal(map[string]any{
		"application_id": appGUID, "application_name": "app", "name": "app", "space_name": "space",
		"limits": map[string]any{"mem": memoryMB, "disk": 1024},
	})
	env = append(env,
		&models.EnvironmentVariable{Name: "VCAP_APPLICATION", Value: string(vcapApplication)},
		&models.EnvironmentVariable{Name: "MEMORY_LIMIT", Value: fmt.Sprintf("%dm", memoryMB)},
		&models.EnvironmentVariable{Name: "SERVICE_BINDING_ROOT", Value: "/etc/cf-service-bindings"},
	)
	static := func(v string) *models.MetricTagValue { return &models.MetricTagValue{Static: v} }
	return &models.TaskDefinition{
		CompletionCallbackUrl: cfg.CallbackURL + "/internal/v4/tasks/" + guid + "/completed",
		CpuWeight:             uint32(100 * 256 / 8192),
		DiskMb:                1024,
		MemoryMb:              memoryMB,
		EgressRules:           ccDefaultSecurityGroups(),
		LogGuid:               appGUID,
		LogSource:             "CELL",
		LogRateLimit:          &models.LogRateLimit{BytesPerSecond: 16384},
		MaxPids:               1024,
		MetricTags: map[string]*models.MetricTagValue{
			"source_id": static(appGUID), "app_id": static(appGUID), "app_name": static("app"),
			"organization_id": static("org-guid"), "organization_name": static("org"),
			"space_id": static("space-guid"), "space_name": static("space"),
		},
		Network: &models.Network{Properties: map[string]string{
			"policy_group_id": appGUID, "app_id": appGUID, "space_id": "space-guid",
			"org_id": "org-guid", "ports": "", "container_workload": "task",
		}},
		Privileged:                    false,
		TrustedSystemCertificatesPath: ccCertPath,
		LegacyDownloadUser:            "vcap",
		CertificateProperties:         &models.CertificateProperties{OrganizationalUnit: []string{"app:" + appGUID}},
		VolumeMountedFiles:            []*models.File{{Path: ccBindingFile, Content: ccBindingData}},
		EnvironmentVariables:          env,
		PlacementTags:                 []string{},
	}
}

// ccChecks is the command each task runs: it exits 0 only when the task sees what a Diego cell
// gives it (the lifecycle, the system certificates, the binding file, CC's environment).
func ccChecks(extra string) string {
	return strings.Join([]string{
		"test -x " + ccLifecycle,
		`test "$CF_SYSTEM_CERT_PATH" = ` + ccCertPath,
		"grep -q 'BEGIN CERTIFICATE' " + ccCertPath + "/ca.crt",
		`test "$(cat /etc/cf-service-bindings/` + ccBindingFile + `)" = ` + ccBindingData,
		`test -n "$VCAP_APPLICATION"`,
		`test "$MEMORY_LIMIT" = 256m`,
		extra,
	}, " && ")
}

// ccDockerTask is a Docker app task: one Run of the docker lifecycle's launcher, as root, with the
// lifecycle as a cached dependency and the registry credentials of a private image.
func ccDockerTask(cfg *config, guid, command string) *models.TaskDefinition {
	def := ccAppTask(cfg, guid, "docker-app-guid", "docker-task", nil)
	def.RootFs = cfg.RootFS
	def.Action = models.WrapAction(&models.RunAction{
		User: "root", Path: ccLifecycle, Args: []string{"app", command, "{}"},
		LogSource: "APP/TASK/docker-task", ResourceLimits: &models.ResourceLimits{}, Env: def.EnvironmentVariables,
	})
	def.CachedDependencies = []*models.CachedDependency{{
		From: cfg.DependencyURL, To: "/tmp/lifecycle", CacheKey: "docker-lifecycle",
	}}
	def.ImageUsername, def.ImagePassword = "robot", "registry-s3cret"
	return def
}

// ccBuildpackTask is a buildpack app task on preloaded:cflinuxfs4: Serial[Download the droplet to
// the home directory, Run the buildpack lifecycle's launcher on it], as vcap.
func ccBuildpackTask(cfg *config, guid, command string) *models.TaskDefinition {
	def := ccAppTask(cfg, guid, "buildpack-app-guid", "buildpack-task", nil)
	def.RootFs = "preloaded:cflinuxfs4"
	def.Action = models.WrapAction(models.Serial(
		&models.DownloadAction{
			From: cfg.DownloadURL, To: ".", CacheKey: "", User: "vcap",
			ChecksumAlgorithm: "sha256", ChecksumValue: cfg.DownloadSHA256,
		},
		&models.RunAction{
			User: "vcap", Path: ccLifecycle, Args: []string{"app", command, ""},
			LogSource: "APP/TASK/buildpack-task", ResourceLimits: &models.ResourceLimits{}, Env: def.EnvironmentVariables,
		},
	))
	def.CachedDependencies = []*models.CachedDependency{{
		From: cfg.DependencyURL, To: "/tmp/lifecycle", CacheKey: "buildpack-cflinuxfs4-lifecycle",
	}}
	return def
}

// runCloudController calls the routes Cloud Controller calls, in its order: desire.r2 (domain
// cf-tasks), list.r2 by domain (tasks_sync), get_by_task_guid.r2, cancel, domains/upsert.
func runCloudController(s *session) {
	cfg := s.cfg
	docker, buildpack, long := s.guid("cc-docker"), s.guid("cc-buildpack"), s.guid("cc-cancel")
	desire := func(guid string, def *models.TaskDefinition) error { // the client posts desire.r2
		return wantOK(s.client.DesireTask(s.logger, "", guid, cfg.Domain, def))
	}
	byGuid := func(guid string) (*models.Task, error) {
		resp := &models.TaskResponse{}
		if err := s.conn.rawCall(bbs.TaskByGuidRoute_r2, &models.TaskByGuidRequest{TaskGuid: guid}, resp); err != nil {
			return nil, err
		}
		if resp.Error != nil {
			return nil, resp.Error
		}
		return resp.Task, nil
	}
	gone := func(guid string) (string, error) {
		deadline := time.Now().Add(cfg.Timeout)
		for time.Now().Before(deadline) {
			t, err := byGuid(guid)
			if err != nil {
				return "ResourceNotFound after the callback", wantBBSError(err, models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
			}
			if t.State == models.Task_Completed && t.Failed {
				return "", fmt.Errorf("%s failed: %q", guid, t.FailureReason)
			}
			time.Sleep(500 * time.Millisecond)
		}
		return "", fmt.Errorf("%s still there %s after it was desired (not run, or callback not delivered)", guid, cfg.Timeout)
	}

	s.runSteps([]step{
		{"desire-docker-app-task", func() (string, error) {
			if cfg.DownloadURL == "" || cfg.DependencyURL == "" || cfg.CallbackURL == "" || cfg.CancelWhen == "" {
				return "", fmt.Errorf("cloud-controller needs -download-url, -dependency-url, -callback-url and -cancel-when")
			}
			return docker + " on " + cfg.RootFS, desire(docker, ccDockerTask(cfg, docker, ccChecks("test \"$(id -u)\" = 0")))
		}},
		{"desire-buildpack-app-task", func() (string, error) {
			return buildpack + " on preloaded:cflinuxfs4", desire(buildpack, ccBuildpackTask(cfg, buildpack, ccChecks("./run.sh")))
		}},
		{"desire-long-docker-app-task", func() (string, error) {
			return long + " sleeps until cancelled", desire(long, ccDockerTask(cfg, long, "sleep 600"))
		}},
		{"list-r2-by-domain", func() (string, error) {
			resp := &models.TasksResponse{}
			if err := s.conn.rawCall(bbs.TasksRoute_r2, &models.TasksRequest{Domain: cfg.Domain}, resp); err != nil {
				return "", err
			}
			if resp.Error != nil {
				return "", fmt.Errorf("list.r2: %s", describeErr(resp.Error))
			}
			var guids []string
			for _, t := range resp.Tasks {
				if t.Domain != cfg.Domain {
					return "", fmt.Errorf("list.r2 by domain %s returned a task of domain %s", cfg.Domain, t.Domain)
				}
				guids = append(guids, t.TaskGuid)
			}
			for _, g := range []string{docker, buildpack, long} {
				if !slices.Contains(guids, g) && !s.goneAlready(g) {
					return "", fmt.Errorf("list.r2 by domain %s lacks %s: %v", cfg.Domain, g, guids)
				}
			}
			return fmt.Sprintf("%d tasks of domain %s", len(guids), cfg.Domain), nil
		}},
		{"get-by-task-guid-r2", func() (string, error) {
			t, err := byGuid(long)
			if err != nil {
				return "", err
			}
			return "the long task as desired", collect(
				eq("domain", t.Domain, cfg.Domain),
				eq("root_fs", t.TaskDefinition.RootFs, cfg.RootFS),
				eq("completion_callback_url", t.TaskDefinition.CompletionCallbackUrl, cfg.CallbackURL+"/internal/v4/tasks/"+long+"/completed"),
				eq("trusted_system_certificates_path", t.TaskDefinition.TrustedSystemCertificatesPath, ccCertPath),
				eq("max_pids", t.TaskDefinition.MaxPids, int32(1024)),
				eq("egress rules", len(t.TaskDefinition.EgressRules), 7),
				eq("image_password (never shown)", t.TaskDefinition.ImagePassword, ""),
			)
		}},
		{"docker-app-task-ran-and-is-gone", func() (string, error) { return gone(docker) }},
		{"buildpack-app-task-ran-and-is-gone", func() (string, error) { return gone(buildpack) }},
		{"long-task-runs", func() (string, error) {
			_, states, err := s.waitForState(long, cfg.Timeout, models.Task_Running)
			return "Running", withStates(err, states)
		}},
		{"cancel-the-long-task", func() (string, error) {
			deadline := time.Now().Add(cfg.Timeout)
			for time.Now().Before(deadline) { // the test looks at the running task first
				if _, err := os.Stat(cfg.CancelWhen); err == nil {
					return "cancelled", wantOK(s.client.CancelTask(s.logger, "", long))
				}
				time.Sleep(200 * time.Millisecond)
			}
			return "", fmt.Errorf("%s did not appear within %s", cfg.CancelWhen, cfg.Timeout)
		}},
		{"cancelled-task-is-gone-after-its-callback", func() (string, error) {
			deadline := time.Now().Add(cfg.Timeout)
			for time.Now().Before(deadline) {
				if _, err := byGuid(long); err != nil {
					return "ResourceNotFound", wantBBSError(err, models.Error_ResourceNotFound, models.ErrResourceNotFound.Message)
				}
				time.Sleep(500 * time.Millisecond)
			}
			return "", fmt.Errorf("cancelled task %s still there after %s", long, cfg.Timeout)
		}},
		{"upsert-domain-cf-tasks", func() (string, error) {
			return cfg.Domain + " for 120s", wantOK(s.client.UpsertDomain(s.logger, "", cfg.Domain, 120*time.Second))
		}},
	})
}

// goneAlready reports whether a task is already deleted (a fast task can finish, be called back
// and deleted before CC's next sync lists it).
func (s *session) goneAlready(guid string) bool {
	_, err := s.client.TaskByGuid(s.logger, "", guid)
	return err != nil
}

func withStates(err error, states []string) error {
	if err != nil {
		return fmt.Errorf("%w (states seen: %v)", err, states)
	}
	return nil
}
