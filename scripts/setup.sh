#!/usr/bin/env bash
# Install what is missing on a Debian machine; fast (no apt) when everything is present.
# Go itself must already be installed (on PATH or in /usr/local/go/bin).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi

apt_updated=no
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: missing $*, and apt-get is not available: install them by hand" >&2
        exit 1
    fi
    if [ "$apt_updated" = no ]; then
        echo "setup: apt-get update"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=yes
    fi
    echo "setup: installing $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- build tools (cgo needs a C compiler) ---
missing=()
command -v make >/dev/null 2>&1 || missing+=(make)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi
echo "setup: make $(command -v make), cc $(command -v cc)"

# --- Erlang/OTP and rebar3 ---
erl_pkgs=(erlang-nox erlang-dev erlang-common-test erlang-eunit erlang-dialyzer)
if ! command -v erl >/dev/null 2>&1; then
    apt_install "${erl_pkgs[@]}"
else
    # erl exists: check the applications and headers we need are there too.
    erl_missing=$(erl -noshell -eval '
        Apps = [{common_test, "erlang-common-test"}, {eunit, "erlang-eunit"},
                {dialyzer, "erlang-dialyzer"}, {tools, "erlang-nox"}],
        Missing = [P || {A, P} <- Apps, code:lib_dir(A) =:= {error, bad_name}],
        Dev = case filelib:is_regular(filename:join([code:root_dir(), "usr", "include", "erl_nif.h"])) of
                  true -> [];
                  false -> ["erlang-dev"]
              end,
        io:format("~s~n", [lists:join(" ", Missing ++ Dev)]),
        halt().')
    if [ -n "$erl_missing" ]; then
        # shellcheck disable=SC2086
        apt_install $erl_missing
    fi
fi
command -v erl >/dev/null 2>&1 || { echo "setup: erl still not found after installing" >&2; exit 1; }
otp=$(erl -noshell -eval 'io:format("~s", [erlang:system_info(otp_release)]), halt().')
if [ "$otp" -lt 25 ]; then
    echo "setup: Erlang/OTP $otp is too old (need 25 or newer)" >&2
    exit 1
fi
echo "setup: erl $(command -v erl) (OTP $otp)"

if ! command -v rebar3 >/dev/null 2>&1; then
    apt_install rebar3
    command -v rebar3 >/dev/null 2>&1 || { echo "setup: rebar3 still not found after installing" >&2; exit 1; }
fi
echo "setup: rebar3 $(command -v rebar3)"

# --- Elixir (py_elixir_SUITE calls the API through `elixir -e`) ---
if ! command -v elixir >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    apt_install elixir || echo "setup: elixir not installed: py_elixir_SUITE skips its elixir check" >&2
fi

# --- Go (must pre-exist) and the Go modules ---
if ! command -v go >/dev/null 2>&1; then
    if [ -x /usr/local/go/bin/go ]; then
        export PATH="/usr/local/go/bin:$PATH"
    else
        echo "setup: Go not found (PATH or /usr/local/go/bin); install Go 1.26 first" >&2
        exit 1
    fi
fi
(cd "$root" && go mod download)
echo "setup: $(go version) at $(command -v go), modules downloaded"

# --- Python with embedding support and headers ---
if ! "$here/pick-python.sh" >/dev/null 2>&1; then
    if [ -n "${PYTHON_CONFIG:-}" ] || [ -n "${PYTHON:-}" ]; then
        "$here/pick-python.sh" >/dev/null # prints why the chosen one does not work
        exit 1
    fi
    apt_install python3-dev
fi
"$here/pick-python.sh" >/dev/null # prints "python: using <path> (<version>)"

# --- Debian's Python 3.11: the multi_executor (pre-3.12) case of the tests ---
if [ ! -x /usr/bin/python3.11-config ] && command -v apt-get >/dev/null 2>&1; then
    apt_install python3-dev
fi
if [ -x /usr/bin/python3.11-config ]; then
    echo "setup: Debian Python 3.11 for the multi_executor tests: /usr/bin/python3.11-config"
fi
