package ipc

import "github.com/tapis-agent/tapis-agent/ipc/wire"

// ParseResponse reads one answer from data and decodes it into out as the
// Client does, for the fuzz target in package ipc_test.
func ParseResponse(data []byte, out any) (status int, body []byte, err error) {
	status, body, err = wire.ParseResponse(data)
	if err != nil {
		return 0, nil, err
	}
	return status, body, decodeAnswer(status, body, out)
}
