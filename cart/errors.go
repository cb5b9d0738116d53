package cart

import (
	"errors"
	"fmt"
)

// Code is a stable error code; the WebSocket layer sends it as `error.code`.
type Code string

// The codes a cart operation can fail with (API.md).
const (
	CodeBadRequest    Code = "bad_request"
	CodeNotFound      Code = "not_found"
	CodeSoldOut       Code = "sold_out"
	CodeLimitReached  Code = "limit_reached"
	CodeSaleNotActive Code = "sale_not_active"
	CodeExpired       Code = "expired"
	CodeUnavailable   Code = "unavailable"
	// CodeNotAllowed: the rules keep this user out (a giveaway's entry
	// rule, the host bidding or entering, a removed bidder).
	CodeNotAllowed Code = "not_allowed"
)

// Error is a cart failure a client caused or may show to the buyer. Field is
// set on validation errors and names the offending field (JSON name).
type Error struct {
	Code    Code
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return string(e.Code) + ": " + e.Message
}

// Is makes errors.Is(err, ErrSoldOut) match any *Error with that code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Field == ""
}

// Sentinels for errors.Is; they carry only a code.
var (
	ErrBadRequest    = &Error{Code: CodeBadRequest}
	ErrNotFound      = &Error{Code: CodeNotFound}
	ErrSoldOut       = &Error{Code: CodeSoldOut}
	ErrLimitReached  = &Error{Code: CodeLimitReached}
	ErrSaleNotActive = &Error{Code: CodeSaleNotActive}
	ErrExpired       = &Error{Code: CodeExpired}
	ErrUnavailable   = &Error{Code: CodeUnavailable}
)

// ErrorCode returns the code of a cart *Error in err's chain, or "" when err
// is nil or some other failure (storage down: the caller answers unavailable).
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func errf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func fieldErr(field, format string, args ...any) error {
	return &Error{Code: CodeBadRequest, Field: field, Message: fmt.Sprintf(format, args...)}
}
