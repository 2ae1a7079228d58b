package spec

import (
	"strings"
	"testing"
)

func TestParseErrorsNameTheFieldPath(t *testing.T) {
	for spec, want := range map[string]string{
		`{"action":{"serial":{"actions":[{"run":{"path":"a"}},{"run":{"pth":"b"}}]}}}`: "unknown field action.serial.actions[1].run.pth",
		`{"action":{"run":{"path":"a","resourceLimits":{"nproc":1}}}}`:                 "unknown field action.run.resourceLimits.nproc",
		`{"action":{"run":{"path":"a"}},"imageLayers":[{"name":"x","colour":1}]}`:      "unknown field imageLayers[0].colour",
		`{"action":{"run":{"path":"a"}},"extra":true}`:                                 "unknown field extra",
		`{"action":{"run":{"path":"a"},"try":{"action":{"run":{"path":"b"}}}}}`:        "action: exactly one action kind is required, found run, try",
		`{"action":{}}`:                          "action: exactly one action kind is required, found none",
		`{}`:                                     "action: required",
		`{"action":{"timeout":{"timeoutMs":5}}}`: "action.timeout.action: required",
		`{"action":{"download":{"from":"http://x","to":"/d","checksumAlgorithm":"crc32","checksumValue":"1"}}}`:                                   "action.download.checksumAlgorithm: must be md5, sha1 or sha256",
		`{"action":{"run":{"path":"a"}},"imageLayers":[{"name":"x","url":"u","destinationPath":"/d","layerType":"EXCLUSIVE","mediaType":"TGZ"}]}`: "imageLayers[0].digestAlgorithm: required",
		`{"action":{"run":{"path":"a","args":"notalist"}}}`:                                                                                       "action.run.args",
		`{"action":{"try":{"action":{"run":{"path":"a","env":[{"name":"A","value":"1","fromEnv":"B"}]}}}}}`:                                       "action.try.action.run.env[0]: takes value or fromEnv, not both",
	} {
		_, err := Parse([]byte(spec))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", spec, err, want)
		}
	}
}

func TestParseAcceptsAFullSpecAndDefaultsTheTerminationPath(t *testing.T) {
	s, err := Parse([]byte(`{"action":{"emitProgress":{"startMessage":"s","action":{"codependent":{"actions":[
		{"run":{"path":"a","user":"vcap","logSource":"APP","resourceLimits":{"nofile":10},"env":[{"name":"A","value":"1"}]}},
		{"download":{"from":"http://x","to":"/d","cacheKey":"k","checksumAlgorithm":"SHA256","checksumValue":"ab"}}]}}}},
		"logRateLimit":-1,"cachedDependencies":[{"name":"n","from":"http://x","to":"/c","cacheKey":"k"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.TerminationMessagePath != "/dev/termination-log" {
		t.Fatalf("termination path %q", s.TerminationMessagePath)
	}
	if *s.Action.EmitProgress.Action.Codependent.Actions[0].Run.ResourceLimits.Nofile != 10 {
		t.Fatal("nofile not parsed")
	}
}

func TestRefNamesAreEveryRunActionsFromEnv(t *testing.T) {
	s, err := Parse([]byte(`{"action":{"serial":{"actions":[
		{"run":{"path":"a","env":[{"name":"A","value":"1"},{"name":"B","fromEnv":"REF_0"}]}},
		{"timeout":{"timeoutMs":5,"action":{"parallel":{"actions":[{"run":{"path":"b","env":[{"name":"C","fromEnv":"REF_1"}]}}]}}}}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := s.RefNames()
	if len(got) != 2 || !got["REF_0"] || !got["REF_1"] {
		t.Fatalf("RefNames() = %v, want REF_0 and REF_1", got)
	}
}
