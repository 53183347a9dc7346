// Package webhook delivers the event log to CRM endpoints that admins
// register: each matching event is POSTed as JSON, signed with
// HMAC-SHA256 (X-Callfloor-Signature: t=<unix>,v1=<hex>), retried with
// exponential backoff, and delivered strictly in order per resource (event
// type + object id) while different resources proceed independently.
//
// Registry is the admin-facing CRUD (records of kind state.KindWebhook); a
// new hook receives the events after the log position at its registration.
// Dispatcher tails the log with one reader per hook, so a receiver that is
// down holds back only its own deliveries. Exactly one replica dispatches
// at a time: the record holding every hook's cursor doubles as a lease,
// and every write of it is a compare-and-set, so a replica that lost the
// lease cannot move a cursor. A cursor only advances past an event once
// its delivery has finished (delivered or given up), so a restart resumes
// where the previous leader stopped; deliveries recorded as finished are
// not repeated, others may be (at-least-once — receivers dedupe on
// X-Callfloor-Delivery).
//
// Deliveries never follow redirects (a 3xx is a failed attempt), time out
// per request, and go only to the http(s) URL the admin registered.
package webhook
