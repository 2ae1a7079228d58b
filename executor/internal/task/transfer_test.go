package task

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func serve(t *testing.T, files map[string][]byte) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/app.tgz", http.StatusFound)
			return
		}
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

var sample = []entry{
	{name: "bin/", dir: true, mode: 0o755},
	{name: "bin/run", body: "#!/bin/sh\necho hi\n", mode: 0o750},
	{name: "data.txt", body: "data", mode: 0o640},
	{name: "link", symlink: true, link: "bin/run"},
}

func hexsum(h interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
}, b []byte) string {
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func checkTree(t *testing.T, dir string, withHardLink bool) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, "bin/run"))
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("bin/run: %v %v", fi, err)
	}
	fi, err = os.Stat(filepath.Join(dir, "data.txt"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("data.txt: %v %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "bin/run" {
		t.Fatalf("link: %q %v", target, err)
	}
	if withHardLink {
		a, _ := os.Stat(filepath.Join(dir, "data.txt"))
		b, err := os.Stat(filepath.Join(dir, "hard"))
		if err != nil || !os.SameFile(a, b) {
			t.Fatalf("hard link: %v", err)
		}
	}
}

func TestDownloadTgzTarAndZipWithModesAndLinks(t *testing.T) {
	withHard := append(append([]entry{}, sample...), entry{name: "hard", link: "data.txt"})
	srv := serve(t, map[string][]byte{
		"/app.tgz": makeTar(t, withHard, true),
		"/app.tar": makeTar(t, withHard, false),
		"/app.zip": makeZip(t, sample),
	})
	for _, name := range []string{"/app.tgz", "/app.tar", "/app.zip", "/redirect"} {
		t.Run(name, func(t *testing.T) {
			to := filepath.Join(t.TempDir(), "dest", "deeper")
			r := runSpec(t, `{"action":{"download":{"artifact":"droplet","from":`+quote(srv.URL+name)+`,"to":`+quote(to)+`,"cacheKey":"ignored","user":"vcap"}}}`)
			r.wantSuccess(t)
			checkTree(t, to, name != "/app.zip")
			if !strings.HasPrefix(r.out.String(), "Downloading droplet...\nDownloaded droplet (") {
				t.Fatalf("stdout %q", r.out.String())
			}
		})
	}
}

func TestDownloadVerifiesChecksums(t *testing.T) {
	body := makeTar(t, sample, true)
	srv := serve(t, map[string][]byte{"/app.tgz": body})
	for alg, sum := range map[string]string{
		"md5":    hexsum(md5.New(), body),
		"sha1":   hexsum(sha1.New(), body),
		"SHA256": strings.ToUpper(hexsum(sha256.New(), body)),
	} {
		t.Run(alg, func(t *testing.T) {
			to := t.TempDir()
			r := runSpec(t, `{"action":{"download":{"artifact":"droplet","from":`+quote(srv.URL+"/app.tgz")+`,"to":`+quote(to)+`,"checksumAlgorithm":"`+alg+`","checksumValue":"`+sum+`"}}}`)
			r.wantSuccess(t)
			checkTree(t, to, false)
		})
	}
}

func TestDownloadChecksumMismatchFailsNamingTheArtifactBeforeExtracting(t *testing.T) {
	body := makeTar(t, sample, true)
	srv := serve(t, map[string][]byte{"/app.tgz": body})
	to := filepath.Join(t.TempDir(), "to")
	bad := strings.Repeat("0", 64)
	r := runSpec(t, `{"action":{"download":{"artifact":"droplet","from":`+quote(srv.URL+"/app.tgz")+`,"to":`+quote(to)+`,"checksumAlgorithm":"sha256","checksumValue":"`+bad+`"}}}`)
	want := "Downloading droplet failed: Checksum failed: 'sha256', expected '" + bad + "', got '" + hexsum(sha256.New(), body) + "'"
	r.wantFailure(t, want, 1)
	if r.err.String() != "Downloading droplet failed\n" {
		t.Fatalf("stderr %q", r.err.String())
	}
	if _, err := os.Stat(filepath.Join(to, "data.txt")); err == nil {
		t.Fatal("extracted despite the mismatch")
	}
}

func TestDownload404FailsNamingTheURLWithoutArtifact(t *testing.T) {
	srv := serve(t, nil)
	r := runSpec(t, `{"action":{"download":{"from":`+quote(srv.URL+"/missing?token=secret")+`,"to":`+quote(t.TempDir())+`}}}`)
	r.wantFailure(t, "Downloading "+srv.URL+"/missing failed: download failed: status code 404", 1)
	if strings.Contains(r.reason(), "secret") {
		t.Fatalf("reason leaks the query: %q", r.reason())
	}
}

func TestDownloadRefusesPathTraversal(t *testing.T) {
	for name, entries := range map[string][]entry{
		"dotdot":  {{name: "../evil", body: "x", mode: 0o644}},
		"symlink": {{name: "out", symlink: true, link: "../../etc"}},
	} {
		t.Run(name, func(t *testing.T) {
			srv := serve(t, map[string][]byte{"/a.tar": makeTar(t, entries, false)})
			parent := t.TempDir()
			to := filepath.Join(parent, "to")
			r := runSpec(t, `{"action":{"download":{"artifact":"evil","from":`+quote(srv.URL+"/a.tar")+`,"to":`+quote(to)+`}}}`)
			r.wantFailure(t, "Copying evil into the container failed: archive entry", 1)
			if _, err := os.Stat(filepath.Join(parent, "evil")); err == nil {
				t.Fatal("file written outside the destination")
			}
		})
	}
}

func TestDownloadOfSomethingThatIsNotAnArchiveFails(t *testing.T) {
	srv := serve(t, map[string][]byte{"/x": bytes.Repeat([]byte("not a tar "), 100)})
	r := runSpec(t, `{"action":{"download":{"artifact":"junk","from":`+quote(srv.URL+"/x")+`,"to":`+quote(t.TempDir())+`}}}`)
	r.wantFailure(t, "Copying junk into the container failed: not a valid tar archive", 1)
}

func TestImageLayersAndCachedDependenciesRunBeforeTheAction(t *testing.T) {
	needSh(t)
	tgz := makeTar(t, sample, true)
	tarb := makeTar(t, sample, false)
	zipb := makeZip(t, sample)
	srv := serve(t, map[string][]byte{"/l.tgz": tgz, "/l.tar": tarb, "/l.zip": zipb, "/dep.tgz": tgz})
	root := t.TempDir()
	s := `{"cachedDependencies":[{"name":"buildpack","from":` + quote(srv.URL+"/dep.tgz") + `,"to":` + quote(root+"/dep") + `,"cacheKey":"k","checksumAlgorithm":"md5","checksumValue":"` + hexsum(md5.New(), tgz) + `"}],
	"imageLayers":[
	 {"name":"shared","url":` + quote(srv.URL+"/l.tgz") + `,"destinationPath":` + quote(root+"/shared") + `,"layerType":"SHARED","mediaType":"TGZ","digestAlgorithm":"SHA256","digestValue":"` + hexsum(sha256.New(), tgz) + `"},
	 {"name":"excl","url":` + quote(srv.URL+"/l.tar") + `,"destinationPath":` + quote(root+"/excl") + `,"layerType":"EXCLUSIVE","mediaType":"TAR","digestAlgorithm":"SHA512","digestValue":"` + hexsum(sha512.New(), tarb) + `"},
	 {"name":"zipped","url":` + quote(srv.URL+"/l.zip") + `,"destinationPath":` + quote(root+"/zipped") + `,"layerType":"EXCLUSIVE","mediaType":"ZIP","digestAlgorithm":"SHA256","digestValue":"` + hexsum(sha256.New(), zipb) + `"}],
	"action":` + sh("cat "+root+"/dep/data.txt "+root+"/shared/data.txt "+root+"/excl/data.txt "+root+"/zipped/data.txt") + `}`
	r := runSpec(t, s)
	r.wantSuccess(t)
	if !strings.Contains(r.out.String(), "datadatadatadata") {
		t.Fatalf("stdout %q", r.out.String())
	}
}

func TestFailingImageLayerFailsTheTaskAndSkipsTheAction(t *testing.T) {
	needSh(t)
	body := makeTar(t, sample, true)
	srv := serve(t, map[string][]byte{"/l.tgz": body})
	marker := filepath.Join(t.TempDir(), "ran")
	for _, layerType := range []string{"SHARED", "EXCLUSIVE"} {
		t.Run(layerType, func(t *testing.T) {
			r := runSpec(t, `{"imageLayers":[{"name":"base","url":`+quote(srv.URL+"/l.tgz")+`,"destinationPath":`+quote(t.TempDir())+`,"layerType":"`+layerType+`","mediaType":"TGZ","digestAlgorithm":"SHA512","digestValue":"abc"}],
			"action":`+sh("touch "+marker)+`}`)
			r.wantFailure(t, "Downloading base failed: Checksum failed: 'sha512', expected 'abc'", 1)
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the action ran")
			}
		})
	}
}

func TestUploadOfAFileAndADirectory(t *testing.T) {
	got := map[string][]byte{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-MD5") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		got[r.URL.Path] = b
	}))
	defer srv.Close()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree", "sub", "f.txt"), []byte("in the tree"), 0o644)
	os.WriteFile(filepath.Join(dir, "file.bin"), []byte("file body"), 0o644)

	r := runSpec(t, `{"action":{"serial":{"actions":[
		{"upload":{"artifact":"logs","from":`+quote(dir+"/file.bin")+`,"to":`+quote(srv.URL+"/file")+`}},
		{"upload":{"from":`+quote(dir+"/tree")+`,"to":`+quote(srv.URL+"/tree")+`}}]}}}`)
	r.wantSuccess(t)
	if string(got["/file"]) != "file body" {
		t.Fatalf("file upload %q", got["/file"])
	}
	if r.out.String() != "Uploading logs...\nUploaded logs (9B)\n" {
		t.Fatalf("stdout %q", r.out.String())
	}
	gz, err := gzip.NewReader(bytes.NewReader(got["/tree"]))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	names := map[string]string{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		names[h.Name] = string(b)
	}
	if names["sub/f.txt"] != "in the tree" {
		t.Fatalf("directory upload entries %v", names)
	}

	r = runSpec(t, `{"action":{"upload":{"artifact":"logs","from":`+quote(dir+"/file.bin")+`,"to":`+quote(srv.URL+"/fail")+`}}}`)
	r.wantFailure(t, "Failed to upload payload for logs: Upload failed: Status code 500", 1)
}

// A signed URL's secrets (userinfo, query, fragment) never reach the failure
// reason, the logs or the termination message of a failed download or
// upload, including a download redirected to a signed URL.
func TestTransferFailuresNeverShowUserinfoQueryOrFragment(t *testing.T) {
	drop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close() // no answer: net/http fails with a url.Error naming the URL
		}
	}))
	defer drop.Close()
	const secret = "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=0123abcd#frag"
	signed := strings.Replace(drop.URL, "http://", "http://user:pa55word@", 1) + "/blob" + secret
	redirect := httptest.NewServer(http.RedirectHandler(signed, http.StatusFound))
	defer redirect.Close()
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, []byte("body"), 0o644)
	to := quote(t.TempDir())
	for name, c := range map[string]struct{ spec, want string }{
		"download": {`{"download":{"artifact":"droplet","from":` + quote(signed) + `,"to":` + to + `}}`,
			`Downloading droplet failed: Get "` + drop.URL + `/blob": `},
		"download without artifact": {`{"download":{"from":` + quote(signed) + `,"to":` + to + `}}`,
			`Downloading ` + drop.URL + `/blob failed: Get "` + drop.URL + `/blob": `},
		"download redirected": {`{"download":{"artifact":"droplet","from":` + quote(redirect.URL+"/app.tgz") + `,"to":` + to + `}}`,
			`Downloading droplet failed: Get "` + drop.URL + `/blob": `},
		"upload": {`{"upload":{"artifact":"logs","from":` + quote(file) + `,"to":` + quote(signed) + `}}`,
			`Failed to upload payload for logs: Post "` + drop.URL + `/blob": `},
		"upload without artifact": {`{"upload":{"from":` + quote(file) + `,"to":` + quote(signed) + `}}`,
			`Failed to upload payload: Post "` + drop.URL + `/blob": `},
	} {
		t.Run(name, func(t *testing.T) {
			r := runSpec(t, `{"action":`+c.spec+`}`)
			r.wantFailure(t, c.want, 1)
			for _, shown := range []string{r.reason(), string(r.outcome.Message), r.out.String(), r.err.String()} {
				for _, s := range []string{"user", "pa55word", "AKIAEXAMPLE", "X-Amz", "0123abcd", "frag"} {
					if strings.Contains(shown, s) {
						t.Errorf("%q shows %q", shown, s)
					}
				}
			}
		})
	}
}
