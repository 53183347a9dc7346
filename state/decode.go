package state

import (
	"context"
	"encoding/json"
	"fmt"
)

// ListAs returns every record of kind decoded from its JSON into T, in id
// order. Callers that need record versions use Store.List directly.
func ListAs[T any](ctx context.Context, st Store, kind Kind) ([]T, error) {
	recs, err := st.List(ctx, kind)
	if err != nil {
		return nil, fmt.Errorf("list %s records: %w", kind, err)
	}
	out := make([]T, 0, len(recs))
	for _, r := range recs {
		var v T
		if err := json.Unmarshal(r.Data, &v); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", kind, r.ID, err)
		}
		out = append(out, v)
	}
	return out, nil
}
