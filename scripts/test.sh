#!/usr/bin/env bash
# Runs every test of the repository. Installs what the tests need that a fresh machine lacks,
# then builds and tests the solution. Used by the README and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

for setup in scripts/setup/*.sh; do
  [ -e "$setup" ] || continue
  echo "== $setup"
  bash "$setup"
done

echo "== dotnet test"
dotnet test DeepSeekOperator.sln --configuration Release --logger "console;verbosity=normal" "$@"
