#!/bin/sh
# Install Debian's Chromium and CJK fonts for the page tests when they are missing.
# Without root on Debian/Ubuntu this only warns: the browser tests then skip, loudly.
set -u
if command -v chromium >/dev/null 2>&1 && [ -d /usr/share/fonts/opentype/noto ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing chromium and fonts-noto-cjk with apt-get (page tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    if apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk >/dev/null; then
        exit 0
    fi
    echo "WARNING: apt-get could not install chromium/fonts-noto-cjk; the browser tests will be skipped." >&2
    exit 0
fi
echo "WARNING: chromium is missing and cannot be installed here (needs root on Debian/Ubuntu):" >&2
echo "WARNING: the browser tests will be SKIPPED. Install 'chromium' and 'fonts-noto-cjk' to run them." >&2
exit 0
