package api

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openapiJSON is the API contract, kept in the repo and served as is;
// api tests check that it and the router agree route for route.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the embedded OpenAPI 3 document.
func OpenAPI() []byte { return openapiJSON }

func serveOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, "application/json", openapiJSON)
}

//go:embed dashboard
var dashboardFS embed.FS

// mountDashboard serves the built-in web dashboard at / (static files;
// the page reads the same REST + SSE API any client uses).
func mountDashboard(e *echo.Echo) {
	sub, _ := fs.Sub(dashboardFS, "dashboard")
	h := http.FileServer(http.FS(sub))
	e.GET("/", echo.WrapHandler(h))
	e.GET("/*", echo.WrapHandler(h))
}
