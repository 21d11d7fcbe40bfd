#!/usr/bin/env bash
# Refresh the browser libraries in static/vendor/ from the npm registry (pinned versions below).
# The results are committed, so the app and the tests need neither npm nor a network; run this
# only to change a version. Each library keeps its licence file beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
CHART_JS=4.6.1
SOCKET_IO_CLIENT=4.8.4
CODEMIRROR=5.65.21  # the last CodeMirror 5: one plain script (global CodeMirror), no bundler
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() {  # package version files... (paths inside the package) -> static/vendor/<package>/
  local pkg=$1 version=$2; shift 2
  (cd "$work" && npm pack --silent "$pkg@$version" >/dev/null)
  mkdir -p "$work/$pkg" "static/vendor/$pkg"
  tar -xzf "$work/${pkg//\//-}-$version.tgz" -C "$work/$pkg"
  for f in "$@"; do cp "$work/$pkg/package/$f" "static/vendor/$pkg/"; done
  echo "$pkg $version" > "static/vendor/$pkg/VERSION"
}

rm -rf static/vendor/chart.js static/vendor/socket.io-client static/vendor/codemirror
fetch chart.js "$CHART_JS" dist/chart.umd.min.js LICENSE.md
fetch socket.io-client "$SOCKET_IO_CLIENT" dist/socket.io.min.js LICENSE
fetch codemirror "$CODEMIRROR" lib/codemirror.js lib/codemirror.css mode/python/python.js LICENSE
(cd static/vendor && sha256sum */*.js */*.css | sort -k2 > SHA256SUMS)
