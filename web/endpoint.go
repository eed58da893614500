package web

import (
	"net/http"
)

// NoBody is the In of an endpoint that takes no request body: an empty
// body or {} is accepted (api.md: a POST whose contract lists no body),
// anything else that is not JSON is BAD_REQUEST.
type NoBody struct{}

// Endpoint is the shape of nearly every handler of the module: decode the
// JSON body into an In, call the service, answer its result. fn returns
// what to encode with status; status http.StatusNoContent answers 204
// without a body whatever fn returns. Put the required-field checks into
// In's Validate method (see Validator and Required), so they run inside
// the decoder and answer VALIDATION_FAILED before fn is called.
//
// The body is required (Decode) unless In is NoBody (then a GET, HEAD,
// DELETE or OPTIONS body is not read at all); use
// EndpointOptional where a body may be absent.
func Endpoint[In any](status int, fn func(w http.ResponseWriter, r *http.Request, in In) (any, error)) HandlerFunc {
	return endpoint(status, false, fn)
}

// EndpointOptional is Endpoint for a body that may be absent (treated as
// {}).
func EndpointOptional[In any](status int, fn func(w http.ResponseWriter, r *http.Request, in In) (any, error)) HandlerFunc {
	return endpoint(status, true, fn)
}

func endpoint[In any](status int, optional bool, fn func(w http.ResponseWriter, r *http.Request, in In) (any, error)) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var in In
		_, none := any(&in).(*NoBody)
		switch {
		case none && bodiless(r.Method):
			// Not read at all, as a GET handler never reads its body.
		case none || optional:
			if err := DecodeOptional(w, r, &in); err != nil {
				return err
			}
		default:
			if err := Decode(w, r, &in); err != nil {
				return err
			}
		}
		out, err := fn(w, r, in)
		if err != nil {
			return err
		}
		if status == http.StatusNoContent {
			NoContent(w)
			return nil
		}
		return JSON(w, status, out)
	}
}

// bodiless reports the methods whose requests carry no body by contract.
func bodiless(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// Required returns VALIDATION_FAILED naming every empty field of the
// name, value pairs given ("email", in.Email, "password", in.Password),
// or nil when none is empty. An odd number of arguments is a caller bug
// and panics.
func Required(pairs ...string) error {
	if len(pairs)%2 != 0 {
		panic("web.Required: odd number of arguments")
	}
	var bad map[string]string
	for i := 0; i < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			if bad == nil {
				bad = map[string]string{}
			}
			bad[pairs[i]] = "required"
		}
	}
	if bad != nil {
		return Invalid(bad)
	}
	return nil
}
