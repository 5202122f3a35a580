package wire

// wrapError is an error with its own message that wraps errs, as
// fmt.Errorf with %w verbs makes one. Package fmt stays out of
// tapis-token: the code a program links, used or not, adds to its start
// and exit.
type wrapError struct {
	msg  string
	errs []error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return e.errs }

// wrap returns an error with message msg that wraps errs.
func wrap(msg string, errs ...error) error { return &wrapError{msg: msg, errs: errs} }
