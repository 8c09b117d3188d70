#!/usr/bin/env bash
# Install the JavaScript that the book and the slides load, from the npm registry, so both read
# without a network:
#   book   (default) MathJax 3 into _vendor/node_modules          (book/_ext/offline_assets.py)
#   slides           reveal.js 5 into _vendor/slides/node_modules (scripts/make_slides.py copies it,
#                    with the book's MathJax 3, into the decks' lib/ folder)
# `--optional`: without npm, say so and let the pages load them from their CDNs (the book only:
# the slides have no CDN fallback, so `make slides` installs both sets without it).
set -euo pipefail
cd "$(dirname "$0")/.."
set_name=book optional=no
for arg in "$@"; do
  case "$arg" in
    --optional) optional=yes ;;
    book|slides) set_name=$arg ;;
    *) echo "usage: $0 [book|slides] [--optional]" >&2; exit 2 ;;
  esac
done
if [ "$set_name" = book ]; then
  prefix=_vendor packages=(mathjax@3.2.2)
else
  prefix=_vendor/slides packages=(reveal.js@5.2.1)
fi
stamp=$prefix/.installed-"$(echo "${packages[*]}" | md5sum | cut -c1-12)"
[ -f "$stamp" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  msg="npm (Node.js) is needed for the local copies of ${packages[*]}: install Node.js (Debian/Ubuntu: sudo apt-get install npm; macOS: brew install node)"
  if [ "$optional" = yes ]; then echo "note: $msg; the pages will load them from their CDNs." >&2; exit 0; fi
  echo "error: $msg" >&2; exit 1
fi
mkdir -p "$prefix"
npm install --no-audit --no-fund --loglevel=error --prefix "$prefix" "${packages[@]}"
touch "$stamp"
