#!/usr/bin/env bash
# Installs the Debian packages the test suite needs when they are missing:
# chromium (browser test), poppler-utils (PDF checks), gettext (translations) and HarfBuzz's
# subsetting library, which WeasyPrint uses to embed font subsets (without it, it warns),
# and a Japanese font for Chromium, so the browser tests and screenshots show Japanese
# pages as readers see them (the PDFs embed their own font, static/fonts/).
# Never downloads a browser of its own: Chromium comes from Debian.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v msgfmt >/dev/null 2>&1 || need+=(gettext)
ldconfig -p | grep -q libharfbuzz-subset || need+=(libharfbuzz-subset0)
fc-list :lang=ja 2>/dev/null | grep -q . || need+=(fonts-ipaexfont-gothic)
[ ${#need[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${need[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
        echo "Missing ${need[*]}: install them as root (apt-get install ${need[*]})." >&2
        exit 1
    fi
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
