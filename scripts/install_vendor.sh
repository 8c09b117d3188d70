#!/usr/bin/env bash
# Install the book's JavaScript (MathJax 3) from the npm registry into _vendor/, so the built book
# reads without a network (book/_ext/offline_assets.py).
# `--optional`: without npm, say so and let the book load it from its CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(mathjax@3.2.2)
stamp=_vendor/.installed-"$(echo "${packages[*]}" | md5sum | cut -c1-12)"
[ -f "$stamp" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  msg="npm (Node.js) is needed for the local copy of MathJax: install Node.js (Debian/Ubuntu: sudo apt-get install npm; macOS: brew install node)"
  if [ "${1:-}" = "--optional" ]; then echo "note: $msg; the book will load it from its CDN." >&2; exit 0; fi
  echo "error: $msg" >&2; exit 1
fi
mkdir -p _vendor
npm install --no-audit --no-fund --loglevel=error --prefix _vendor "${packages[@]}"
test -f _vendor/node_modules/mathjax/es5/tex-chtml.js
touch "$stamp"
