// Package spec reads the task spec the operator hands to `taskop-executor run`.
//
// The spec mirrors Diego BBS's TaskDefinition (action tree, cached
// dependencies, image layers, log rate limit, result file) in camelCase JSON.
// Unknown fields are rejected with an error naming the field path.
//
// The fields user, logSource and cacheKey are accepted and ignored: the
// container runs every process as its one user, the log stream is the pod's
// stdout/stderr, and there is no cross-pod download cache.
package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// DefaultTerminationMessagePath is Kubernetes' default terminationMessagePath.
const DefaultTerminationMessagePath = "/dev/termination-log"

type Spec struct {
	Action                 *Action            `json:"action"`
	CachedDependencies     []CachedDependency `json:"cachedDependencies"`
	ImageLayers            []ImageLayer       `json:"imageLayers"`
	LogRateLimit           *int64             `json:"logRateLimit"`
	ResultFile             string             `json:"resultFile"`
	ResultDir              string             `json:"resultDir"`
	TerminationMessagePath string             `json:"terminationMessagePath"`
}

// Action holds exactly one of its fields (Diego's models.Action).
type Action struct {
	Run          *RunAction          `json:"run"`
	Download     *DownloadAction     `json:"download"`
	Upload       *UploadAction       `json:"upload"`
	Timeout      *TimeoutAction      `json:"timeout"`
	EmitProgress *EmitProgressAction `json:"emitProgress"`
	Try          *TryAction          `json:"try"`
	Parallel     *ListAction         `json:"parallel"`
	Serial       *ListAction         `json:"serial"`
	Codependent  *ListAction         `json:"codependent"`
}

// EnvVar is one variable of a run action: Value, or the value of the
// executor's own variable FromEnv. The operator puts a value that must not
// appear in the spec (a Secret's key, through the pod's annotation readable
// by `view`) into the container's environment under a name of its own and
// names it here; the executor gives it to this process only (RefNames).
type EnvVar struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	FromEnv string `json:"fromEnv"`
}

type ResourceLimits struct {
	Nofile *uint64 `json:"nofile"`
}

type RunAction struct {
	Path              string          `json:"path"`
	Args              []string        `json:"args"`
	Dir               string          `json:"dir"`
	Env               []EnvVar        `json:"env"`
	ResourceLimits    *ResourceLimits `json:"resourceLimits"`
	User              string          `json:"user"`
	LogSource         string          `json:"logSource"`
	SuppressLogOutput bool            `json:"suppressLogOutput"`
}

type DownloadAction struct {
	Artifact          string `json:"artifact"`
	From              string `json:"from"`
	To                string `json:"to"`
	CacheKey          string `json:"cacheKey"`
	LogSource         string `json:"logSource"`
	User              string `json:"user"`
	ChecksumAlgorithm string `json:"checksumAlgorithm"`
	ChecksumValue     string `json:"checksumValue"`
}

type UploadAction struct {
	Artifact  string `json:"artifact"`
	From      string `json:"from"`
	To        string `json:"to"`
	LogSource string `json:"logSource"`
	User      string `json:"user"`
}

type TimeoutAction struct {
	Action    *Action `json:"action"`
	TimeoutMs int64   `json:"timeoutMs"`
	LogSource string  `json:"logSource"`
}

type EmitProgressAction struct {
	Action               *Action `json:"action"`
	StartMessage         string  `json:"startMessage"`
	SuccessMessage       string  `json:"successMessage"`
	FailureMessagePrefix string  `json:"failureMessagePrefix"`
	LogSource            string  `json:"logSource"`
}

type TryAction struct {
	Action    *Action `json:"action"`
	LogSource string  `json:"logSource"`
}

type ListAction struct {
	Actions   []*Action `json:"actions"`
	LogSource string    `json:"logSource"`
}

type CachedDependency struct {
	Name              string `json:"name"`
	From              string `json:"from"`
	To                string `json:"to"`
	CacheKey          string `json:"cacheKey"`
	LogSource         string `json:"logSource"`
	ChecksumAlgorithm string `json:"checksumAlgorithm"`
	ChecksumValue     string `json:"checksumValue"`
}

type ImageLayer struct {
	Name            string `json:"name"`
	URL             string `json:"url"`
	DestinationPath string `json:"destinationPath"`
	LayerType       string `json:"layerType"`
	MediaType       string `json:"mediaType"`
	DigestAlgorithm string `json:"digestAlgorithm"`
	DigestValue     string `json:"digestValue"`
}

// ReadFile reads and parses the spec file.
func ReadFile(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	return Parse(data)
}

// Parse decodes, checks for unknown fields and validates a spec.
func Parse(data []byte) (*Spec, error) {
	var s Spec
	if err := checkFields("", json.RawMessage(bytes.TrimSpace(data)), typeOf(&s)); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	if s.TerminationMessagePath == "" {
		s.TerminationMessagePath = DefaultTerminationMessagePath
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func invalid(path, format string, args ...any) error {
	return fmt.Errorf("spec: %s: %s", path, fmt.Sprintf(format, args...))
}

func (s *Spec) validate() error {
	if s.Action == nil {
		return invalid("action", "required")
	}
	if err := s.Action.validate("action"); err != nil {
		return err
	}
	if s.LogRateLimit != nil && *s.LogRateLimit < -1 {
		return invalid("logRateLimit", "must be -1 or more")
	}
	if s.ResultFile != "" && !strings.HasPrefix(s.ResultFile, "/") {
		return invalid("resultFile", "must be an absolute path")
	}
	for i, c := range s.CachedDependencies {
		p := fmt.Sprintf("cachedDependencies[%d]", i)
		if c.From == "" {
			return invalid(p+".from", "required")
		}
		if c.To == "" {
			return invalid(p+".to", "required")
		}
		if err := validChecksum(p, c.ChecksumAlgorithm, c.ChecksumValue); err != nil {
			return err
		}
	}
	for i, l := range s.ImageLayers {
		p := fmt.Sprintf("imageLayers[%d]", i)
		// Follows bbs models.ImageLayer.Validate.
		if l.URL == "" {
			return invalid(p+".url", "required")
		}
		if l.DestinationPath == "" {
			return invalid(p+".destinationPath", "required")
		}
		if l.LayerType != "SHARED" && l.LayerType != "EXCLUSIVE" {
			return invalid(p+".layerType", "must be SHARED or EXCLUSIVE, not %q", l.LayerType)
		}
		if l.MediaType != "TGZ" && l.MediaType != "TAR" && l.MediaType != "ZIP" {
			return invalid(p+".mediaType", "must be TGZ, TAR or ZIP, not %q", l.MediaType)
		}
		if l.DigestAlgorithm != "" && l.DigestAlgorithm != "SHA256" && l.DigestAlgorithm != "SHA512" {
			return invalid(p+".digestAlgorithm", "must be SHA256 or SHA512, not %q", l.DigestAlgorithm)
		}
		if (l.DigestValue != "" || l.LayerType == "EXCLUSIVE") && l.DigestAlgorithm == "" {
			return invalid(p+".digestAlgorithm", "required")
		}
		if (l.DigestAlgorithm != "" || l.LayerType == "EXCLUSIVE") && l.DigestValue == "" {
			return invalid(p+".digestValue", "required")
		}
	}
	return nil
}

// validChecksum follows bbs models.DownloadAction/CachedDependency.Validate:
// both or neither, and the algorithm is md5, sha1 or sha256.
func validChecksum(path, alg, value string) error {
	if value != "" && alg == "" {
		return invalid(path+".checksumAlgorithm", "required with checksumValue")
	}
	if value == "" && alg != "" {
		return invalid(path+".checksumValue", "required with checksumAlgorithm")
	}
	switch strings.ToLower(alg) {
	case "", "md5", "sha1", "sha256":
		return nil
	}
	return invalid(path+".checksumAlgorithm", "must be md5, sha1 or sha256, not %q", alg)
}

func (a *Action) validate(path string) error {
	if a == nil {
		return invalid(path, "required")
	}
	var set []string
	var err error
	one := func(name string, ok bool, check func(p string) error) {
		if ok {
			set = append(set, name)
			if err == nil {
				err = check(join(path, name))
			}
		}
	}
	one("run", a.Run != nil, func(p string) error {
		if a.Run.Path == "" {
			return invalid(p+".path", "required")
		}
		for i, v := range a.Run.Env {
			if v.Value != "" && v.FromEnv != "" {
				return invalid(fmt.Sprintf("%s.env[%d]", p, i), "takes value or fromEnv, not both")
			}
		}
		return nil
	})
	one("download", a.Download != nil, func(p string) error {
		if a.Download.From == "" {
			return invalid(p+".from", "required")
		}
		if a.Download.To == "" {
			return invalid(p+".to", "required")
		}
		return validChecksum(p, a.Download.ChecksumAlgorithm, a.Download.ChecksumValue)
	})
	one("upload", a.Upload != nil, func(p string) error {
		if a.Upload.From == "" {
			return invalid(p+".from", "required")
		}
		if a.Upload.To == "" {
			return invalid(p+".to", "required")
		}
		return nil
	})
	one("timeout", a.Timeout != nil, func(p string) error {
		if a.Timeout.TimeoutMs <= 0 {
			return invalid(p+".timeoutMs", "must be more than 0")
		}
		return a.Timeout.Action.validate(p + ".action")
	})
	one("emitProgress", a.EmitProgress != nil, func(p string) error {
		return a.EmitProgress.Action.validate(p + ".action")
	})
	one("try", a.Try != nil, func(p string) error { return a.Try.Action.validate(p + ".action") })
	list := func(l *ListAction) func(p string) error {
		return func(p string) error {
			for i, sub := range l.Actions {
				if err := sub.validate(fmt.Sprintf("%s.actions[%d]", p, i)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	one("parallel", a.Parallel != nil, list(a.Parallel))
	one("serial", a.Serial != nil, list(a.Serial))
	one("codependent", a.Codependent != nil, list(a.Codependent))
	switch len(set) {
	case 0:
		return invalid(path, "exactly one action kind is required, found none")
	case 1:
		return err
	}
	return invalid(path, "exactly one action kind is required, found %s", strings.Join(set, ", "))
}

// RefNames are the executor's variables the run actions take values from
// (EnvVar.FromEnv): no process gets them under their own names.
func (s *Spec) RefNames() map[string]bool {
	names := map[string]bool{}
	var walk func(a *Action)
	walk = func(a *Action) {
		if a == nil {
			return
		}
		switch {
		case a.Run != nil:
			for _, v := range a.Run.Env {
				if v.FromEnv != "" {
					names[v.FromEnv] = true
				}
			}
		case a.Timeout != nil:
			walk(a.Timeout.Action)
		case a.EmitProgress != nil:
			walk(a.EmitProgress.Action)
		case a.Try != nil:
			walk(a.Try.Action)
		}
		for _, l := range []*ListAction{a.Parallel, a.Serial, a.Codependent} {
			if l != nil {
				for _, sub := range l.Actions {
					walk(sub)
				}
			}
		}
	}
	walk(s.Action)
	return names
}
