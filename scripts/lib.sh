# shellcheck shell=bash
# Sourced by scripts/bootstrap, scripts/lock and scripts/test: which Python and which uv they use.

# Supported Pythons, oldest first. The oldest one found is the default for .venv: the version
# CI runs the suite on, since requires-python promises it.
MOCKBOX_SUPPORTED_PYTHONS="3.12 3.13 3.14"
# uv installs from uv.lock. A uv on PATH is used when it is at least MOCKBOX_UV_MIN (uv.lock's
# format changes only with uv's minor releases); otherwise scripts fetch MOCKBOX_UV_PIN once, with
# pip, into ~/.cache/mockbox/ (shared by every clone).
MOCKBOX_UV_PIN=0.13.9
MOCKBOX_UV_MIN=0.13
# Never download a Python: MockBox uses the interpreters this machine has.
export UV_PYTHON_DOWNLOADS=never

say() { echo "$*" >&2; }

# python_info CMD: prints "VERSION PATH" for a Python 3.12+ interpreter, or fails.
python_info() {
  "$1" -c 'import platform, sys
if sys.version_info < (3, 12): sys.exit(1)
print(platform.python_version(), sys.executable)' 2>/dev/null
}

# python_of VERSION (3.12): prints "VERSION PATH" for an interpreter of that version, or fails.
python_of() {
  local v=$1 c info
  local candidates=("python$v")
  # pyenv and other side-by-side installs that are not on PATH, newest patch release first.
  local root="${PYENV_ROOT:-$HOME/.pyenv}/versions"
  while IFS= read -r c; do candidates+=("$c/bin/python$v"); done \
    < <(printf '%s\n' "$root/$v".* | grep -E "/${v//./\\.}\.[0-9]+$" | sort -rV)
  candidates+=("/usr/local/bin/python$v" "/usr/bin/python$v")
  for c in "${candidates[@]}"; do
    info=$(python_info "$c") && [[ "$info" == "$v".* ]] && { echo "$info"; return; }
  done
  return 1
}

# choose_python: prints "VERSION PATH" of the interpreter for .venv: MOCKBOX_PYTHON (a version
# such as 3.13, or a command or path) when set, else the oldest supported version found.
choose_python() {
  local want=${MOCKBOX_PYTHON:-} v c info
  if [ -n "$want" ]; then
    if [[ "$want" =~ ^3\.[0-9]+$ ]]; then info=$(python_of "$want"); else info=$(python_info "$want"); fi
    [ -n "$info" ] || { say "MOCKBOX_PYTHON=$want: no such Python 3.12 or newer found."; return 1; }
    echo "$info"
    return
  fi
  for v in $MOCKBOX_SUPPORTED_PYTHONS; do
    info=$(python_of "$v") && { echo "$info"; return; }
  done
  for c in python3 python /opt/python*/bin/python3; do
    info=$(python_info "$c") && { echo "$info"; return; }
  done
  say "MockBox needs Python 3.12 or newer and found none."
  say "Install one (for example: pyenv install 3.12), or set MOCKBOX_PYTHON=/path/to/python3.12."
  return 1
}

# venv_python_version DIR: the Python version a virtual environment was made with.
venv_python_version() {
  [ -x "$1/bin/python" ] && [ -f "$1/pyvenv.cfg" ] || return 1
  sed -n -E 's/^version(_info)? *= *([0-9.]+).*/\2/p' "$1/pyvenv.cfg" | head -1
}

uv_recent() {
  local v
  v=$("$1" --version 2>/dev/null) || return 1
  v=${v#uv }
  v=${v%% *}
  [ "$(printf '%s\n%s\n' "$MOCKBOX_UV_MIN" "$v" | sort -V | head -1)" = "$MOCKBOX_UV_MIN" ]
}

# find_uv PYTHON: prints the path of the uv to use, fetching it when needed (with PYTHON's pip);
# fails when none can be had, or MOCKBOX_NO_UV=1 asks for pip.
find_uv() {
  local py=$1 c dir tmp
  [ "${MOCKBOX_NO_UV:-}" = 1 ] && return 1
  for c in "${MOCKBOX_UV:-}" uv; do
    [ -n "$c" ] && c=$(command -v "$c") && uv_recent "$c" && { echo "$c"; return; }
  done
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/mockbox/uv-$MOCKBOX_UV_PIN"
  [ -x "$dir/bin/uv" ] && { echo "$dir/bin/uv"; return; }
  say "Fetching uv $MOCKBOX_UV_PIN with pip into $dir ..."
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "$dir.tmp.XXXXXX")
  if "$py" -m pip install -qq --disable-pip-version-check --no-warn-script-location \
       --target "$tmp" "uv==$MOCKBOX_UV_PIN" >"$tmp.log" 2>&1 && [ -x "$tmp/bin/uv" ]; then
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"  # another clone may have been first
    rm -f "$tmp.log"
    echo "$dir/bin/uv"
    return
  fi
  say "Could not fetch uv (pip said: $(tail -n 1 "$tmp.log"))."
  rm -rf "$tmp" "$tmp.log"
  return 1
}
