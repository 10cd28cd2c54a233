#!/usr/bin/env bash
# Runs every test of the repository. Installs what the tests need that a fresh machine lacks, builds
# the solution once, then runs the test projects TEST_JOBS at a time (default 2), each into its own
# log, printed whole when the project ends (so no two projects' lines interleave). Ends with one
# summary line per project (passed/failed/skipped, time) and a last "N passed, N failed, N skipped"
# line for the whole run; exits non-zero if any project failed or left no result.
#
#   bash scripts/test.sh                       # everything
#   bash scripts/test.sh Engine Operator       # only the test projects whose names contain these words
#   TEST_TIME_SCALE=3 bash scripts/test.sh     # a slow or shared machine: every test deadline ×3
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=${TEST_JOBS:-2}
results=$(mktemp -d "${TMPDIR:-/tmp}/deepseek-tests.XXXXXX")
trap 'rm -rf "$results"' EXIT

# The set-up scripts install what the tests need without changing the host's own configuration: no file
# under /etc (containers.conf and the like live under .tools/, passed by environment variable or flag),
# no system service enabled or started (the tests start their own processes and stop them by id).
# A line of scripts/setup/ (comments aside) that names /etc or a service manager fails the run here.
host_writes=$(grep -nE '(^|[^[:alnum:]_$}])/etc(/|\b)|systemctl|update-rc\.d|invoke-rc\.d|policy-rc\.d|(^|[[:space:];&|])service[[:space:]]' \
  scripts/setup/*.sh scripts/containers-env.sh | grep -vE '^[^:]+:[0-9]+:[[:space:]]*#' || true)
if [ -n "$host_writes" ]; then
  echo "error: a set-up script touches the host's configuration (keep it under .tools/ or a temp folder):" >&2
  echo "$host_writes" >&2
  exit 1
fi

for setup in scripts/setup/*.sh; do
  [ -e "$setup" ] || continue
  echo "== $setup"
  bash "$setup"
done

echo "== dotnet build"
dotnet build DeepSeekOperator.sln --configuration Release --nologo -clp:ErrorsOnly

projects=()
for project in tests/*/*.csproj; do
  grep -q '<IsTestProject>true</IsTestProject>' "$project" || continue
  name=$(basename "$project" .csproj)
  if [ $# -gt 0 ]; then
    wanted=false
    for word in "$@"; do [[ $name == *"$word"* ]] && wanted=true; done
    $wanted || continue
  fi
  projects+=("$project")
done
[ ${#projects[@]} -gt 0 ] || { echo "no test project matches: $*" >&2; exit 2; }

# The slowest projects start first, so the run ends when the longest one does, not after it.
slow_first() {
  for project in "$@"; do
    case $(basename "$project" .csproj) in
      DeepSeek.Api.Tests) echo "0 $project" ;;
      DeepSeek.Images.Tests | DeepSeek.Autoscaling.EndToEndTests) echo "1 $project" ;;
      *) echo "2 $project" ;;
    esac
  done | sort -s -k1,1n | cut -d' ' -f2-
}
mapfile -t projects < <(slow_first "${projects[@]}")

run_project() {
  local project=$1 name started
  name=$(basename "$project" .csproj)
  started=$(date +%s)
  set +e
  dotnet test "$project" --configuration Release --no-build --nologo \
    --logger "console;verbosity=normal" --logger "trx;LogFileName=$name.trx" \
    --results-directory "$results" >"$results/$name.log" 2>&1
  echo "$? $(($(date +%s) - started))" >"$results/$name.status"
  set -e
  echo "== $name (exit $(cut -d' ' -f1 "$results/$name.status"), $(cut -d' ' -f2 "$results/$name.status") s)"
  cat "$results/$name.log"
}

echo "== dotnet test: ${#projects[@]} projects, $jobs at a time"
running=0
for project in "${projects[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_project "$project" &
  running=$((running + 1))
done
wait || true

# One line per project from its TRX counters, then the whole run's line.
attribute() { grep -o "<Counters [^>]*" "$1" | grep -o " $2=\"[0-9]*\"" | grep -o "[0-9]*" || echo 0; }
total_passed=0 total_failed=0 total_skipped=0 broken=0
echo
echo "== summary"
for project in "${projects[@]}"; do
  name=$(basename "$project" .csproj)
  read -r code seconds <"$results/$name.status" || { code=missing; seconds=0; }
  trx="$results/$name.trx"
  if [ -f "$trx" ]; then
    passed=$(attribute "$trx" passed)
    failed=$(attribute "$trx" failed)
    total=$(attribute "$trx" total)
    executed=$(attribute "$trx" executed)
    skipped=$((total - executed))
  else
    passed=0 failed=0 skipped=0
  fi
  verdict=ok
  if [ "$code" != 0 ] || [ "$failed" -gt 0 ] || [ ! -f "$trx" ]; then
    verdict=FAILED
    broken=$((broken + 1))
    # A project that exited non-zero with no failed test (a crashed test host, no result file) counts as one failure.
    [ "$failed" -gt 0 ] || failed=1
  fi
  printf '%-40s %-6s %5d passed %4d failed %4d skipped %6d s\n' "$name" "$verdict" "$passed" "$failed" "$skipped" "$seconds"
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
done
# The failed tests by name, with their first message lines, last: CI keeps only the tail of a run.
if [ "$broken" -gt 0 ]; then
  echo
  echo "== failed tests"
  for trx in "$results"/*.trx; do
    [ -f "$trx" ] || continue
    python3 - "$trx" <<'PY' || true
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for result in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if result.get("outcome") != "Failed":
        continue
    print(result.get("testName"))
    message = result.find("t:Output/t:ErrorInfo/t:Message", ns)
    trace = result.find("t:Output/t:ErrorInfo/t:StackTrace", ns)
    for text, lines in ((message, 12), (trace, 6)):
        if text is not None and text.text:
            for line in text.text.strip().splitlines()[:lines]:
                print("    " + line[:300])
PY
  done
fi
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$broken" -eq 0 ]
