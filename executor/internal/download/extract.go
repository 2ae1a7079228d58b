package download

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Archive formats. Auto detects by content (what garden's StreamIn of a
// cacheddownloader result amounts to: a tgz, a zip, or a tar).
const (
	Auto = ""
	TGZ  = "TGZ"
	TAR  = "TAR"
	ZIP  = "ZIP"
)

// Extract unpacks the archive in f into dir (created if missing). Modes,
// directories, symlinks and hard links are preserved; an entry whose path or
// link would land outside dir is refused.
func Extract(f *os.File, size int64, dir, format string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if format == Auto {
		magic := make([]byte, 4)
		n, _ := io.ReadFull(f, magic)
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		switch {
		case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
			format = TGZ
		case n == 4 && bytes.Equal(magic, []byte("PK\x03\x04")):
			format = ZIP
		default:
			format = TAR
		}
	}
	switch format {
	case TGZ:
		gz, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			return fmt.Errorf("not a valid gzip archive: %w", err)
		}
		defer gz.Close()
		return extractTar(gz, dir)
	case TAR:
		return extractTar(bufio.NewReader(f), dir)
	case ZIP:
		return extractZip(f, size, dir)
	}
	return fmt.Errorf("unknown archive format %q", format)
}

// inside resolves name under dir, refusing paths that escape it.
func inside(dir, name string) (string, error) {
	clean := filepath.Clean("/" + name)
	if strings.Contains("/"+filepath.ToSlash(name)+"/", "/../") {
		return "", fmt.Errorf("archive entry %q escapes the destination", name)
	}
	return filepath.Join(dir, clean), nil
}

// checkLink refuses a symlink whose target, resolved from the link's
// directory, would point outside dir.
func checkLink(dir, path, target, name string) error {
	t := target
	if !filepath.IsAbs(t) {
		t = filepath.Join(filepath.Dir(path), t)
	} else {
		t = filepath.Join(dir, t)
	}
	rel, err := filepath.Rel(dir, t)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("archive entry %q links outside the destination", name)
	}
	return nil
}

func extractTar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	first := true
	// Directory modes are applied last so a read-only directory can still
	// be filled.
	dirModes := map[string]os.FileMode{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			for path, mode := range dirModes {
				if err := os.Chmod(path, mode); err != nil {
					return err
				}
			}
			return nil
		}
		if err != nil {
			if first {
				return fmt.Errorf("not a valid tar archive: %w", err)
			}
			return fmt.Errorf("reading tar archive: %w", err)
		}
		first = false
		path, err := inside(dir, h.Name)
		if err != nil {
			return err
		}
		mode := h.FileInfo().Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			dirModes[path] = mode
		case tar.TypeReg, tar.TypeRegA:
			if err := writeFile(path, tr, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := checkLink(dir, path, h.Linkname, h.Name); err != nil {
				return err
			}
			os.Remove(path)
			if err := os.Symlink(h.Linkname, path); err != nil {
				return err
			}
		case tar.TypeLink:
			target, err := inside(dir, h.Linkname)
			if err != nil {
				return err
			}
			os.Remove(path)
			if err := os.Link(target, path); err != nil {
				return err
			}
		default:
			// Devices, fifos and the like cannot be made without privileges; skip.
		}
	}
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	os.Remove(path) // replace, do not write through an existing symlink
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Chmod(path, mode) // chmod after writing: umask does not apply
}

func extractZip(f *os.File, size int64, dir string) error {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return fmt.Errorf("not a valid zip archive: %w", err)
	}
	dirModes := map[string]os.FileMode{}
	for _, zf := range zr.File {
		path, err := inside(dir, zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
			dirModes[path] = mode.Perm()
		case mode&os.ModeSymlink != 0:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			target, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return err
			}
			if err := checkLink(dir, path, string(target), zf.Name); err != nil {
				return err
			}
			os.Remove(path)
			if err := os.Symlink(string(target), path); err != nil {
				return err
			}
		default:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			perm := mode.Perm()
			if perm == 0 {
				perm = 0o644 // zips made without Unix modes
			}
			err = writeFile(path, rc, perm)
			rc.Close()
			if err != nil {
				return err
			}
		}
	}
	for path, mode := range dirModes {
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
	}
	return nil
}
