#!/usr/bin/env bash
# Install a local copy of MathJax 3 (npm package `mathjax`) into _mathjax/, so the book renders
# math without a network. `--optional`: without npm, say so and let the book use the CDN.
set -euo pipefail
cd "$(dirname "$0")/.."
target=_mathjax/node_modules/mathjax/es5/tex-chtml.js
[ -f "$target" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  msg="npm (Node.js) is needed for the local MathJax copy: install Node.js (Debian/Ubuntu: sudo apt-get install npm; macOS: brew install node)"
  if [ "${1:-}" = "--optional" ]; then echo "note: $msg; the book will load MathJax from its CDN." >&2; exit 0; fi
  echo "error: $msg" >&2; exit 1
fi
mkdir -p _mathjax
npm install --no-audit --no-fund --loglevel=error --prefix _mathjax mathjax@3.2.2
test -f "$target"
