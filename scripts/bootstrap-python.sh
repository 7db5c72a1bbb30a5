#!/bin/sh
# Create the project's virtual environment, installing Debian's venv support when it is missing.
set -eu
python=$1
venv=$2

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "citygrid needs Python 3.11 or newer; '$python' is $("$python" --version 2>&1 || echo missing)." >&2
    exit 1
fi
[ -x "$venv/bin/pip" ] && exit 0
rm -rf "$venv"
if "$python" -m venv "$venv" 2>/dev/null; then
    exit 0
fi
rm -rf "$venv"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    minor=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    echo "Installing python$minor-venv with apt-get" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python$minor-venv" >/dev/null
    "$python" -m venv "$venv"
    exit 0
fi
echo "Python's venv module is missing: install it (Debian/Ubuntu: apt-get install python3-venv)." >&2
exit 1
