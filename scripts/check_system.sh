#!/usr/bin/env bash
# `make test` needs two system programs besides Python: a Chromium for the browser check of the
# built book and npm for the local MathJax copy. Check both first, in a second, so a machine
# without them fails before ten minutes of notebooks rather than after.
set -euo pipefail
missing=()
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && ! command -v google-chrome >/dev/null 2>&1; then
  missing+=("Chromium (the browser check): sudo apt-get install chromium (Debian/Ubuntu) or brew install --cask chromium (macOS)")
fi
if ! command -v npm >/dev/null 2>&1; then
  missing+=("npm (the local MathJax copy): sudo apt-get install npm (Debian/Ubuntu) or brew install node (macOS)")
fi
if ((${#missing[@]})); then
  echo "error: make test needs system packages that are not installed:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
