package download

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// A fuzz script is one archive entry per line: an op letter, the entry's
// name, and for links "=" and the target (for files, "=" and the body):
//
//	f name[=body]   regular file, 0644      x name[=body]  regular file, 04755
//	d name          directory, 0755         r name         directory, 0555
//	l name=target   symlink                 h name=target  hard link (a file in zips)
//
// In names and targets $O is the sentinel directory beside the destination,
// $D the destination and $T the sandbox's top, all absolute. The format byte
// picks tar, tgz or zip; a fourth value feeds the script's bytes to Extract
// as they are, as an archive whose format Extract detects.
var fuzzSeeds = []struct {
	format byte
	script string
}{
	{0, "f a=hello\nd b/\nf b/c=x\nl link=a\nh hard=a"},
	{0, "l a=$O\nf a/file=pwned"},
	{1, "l a=$O\nf a/file=pwned"},
	{2, "l a=$O\nf a/file=pwned"},
	{0, "l y=.\nl x=y/..\nf x/file=pwned"},
	{1, "l y=.\nl x=y/..\nf x/file=pwned"},
	{2, "l y=.\nl x=y/..\nf x/file=pwned"},
	{0, "l y=.\nl x=y/../..\nf x/near=pwned\nf x/d2/near=pwned"},
	{0, "d sub\nl sub/l=../outside\nh h=sub/l\nf h/file=pwned"},
	{0, "l d=e/../..\nd e\nf d/d2/near=pwned"},
	{2, "l d=e/../../../outside\nd e\nf d/file=pwned"},
	{0, "f ../near=pwned\nf ../../sibling=pwned"},
	{0, "f /$O/file=rooted\nf $O/x=also rooted"},
	{0, "l abs=$D/in\nd in\nf abs/f=ok\nl out=$D/../near\nf out=pwned"},
	{0, "h h=../near\nh h2=$O/file\nh h3=/etc/passwd"},
	{0, "l a=b\nl b=a\nf a/x=loop"},
	{0, "l l1=l2\nl l2=l3\nl l3=l4\nl l4=l5\nl l5=l6\nl l6=l7\nl l7=l8\nl l8=l9\nl l9=l10\nl l10=$O\nf l1/f=deep"},
	{0, "f a=one\nl a=$O/file\nf a=two\nd a\nf a/b=three"},
	{0, "l a=$O/file\nx a=setuid through a link"},
	{0, "r ro\nf ro/f=in a read-only dir\nl ro/up=..\nf ro/up/x=ok"},
	{2, "d .\nf .=x\nl .=..\nh ./=x"},
	{1, "l n=$T\nl n2=$T/d1/d2/dest/sub\nd sub\nf n2/f=ok\nf n/d1/sibling=pwned"},
	{0, "d sub\nl s=sub\nl s/l=d/../..\nl s=e/../..\nd e\nd sub/d"},
	{0, "d a\nl a/l=../b\nh c=a/l\nl b=x/../..\nd x\nf c/d2/near=pwned"},
	{3, "not an archive"},
	{3, "\x1f\x8b garbage gzip"},
	{3, "PK\x03\x04 garbage zip"},
}

func FuzzExtract(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.format, s.script)
	}
	f.Fuzz(func(t *testing.T, format byte, script string) {
		if len(script) > 1<<14 {
			return
		}
		s := newFuzzSandbox(t)
		entries := parseScript(script, s)
		var b []byte
		switch format % 4 {
		case 0:
			b = makeTar(entries, false)
		case 1:
			b = makeTar(entries, true)
		case 2:
			b = makeZip(entries)
		case 3:
			b = []byte(script)
		}
		arch, size := archiveBytes(t, s.box, b)
		t.Chdir(s.box) // a path taken relative to the working directory lands where it is seen
		before := snapshot(t, s.top, s.dest)
		err := Extract(arch, size, s.dest, Auto)
		after := snapshot(t, s.top, s.dest)
		if diff := diffSnapshots(before, after); diff != "" {
			t.Fatalf("Extract (err %v) changed things outside the destination:\n%s", err, diff)
		}
		checkDest(t, s)
	})
}

// newFuzzSandbox is a sandbox whose destination is two levels down
// (top/d1/d2/dest), with a sentinel tree beside it and around it.
func newFuzzSandbox(t *testing.T) sandbox {
	t.Helper()
	top := t.TempDir()
	s := sandbox{top: top, dest: filepath.Join(top, "d1", "d2", "dest"), outside: filepath.Join(top, "outside"), box: filepath.Join(top, "box")}
	for _, d := range []string{s.dest, s.box, filepath.Join(s.outside, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		"outside/file": "sentinel", "outside/sub/deeper": "sentinel",
		"d1/sibling": "sentinel", "d1/d2/near": "sentinel",
	} {
		if err := os.WriteFile(filepath.Join(top, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("file", filepath.Join(s.outside, "link")); err != nil {
		t.Fatal(err)
	}
	// Read-only directories an archive made must not stop the cleanup.
	t.Cleanup(func() {
		filepath.WalkDir(s.dest, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	return s
}

func parseScript(script string, s sandbox) []entry {
	expand := strings.NewReplacer("$O", s.outside, "$D", s.dest, "$T", s.top).Replace
	var entries []entry
	for _, line := range strings.Split(script, "\n") {
		if line == "" || len(entries) == 64 {
			continue
		}
		name, arg, _ := strings.Cut(line[1:], "=")
		name, arg = strings.TrimPrefix(expand(name), " "), expand(arg)
		var e entry
		switch line[0] {
		case 'd':
			e = dir(name)
		case 'r':
			e = dir(name)
			e.mode = 0o555
		case 'l':
			e = symlink(name, arg)
		case 'h':
			e = hardlink(name, arg)
		case 'x':
			e = file(name, arg)
			e.mode = 0o4755
		default:
			e = file(name, arg)
		}
		entries = append(entries, e)
	}
	return entries
}

// snapshot records everything under top but dest: type, mode, size, mtime,
// a file's content, a link's target.
func snapshot(t *testing.T, top, dest string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			out[p] = "walk error: " + err.Error()
			return nil
		}
		if p == dest {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			out[p] = "stat error: " + err.Error()
			return nil
		}
		desc := fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + string(b)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(before, after map[string]string) string {
	var lines []string
	for p, b := range before {
		if a, ok := after[p]; !ok {
			lines = append(lines, "removed "+p)
		} else if a != b {
			lines = append(lines, fmt.Sprintf("changed %s: %s => %s", p, b, a))
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			lines = append(lines, "created "+p+": "+a)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// checkDest: what Extract left in dest (all of it made by the archive) has
// no symlink that the kernel resolves outside dest, and no file sharing an
// inode with one outside.
func checkDest(t *testing.T, s sandbox) {
	t.Helper()
	realDest, err := filepath.EvalSymlinks(s.dest)
	if err != nil {
		t.Fatal(err)
	}
	var sentinels []fs.FileInfo
	for _, name := range []string{"outside/file", "outside/sub/deeper", "d1/sibling", "d1/d2/near"} {
		if fi, err := os.Stat(filepath.Join(s.top, name)); err == nil {
			sentinels = append(sentinels, fi)
		}
	}
	filepath.WalkDir(s.dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 {
			if resolved, err := filepath.EvalSymlinks(p); err == nil {
				if resolved != realDest && !strings.HasPrefix(resolved, realDest+string(filepath.Separator)) {
					target, _ := os.Readlink(p)
					t.Errorf("left a link leading outside: %s -> %s (%s)", p, target, resolved)
				}
			}
			return nil
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return nil
			}
			for _, sf := range sentinels {
				if os.SameFile(fi, sf) {
					t.Errorf("%s is a hard link to a file outside", p)
				}
			}
		}
		return nil
	})
}
