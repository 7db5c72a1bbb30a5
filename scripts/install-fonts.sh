#!/bin/sh
# Install a Chinese TrueType font for the bulletins' charts and PDFs when fontconfig finds none.
# Without root on Debian/Ubuntu this only warns: the bulletins then fail with a clear message
# (set CITYGRID_REPORT_FONT to a font file to use another one).
set -u
if command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list ':lang=zh:fontformat=TrueType' file)" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing fonts-wqy-microhei and fontconfig with apt-get (bulletins)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    if apt-get install -y -q --no-install-recommends fontconfig fonts-wqy-microhei >/dev/null; then
        exit 0
    fi
    echo "WARNING: apt-get could not install fonts-wqy-microhei; bulletins cannot be drawn." >&2
    exit 0
fi
echo "WARNING: no Chinese TrueType font and none can be installed here (needs root on Debian/Ubuntu):" >&2
echo "WARNING: install 'fonts-wqy-microhei' or set CITYGRID_REPORT_FONT, else bulletins fail." >&2
exit 0
