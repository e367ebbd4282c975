#!/usr/bin/env bash
# Makes .venv-refs/ (git-ignored): the reference Python tools the test suite runs against —
# lm-evaluation-harness 0.4.13 with what it imports for local-completions, from the local
# Python index pip is configured with (no internet). Idempotent: a ready venv is kept.
# Without python3/pip or the index it says so and exits 0; the tests that need the venv then
# skip with that reason (and fail under CI=true, where the venv must exist).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-refs
MARK="$VENV/.ready-lm_eval-0.4.13-tf5.17-peft0.21-trl1.13"
if [ -f "$MARK" ] && "$VENV/bin/python" -c "import lm_eval, transformers, peft, trl" 2>/dev/null; then
  exit 0
fi
if ! command -v python3 >/dev/null || ! python3 -m venv --help >/dev/null 2>&1; then
  echo "setup-reference-python: no python3 with venv; lm-eval tests will be skipped" >&2
  exit 0
fi
# The local index pip is configured with, as the only index (the default one is unreachable).
idx=$(pip config get global.extra-index-url 2>/dev/null || true)
if [ -z "$idx" ]; then
  echo "setup-reference-python: pip has no local index configured (global.extra-index-url); lm-eval tests will be skipped" >&2
  exit 0
fi
read -r -a urls <<<"$idx"
args=(--index-url "${urls[0]}")
for u in "${urls[@]:1}"; do args+=(--extra-index-url "$u"); done
echo "setup-reference-python: creating $VENV (lm_eval 0.4.13, torch, transformers 5.17, peft, trl) from ${urls[0]}" >&2
rm -rf "$VENV"
python3 -m venv "$VENV" || exit 0
pip_() { "$VENV/bin/pip" install -q --disable-pip-version-check "${args[@]}" "$@" 2>&1 | grep -v "^WARNING: Location" >&2; }
# lm_eval without its hard deps: `evaluate` and `pytablewriter` are not on the index and not
# needed for local-completions with multiple-choice and generation tasks.
pip_ torch "transformers==5.17.0" datasets jinja2 dill more_itertools tqdm requests aiohttp tenacity \
  sacrebleu scikit-learn numpy
pip_ --no-deps "lm_eval==0.4.13"
# PEFT for the adapter-loading tests; TRL only for the tools that make goldens (tools/make-trl-*.py).
pip_ "peft==0.21.0" "trl==1.13.0"
if "$VENV/bin/python" -c "import lm_eval, transformers, torch, peft, trl" 2>/dev/null; then
  touch "$MARK"
  echo "setup-reference-python: ready" >&2
else
  echo "setup-reference-python: the install failed; lm-eval tests will be skipped" >&2
fi
exit 0
