#!/usr/bin/env bash
# erlang_python as users get it: a dependency by plain git URL. In a temporary
# directory, this working tree (its tracked and new files, committed or not) becomes
# the branch main of a bare git repository; then
#   rebar3: a new `rebar3 new app` with {erlang_python, {git, "file://...", {branch,
#           "main"}}} in its deps: `rebar3 compile` builds the app and the sidecar, and
#           an `erl -noshell` calls Python: {ok, 4.0} = py:call(math, sqrt, [16]);
#   mix:    a new `mix new` project with {:erlang_python, git: "file://...", branch:
#           "main"}: `mix deps.get` and `mix compile`, then `mix run -e` makes the call;
#   package: the files a hex package holds (the app.src's files list, links
#           followed) alone, as a git repository: a rebar3 app depends on it, compiles
#           and calls Python (the list is enough to build the sidecar);
#   hook:   in the rebar3 app's checkout of the dependency, the pre-compile hook says
#           why it cannot build (PYTHON_CONFIG=/nonexistent: the python: line; a Go
#           file that does not compile: go build's error) and, sources unchanged,
#           builds nothing ("up to date").
# Ends with "dep: N passed, M failed"; exits 1 if any failed. KEEP_DEP_TEST=1 keeps
# the temporary directory.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
export PATH="/usr/local/go/bin:$PATH"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/erlang_python-dep.XXXXXX")
if [ -z "${KEEP_DEP_TEST:-}" ]; then
    trap 'rm -rf "$tmp"' EXIT
else
    echo "dep: keeping $tmp"
fi
passed=0
failed=0
pass() { echo "dep: PASS $1"; passed=$((passed + 1)); }
fail() { echo "dep: FAIL $1: $2"; failed=$((failed + 1)); }
# Output, indented, without colours and git's progress lines.
show() { printf '%s\n' "$1" | sed -e 's/\x1b\[[0-9;]*m//g' -e '/remote: /d' -e 's/^/  /'; }
summary() {
    echo "dep: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# The working tree as a commit (a temporary index: the real one is left alone).
snapshot() {
    local tree
    export GIT_INDEX_FILE="$tmp/index"
    git -C "$root" read-tree HEAD && git -C "$root" add -A && tree=$(git -C "$root" write-tree) || return 1
    unset GIT_INDEX_FILE
    if [ "$tree" = "$(git -C "$root" rev-parse 'HEAD^{tree}')" ]; then
        git -C "$root" rev-parse HEAD
    else
        GIT_AUTHOR_NAME=dep-test GIT_AUTHOR_EMAIL=dep-test@localhost \
            GIT_COMMITTER_NAME=dep-test GIT_COMMITTER_EMAIL=dep-test@localhost \
            git -C "$root" commit-tree "$tree" -p HEAD -m "dep-test snapshot"
    fi
}
repo="$tmp/erlang_python.git"
url="file://$repo"
if ! commit=$(snapshot) || ! git init -q --bare "$repo" ||
    ! git -C "$root" push -q "$repo" "$commit:refs/heads/main"; then
    fail setup "could not make the git repository $repo"
    summary
fi
echo "dep: $url, branch main = $commit"

call='{ok, _} = application:ensure_all_started(erlang_python), {ok, 4.0} = py:call(math, sqrt, [16])'

# run_case NAME FUNCTION TITLE: FUNCTION's output shown, then NAME passed or failed.
run_case() {
    echo "== dep: $3"
    local out
    if out=$("$2" 2>&1); then
        show "$out"
        pass "$1"
    else
        show "$out"
        fail "$1" "see above"
    fi
}

# rebar_app NAME URL LABEL: a new rebar3 app NAME in $tmp that depends on
# erlang_python by git URL, compiled, then calling Python.
rebar_app() {
    cd "$tmp" && rebar3 new app "$1" >/dev/null && cd "$1" || return 1
    cat >rebar.config <<EOF
{erl_opts, [debug_info]}.
{deps, [{erlang_python, {git, "$2", {branch, "main"}}}]}.
EOF
    rebar3 compile || { echo "rebar3 compile failed"; return 1; }
    timeout 60 erl -noshell -pa _build/default/lib/*/ebin \
        -eval "$call, io:format(\"$3: math.sqrt(16) = 4.0~n\"), halt()." ||
        { echo "the call failed"; return 1; }
}

# --- rebar3 ---
rebar_case() { rebar_app myapp "$url" "rebar3 app"; }
run_case rebar3 rebar_case "rebar3 app"

# --- mix ---
mix_case() {
    command -v mix >/dev/null || { echo "mix not found (Debian's elixir: scripts/setup.sh installs it)"; return 1; }
    cd "$tmp" && mix new myproj >/dev/null || return 1
    cd myproj || return 1
    cat >mix.exs <<EOF
defmodule Myproj.MixProject do
  use Mix.Project

  def project do
    [app: :myproj, version: "0.1.0", deps: [{:erlang_python, git: "$url", branch: "main"}]]
  end

  def application, do: [extra_applications: [:logger]]
end
EOF
    mix deps.get || { echo "mix deps.get failed"; return 1; }
    mix compile || { echo "mix compile failed"; return 1; }
    timeout 60 mix run -e '{:ok, 4.0} = :py.call(:math, :sqrt, [16]); IO.puts("mix project: math.sqrt(16) = 4.0")' ||
        { echo "the call failed"; return 1; }
}
run_case mix mix_case "mix project"

# --- the files of a hex package alone ---
package_case() {
    local files f pkg="$tmp/package"
    files=$(cd "$root" && erl -noshell -eval '{ok, [{application, _, P}]} = file:consult("erlang/src/erlang_python.app.src"), [io:format("~s~n", [F]) || F <- proplists:get_value(files, P)], halt().') ||
        { echo "cannot read the files list"; return 1; }
    mkdir -p "$pkg" || return 1
    for f in $files; do
        [ -e "$root/$f" ] || { echo "listed but missing: $f"; return 1; }
        mkdir -p "$pkg/$(dirname "$f")" && cp -rL "$root/$f" "$pkg/$f" || return 1
    done
    echo "package files:" $files
    (cd "$pkg" && git init -q -b main && git add -A &&
        GIT_AUTHOR_NAME=dep-test GIT_AUTHOR_EMAIL=dep-test@localhost \
        GIT_COMMITTER_NAME=dep-test GIT_COMMITTER_EMAIL=dep-test@localhost \
        git commit -qm package) || return 1
    rebar_app pkgapp "file://$pkg" package
}
run_case package package_case "the files of a hex package"

# --- the hook's messages and its stamp, in the rebar3 app's checkout ---
hook_case() {
    local dep="$tmp/myapp/_build/default/lib/erlang_python" out
    [ -f "$dep/rebar.config" ] || { echo "no checkout at $dep"; return 1; }
    cd "$dep" || return 1
    out=$(PYTHON_CONFIG=/nonexistent rebar3 compile 2>&1) && { echo "$out"; echo "built with PYTHON_CONFIG=/nonexistent"; return 1; }
    echo "$out" | grep -q 'python: PYTHON_CONFIG=/nonexistent cannot embed' &&
        echo "$out" | grep -q 'pyport: cannot build priv/pyport: no usable Python' ||
        { echo "$out"; echo "no word of the Python tried"; return 1; }
    echo "PYTHON_CONFIG=/nonexistent: $(echo "$out" | grep '^pyport:')"
    printf 'package main\n\nfunc broken() int { return "x" }\n' >cmd/pyport/zz_broken.go
    out=$(rebar3 compile 2>&1)
    local status=$?
    rm -f cmd/pyport/zz_broken.go
    [ $status -ne 0 ] || { echo "$out"; echo "built with a broken Go file"; return 1; }
    echo "$out" | grep -q 'zz_broken.go:3' && echo "$out" | grep -q 'go build ./cmd/pyport failed' ||
        { echo "$out"; echo "no go build error shown"; return 1; }
    echo "a broken Go file: $(echo "$out" | grep 'zz_broken.go:3' | head -n1)"
    out=$(rebar3 compile 2>&1) || { echo "$out"; return 1; }
    out=$(bash scripts/build-pyport.sh priv/pyport 2>&1) || { echo "$out"; return 1; }
    echo "$out" | grep -q 'pyport: priv/pyport is up to date' || { echo "$out"; echo "rebuilt with the sources unchanged"; return 1; }
    echo "sources unchanged: $(echo "$out" | grep '^pyport:')"
}
run_case hook hook_case "the pre-compile hook"

summary
