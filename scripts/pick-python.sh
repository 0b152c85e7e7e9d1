#!/usr/bin/env bash
# Print the python-config the sidecar is built against (stdout: its path, nothing else).
# A line "python: using <path> (<version>)" goes to stderr.
#
# Order:
#   1. $PYTHON_CONFIG, if set;
#   2. $PYTHON, if set: ${PYTHON}-config (a path's sibling, or a name on PATH), else
#      the -config next to the interpreter's own BINDIR;
#   3. the newest python3.13-config / python3.12-config found on PATH, then under
#      pyenv's versions (<pyenv root>/versions/*/bin);
#   4. the system python3-config.
# A candidate counts only if `$cfg --embed --ldflags` succeeds and a directory from
# `$cfg --includes` holds Python.h.
set -euo pipefail

# usable CFG: true if CFG can embed and has its headers.
usable() {
    local cfg=$1 flag
    [ -n "$cfg" ] && [ -f "$cfg" ] && [ -x "$cfg" ] || return 1
    "$cfg" --embed --ldflags >/dev/null 2>&1 || return 1
    for flag in $("$cfg" --includes 2>/dev/null); do
        case $flag in
        -I*) [ -f "${flag#-I}/Python.h" ] && return 0 ;;
        esac
    done
    return 1
}

pyenv_root() {
    if command -v pyenv >/dev/null 2>&1; then
        pyenv root 2>/dev/null && return 0
    fi
    if [ -n "${PYENV_ROOT:-}" ] && [ -d "$PYENV_ROOT/versions" ]; then
        echo "$PYENV_ROOT"
    elif [ -d "$HOME/.pyenv/versions" ]; then
        echo "$HOME/.pyenv"
    elif [ -d /root/.pyenv/versions ]; then
        echo /root/.pyenv
    fi
}

# on_path NAME: real path of NAME found on PATH (pyenv shims resolved), or nothing.
on_path() {
    local name=$1 p
    p=$(command -v "$name" 2>/dev/null) || return 1
    case $p in
    */shims/*)
        # A pyenv shim only works for the active versions; ask pyenv for the real file.
        p=$(PYENV_VERSION="${PYENV_VERSION:-}" pyenv which "$name" 2>/dev/null) || return 1
        ;;
    esac
    echo "$p"
}

version_of() {
    local cfg=$1 py v
    py=${cfg%-config}
    if [ -x "$py" ] && v=$("$py" -c 'import platform; print(platform.python_version())' 2>/dev/null); then
        echo "$v"
        return
    fi
    # Fall back to the library name, e.g. -lpython3.13 -> 3.13.
    "$cfg" --embed --ldflags 2>/dev/null | tr ' ' '\n' | sed -n 's/^-lpython//p' | head -n1
}

# Candidates that exist but cannot embed or lack Python.h, for the message when none is.
tried=()
# try CFG: choose CFG if usable, else remember it when it exists.
try() {
    if usable "$1"; then
        choose "$1"
    fi
    if [ -n "$1" ] && [ -e "$1" ]; then
        tried+=("$1")
    fi
    return 0
}

tried_msg() {
    if [ ${#tried[@]} -gt 0 ]; then
        echo "; tried, not usable: ${tried[*]}"
    else
        echo "; none found"
    fi
}

choose() {
    local cfg=$1
    echo "python: using $cfg ($(version_of "$cfg"))" >&2
    echo "$cfg"
    exit 0
}

if [ -n "${PYTHON_CONFIG:-}" ]; then
    cfg=$PYTHON_CONFIG
    case $cfg in */*) ;; *) cfg=$(on_path "$cfg" || echo "$cfg") ;; esac
    usable "$cfg" || { echo "python: PYTHON_CONFIG=$PYTHON_CONFIG cannot embed (--embed --ldflags) or has no Python.h" >&2; exit 1; }
    choose "$cfg"
fi

if [ -n "${PYTHON:-}" ]; then
    case $PYTHON in
    */*) cfg="${PYTHON}-config" ;;
    *) cfg=$(on_path "${PYTHON}-config" || true) ;;
    esac
    try "$cfg"
    # A bare name such as python3.12 may live only in pyenv's versions (its shim
    # works only for the active ones).
    root=$(pyenv_root || true)
    case $PYTHON in
    */*) ;;
    *)
        if [ -n "$root" ]; then
            while IFS= read -r cfg; do
                try "$cfg"
            done < <(printf "%s\n" "$root"/versions/*/bin/"${PYTHON}-config" | sort -V -r)
        fi
        ;;
    esac
    # Ask the interpreter where its config script lives.
    py=$PYTHON
    case $py in */*) ;; *) py=$(on_path "$py" || echo "$py") ;; esac
    cfg=$("$py" -c 'import os, sysconfig as s; print(os.path.join(s.get_config_var("BINDIR"), "python" + s.get_config_var("LDVERSION") + "-config"))' 2>/dev/null || true)
    try "$cfg"
    echo "python: PYTHON=$PYTHON has no usable python-config (needs --embed and Python.h)$(tried_msg)" >&2
    exit 1
fi

root=$(pyenv_root || true)
for ver in 3.13 3.12; do
    cfg=$(on_path "python${ver}-config" || true)
    try "$cfg"
    if [ -n "$root" ]; then
        while IFS= read -r cfg; do
            try "$cfg"
        done < <(printf "%s\n" "$root"/versions/"$ver"*/bin/"python${ver}-config" | sort -V -r)
    fi
done

for cfg in "$(on_path python3-config || true)" /usr/bin/python3-config; do
    try "$cfg"
done

echo "python: no usable python-config found (need python3.13/3.12 -config with --embed, or the system python3-dev)$(tried_msg)" >&2
exit 1
