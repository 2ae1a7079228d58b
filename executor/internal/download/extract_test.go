package download

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one member of a test archive: a regular file (body), a
// directory (dir), a symlink (symlink, to link) or a hard link (link).
type entry struct {
	name, body, link string
	dir, symlink     bool
	mode             int64
}

func file(name, body string) entry      { return entry{name: name, body: body, mode: 0o644} }
func dir(name string) entry             { return entry{name: name, dir: true, mode: 0o755} }
func symlink(name, target string) entry { return entry{name: name, symlink: true, link: target} }
func hardlink(name, target string) entry {
	return entry{name: name, link: target}
}

func makeTar(entries []entry, gz bool) []byte {
	var buf bytes.Buffer
	var w *tar.Writer
	var z *gzip.Writer
	if gz {
		z = gzip.NewWriter(&buf)
		w = tar.NewWriter(z)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.symlink:
			h.Typeflag, h.Linkname, h.Size, h.Mode = tar.TypeSymlink, e.link, 0, 0o777
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		}
		if w.WriteHeader(h) != nil {
			continue // a name tar cannot hold
		}
		if h.Typeflag == tar.TypeReg {
			w.Write([]byte(e.body))
		}
	}
	w.Close()
	if z != nil {
		z.Close()
	}
	return buf.Bytes()
}

// makeZip writes entries as a zip; zips have no hard links, so those become
// regular files holding the target's name.
func makeZip(entries []entry) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Store}
		body := e.body
		switch {
		case e.dir:
			h.Name = strings.TrimSuffix(e.name, "/") + "/"
			h.SetMode(os.ModeDir | os.FileMode(e.mode))
			body = ""
		case e.symlink:
			h.SetMode(os.ModeSymlink | 0o777)
			body = e.link
		case e.link != "":
			h.SetMode(0o644)
			body = e.link
		default:
			h.SetMode(os.FileMode(e.mode))
		}
		fw, err := w.CreateHeader(h)
		if err != nil {
			continue
		}
		fw.Write([]byte(body))
	}
	w.Close()
	return buf.Bytes()
}

// archive writes entries in format (TAR, TGZ or ZIP) to a file in dir and
// returns it open at its start, with its size.
func archive(t testing.TB, dir, format string, entries []entry) (*os.File, int64) {
	t.Helper()
	var b []byte
	switch format {
	case TAR:
		b = makeTar(entries, false)
	case TGZ:
		b = makeTar(entries, true)
	case ZIP:
		b = makeZip(entries)
	}
	return archiveBytes(t, dir, b)
}

func archiveBytes(t testing.TB, dir string, b []byte) (*os.File, int64) {
	t.Helper()
	f, err := os.CreateTemp(dir, "archive-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	return f, int64(len(b))
}

// sandbox is a temporary directory holding dest/ (where archives go) and
// outside/ (a directory nothing may touch); archives are kept in box/.
type sandbox struct{ top, dest, outside, box string }

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	top := t.TempDir()
	s := sandbox{top: top, dest: filepath.Join(top, "dest"), outside: filepath.Join(top, "outside"), box: filepath.Join(top, "box")}
	for _, d := range []string{s.dest, s.outside, s.box} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

var formats = []string{TAR, TGZ, ZIP}

func extractEntries(t *testing.T, s sandbox, format string, entries []entry) error {
	t.Helper()
	f, size := archive(t, s.box, format, entries)
	return Extract(f, size, s.dest, format)
}

func wantOutsideError(t *testing.T, err error, entry string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "archive entry "+`"`+entry+`"`) || !strings.Contains(err.Error(), "outside the destination") {
		t.Fatalf("Extract = %v, want archive entry %q ... outside the destination", err, entry)
	}
}

func wantAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Fatalf("%s was written outside the destination", path)
	}
}

// An absolute symlink to a directory outside, then a file beneath it: the
// file used to land in that directory.
func TestExtractRefusesAbsoluteSymlinkThenWriteThroughIt(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			s := newSandbox(t)
			err := extractEntries(t, s, format, []entry{symlink("a", s.outside), file("a/file", "pwned")})
			wantOutsideError(t, err, "a")
			wantAbsent(t, filepath.Join(s.outside, "file"))
			wantAbsent(t, filepath.Join(s.dest, "a"))
		})
	}
}

// y -> ., x -> y/.. (which a string check takes for the destination itself,
// but is its parent), then x/file: the file used to land beside dest.
func TestExtractRefusesSymlinkChainThatClimbsOut(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			s := newSandbox(t)
			err := extractEntries(t, s, format, []entry{symlink("y", "."), symlink("x", "y/.."), file("x/file", "pwned")})
			wantOutsideError(t, err, "x")
			wantAbsent(t, filepath.Join(s.top, "file"))
			wantAbsent(t, filepath.Join(s.dest, "x"))
		})
	}
}

// A symlink inside (sub/l -> ../outside, that is dest/outside) hard-linked
// at the top (h -> ../outside, that is the real outside/), then h/file.
func TestExtractRefusesHardLinkToASymlinkThatLeadsOutFromItsNewPlace(t *testing.T) {
	for _, format := range []string{TAR, TGZ} {
		t.Run(format, func(t *testing.T) {
			s := newSandbox(t)
			err := extractEntries(t, s, format, []entry{
				dir("sub"), symlink("sub/l", "../outside"), hardlink("h", "sub/l"), file("h/file", "pwned"),
			})
			wantOutsideError(t, err, "h")
			wantAbsent(t, filepath.Join(s.outside, "file"))
		})
	}
}

// d -> e/../.. dangles while e is missing; once e/ exists it leads out.
// Writes through it are refused as they happen; the link itself at the end.
func TestExtractRefusesALinkThatLeadsOutOnceLaterEntriesExist(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			s := newSandbox(t)
			err := extractEntries(t, s, format, []entry{symlink("d", "e/../.."), dir("e")})
			wantOutsideError(t, err, "d")
			wantAbsent(t, filepath.Join(s.dest, "d"))

			s = newSandbox(t)
			err = extractEntries(t, s, format, []entry{symlink("d", "e/../.."), dir("e"), file("d/outside/file", "pwned")})
			wantOutsideError(t, err, "d/outside/file")
			wantAbsent(t, filepath.Join(s.outside, "file"))
		})
	}
}

func TestExtractRefusesLinksOutside(t *testing.T) {
	for _, target := range []string{"../outside", "/etc", "a/../../outside", "/", "./.."} {
		for _, format := range formats {
			t.Run(format+" "+target, func(t *testing.T) {
				s := newSandbox(t)
				err := extractEntries(t, s, format, []entry{dir("a"), symlink("l", target)})
				wantOutsideError(t, err, "l")
				wantAbsent(t, filepath.Join(s.dest, "l"))
			})
		}
	}
}

// A link is made only where its path has no symlink: s/l would be sub/l,
// which the final check, by the name s/l, could no longer find once s is
// replaced by a link that leads out.
func TestExtractRefusesLinksMadeThroughASymlinkedDirectory(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			s := newSandbox(t)
			err := extractEntries(t, s, format, []entry{dir("sub"), symlink("s", "sub"), symlink("s/l", "d/../..")})
			if err == nil || !strings.Contains(err.Error(), `archive entry "s/l" is a link under "s", which is a link itself`) {
				t.Fatalf("Extract = %v", err)
			}
			wantAbsent(t, filepath.Join(s.dest, "sub", "l"))
		})
	}
}

func TestExtractRefusesDotDotNames(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			s := newSandbox(t)
			err := extractEntries(t, s, format, []entry{file("../outside/evil", "x")})
			wantOutsideError(t, err, "../outside/evil")
			wantAbsent(t, filepath.Join(s.outside, "evil"))
		})
	}
}

// Links that stay inside are kept: relative ones, one to nothing yet, an
// absolute one naming a path under the destination, hard links; absolute
// entry names land under the destination.
func TestExtractKeepsLinksThatStayInside(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			s := newSandbox(t)
			entries := []entry{
				dir("bin/"), file("bin/run", "#!/bin/sh\n"), symlink("run", "bin/run"),
				symlink("up", "bin/../bin/run"), symlink("later", "lib/x"), symlink("abs", s.dest+"/bin/run"),
				symlink("self", "."), file("self/via-self", "ok"), file("/rooted", "ok"),
				hardlink("hard", "bin/run"), dir("ro"), file("ro/f", "in a read-only dir"),
			}
			entries[len(entries)-2].mode = 0o555
			if err := extractEntries(t, s, format, entries); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]string{"run": "bin/run", "up": "bin/../bin/run", "later": "lib/x", "abs": s.dest + "/bin/run", "self": "."} {
				if got, err := os.Readlink(filepath.Join(s.dest, name)); err != nil || got != want {
					t.Errorf("%s -> %q, %v; want %q", name, got, err, want)
				}
			}
			for _, name := range []string{"via-self", "rooted", "ro/f"} {
				if _, err := os.Stat(filepath.Join(s.dest, name)); err != nil {
					t.Error(err)
				}
			}
			if fi, err := os.Stat(filepath.Join(s.dest, "ro")); err != nil || fi.Mode().Perm() != 0o555 {
				t.Errorf("ro: %v %v", fi, err)
			}
			if format != ZIP {
				a, _ := os.Stat(filepath.Join(s.dest, "bin/run"))
				b, err := os.Stat(filepath.Join(s.dest, "hard"))
				if err != nil || !os.SameFile(a, b) {
					t.Errorf("hard link: %v", err)
				}
			}
			os.Chmod(filepath.Join(s.dest, "ro"), 0o755)
		})
	}
}

// A later entry replaces an earlier one rather than writing through it.
func TestExtractReplacesEntriesInsteadOfWritingThroughThem(t *testing.T) {
	s := newSandbox(t)
	if err := os.WriteFile(filepath.Join(s.outside, "target"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, size := archive(t, s.box, TAR, []entry{file("f", "one"), hardlink("h", "f"), file("h", "two")})
	if err := Extract(f, size, s.dest, Auto); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(s.dest, "f")); string(b) != "one" {
		t.Fatalf("f = %q: written through the hard link", b)
	}
	if b, _ := os.ReadFile(filepath.Join(s.dest, "h")); string(b) != "two" {
		t.Fatalf("h = %q", b)
	}
}
