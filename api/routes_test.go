package api_test

import (
	"testing"

	"github.com/callfloor/callfloor/api"
)

// allRouteOptions mounts every route set the product serves, so the
// OpenAPI agreement test covers the whole API. The backends are nil:
// mounting only registers routes; no handler runs.
func allRouteOptions(t *testing.T) []api.Option {
	t.Helper()
	return []api.Option{
		api.WithRoutes(api.RoutingRoutes(nil)),
		api.WithRoutes(api.EventRoutes(nil)),
		api.WithRoutes(api.WebhookRoutes(nil)),
		api.WithRoutes(api.MediaRoutes(nil)),
		api.WithRoutes(api.ReportsRoutes(nil, nil, nil)),
	}
}
