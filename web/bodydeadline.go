package web

import (
	"net/http"
	"time"
)

// withBodyDeadline bounds the time a request's body may take to arrive
// (http.body_timeout): a client sending it slowly, a byte now and then,
// would otherwise hold its connection and its handler for as long as it
// likes. It applies to every route that takes a body (to every request
// that has one): the deadline is a read deadline on the connection, set
// before the handler runs. net/http lifts it itself the moment the body
// has been read to its end (it starts its background read with no
// deadline), so it never touches a response or a handler that takes
// longer: WebSocket upgrades and long responses carry no body, and there
// is no global write timeout. A body still unread when it passes fails the
// handler's read, and the connection is closed after the answer.
// TestBodyDeadlineSparesHandlerAndResponse holds net/http to that.
func withBodyDeadline(w http.ResponseWriter, r *http.Request, d time.Duration) *http.Request {
	if d <= 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return r
	}
	// A test's recorder has no connection: ErrNotSupported, nothing to do.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
	return r
}
