package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyPlacesAnExecutableCopyOfItself(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "missing", "taskop-executor")
	if code := mainCode([]string{"taskop-executor", "copy", dest}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	self, _ := os.Executable()
	a, _ := os.ReadFile(self)
	b, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("copy differs: %v", err)
	}
	fi, _ := os.Stat(dest)
	if fi.Mode().Perm() != 0o555 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if _, err := os.Stat(dest + ".tmp"); err == nil {
		t.Fatal("temporary file left behind")
	}
}

func TestUnknownCommandFails(t *testing.T) {
	if code := mainCode([]string{"taskop-executor", "dance", "x"}); code == 0 {
		t.Fatal("exit 0")
	}
}
