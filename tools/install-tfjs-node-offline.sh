#!/usr/bin/env bash
# Installs @tensorflow/tfjs-node without its install-time libtensorflow download (which these
# machines cannot reach): the TensorFlow C library comes from the tensorflow-cpu wheel on the
# local Python index, and the binding is built from source with node-gyp. Run after `npm ci`.
# Never adds tfjs-node to package.json (npm ci would then run the download). Idempotent: a
# working install is kept. Exit 0 with a message on success; non-zero with the failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo "install-tfjs-node-offline: $*" >&2; }
fail() { echo "install-tfjs-node-offline: FAILED: $*" >&2; exit 1; }
TFJS_VERSION=$(node -p "require('./node_modules/@tensorflow/tfjs-core/package.json').version" 2>/dev/null) ||
  fail "no @tensorflow/tfjs-core in node_modules (run npm ci first)"
PKG=node_modules/@tensorflow/tfjs-node
works() { node -e "require('@tensorflow/tfjs-node'); " >/dev/null 2>&1; }
if [ -d "$PKG" ] && works; then step "tfjs-node $TFJS_VERSION already works"; exit 0; fi

step "npm install @tensorflow/tfjs-node@$TFJS_VERSION (no scripts, not saved)"
npm install --no-save --ignore-scripts --no-audit --no-fund "@tensorflow/tfjs-node@$TFJS_VERSION" >&2 ||
  fail "npm install @tensorflow/tfjs-node@$TFJS_VERSION"

idx=$(pip config get global.extra-index-url 2>/dev/null || true)
[ -n "$idx" ] || fail "pip has no local index configured (global.extra-index-url)"
read -r -a urls <<<"$idx"
pipargs=(--index-url "${urls[0]}")
for u in "${urls[@]:1}"; do pipargs+=(--extra-index-url "$u"); done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
step "pip download tensorflow-cpu (the C library) from ${urls[0]}"
pip download -q --disable-pip-version-check --no-deps --only-binary=:all: "${pipargs[@]}" -d "$tmp" tensorflow-cpu 2>&1 |
  grep -v "^WARNING: Location" >&2 || true
whl=$(ls "$tmp"/tensorflow_cpu-*.whl 2>/dev/null | head -1)
[ -n "$whl" ] || fail "no tensorflow-cpu wheel on the local index"

step "unpacking the C API headers and libraries from $(basename "$whl")"
mkdir -p "$PKG/deps/include" "$PKG/deps/lib"
unzip -q -o "$whl" 'tensorflow/include/tensorflow/c/*' 'tensorflow/include/tensorflow/core/platform/ctstring*' \
  'tensorflow/include/tsl/platform/ctstring*' 'tensorflow/include/xla/tsl/c/*' \
  'tensorflow/libtensorflow_cc.so.2' 'tensorflow/libtensorflow_framework.so.2' -d "$tmp/w" ||
  fail "unzip of the wheel (its layout changed?)"
cp -r "$tmp/w/tensorflow/include/." "$PKG/deps/include/"
cp "$tmp/w/tensorflow/libtensorflow_cc.so.2" "$tmp/w/tensorflow/libtensorflow_framework.so.2" "$PKG/deps/lib/"
strip --strip-unneeded "$PKG/deps/lib/libtensorflow_cc.so.2" "$PKG/deps/lib/libtensorflow_framework.so.2" ||
  step "strip failed (kept unstripped)"
(
  cd "$PKG/deps/lib"
  ln -sf libtensorflow_cc.so.2 libtensorflow.so
  ln -sf libtensorflow_cc.so.2 libtensorflow.so.2
  ln -sf libtensorflow_cc.so.2 libtensorflow.so.2.9.1
  ln -sf libtensorflow_framework.so.2 libtensorflow_framework.so
)
# a build from source instead of a prebuilt binding download
echo '{"tf-lib":"offline"}' > "$PKG/scripts/custom-binary.json"
step "building the binding with node-gyp (npm rebuild)"
export npm_config_nodedir="${npm_config_nodedir:-$(dirname "$(dirname "$(command -v node)")")}"
npm rebuild @tensorflow/tfjs-node --foreground-scripts >&2 || fail "npm rebuild @tensorflow/tfjs-node"
works || fail "the built binding does not load (node -e \"require('@tensorflow/tfjs-node')\")"
step "ready: tfjs-node $TFJS_VERSION on libtensorflow from $(basename "$whl")"
