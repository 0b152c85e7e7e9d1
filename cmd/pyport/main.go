// Command pyport is the sidecar the erlang_python application runs as a
// port: it reads External Term Format packets ({packet, 4}) on stdin and
// writes replies on stdout.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/erlang-python/erlang_python/bridge"
	"github.com/erlang-python/erlang_python/etf"
)

const version = "0.1.0"

func main() {
	echo := pflag.Bool("echo", false, "echo every term back, re-encoded (codec and framing check)")
	showVersion := pflag.Bool("version", false, "print the version and exit")
	maxPacket := pflag.Int("max-packet", bridge.DefaultMaxFrame, "largest packet accepted, in bytes")
	pflag.Parse()

	switch {
	case *showVersion:
		fmt.Println("pyport", version)
	case *echo:
		if err := runEcho(os.Stdin, os.Stdout, *maxPacket); err != nil {
			fmt.Fprintln(os.Stderr, "pyport:", err)
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "pyport: no mode given (try --echo)")
		os.Exit(2)
	}
}

// runEcho answers each packet with its term re-encoded by our codec, or
// {etf_error, Message} when it is not a term, until stdin ends.
func runEcho(in io.Reader, out io.Writer, maxPacket int) error {
	frames := bridge.NewFrameReader(in, maxPacket)
	w := bufio.NewWriterSize(out, 64<<10)
	var buf []byte
	for {
		frame, err := frames.Next()
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, bridge.ErrFrameTooLarge):
			buf, _ = etf.Encode(etf.Tuple{etf.Atom("etf_error"), etf.Binary(err.Error())})
		case err != nil:
			return err
		default:
			buf = echoReply(frame)
		}
		if _, err := w.Write(bridge.AppendFrameHeader(nil, len(buf))); err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if frames.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

func echoReply(frame []byte) []byte {
	t, err := etf.Decode(frame)
	if err == nil {
		var out []byte
		if out, err = etf.Encode(t); err == nil {
			return out
		}
	}
	out, _ := etf.Encode(etf.Tuple{etf.Atom("etf_error"), etf.Binary(err.Error())})
	return out
}
