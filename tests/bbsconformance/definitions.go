package main

import (
	"time"

	"code.cloudfoundry.org/bbs/models"
)

// runAction is a RunAction as Cloud Controller sends them (path + args + user).
func runAction(script string) *models.Action {
	return models.WrapAction(&models.RunAction{
		Path: "sh",
		Args: []string{"-c", script},
		User: "root",
	})
}

// simpleDefinition is a minimal valid task definition.
func simpleDefinition(cfg *config) *models.TaskDefinition {
	return &models.TaskDefinition{
		RootFs:   cfg.RootFS,
		Action:   runAction("echo hello > /tmp/result"),
		MemoryMb: 64,
		DiskMb:   64,
	}
}

// jobDefinition is the task the Job scenarios desire: the server decides to run it.
func jobDefinition(cfg *config, script string) *models.TaskDefinition {
	return &models.TaskDefinition{
		RootFs:     cfg.RootFS,
		Action:     runAction(script),
		MemoryMb:   64,
		DiskMb:     64,
		LogGuid:    "bbsconformance",
		LogSource:  "TASK",
		ResultFile: "/tmp/result",
	}
}

// richDefinition sets most TaskDefinition fields, so that the stored definition's round trip
// (TaskByGuid .r3 must return it unchanged) covers the whole message, and includes one SHARED
// and one EXCLUSIVE image layer so that the .r2 downgrade (§1) has something to do.
func richDefinition(cfg *config) *models.TaskDefinition {
	limits := &models.ResourceLimits{}
	limits.SetNofile(1024)
	return &models.TaskDefinition{
		RootFs: cfg.RootFS,
		EnvironmentVariables: []*models.EnvironmentVariable{
			{Name: "FOO", Value: "bar"},
			{Name: "EMPTY", Value: ""},
		},
		Action: models.WrapAction(models.Timeout(
			&models.RunAction{
				Path:           "sh",
				Args:           []string{"-c", "echo hello > /tmp/result"},
				Dir:            "/tmp",
				Env:            []*models.EnvironmentVariable{{Name: "A", Value: "1"}},
				ResourceLimits: limits,
				User:           "root",
				LogSource:      "APP",
			},
			time.Minute,
		)),
		DiskMb:      128,
		MemoryMb:    256,
		CpuWeight:   50,
		Privileged:  false,
		LogSource:   "TASK",
		LogGuid:     "log-guid-1",
		MetricsGuid: "metrics-guid-1",
		ResultFile:  "/tmp/result",
		Annotation:  `{"conformance": true}`,
		EgressRules: []*models.SecurityGroupRule{
			{Protocol: "tcp", Destinations: []string{"10.0.0.0/8"}, Ports: []uint32{80, 443}},
			{Protocol: "udp", Destinations: []string{"10.0.0.1-10.0.0.9"}, PortRange: &models.PortRange{Start: 53, End: 54}},
			{Protocol: "icmp", Destinations: []string{"0.0.0.0/0"}, IcmpInfo: &models.ICMPInfo{Type: 8, Code: 0}},
		},
		CachedDependencies: []*models.CachedDependency{
			{Name: "dep", From: "http://example.com/dep.tgz", To: "/tmp/dep", CacheKey: "dep-key", LogSource: "DEP"},
		},
		LegacyDownloadUser:            "vcap",
		TrustedSystemCertificatesPath: "/etc/cf-system-certificates",
		Network:                       &models.Network{Properties: map[string]string{"policy_group_id": "g1"}},
		PlacementTags:                 []string{"conformance"},
		MaxPids:                       1024,
		CertificateProperties:         &models.CertificateProperties{OrganizationalUnit: []string{"app:1"}},
		ImageLayers: []*models.ImageLayer{
			{
				Name: "shared-layer", Url: "http://example.com/shared.tgz", DestinationPath: "/shared",
				LayerType: models.LayerTypeShared, MediaType: models.MediaTypeTgz,
				DigestAlgorithm: models.DigestAlgorithmSha256, DigestValue: "aaaa",
			},
			{
				Name: "exclusive-layer", Url: "http://example.com/excl.tgz", DestinationPath: "/excl",
				LayerType: models.LayerTypeExclusive, MediaType: models.MediaTypeTgz,
				DigestAlgorithm: models.DigestAlgorithmSha256, DigestValue: "bbbb",
			},
		},
		LogRateLimit: &models.LogRateLimit{BytesPerSecond: 1024},
		MetricTags: map[string]*models.MetricTagValue{
			"source_id": {Static: "abc"},
			"index":     {Dynamic: models.MetricTagDynamicValueIndex},
		},
		VolumeMountedFiles: []*models.File{{Path: "/etc/conf", Content: "x=1"}},
	}
}
