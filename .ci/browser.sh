#!/usr/bin/env bash
# Install what the browser tests (tests/browser) need; sourced by `make test` before pytest.
# - Debian's chromium (Playwright drives /usr/bin/chromium; no browser download) and fonts-noto-cjk
#   (Chinese glyphs in screenshots and for axe's contrast checks);
# - axe-core from npm, pinned by tests/browser/package-lock.json, into tests/browser/node_modules
#   (outside git: .gitignore lists node_modules/).
set -euo pipefail
_browser_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_browser_missing=()
[ -x /usr/bin/chromium ] || _browser_missing+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || _browser_missing+=(fonts-noto-cjk)
command -v npm >/dev/null 2>&1 || _browser_missing+=(npm)
if [ "${#_browser_missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${_browser_missing[@]}" >/dev/null
fi
if [ ! -f "$_browser_root/tests/browser/node_modules/axe-core/axe.min.js" ]; then
  (cd "$_browser_root/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
/usr/bin/chromium --version 2>/dev/null
unset _browser_root _browser_missing
