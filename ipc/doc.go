// Package ipc is the vocabulary of the agent's socket: where the socket is
// and who may trust it, the request and answer types, error codes and
// hints, the token frame, and the frame's client.
//
// The socket serves two exchanges, told apart by the first byte a client
// sends. The helper tapis-token asks for one token on a connection of its
// own with a token frame, as ssh-agent's clients speak to ssh-agent; every
// other call is HTTP/1.1 with JSON bodies on versioned paths (PathStatus,
// …), which package ipc/ipcclient speaks and package ipc/ipcserver serves
// with net/http, as it serves GET PathToken for clients that speak only
// HTTP. Both carry the same peer check, limits and error codes.
//
// # The token frame
//
// A frame is one line ending in LF. The request, at most MaxRequestBytes:
//
//	@tapis-agent/1 token TENANT MIN_VALID
//
// TENANT is a tenant name, or "-" for the agent's default tenant;
// MIN_VALID the seconds the token must stay valid (1 to 10 digits), or "-"
// for the agent's default. The answer, at most MaxAnswerBytes, after which
// the agent closes the connection:
//
//	@tapis-agent/1 ok EXPIRES_IN EXPIRES_AT "ACCESS_TOKEN" "TENANT" "BASE_URL" "USERNAME"
//	@tapis-agent/1 error CODE "MESSAGE" "HINT"
//
// EXPIRES_IN is the whole seconds left when answered, EXPIRES_AT the
// expiry in seconds since 1970 with an optional fraction of up to nine
// digits, CODE one of the error codes below, and the quoted fields are
// written as strconv.Quote writes them. Fields are separated by one space.
// No HTTP request can start with '@' (IsFrame).
//
// A client that asks again and again (the Python client's agent-backed
// tapipy, before every API call) may keep its connection: the request
//
//	@tapis-agent/1 keep TENANT MIN_VALID
//
// is answered as token is, and the connection then stays open for the
// next request, keep or token, which the client sends once it has read
// the answer. The agent closes a kept connection after a malformed
// request, after a minute without one, and when it
// shuts down; the client then connects again. The client's checks of the
// socket and of its server are made once, when it connects.
//
// This package imports neither net, net/http, encoding/json nor fmt:
// tapis-token links it, and every package a program links is initialised
// at each of its starts.
package ipc
