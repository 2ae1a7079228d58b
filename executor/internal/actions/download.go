package actions

import (
	"context"
	"fmt"
	"os"

	"taskop.dev/executor/internal/download"
	"taskop.dev/executor/internal/redact"
)

// Download is a download action, a cached dependency or an image layer.
type Download struct {
	Artifact          string
	From, To          string
	ChecksumAlgorithm string
	ChecksumValue     string
	Format            string // download.Auto (by content) or an image layer's media type
}

// DownloadStep follows Diego's download step: "Downloading X..." on stdout
// when the artifact is named, then fetch and verify, then extract; a fetch
// failure writes "Downloading X failed" to stderr, an extraction failure
// "Copying X into the container failed: <err>"; success writes
// "Downloaded X (size)" to stdout. The returned error adds the cause to
// Diego's text, and names the URL (redact.URL: without userinfo, query or
// fragment) when no artifact is named.
func (e *Env) DownloadStep(d Download) Step {
	return func(ctx context.Context) error {
		if ctx.Err() != nil {
			return &CancelledError{}
		}
		if d.Artifact != "" {
			e.Logs.Out(fmt.Sprintf("Downloading %s...", d.Artifact))
		}
		f, size, err := download.Fetch(ctx, d.From, d.ChecksumAlgorithm, d.ChecksumValue, d.To)
		if err != nil {
			if ctx.Err() != nil {
				return &CancelledError{}
			}
			short := "Downloading failed"
			name := redact.URL(d.From)
			if d.Artifact != "" {
				short = fmt.Sprintf("Downloading %s failed", d.Artifact)
				name = d.Artifact
			}
			e.Logs.Err(truncate(short, 1024))
			return &Emittable{Msg: fmt.Sprintf("Downloading %s failed: %v", name, err), Wrapped: err}
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if err := download.Extract(f, size, d.To, d.Format); err != nil {
			msg := fmt.Sprintf("Copying into the container failed: %v", err)
			if d.Artifact != "" {
				msg = fmt.Sprintf("Copying %s into the container failed: %v", d.Artifact, err)
			}
			e.Logs.Err(truncate(msg, 1024))
			return &Emittable{Msg: msg, Wrapped: err}
		}
		if d.Artifact != "" {
			e.Logs.Out(fmt.Sprintf("Downloaded %s (%s)", d.Artifact, download.ByteSize(uint64(size))))
		}
		return nil
	}
}

// truncate follows the download step's emitError: at most n bytes, ending
// in " (error truncated)".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const tail = " (error truncated)"
	return s[:n-len(tail)] + tail
}
