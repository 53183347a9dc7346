package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/callfloor/callfloor/api"
)

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// TestOpenAPIMatchesRouter: every /v1 route the server registers is in
// the document with the same method, and every documented operation is
// served. Mounted route sets (routing, events) are included via
// allRouteOptions so the check covers the whole API.
func TestOpenAPIMatchesRouter(t *testing.T) {
	doc, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(nil, nil, allRouteOptions(t)...)
	served := map[string]bool{}
	for _, r := range srv.Echo().Routes() {
		if !strings.HasPrefix(r.Path, "/v1/") || strings.HasSuffix(r.Path, "*") || r.Method == "echo_route_any" {
			continue
		}
		served[r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllStringFunc(path, func(string) string { return "{id}" })] = true
		}
	}
	normalise := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, regexp.MustCompile(`\{[a-z_]+\}`).ReplaceAllString(k, "{id}"))
		}
		sort.Strings(out)
		return out
	}
	s, d := normalise(served), normalise(documented)
	ds := map[string]bool{}
	for _, x := range d {
		ds[x] = true
	}
	ss := map[string]bool{}
	for _, x := range s {
		ss[x] = true
		if !ds[x] {
			t.Errorf("served but not in openapi.yaml: %s", x)
		}
	}
	for _, x := range d {
		if !ss[x] {
			t.Errorf("in openapi.yaml but not served: %s", x)
		}
	}
}

// TestResponsesMatchOpenAPI sends real requests (good and bad) and
// validates each request and response against the document.
func TestResponsesMatchOpenAPI(t *testing.T) {
	doc, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	d := newDemo(t)
	reqs := []struct{ method, path, token, body string }{
		{"GET", "/v1/healthz", "", ""},
		{"GET", "/v1/me", "demo-sup-sales", ""},
		{"GET", "/v1/readyz", "", ""},
		{"GET", "/v1/agents", "demo-admin", ""},
		{"GET", "/v1/agents?online=false&group=sales", "demo-sup-sales", ""},
		{"GET", "/v1/agents/a1", "demo-a1", ""},
		{"POST", "/v1/agents/a1/heartbeat", "demo-a1", ""},
		{"PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`},
		{"PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"napping"}`},
		{"PUT", "/v1/agents/a5/status", "demo-sup-sales", `{"call_status":"available"}`},
		{"GET", "/v1/agents/a1/history", "demo-a1", ""},
		{"POST", "/v1/agents", "demo-admin", `{"id":"a9","name":"N","email":"n@example.com","phone":"+84901000019"}`},
		{"PATCH", "/v1/agents/a9", "demo-admin", `{"phone":"12"}`},
		{"DELETE", "/v1/agents/a9", "demo-admin", ""},
		{"GET", "/v1/agents/nope", "demo-admin", ""},
		{"GET", "/v1/statuses", "demo-a1", ""},
		{"POST", "/v1/statuses", "demo-admin", `{"id":"gym","name":"Gym"}`},
		{"DELETE", "/v1/statuses/gym", "demo-admin", ""},
		{"GET", "/v1/groups", "demo-admin", ""},
		{"POST", "/v1/groups", "demo-admin", `{"id":"vip","name":"VIP"}`},
		{"PATCH", "/v1/groups/vip", "demo-admin", `{"supervisors":["sup-sales"]}`},
		{"DELETE", "/v1/groups/vip", "demo-admin", ""},
		{"POST", "/v1/agents/a1/logout", "demo-a1", ""},
		{"GET", "/v1/agents", "", ""},
	}
	ctx := context.Background()
	for _, r := range reqs {
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		req := httptest.NewRequest(r.method, d.srv.URL+r.path, body)
		if r.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if r.token != "" {
			req.Header.Set("Authorization", "Bearer "+r.token)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Errorf("%s %s: not in the document: %v", r.method, r.path, err)
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		res := d.do(r.method, r.path, r.token, r.body)
		if res.status < 400 {
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s %s: accepted request fails the document: %v", r.method, r.path, err)
			}
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.status,
			Header: http.Header{"Content-Type": []string{res.header.Get("Content-Type")}}, Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		out.SetBodyBytes(bytes.Clone(res.body))
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s → %d: response fails the document: %v\n%s", r.method, r.path, res.status, err, res.body)
		}
	}
}
