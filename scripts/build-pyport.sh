#!/usr/bin/env bash
# Build the sidecar, linked against the chosen Python (pick-python.sh; set
# PYTHON_CONFIG to choose), into erlang/priv/pyport or the path given.
# Works from any directory (the rebar3 pre-compile hook runs it from erlang/).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

cd "$root"
out=${1:-erlang/priv/pyport}
mkdir -p "$(dirname "$out")"
# The type stubs of Python's `erlang` module, a PEP 561 stub package in priv
# (README, "Python type stubs"); copied only when changed.
stubs=erlang/priv/python/erlang-stubs
mkdir -p "$stubs"
cmp -s pool/py/erlang.pyi "$stubs/__init__.pyi" || cp pool/py/erlang.pyi "$stubs/__init__.pyi"
cfg=$("$here/pick-python.sh" 2>/dev/null)
# sys.executable: the interpreter that sits beside its -config script.
exe="$(dirname "$cfg")/$(basename "$cfg" -config)"
[ -x "$exe" ] || exe=""
PYTHON_CONFIG=$cfg "$here/with-python.sh" go build \
    -ldflags "-X main.defaultExecutable=$exe" -o "$out" ./cmd/pyport
echo "pyport: built $out for $cfg"
