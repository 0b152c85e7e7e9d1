#!/usr/bin/env bash
# Run a command with cgo pointed at the chosen Python (see pick-python.sh):
#   CGO_CFLAGS="-g -O2 $(cfg --includes)"  CGO_LDFLAGS=$(cfg --embed --ldflags)
# (-g -O2 is cgo's default, which setting CGO_CFLAGS replaces; not --cflags:
# it adds -O3 -Wall and friends). Go is looked up on PATH, then
# /usr/local/go/bin. Usage: scripts/with-python.sh go test ./...
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

cfg=$("$here/pick-python.sh")
CGO_CFLAGS="-g -O2 $("$cfg" --includes)"
CGO_LDFLAGS=$("$cfg" --embed --ldflags)
export CGO_ENABLED=1 CGO_CFLAGS CGO_LDFLAGS
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
fi
exec "$@"
