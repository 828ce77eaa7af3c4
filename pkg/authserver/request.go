package authserver

// This file parses OAuth request parameters the way RFC 6749 §3.1 and §3.2
// require: form-encoded bodies only for POST endpoints, no parameter more
// than once, and a parameter sent without a value treated as omitted.

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
)

// params are the single-valued parameters of one request.
type params map[string]string

func (p params) get(name string) string { return p[name] }

// parseParams parses a query string or form body, refusing duplicated
// parameters (RFC 6749 §3.1: "Request and response parameters MUST NOT be
// included more than once"). It returns the names that were duplicated so
// the caller can choose the error (invalid_request, or invalid_target for
// resource).
func parseParams(raw string) (params, []string, error) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return nil, nil, errInvalidRequest("malformed parameters")
	}
	p := params{}
	var dups []string
	for name, vs := range values {
		var nonEmpty []string
		for _, v := range vs {
			if v != "" {
				nonEmpty = append(nonEmpty, v)
			}
		}
		if len(vs) > 1 {
			dups = append(dups, name)
		}
		if len(nonEmpty) > 0 {
			p[name] = nonEmpty[0]
		}
	}
	sort.Strings(dups)
	return p, dups, nil
}

// readForm reads an application/x-www-form-urlencoded POST body. Anything
// else (JSON, multipart, a missing content type, duplicates, a body over
// the limit) is invalid_request.
func readForm(r *http.Request) (params, error) {
	ct := r.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(ct)
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil, errInvalidRequest("content type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	p, dups, err := parseParams(string(body))
	if err != nil {
		return nil, err
	}
	if slices.Contains(dups, "resource") {
		// RFC 8707 allows several; this server issues one audience per token.
		return nil, newError(ErrInvalidTarget, "only one resource per request is supported")
	}
	if len(dups) > 0 {
		return nil, errInvalidRequest("parameter " + dups[0] + " given more than once")
	}
	return p, nil
}

// bodyError maps a body read failure: too large is 413, the rest 400.
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		oe := errInvalidRequest("request body too large")
		oe.Status = http.StatusRequestEntityTooLarge
		return oe
	}
	return errInvalidRequest("cannot read request body")
}
