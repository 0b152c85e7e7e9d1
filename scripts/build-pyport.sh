#!/usr/bin/env bash
# Build the sidecar, linked against the chosen Python (pick-python.sh; set
# PYTHON_CONFIG to choose), into erlang/priv/pyport or the path given.
# Works from any directory (the rebar3 pre-compile hook runs it from erlang/, or
# from the repository root when erlang_python is a dependency; mix.exs runs it too).
#
# Rebuilds only when something the binary is made of changed: OUT.stamp, next to
# OUT, holds a hash of the Go/C/Python sources, go.mod/go.sum, this script, the
# chosen python-config (its path, version and flags), GOFLAGS and the Go version; when it
# matches and OUT is there, nothing is built. PYPORT_FORCE=1 rebuilds anyway.
# When it cannot build it says why: which Python was picked or tried
# (pick-python.sh's message), that Go is missing, or go build's errors.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

fail() {
    echo "pyport: cannot build $out: $*" >&2
    exit 1
}

cd "$root"
out=${1:-erlang/priv/pyport}
stamp="$out.stamp"
# The directory may be a symbolic link to one not made yet (priv -> erlang/priv).
mkdir -p "$(readlink -m "$(dirname "$out")")"
# The type stubs of Python's `erlang` module, a PEP 561 stub package in the
# application's priv (README, "Python type stubs"); copied only when changed.
if [ "$(basename "$(dirname "$out")")" = priv ]; then
    stubs="$(dirname "$out")/python/erlang-stubs"
    mkdir -p "$stubs"
    cmp -s pool/py/erlang.pyi "$stubs/__init__.pyi" || cp pool/py/erlang.pyi "$stubs/__init__.pyi"
fi

# pick-python.sh prints "python: using ..." or why nothing was usable on stderr.
if ! cfg=$("$here/pick-python.sh"); then
    fail "no usable Python (see the python: line above; set PYTHON_CONFIG to a python3.X-config, or PYTHON to an interpreter)"
fi
if ! command -v go >/dev/null 2>&1; then
    if [ -x /usr/local/go/bin/go ]; then
        export PATH="/usr/local/go/bin:$PATH"
    else
        fail "Go not found on PATH or in /usr/local/go/bin (Go 1.26 is needed to build the sidecar)"
    fi
fi
# sys.executable: the interpreter that sits beside its -config script.
exe="$(dirname "$cfg")/$(basename "$cfg" -config)"
[ -x "$exe" ] || exe=""

# What the sidecar was built for, read by the BEAM (py_python) before it runs it:
# on another machine the same Python version may sit elsewhere.
write_meta() {
    meta="$out.python"
    if [ -n "$exe" ] && "$exe" -S -c 'import sys, sysconfig
v = sysconfig.get_config_var
print("%% the Python %s was built for (scripts/build-pyport.sh)" % sys.argv[1])
for k, x in (("version", "%d.%d" % sys.version_info[:2]), ("soname", v("INSTSONAME") or ""),
             ("libdir", v("LIBDIR") or ""), ("executable", sys.argv[2])):
    print("{%s, \"%s\"}." % (k, x.replace("\\", "\\\\").replace("\"", "\\\"")))' \
        "$(basename "$out")" "$exe" >"$meta.tmp"; then
        mv "$meta.tmp" "$meta"
    else
        rm -f "$meta.tmp" "$meta"
    fi
}

# The hash of what the binary is made of.
sources_hash() {
    {
        echo "cfg=$cfg exe=$exe GOFLAGS=${GOFLAGS:-}"
        "$cfg" --includes --embed --ldflags 2>&1 || true
        [ -n "$exe" ] && "$exe" -c 'import sys; print(sys.version)' 2>&1 || true
        go version
        find go.mod go.sum "$here/build-pyport.sh" \
            cmd etf port store pyetf pool proto bridge -type f \
            \( -name '*.go' -o -name '*.c' -o -name '*.h' -o -name '*.py' -o -name 'go.*' -o -name '*.sh' \) \
            ! -name '*_test.go' ! -path '*/testdata/*' -print0 |
            LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -d' ' -f1
}
hash=$(sources_hash)
if [ -z "${PYPORT_FORCE:-}" ] && [ -x "$out" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
    echo "pyport: $out is up to date (for $cfg)"
    [ -f "$out.python" ] || write_meta
    exit 0
fi

rm -f "$stamp"
# cgo pointed at that Python, as scripts/with-python.sh does.
if ! CGO_ENABLED=1 CGO_CFLAGS="-g -O2 $("$cfg" --includes)" CGO_LDFLAGS="$("$cfg" --embed --ldflags)" go build \
    -ldflags "-X main.defaultExecutable=$exe" -o "$out" ./cmd/pyport; then
    fail "go build ./cmd/pyport failed (its errors are above), with $cfg ($("$cfg" --embed --ldflags 2>/dev/null | tr -s ' '))"
fi
write_meta
echo "$hash" >"$stamp"
echo "pyport: built $out for $cfg"
