package authserver

// This file parses OAuth request parameters the way RFC 6749 §3.1 and §3.2
// require: form-encoded bodies only for POST endpoints, no parameter more
// than once, and a parameter sent without a value treated as omitted.

import (
	"context"
	"errors"
	"io"
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

// parsed is one parse of a query or form body.
type parsed struct {
	p    params
	dups []string
	err  error
}

func parse(raw string) parsed {
	p, dups, err := parseParams(raw)
	return parsed{p: p, dups: dups, err: err}
}

// parsedRequest is what the instrumenting middleware parsed to record a
// request, handed to the handler through the context so that the hot
// endpoints (/token, /authorize) parse their parameters once, not twice.
type parsedRequest struct {
	query parsed
	// form is nil when the body is not form content.
	form *parsed
}

type parsedRequestKey struct{}

func withParsedRequest(r *http.Request, pr *parsedRequest) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), parsedRequestKey{}, pr))
}

func parsedRequestOf(r *http.Request) (*parsedRequest, bool) {
	pr, ok := r.Context().Value(parsedRequestKey{}).(*parsedRequest)
	return pr, ok
}

// queryParams parses the request's query (once per request).
func queryParams(r *http.Request) (params, []string, error) {
	if pr, ok := parsedRequestOf(r); ok {
		return pr.query.p, pr.query.dups, pr.query.err
	}
	return parseParams(r.URL.RawQuery)
}

// formParams parses a form body (once per request: the middleware may
// have parsed the same bytes the body would give).
func formParams(r *http.Request) (params, []string, error) {
	if pr, ok := parsedRequestOf(r); ok && pr.form != nil {
		return pr.form.p, pr.form.dups, pr.form.err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, bodyError(err)
	}
	return parseParams(string(body))
}

// readForm reads an application/x-www-form-urlencoded POST body. Anything
// else (JSON, multipart, a missing content type, duplicates, a body over
// the limit) is invalid_request.
func readForm(r *http.Request) (params, error) {
	if !isFormContent(r) {
		return nil, errInvalidRequest("content type must be application/x-www-form-urlencoded")
	}
	p, dups, err := formParams(r)
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
