package phot

import "fmt"

// Code is a plugin return code (PHOT_OK, PHOT_E_*); a code this host does not know is an error.
type Code int32

const (
	OK              Code = 0
	InvalidArgument Code = -1
	UnknownInput    Code = -2
	MissingInput    Code = -3
	DTypeMismatch   Code = -4
	ShapeMismatch   Code = -5
	BufferTooSmall  Code = -6
	RuntimeFailure  Code = -7
	Closed          Code = -8
)

var codeNames = map[Code]string{
	OK: "PHOT_OK", InvalidArgument: "PHOT_E_INVALID_ARGUMENT", UnknownInput: "PHOT_E_UNKNOWN_INPUT",
	MissingInput: "PHOT_E_MISSING_INPUT", DTypeMismatch: "PHOT_E_DTYPE_MISMATCH",
	ShapeMismatch: "PHOT_E_SHAPE_MISMATCH", BufferTooSmall: "PHOT_E_BUFFER_TOO_SMALL",
	RuntimeFailure: "PHOT_E_RUNTIME", Closed: "PHOT_E_CLOSED",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", int32(c))
}

// Error is a failed call into a plugin: the return code and the plugin's last_error().
// errors.Is(err, phot.ErrClosed) and friends match on the code alone.
type Error struct {
	Op      string // "open", "infer", "close"
	Model   string // "mlp 1.0.0"
	Code    Code
	Message string // last_error() of the failed call, or the host's own reason
}

func (e *Error) Error() string {
	return fmt.Sprintf("phot: %s %s: %v: %s", e.Op, e.Model, e.Code, e.Message)
}

// Is matches another *Error with the same code (the Err* values below).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Op == "" && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrInvalidArgument = &Error{Code: InvalidArgument}
	ErrUnknownInput    = &Error{Code: UnknownInput}
	ErrMissingInput    = &Error{Code: MissingInput}
	ErrDTypeMismatch   = &Error{Code: DTypeMismatch}
	ErrShapeMismatch   = &Error{Code: ShapeMismatch}
	ErrBufferTooSmall  = &Error{Code: BufferTooSmall}
	ErrRuntime         = &Error{Code: RuntimeFailure}
	ErrClosed          = &Error{Code: Closed}
)

// NotPluginError: the file is not a loadable paddlehot plugin for this process (not ELF, not
// a 64-bit shared object for this CPU, no manifest section, truncated).
type NotPluginError struct{ Path, Reason string }

func (e *NotPluginError) Error() string {
	return fmt.Sprintf("phot: %s is not a paddlehot plugin: %s", e.Path, e.Reason)
}

// UnsupportedError: a plugin whose manifest or symbol versions this host does not understand.
// Nothing was loaded.
type UnsupportedError struct{ Path, Reason string }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("phot: %s is not supported by this host: %s", e.Path, e.Reason)
}

// LoadError: the dynamic loader refused the plugin or one of its functions.
type LoadError struct{ Path, Reason string }

func (e *LoadError) Error() string { return fmt.Sprintf("phot: loading %s: %s", e.Path, e.Reason) }
