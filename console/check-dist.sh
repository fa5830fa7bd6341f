#!/usr/bin/env bash
# Rebuilds the console from the lockfile and fails if the result differs
# from the committed internal/console/dist: the embedded files must be
# exactly what console/ builds to (CI runs this).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run --silent check
node build.mjs
if ! git diff --quiet --exit-code -- ../internal/console/dist || [ -n "$(git ls-files --others --exclude-standard -- ../internal/console/dist)" ]; then
	echo "internal/console/dist differs from a fresh build of console/ (run: cd console && npm ci && npm run build, then commit):" >&2
	git status --short -- ../internal/console/dist >&2
	git diff --stat -- ../internal/console/dist >&2
	exit 1
fi
echo "internal/console/dist matches a fresh build"
