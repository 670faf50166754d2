#!/usr/bin/env bash
# The long fuzz run of issue 9 (hostile inputs): the same targets as CI, with more examples each,
# a random seed instead of CI's fixed one, and every 10**6-character tokenizer case.
#   bash scripts/fuzz_long.sh            # 5000 examples per target
#   bash scripts/fuzz_long.sh 20000      # more
# The summary at the end lists the executions per target (loaded / rejected with a typed error).
set -euo pipefail
cd "$(dirname "$0")/.."
export POLYFORMERS_FUZZ_EXAMPLES="${1:-5000}"
export POLYFORMERS_FUZZ_DEADLINE_MS="${POLYFORMERS_FUZZ_DEADLINE_MS:-20000}"
export POLYFORMERS_FUZZ_RANDOM=1
exec python -m pytest tests/hostile -k "fuzz or million or truncation or flipped" -q -p no:randomly "${@:2}"
