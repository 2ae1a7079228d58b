package download

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Archive formats. Auto detects by content (what garden's StreamIn of a
// cacheddownloader result amounts to: a tgz, a zip, or a tar).
const (
	Auto = ""
	TGZ  = "TGZ"
	TAR  = "TAR"
	ZIP  = "ZIP"
)

// maxLinkTarget bounds a zip symlink's target (its entry's body).
const maxLinkTarget = 4096

// Extract unpacks the archive in f into dir (created if missing). Modes,
// directories, symlinks and hard links are preserved.
//
// Every file, directory and link is made through an os.Root opened on dir:
// whatever links earlier entries made, no entry can create, write or chmod
// anything outside dir (the root resolves each path beneath dir and refuses
// any path, or link on the way, that leaves it). A link whose target is
// outside dir, as the root resolves it, is removed and refused; so is an
// entry whose name has a ".." element.
func Extract(f *os.File, size int64, dir, format string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return err
	}
	defer root.Close()
	x := &extractor{root: root, dir: abs, dirModes: map[string]os.FileMode{}, links: map[string]madeLink{}}
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
		gz, gzErr := gzip.NewReader(bufio.NewReader(f))
		if gzErr != nil {
			return fmt.Errorf("not a valid gzip archive: %w", gzErr)
		}
		defer gz.Close()
		err = x.tar(gz)
	case TAR:
		err = x.tar(bufio.NewReader(f))
	case ZIP:
		err = x.zip(f, size)
	default:
		return fmt.Errorf("unknown archive format %q", format)
	}
	return x.finish(err)
}

// extractor makes an archive's entries beneath root, and only there.
type extractor struct {
	root *os.Root
	dir  string // root's absolute path, for absolute link targets
	// Directory modes are applied last so a read-only directory can still
	// be filled.
	dirModes map[string]os.FileMode
	// links made, by root-relative name, checked again at the end: a later
	// entry can change where an earlier link leads.
	links map[string]madeLink
}

type madeLink struct {
	entry string      // the archive entry that made it
	fi    fs.FileInfo // the link itself, to know it again
}

// entryPath turns an archive entry's name (or a hard link's target) into a
// path relative to the root: a leading "/" is dropped, as tar does. A ".."
// element is refused outright, even where the root would keep it inside.
func entryPath(entry, name string) (string, error) {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("archive entry %q has a %q path element, which could lead outside the destination", entry, "..")
		}
	}
	return path.Clean("./" + strings.TrimLeft(name, "/")), nil
}

// isEscape reports whether err is the root refusing a path that leaves it
// (os.Root's error for that is not exported; this only picks the message).
func isEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err.Error() == "path escapes from parent"
}

// entryErr names the entry in a failure of the root.
func entryErr(entry string, err error) error {
	if isEscape(err) {
		return fmt.Errorf("archive entry %q leads outside the destination: %w", entry, err)
	}
	return fmt.Errorf("archive entry %q: %w", entry, err)
}

// parents makes name's parent directories.
func (x *extractor) parents(entry, name string) error {
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return entryErr(entry, err)
		}
	}
	return nil
}

func (x *extractor) mkdir(entry, name string, mode os.FileMode) error {
	if err := x.root.MkdirAll(name, 0o755); err != nil {
		return entryErr(entry, err)
	}
	x.dirModes[name] = mode
	return nil
}

// file writes a new file at name: whatever was there is removed first, so
// nothing is written through an existing link or into another name's inode.
func (x *extractor) file(entry, name string, r io.Reader, mode os.FileMode) error {
	if err := x.parents(entry, name); err != nil {
		return err
	}
	x.root.Remove(name)
	f, err := x.root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return entryErr(entry, err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	// chmod the open file: umask does not apply, and no path is resolved.
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return entryErr(entry, err)
	}
	return f.Close()
}

func (x *extractor) symlink(entry, name, target string) error {
	if target == "" {
		return fmt.Errorf("archive entry %q is a symlink with no target", entry)
	}
	if err := x.linkDir(entry, name); err != nil {
		return err
	}
	x.root.Remove(name)
	if err := x.root.Symlink(target, name); err != nil {
		return entryErr(entry, err)
	}
	return x.made(entry, name)
}

// hardlink links name to the file at target (both beneath the root). When
// target is a symlink, name is one too, resolved from its own directory:
// it is checked as the symlinks are.
func (x *extractor) hardlink(entry, name, target string) error {
	old, err := entryPath(entry, target)
	if err != nil {
		return err
	}
	if err := x.linkDir(entry, name); err != nil {
		return err
	}
	x.root.Remove(name)
	if err := x.root.Link(old, name); err != nil {
		return entryErr(entry, err)
	}
	return x.made(entry, name)
}

// linkDir makes a link's parent directories and refuses a link whose own
// path goes through a symlink: a link is made only where its name is its
// place (its directories cannot be removed while it is in them), so that
// checking that name again at the end checks that very link.
func (x *extractor) linkDir(entry, name string) error {
	if err := x.parents(entry, name); err != nil {
		return err
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		fi, err := x.root.Lstat(dir)
		if err != nil {
			return entryErr(entry, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("archive entry %q is a link under %q, which is a link itself: links are made in directories only", entry, dir)
		}
	}
	return nil
}

// made records the link just made at name and checks it.
func (x *extractor) made(entry, name string) error {
	fi, err := x.root.Lstat(name)
	if err != nil {
		return entryErr(entry, err)
	}
	x.links[name] = madeLink{entry: entry, fi: fi}
	return x.checkLink(entry, name)
}

// checkLink removes and refuses the symlink at name when the root, which
// resolves it as the kernel does but never beyond the destination, finds
// that it leads outside. A link to nothing (yet) is kept: it is checked
// again at the end. An absolute target must name a path under the
// destination, which is then resolved as that relative path would be.
func (x *extractor) checkLink(entry, name string) error {
	fi, err := x.root.Lstat(name)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil // replaced or removed by a later entry
	}
	target, err := x.root.Readlink(name)
	if err != nil {
		return entryErr(entry, err)
	}
	resolve := name
	if strings.HasPrefix(target, "/") {
		prefix := strings.TrimSuffix(x.dir, "/") + "/"
		switch {
		case target == x.dir:
			resolve = "."
		case strings.HasPrefix(target, prefix):
			resolve = "./" + strings.TrimPrefix(target, prefix)
		default:
			x.root.Remove(name)
			return fmt.Errorf("archive entry %q links to %q, outside the destination", entry, target)
		}
	}
	_, err = x.root.Stat(resolve)
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	x.root.Remove(name)
	if isEscape(err) {
		return fmt.Errorf("archive entry %q links to %q, outside the destination", entry, target)
	}
	return fmt.Errorf("archive entry %q links to %q, which cannot be resolved inside the destination: %w", entry, target, err)
}

// finish checks every link made once more, now that all entries are there
// (or the extraction failed half-way: no link leading outside is left
// either way), then applies the directories' modes, deepest first.
func (x *extractor) finish(err error) error {
	names := make([]string, 0, len(x.links))
	for name := range x.links {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		l := x.links[name]
		if fi, statErr := x.root.Lstat(name); statErr != nil || !os.SameFile(fi, l.fi) {
			continue // replaced by a later entry
		}
		if linkErr := x.checkLink(l.entry, name); linkErr != nil && err == nil {
			err = linkErr
		}
	}
	if err != nil {
		return err
	}
	dirs := make([]string, 0, len(x.dirModes))
	for name := range x.dirModes {
		dirs = append(dirs, name)
	}
	sort.Slice(dirs, func(i, j int) bool {
		if a, b := strings.Count(dirs[i], "/"), strings.Count(dirs[j], "/"); a != b {
			return a > b
		}
		return dirs[i] < dirs[j]
	})
	for _, name := range dirs {
		if fi, err := x.root.Lstat(name); err != nil || !fi.IsDir() {
			continue // replaced by a later entry
		}
		if err := x.root.Chmod(name, x.dirModes[name]); err != nil {
			return entryErr(name, err)
		}
	}
	return nil
}

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(r)
	first := true
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if first {
				return fmt.Errorf("not a valid tar archive: %w", err)
			}
			return fmt.Errorf("reading tar archive: %w", err)
		}
		first = false
		name, err := entryPath(h.Name, h.Name)
		if err != nil {
			return err
		}
		mode := h.FileInfo().Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
		switch h.Typeflag {
		case tar.TypeDir:
			err = x.mkdir(h.Name, name, mode)
		case tar.TypeReg, tar.TypeRegA:
			err = x.file(h.Name, name, tr, mode)
		case tar.TypeSymlink:
			err = x.symlink(h.Name, name, h.Linkname)
		case tar.TypeLink:
			err = x.hardlink(h.Name, name, h.Linkname)
		default:
			// Devices, fifos and the like cannot be made without privileges; skip.
		}
		if err != nil {
			return err
		}
	}
}

func (x *extractor) zip(f *os.File, size int64) error {
	zr, err := zip.NewReader(f, size)
	if err != nil {
		return fmt.Errorf("not a valid zip archive: %w", err)
	}
	for _, zf := range zr.File {
		name, err := entryPath(zf.Name, zf.Name)
		if err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			err = x.mkdir(zf.Name, name, mode.Perm())
		case mode&os.ModeSymlink != 0:
			var target []byte
			target, err = readZip(zf, maxLinkTarget+1)
			if err == nil && len(target) > maxLinkTarget {
				err = fmt.Errorf("archive entry %q is a symlink with a target longer than %d bytes", zf.Name, maxLinkTarget)
			}
			if err == nil {
				err = x.symlink(zf.Name, name, string(target))
			}
		default:
			var rc io.ReadCloser
			if rc, err = zf.Open(); err != nil {
				return err
			}
			perm := mode.Perm()
			if perm == 0 {
				perm = 0o644 // zips made without Unix modes
			}
			err = x.file(zf.Name, name, rc, perm)
			rc.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func readZip(zf *zip.File, limit int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}
