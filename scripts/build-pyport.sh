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
cfg=$("$here/pick-python.sh" 2>/dev/null)
# sys.executable: the interpreter that sits beside its -config script.
exe="$(dirname "$cfg")/$(basename "$cfg" -config)"
[ -x "$exe" ] || exe=""
PYTHON_CONFIG=$cfg "$here/with-python.sh" go build \
    -ldflags "-X main.defaultExecutable=$exe" -o "$out" ./cmd/pyport
# What the sidecar was built for, read by the BEAM (py_python) before it runs it:
# on another machine the same Python version may sit elsewhere.
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
echo "pyport: built $out for $cfg"
