#!/usr/bin/env bash
# Build the sidecar into erlang/priv/pyport, linked against the chosen Python.
# Works from any directory (the rebar3 pre-compile hook runs it from erlang/).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

cd "$root"
mkdir -p erlang/priv
"$here/with-python.sh" go build -o erlang/priv/pyport ./cmd/pyport
echo "pyport: built $root/erlang/priv/pyport"
