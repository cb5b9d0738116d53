package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// apiError is the body of every HTTP error: {"error": {"code", "message"}}.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, message
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errBodyTooLarge is returned by readBody when a client sends more than allowed.
var errBodyTooLarge = errors.New("request body too large")

// readBody reads at most limit bytes of the body, and fails past that.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fmt.Errorf("%w (limit %d bytes)", errBodyTooLarge, limit)
	}
	return b, err
}

// decodeJSON reads a JSON object strictly: unknown fields and trailing data
// are errors, so a typo in a field name is reported instead of ignored.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) (status int, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		// curl -d sends form encoding by default; the body is still JSON.
		mt, _, _ := mime.ParseMediaType(ct)
		if mt != "application/json" && mt != "application/x-www-form-urlencoded" {
			return http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/json")
		}
	}
	b, err := readBody(w, r, limit)
	if err != nil {
		if errors.Is(err, errBodyTooLarge) {
			return http.StatusRequestEntityTooLarge, err
		}
		return http.StatusBadRequest, err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return http.StatusBadRequest, errors.New("invalid JSON: trailing data after the object")
	}
	return 0, nil
}

// writeDecodeError reports a decodeJSON failure.
func writeDecodeError(w http.ResponseWriter, status int, err error) {
	code := "bad_request"
	if status == http.StatusRequestEntityTooLarge {
		code = "too_large"
	}
	writeError(w, status, code, err.Error())
}
