package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// Limits of the answers the client accepts. The agent's answers are small;
// anything beyond these is not the agent.
const (
	maxBodyBytes   = 1 << 20 // 1 MiB
	maxLineBytes   = 4096    // status line or one header line
	maxHeaderLines = 64
	maxHeaderBytes = 16 << 10
)

// malformed returns the error for an answer the client cannot use.
func malformed(what string) *Error {
	return &Error{Code: CodeInternal, Message: "malformed answer from agent: " + what}
}

// appendRequest appends one HTTP/1.1 request with an optional JSON body to
// b.
func appendRequest(b []byte, method, target string, body []byte) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\nAccept: application/json\r\n"...)
	if body != nil {
		b = append(b, "Content-Type: application/json\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// readResponse reads one HTTP/1.1 answer: status line, headers and a body
// of at most maxBodyBytes, delimited by Content-Length or, without one, by
// the end of the stream (the client always sends Connection: close).
// Chunked answers are refused: the agent always sends Content-Length.
//
// An answer that does not parse yields an *Error with CodeInternal; a
// failing read yields the reader's error.
func readResponse(r *bufio.Reader) (status int, body []byte, err error) {
	total := 0
	line, err := readLine(r, &total)
	if err != nil {
		return 0, nil, err
	}
	status, err = parseStatusLine(line)
	if err != nil {
		return 0, nil, err
	}
	contentLength := -1
	for n := 0; ; n++ {
		line, err := readLine(r, &total)
		if err != nil {
			return 0, nil, err
		}
		if len(line) == 0 {
			break
		}
		if n >= maxHeaderLines {
			return 0, nil, malformed("too many header lines")
		}
		name, value, err := parseHeader(line)
		if err != nil {
			return 0, nil, err
		}
		switch {
		case EqualFoldASCII(name, "Content-Length"):
			cl, ok := parseContentLength(value)
			if !ok {
				return 0, nil, malformed("bad Content-Length")
			}
			if contentLength >= 0 && contentLength != cl {
				return 0, nil, malformed("conflicting Content-Length headers")
			}
			contentLength = cl
		case EqualFoldASCII(name, "Transfer-Encoding"):
			return 0, nil, malformed("unexpected Transfer-Encoding")
		}
	}
	if contentLength > maxBodyBytes {
		return 0, nil, malformed("body too large")
	}
	if contentLength >= 0 {
		body = make([]byte, contentLength)
		if _, err := io.ReadFull(r, body); err != nil {
			return 0, nil, eofMalformed(err, "body shorter than Content-Length")
		}
		return status, body, nil
	}
	body, err = io.ReadAll(io.LimitReader(r, maxBodyBytes+1))
	if err != nil {
		return 0, nil, err
	}
	if len(body) > maxBodyBytes {
		return 0, nil, malformed("body too large")
	}
	return status, body, nil
}

// eofMalformed turns an early end of the answer into a malformed-answer
// error and passes other read errors through.
func eofMalformed(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return malformed(what)
	}
	return err
}

// readLine returns one CRLF-terminated line without its CRLF, counting its
// bytes into *total.
func readLine(r *bufio.Reader, total *int) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxLineBytes {
		return nil, malformed("header line too long")
	}
	if err != nil {
		return nil, eofMalformed(err, "connection closed before the end of the headers")
	}
	*total += len(line)
	if *total > maxHeaderBytes {
		return nil, malformed("headers too large")
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, malformed("header line not terminated by CRLF")
	}
	return line[:len(line)-2], nil
}

// parseStatusLine parses "HTTP/1.1 200 OK" and returns the status, which
// must be 200–599: the client never asks for an interim answer.
func parseStatusLine(line []byte) (int, error) {
	rest, ok := bytes.CutPrefix(line, []byte("HTTP/1.1 "))
	if !ok {
		rest, ok = bytes.CutPrefix(line, []byte("HTTP/1.0 "))
	}
	if !ok {
		return 0, malformed("not an HTTP/1.x status line")
	}
	if len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, malformed("bad status code")
	}
	code := 0
	for _, c := range rest[:3] {
		if c < '0' || c > '9' {
			return 0, malformed("bad status code")
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code > 599 {
		return 0, malformed("unexpected status " + strconv.Itoa(code))
	}
	return code, nil
}

// parseHeader splits "Name: value" and trims the value.
func parseHeader(line []byte) (name, value []byte, err error) {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 {
		return nil, nil, malformed("bad header line")
	}
	for _, c := range name {
		if !isTokenChar(c) {
			return nil, nil, malformed("bad header name")
		}
	}
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, malformed("control character in header value")
		}
	}
	return name, bytes.Trim(value, " \t"), nil
}

// parseContentLength parses a decimal length of at most 10 digits.
func parseContentLength(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// isTokenChar reports whether c may appear in a header name (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// EqualFoldASCII reports whether b equals s ignoring ASCII case only, as
// HTTP compares header names and tokens: unlike bytes.EqualFold, "ſ" is
// not "s".
func EqualFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ErrorAnswer returns nil for a 2xx status, else the *Error the answer
// carries.
func ErrorAnswer(status int, body []byte) error {
	if status >= 200 && status <= 299 {
		return nil
	}
	var ed ErrorDetail
	if decodeError(body, &ed) != nil || ed.Code == "" {
		e := malformed("HTTP status " + strconv.Itoa(status) + " without an error body")
		e.Status = status
		return e
	}
	return &Error{Status: status, Code: ed.Code, Message: ed.Message, Hint: ed.Hint}
}

// MalformedBody is the error for a body that does not decode. The
// decoder's message may quote the answer, so it is left out.
func MalformedBody(status int) *Error {
	e := malformed("invalid JSON body")
	e.Status = status
	return e
}

// ParseResponse parses data as one answer, as RoundTrip reads it, for
// the tests and fuzz targets of the packages built on this one.
func ParseResponse(data []byte) (status int, body []byte, err error) {
	return readResponse(bufio.NewReaderSize(bytes.NewReader(data), maxLineBytes))
}
