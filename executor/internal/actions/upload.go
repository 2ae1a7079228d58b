package actions

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"taskop.dev/executor/internal/download"
	"taskop.dev/executor/internal/redact"
	"taskop.dev/executor/internal/spec"
)

// upload follows Diego's upload step: "Uploading X..." on stdout when the
// artifact is named, then POST, then "Uploaded X (size)"; failures write
// Diego's "<reason> for X" line to stderr. A file is POSTed as it is.
// A directory is POSTed as a gzipped tar of its contents (Diego's step would
// send only the first entry of garden's stream-out tar, so a directory has no
// useful Diego behaviour; a .tgz is what its download step accepts back).
// The request is Diego's uploader's: Content-Type application/octet-stream
// and a Content-MD5 header.
func (e *Env) upload(ctx context.Context, a *spec.UploadAction) error {
	if ctx.Err() != nil {
		return &CancelledError{}
	}
	forArtifact := func(s string) string {
		if a.Artifact != "" {
			return s + " for " + a.Artifact
		}
		return s
	}
	fail := func(reason string, err error) error {
		if a.Artifact != "" {
			e.Logs.Err(forArtifact(reason))
		}
		err = redact.Error(err) // net/http's errors name the URL, query and all
		return &Emittable{Msg: forArtifact(reason) + ": " + err.Error(), Wrapped: err}
	}
	if a.Artifact != "" {
		e.Logs.Out(fmt.Sprintf("Uploading %s...", a.Artifact))
	}
	u, err := url.ParseRequestURI(a.To)
	if err != nil {
		// Diego does not echo the error: it may leak secrets of the URL.
		if a.Artifact != "" {
			e.Logs.Err(forArtifact("Failed to parse URL"))
		}
		return &Emittable{Msg: forArtifact("Failed to parse URL"), Wrapped: err}
	}
	body, size, err := openPayload(a.From)
	if err != nil {
		return fail("Failed to establish stream from container", err)
	}
	defer body.Close()

	h := md5.New()
	if _, err := io.Copy(h, body); err != nil {
		return fail("Failed to copy stream contents into temp file", err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fail("Failed to copy stream contents into temp file", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), io.NopCloser(body))
	if err != nil {
		return fail("Failed to upload payload", err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-MD5", base64.StdEncoding.EncodeToString(h.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &CancelledError{}
		}
		return fail("Failed to upload payload", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail("Failed to upload payload", fmt.Errorf("Upload failed: Status code %d", resp.StatusCode))
	}
	if a.Artifact != "" {
		e.Logs.Out(fmt.Sprintf("Uploaded %s (%s)", a.Artifact, download.ByteSize(uint64(size))))
	}
	return nil
}

// payload is the body to POST, removed on Close when it is a temporary tgz.
type payload struct {
	*os.File
	temp bool
}

func (p payload) Close() error {
	err := p.File.Close()
	if p.temp {
		os.Remove(p.File.Name())
	}
	return err
}

func openPayload(from string) (payload, int64, error) {
	fi, err := os.Stat(from)
	if err != nil {
		return payload{}, 0, err
	}
	if !fi.IsDir() {
		f, err := os.Open(from)
		return payload{File: f}, fi.Size(), err
	}
	f, err := os.CreateTemp("", "taskop-upload-")
	if err != nil {
		if f, err = os.CreateTemp(filepath.Dir(filepath.Clean(from)), ".taskop-upload-"); err != nil {
			return payload{}, 0, err
		}
	}
	p := payload{File: f, temp: true}
	if err := writeTgz(f, from); err != nil {
		p.Close()
		return payload{}, 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		p.Close()
		return payload{}, 0, err
	}
	return p, size, nil
}

// writeTgz writes dir's contents (paths relative to dir) as a gzipped tar.
func writeTgz(w io.Writer, dir string) error {
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	self := ""
	if f, ok := w.(*os.File); ok {
		self = f.Name()
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." || path == self {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
