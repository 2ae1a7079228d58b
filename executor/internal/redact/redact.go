// Package redact holds the one rule for printing a URL in a message, a log
// line or a failure reason: without its userinfo, query and fragment, where
// signed URLs carry their credentials, signatures and tokens.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// URL is raw without userinfo, query and fragment. A URL that does not
// parse is cut by hand: at the first "?" or "#", and after "://" up to the
// last "@" before them.
func URL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		if i := strings.LastIndexByte(u.Opaque, '@'); i >= 0 {
			u.Opaque = u.Opaque[i+1:] // "scheme:user:pass@host"
		}
		return u.String()
	}
	s, _, _ := strings.Cut(raw, "#")
	s, _, _ = strings.Cut(s, "?")
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			rest = rest[i+1:]
		}
		s = scheme + "://" + rest
	}
	return s
}

// urlInText is a URL with a scheme inside free text, up to a space or a quote.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>` + "`" + `]+`)

// Text is s with every URL in it redacted by URL.
func Text(s string) string {
	return urlInText.ReplaceAllStringFunc(s, URL)
}

// Error is err for printing: a *url.Error (what net/http and url.Parse
// return) keeps its Op and underlying error but gets its URL redacted; any
// other error whose text holds a URL gets that text redacted (unwrapping
// still reaches the original). Errors without a URL are returned as they are.
func Error(err error) error {
	if err == nil {
		return nil
	}
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: URL(ue.URL), Err: Error(ue.Err)}
	}
	if msg := err.Error(); Text(msg) != msg {
		return &redacted{msg: Text(msg), err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
