#!/bin/sh
# Install Debian's QGIS (with its Python bindings) and GDAL's tools for the client tests when
# they are missing. Without root on Debian/Ubuntu this only warns: the QGIS tests then skip, loudly.
set -u
if command -v qgis >/dev/null 2>&1 && command -v ogr2ogr >/dev/null 2>&1 \
    && /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing qgis, python3-qgis and gdal-bin with apt-get (client tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    if apt-get install -y -q --no-install-recommends qgis python3-qgis gdal-bin >/dev/null; then
        exit 0
    fi
    echo "WARNING: apt-get could not install qgis/python3-qgis/gdal-bin; the QGIS tests will be skipped." >&2
    exit 0
fi
echo "WARNING: QGIS or GDAL is missing and cannot be installed here (needs root on Debian/Ubuntu):" >&2
echo "WARNING: the QGIS tests will be SKIPPED. Install 'qgis', 'python3-qgis' and 'gdal-bin' to run them." >&2
exit 0
