// Package ipc is the client side of the agent's socket API: socket path
// discovery, the socket directory check and a tiny HTTP/1.1 client.
//
// The helper tapis-token links this package, and its start-up time is the
// product's hot path, so ipc deliberately does not import net/http,
// crypto/tls, log/slog or os/user. The client writes its request and parses
// the agent's answer by hand: a small, strict subset of HTTP/1.1 where every
// answer carries a Content-Length. The server side, which uses net/http, is
// package ipc/ipcserver.
package ipc
