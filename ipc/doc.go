// Package ipc is the agent's socket API: its paths, request and answer
// types and error codes, and the client of every call.
//
// The client writes its requests and parses the agent's answers by hand, a
// small, strict subset of HTTP/1.1 where every answer carries a
// Content-Length; it does not import net, net/http, crypto/tls, log/slog or
// os/user. The part the helper tapis-token runs on every call (socket path,
// connection, framing, the token call) is package ipc/wire, which does not
// import encoding/json either; this package builds the other calls on it
// and re-exports wire's types. The server side, which uses net/http, is
// package ipc/ipcserver.
package ipc
