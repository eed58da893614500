package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/mana-how/mana-auth/autherr"
)

// MaxBodyBytes is the largest request body Decode reads (api.md: 64 KiB).
const MaxBodyBytes = 64 << 10

// Validator is implemented by request types that check their own values.
// Validate returns nil or, preferably, Invalid(fields).
type Validator interface {
	Validate() error
}

// Decode reads r's JSON body into v (a pointer) and validates it.
//
//   - Content-Type must be absent or application/json (parameters allowed;
//     a charset other than utf-8 is refused): else BAD_REQUEST.
//   - A body over MaxBodyBytes: PAYLOAD_TOO_LARGE (413).
//   - An empty body (or only whitespace, or null): BAD_REQUEST; use
//     DecodeOptional where the contract lists no required body.
//   - Malformed JSON, trailing data after the value, or a value of the wrong
//     JSON type: BAD_REQUEST, with the cause kept for the log.
//   - Unknown fields are ignored (api.md).
//   - When v implements Validator, its error is returned: an *autherr.Error
//     as is, anything else wrapped as VALIDATION_FAILED.
//
// Every error Decode returns is an *autherr.Error, except for a v that
// encoding/json cannot decode into (a non-pointer: a caller bug, INTERNAL).
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	return decode(w, r, v, false)
}

// DecodeOptional is Decode for routes whose body may be absent: an empty
// body (or null) counts as {}, so v keeps its zero value and is still
// validated.
func DecodeOptional(w http.ResponseWriter, r *http.Request, v any) error {
	return decode(w, r, v, true)
}

// Invalid returns the VALIDATION_FAILED error for bad values: fields maps
// each bad field's JSON name to a short client-safe reason, sent as
// details.fields. The map is copied.
func Invalid(fields map[string]string) *autherr.Error {
	names := slices.Sorted(maps.Keys(fields))
	msg := "request validation failed"
	if len(names) > 0 {
		msg = "invalid fields: " + strings.Join(names, ", ")
	}
	cp := maps.Clone(fields)
	if cp == nil {
		cp = map[string]string{}
	}
	return &autherr.Error{Code: autherr.ValidationFailed, Message: msg, Details: map[string]any{"fields": cp}}
}

func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := readBody(w, r)
	if err != nil {
		return err
	}
	if trimmed := strings.Trim(string(body), " \t\r\n"); trimmed == "" || trimmed == "null" {
		if !optional {
			return autherr.New(autherr.BadRequest, "request body is required")
		}
	} else if err := json.Unmarshal(body, v); err != nil {
		return decodeError(err)
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			var ae *autherr.Error
			if errors.As(err, &ae) {
				return err
			}
			return autherr.Wrap(autherr.ValidationFailed, err, "request validation failed")
		}
	}
	return nil
}

func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return autherr.Wrap(autherr.BadRequest, fmt.Errorf("web: content type %q", ct), "Content-Type must be application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return autherr.Wrap(autherr.BadRequest, fmt.Errorf("web: charset %q", cs), "request body must be UTF-8")
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > MaxBodyBytes {
		return nil, autherr.Wrap(autherr.PayloadTooLarge, &http.MaxBytesError{Limit: MaxBodyBytes}, tooLarge)
	}
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, autherr.Wrap(autherr.PayloadTooLarge, err, tooLarge)
		}
		// A body read only involves the client's connection: a reset or a
		// read timeout here is the client's, not our infrastructure. The
		// cause text is kept for the log but deliberately not wrapped (%v),
		// so autherr cannot mistake it for an outage of ours.
		return nil, autherr.Wrap(autherr.BadRequest, fmt.Errorf("web: read request body: %v", err), "could not read the request body")
	}
	return body, nil
}

const tooLarge = "request body exceeds 64 KiB"

func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		inv    *json.InvalidUnmarshalError
		ae     *autherr.Error
	)
	switch {
	case errors.As(err, &syntax):
		return autherr.Wrap(autherr.BadRequest, err, "request body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field != "" {
			return autherr.Wrap(autherr.BadRequest, err, fmt.Sprintf("field %q has the wrong JSON type", typ.Field))
		}
		return autherr.Wrap(autherr.BadRequest, err, "request body has the wrong JSON type")
	case errors.As(err, &inv):
		return fmt.Errorf("web: decode: %w", err) // the caller passed a non-pointer: INTERNAL
	case errors.As(err, &ae):
		return err // a field type's UnmarshalJSON answered for itself
	default:
		// A field type refused its value (time.Time, base64 []byte, …).
		return autherr.Wrap(autherr.BadRequest, err, "request body has an invalid value")
	}
}
