package store

import (
	"errors"
	"fmt"

	"github.com/callfloor/callfloor/state"
)

// errInvalidTx marks a Tx that no store could apply (empty ids, bad version
// preconditions). It is a programming error of the caller, not a conflict.
var errInvalidTx = errors.New("store: invalid transaction")

// validateTx rejects what neither backend can store, before anything is
// checked or written, so both backends refuse exactly the same inputs.
func validateTx(tx *state.Tx) error {
	for i, p := range tx.Puts {
		if p.Kind == "" || p.ID == "" {
			return fmt.Errorf("%w: put %d: empty kind or id", errInvalidTx, i)
		}
		if p.IfVersion < state.AnyVersion {
			return fmt.Errorf("%w: put %d: IfVersion %d", errInvalidTx, i, p.IfVersion)
		}
	}
	for i, d := range tx.Deletes {
		if d.Kind == "" || d.ID == "" {
			return fmt.Errorf("%w: delete %d: empty kind or id", errInvalidTx, i)
		}
		if d.IfVersion < state.AnyVersion {
			return fmt.Errorf("%w: delete %d: IfVersion %d", errInvalidTx, i, d.IfVersion)
		}
	}
	for i, a := range tx.Appends {
		if a.Series == "" {
			return fmt.Errorf("%w: append %d: empty series", errInvalidTx, i)
		}
	}
	for i, in := range tx.Incrs {
		if in.Counter == "" || in.Field == "" {
			return fmt.Errorf("%w: incr %d: empty counter or field", errInvalidTx, i)
		}
	}
	for i, sc := range tx.Schedules {
		if sc.Index == "" || sc.Member == "" {
			return fmt.Errorf("%w: schedule %d: empty index or member", errInvalidTx, i)
		}
	}
	if tx.Fence.Lease != "" && tx.Fence.Token <= 0 {
		return fmt.Errorf("%w: fence on %q with token %d", errInvalidTx, tx.Fence.Lease, tx.Fence.Token)
	}
	for i, e := range tx.Events {
		if e.Type == "" {
			return fmt.Errorf("%w: event %d: empty type", errInvalidTx, i)
		}
	}
	return nil
}

// versionOK evaluates a Put or Delete precondition against the current
// version (0 = the record does not exist).
func versionOK(ifVersion, current int64) bool {
	switch ifVersion {
	case state.AnyVersion:
		return true
	case state.MustNotExist:
		return current == 0
	default:
		return current == ifVersion
	}
}

// cloneBytes copies b so callers never alias store memory. The copy is
// never nil, matching what Redis hands back for an empty value.
func cloneBytes(b []byte) []byte {
	return append([]byte{}, b...)
}
