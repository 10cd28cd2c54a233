#!/usr/bin/env bash
# Installs the real API clients the runtime's API tests drive (the official openai SDK, ajv to validate
# structured outputs, @grpc/grpc-js,
# @grpc/proto-loader) and the CEL evaluator the CRD rule tests use (@bufbuild/cel) into
# tests/clients/node_modules, exactly as package-lock.json pins them.
# Idempotent: skips npm when the installed lock matches the committed one.
set -euo pipefail
cd "$(dirname "$0")/../../tests/clients"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "error: the API tests need Node.js 20+ and npm; install them (Debian: apt-get install nodejs npm) and rerun" >&2
  exit 1
fi

# npm ci leaves a copy of the lock it installed; an unchanged lock needs no second install.
readonly stamp="node_modules/.installed-package-lock.json"
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  echo "node clients: already installed in tests/clients/node_modules"
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
echo "node clients: installed openai $(node -p 'require("./node_modules/openai/package.json").version'), ajv $(node -p 'require("./node_modules/ajv/package.json").version'), @grpc/grpc-js $(node -p 'require("./node_modules/@grpc/grpc-js/package.json").version'), @bufbuild/cel $(node -p 'require("./node_modules/@bufbuild/cel/package.json").version')"
