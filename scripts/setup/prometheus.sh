#!/usr/bin/env bash
# Installs Prometheus (server and promtool) for the /metrics tests of tests/DeepSeek.Api.Tests and the
# chart's alert tests (promtool check/test rules) of tests/DeepSeek.Chart.Tests.
# Debian packages it; this installs it with apt-get when it is missing and we are root, and says
# what to run otherwise. Idempotent: does nothing when promtool and prometheus already run.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  echo "prometheus: $(prometheus --version 2>&1 | head -n 1) already installed"
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  # The package's postinst starts a system service where an init system runs; tests start their own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  echo "prometheus: $(prometheus --version 2>&1 | head -n 1) installed"
else
  echo "error: the API tests need promtool and prometheus; install them (Debian: sudo apt-get install prometheus) and rerun" >&2
  exit 1
fi
