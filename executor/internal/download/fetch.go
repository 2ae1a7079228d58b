// Package download fetches an artifact over HTTP(S), verifies its checksum
// and extracts it into a directory, as Diego's download step and cached
// dependencies do (cacheddownloader + garden StreamIn).
package download

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"taskop.dev/executor/internal/redact"
)

// ChecksumError follows cacheddownloader's ChecksumFailedError text.
type ChecksumError struct{ Algorithm, Expected, Got string }

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("Checksum failed: '%s', expected '%s', got '%s'", e.Algorithm, e.Expected, e.Got)
}

func newHash(alg string) (hash.Hash, error) {
	switch strings.ToLower(alg) {
	case "md5":
		return md5.New(), nil
	case "sha1":
		return sha1.New(), nil
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported checksum algorithm %q", alg)
}

// Fetch GETs url into a temporary file (following redirects), verifies the
// checksum when alg is set, and returns the open file rewound to the start
// and its size. The caller closes and removes the file. tmpDir falls back
// to the directory near "to" when the image has no usable $TMPDIR or /tmp.
// Errors name URLs only as redact.URL prints them.
func Fetch(ctx context.Context, url, alg, want, near string) (*os.File, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, redact.Error(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, redact.Error(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, 0, fmt.Errorf("download failed: status code %d", resp.StatusCode)
	}
	f, err := tempFile(near)
	if err != nil {
		return nil, 0, err
	}
	fail := func(err error) (*os.File, int64, error) {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	var h hash.Hash
	w := io.Writer(f)
	if alg != "" {
		if h, err = newHash(alg); err != nil {
			return fail(err)
		}
		w = io.MultiWriter(f, h)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return fail(redact.Error(err))
	}
	if h != nil {
		got := hex.EncodeToString(h.Sum(nil))
		if !strings.EqualFold(got, want) {
			return fail(&ChecksumError{Algorithm: strings.ToLower(alg), Expected: want, Got: got})
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}
	return f, n, nil
}

func tempFile(near string) (*os.File, error) {
	f, err := os.CreateTemp("", "taskop-download-")
	if err == nil {
		return f, nil
	}
	dir := filepath.Dir(filepath.Clean(near))
	if mkErr := os.MkdirAll(dir, 0o755); mkErr != nil {
		return nil, err
	}
	return os.CreateTemp(dir, ".taskop-download-")
}

// ByteSize formats n as cloudfoundry/bytefmt.ByteSize does ("512B", "1.5K",
// "10M"), for "Downloaded X (size)" and "Uploaded X (size)".
func ByteSize(n uint64) string {
	units := []struct {
		size uint64
		unit string
	}{{1 << 60, "E"}, {1 << 50, "P"}, {1 << 40, "T"}, {1 << 30, "G"}, {1 << 20, "M"}, {1 << 10, "K"}}
	if n == 0 {
		return "0B"
	}
	for _, u := range units {
		if n >= u.size {
			s := fmt.Sprintf("%.1f", float64(n)/float64(u.size))
			return strings.TrimSuffix(s, ".0") + u.unit
		}
	}
	return fmt.Sprintf("%dB", n)
}
