package proto

import (
	"errors"

	"github.com/erlang-python/erlang_python/etf"
)

// DecodeDown reads a {down, Ctxs} packet's arguments and body
// (docs/PROTOCOL.md, "Environments"): the contexts where the process had
// an environment, and the process's pid as the BEAM encodes it, without
// version byte: the bytes a request's caller came as (Header.RawCaller),
// a slice of body.
func DecodeDown(ctxs etf.Term, body []byte) ([]int64, etf.RawTerm, error) {
	list, ok := ctxs.(etf.List)
	if !ok {
		return nil, nil, errors.New("contexts are not a list")
	}
	ids := make([]int64, len(list))
	for i, c := range list {
		if ids[i], ok = etf.ToInt64(c); !ok {
			return nil, nil, errors.New("a context is not an integer")
		}
	}
	if len(body) < 2 || body[0] != etf.VersionTag {
		return nil, nil, errors.New("the body is not a versioned term")
	}
	pid, n, err := headerDecoder.DecodeTerm(body[1:])
	if err != nil {
		return nil, nil, err
	}
	if _, ok := pid.(etf.Pid); !ok || n != len(body)-1 {
		return nil, nil, errors.New("the body is not a pid")
	}
	return ids, etf.RawTerm(body[1:]), nil
}
