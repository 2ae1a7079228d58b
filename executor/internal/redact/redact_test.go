package redact

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const signed = "https://user:pa55word@bucket.s3.example.com/droplets/app.tgz?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=0123abcd#frag"

// secrets are what must never be printed.
var secrets = []string{"user", "pa55word", "AKIAEXAMPLE", "X-Amz-Signature", "0123abcd", "frag", "?", "#"}

func noSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range secrets {
		if strings.Contains(s, secret) {
			t.Errorf("%q shows %q", s, secret)
		}
	}
}

func TestURL(t *testing.T) {
	for raw, want := range map[string]string{
		signed:                                   "https://bucket.s3.example.com/droplets/app.tgz",
		"http://files/lifecycle.tgz":             "http://files/lifecycle.tgz",
		"http://h:8080/p?":                       "http://h:8080/p",
		"http://user@h/p#x":                      "http://h/p",
		"//user:pass@h/p?q=1":                    "//h/p",
		"mailto:user:pass@h":                     "mailto:h",
		"http://user:pa55word@h:bad/p?sig=1":     "http://h:bad/p", // does not parse
		"http://u:p/ss@h/%zz?sig=1#f":            "http://h/%zz",   // does not parse either
		"http://[::1/x?X-Amz-Signature=0123abcd": "http://[::1/x",  // nor this
		"":                                       "",
	} {
		if got := URL(raw); got != want {
			t.Errorf("URL(%q) = %q, want %q", raw, got, want)
		}
	}
	noSecrets(t, URL(signed))
}

func TestText(t *testing.T) {
	got := Text(`failed to parse Location header "` + signed + `": bad; then ` + signed + ` and http://plain/x`)
	want := `failed to parse Location header "https://bucket.s3.example.com/droplets/app.tgz": bad; then https://bucket.s3.example.com/droplets/app.tgz and http://plain/x`
	if got != want {
		t.Fatalf("Text = %q\nwant   %q", got, want)
	}
}

func TestErrorRedactsTheURLOfAURLErrorKeepingItsOpAndCause(t *testing.T) {
	cause := fmt.Errorf("dial: %w", context.DeadlineExceeded)
	err := Error(&url.Error{Op: "Get", URL: signed, Err: cause})
	if got, want := err.Error(), `Get "https://bucket.s3.example.com/droplets/app.tgz": dial: context deadline exceeded`; got != want {
		t.Fatalf("Error = %q, want %q", got, want)
	}
	var ue *url.Error
	if !errors.As(err, &ue) || ue.Op != "Get" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the url.Error's Op or cause is lost: %#v", err)
	}

	// What net/http really returns, for a request it cannot even make.
	_, err = http.NewRequest(http.MethodGet, "http://user:pa55word@h:bad/p?X-Amz-Signature=0123abcd#frag", nil)
	noSecrets(t, Error(err).Error())

	// Another error that names a URL in its text; errors without one are kept as they are.
	wrapped := fmt.Errorf("fetching %s: %w", signed, context.Canceled)
	if err := Error(wrapped); !errors.Is(err, context.Canceled) {
		t.Fatal("the cause is lost")
	} else {
		noSecrets(t, err.Error())
	}
	plain := errors.New("no URL here")
	if Error(plain) != plain || Error(nil) != nil {
		t.Fatal("an error without a URL is changed")
	}
}
