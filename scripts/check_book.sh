#!/usr/bin/env bash
# Checks the built book: every notebook page exists and holds numbers; the index and a table page render
# in headless Chromium (installed from Debian's packages if missing) without console errors; a screenshot
# of the table page is kept in artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
html=_build/html
fail=0
if [[ "${1:-}" == "--repository-only" ]]; then
  # Built with no MVTec AD data and no network: the data page must say how to place the data by hand.
  if ! grep -q "place MVTec AD by hand" "$html/book/generated/01_data.html"; then
    echo "FAIL: the data page does not show the offline download notice"; fail=1
  else
    echo "data page: shows the offline download notice"
  fi
fi
for src in notebooks/*.py; do
  page="$html/book/generated/$(basename "$src" .py).html"
  if [[ ! -f "$page" ]]; then echo "MISSING page $page"; fail=1; continue; fi
  n=$(grep -c '<table' "$page" || true)
  nums=$( (grep -oE '<td>[^<]*[0-9][^<]*</td>' "$page" || true) | wc -l)
  echo "page $(basename "$page"): $n tables, $nums table cells with numbers"
  if [[ $n -lt 1 || $nums -lt 5 ]]; then echo "FAIL: $page holds no table of numbers"; fail=1; fi
done
if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
mkdir -p artifacts
for page in index.html book/generated/02_layers.html; do
  log=$(mktemp)
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --enable-logging=stderr --v=0 \
    --window-size=1280,2000 --virtual-time-budget=5000 --screenshot="artifacts/$(basename "$page" .html).png" \
    "file://$PWD/$html/$page" >/dev/null 2>"$log" || true
  errors=$(grep -E 'CONSOLE' "$log" | grep -E 'Uncaught|Error|error|Failed to load' || true)
  if [[ -n "$errors" ]]; then echo "FAIL: console errors on $page:"; echo "$errors"; fail=1; fi
  [[ -s "artifacts/$(basename "$page" .html).png" ]] || { echo "FAIL: no screenshot of $page"; fail=1; }
  echo "browser: $page rendered, screenshot artifacts/$(basename "$page" .html).png"
done
exit $fail
