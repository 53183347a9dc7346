package api

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// openapiYAML is the API contract, kept in the repo (api/openapi.yaml) and
// served as JSON at /v1/openapi.json. Tests check that it and the router
// agree route for route and that real responses validate against it.
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI parses and validates the embedded document once.
var OpenAPI = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml invalid: %w", err)
	}
	return doc, nil
})

var openapiJSON = sync.OnceValues(func() ([]byte, error) {
	doc, err := OpenAPI()
	if err != nil {
		return nil, err
	}
	return json.Marshal(doc)
})

func serveOpenAPI(c echo.Context) error {
	b, err := openapiJSON()
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "application/json", b)
}

//go:embed dashboard
var dashboardFS embed.FS

// mountDashboard serves the built-in pages (static files; they read the
// same REST + SSE API any client uses): the supervisor console at / and
// the agent desktop at /agent.
func mountDashboard(e *echo.Echo) {
	sub, _ := fs.Sub(dashboardFS, "dashboard")
	h := http.FileServer(http.FS(sub))
	e.GET("/agent", func(c echo.Context) error {
		page, err := fs.ReadFile(sub, "agent.html")
		if err != nil {
			return err
		}
		return c.HTMLBlob(http.StatusOK, page)
	})
	e.GET("/", echo.WrapHandler(h))
	e.GET("/*", echo.WrapHandler(h))
}
