#!/usr/bin/env bash
# Makes docs/report.png, the picture of the HTML report in the README: runs the flaky example
# job, exports its report as HTML and photographs it in headless Chromium.
# Needs: chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/poolrun
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" run jobs/flaky.toml --run-dir "$tmp/run" -q || true
"$bin" report "$tmp/run" --format html > "$tmp/report.html" || true
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$tmp/profile" --window-size=1280,860 --virtual-time-budget=5000 \
    --screenshot="$PWD/docs/report.png" "file://$tmp/report.html" 2>/dev/null
echo "wrote docs/report.png"
