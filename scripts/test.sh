#!/usr/bin/env bash
# Runs every test of ivschatd: Go (unit, end-to-end with the AWS SDK for Go,
# fuzz seed corpora, race detector), Node (AWS SDK for JavaScript v3 and v2,
# the official amazon-ivs-chat-messaging client), Python (boto3) and the web
# console (a rebuild check of its embedded files, its SigV4 signer against
# the AWS SDK's, and end-to-end tests in Debian's headless chromium).
#
# The aws CLI round trip runs when the aws CLI is installed.
#
# PostgreSQL/Redis tests (Go, and the cluster tests of test/node and
# console/) run when IVSCHATD_TEST_POSTGRES_URL / IVSCHATD_TEST_REDIS_URL
# are set and skip with a message otherwise (CI=true requires both). The Python check needs Debian's
# python3-boto3; without it, it is skipped unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

# skipped collects "suite: why" for the summary printed on exit, so a green
# run that tested less than everything says so at the end, not only in
# lines that scrolled past.
skipped=()
bin_dir=""
finish() {
	local rc=$?
	[ -n "$bin_dir" ] && rm -rf "$bin_dir"
	echo
	if [ ${#skipped[@]} -eq 0 ]; then
		echo "== summary: no suite skipped"
	else
		echo "== summary: ${#skipped[@]} suite(s) skipped"
		for s in "${skipped[@]}"; do
			echo "   - $s"
		done
	fi
	[ "$rc" -eq 0 ] || echo "== FAILED (exit $rc)"
	exit "$rc"
}
trap finish EXIT

[ -n "${IVSCHATD_TEST_POSTGRES_URL:-}" ] ||
	skipped+=("Go PostgreSQL tests, and the Node and console cluster tests: IVSCHATD_TEST_POSTGRES_URL is not set")
[ -n "${IVSCHATD_TEST_REDIS_URL:-}" ] ||
	skipped+=("Go Redis/cluster tests, and the Node and console cluster tests: IVSCHATD_TEST_REDIS_URL is not set")
# In CI they are mandatory (.ci/run sets both).
if [ "${CI:-}" = "true" ] && [ ${#skipped[@]} -gt 0 ]; then
	echo "CI=true needs IVSCHATD_TEST_POSTGRES_URL and IVSCHATD_TEST_REDIS_URL: PostgreSQL and Redis tests are mandatory in CI" >&2
	exit 1
fi

echo "== go test -race ./..."
go test -race -count=1 ./...

bin_dir=$(mktemp -d)
go build -o "$bin_dir/ivschatd" ./cmd/ivschatd
export IVSCHATD_BIN="$bin_dir/ivschatd"

echo "== node --test (test/node)"
(cd test/node && npm ci --no-audit --no-fund --loglevel=error && node --test)

echo "== console (console/: rebuild check, signer, browser tests)"
(cd console && ./check-dist.sh)
if command -v "${CHROMIUM_PATH:-/usr/bin/chromium}" >/dev/null 2>&1; then
	(cd console && npm test)
elif [ "${CI:-}" = "true" ]; then
	echo "chromium is not installed (apt-get install chromium)" >&2
	exit 1
else
	echo "skipped: chromium not installed (apt-get install chromium); only the signer test runs"
	skipped+=("console browser tests: chromium is not installed (apt-get install chromium)")
	(cd console && node --test test/sigv4.test.mjs)
fi

echo "== python3 boto3 round trip (test/python)"
if /usr/bin/python3 -c 'import boto3' 2>/dev/null; then
	/usr/bin/python3 test/python/roundtrip.py
elif [ "${CI:-}" = "true" ]; then
	echo "python3-boto3 is not installed (apt-get install python3-boto3)" >&2
	exit 1
else
	echo "skipped: python3-boto3 not installed (apt-get install python3-boto3)"
	skipped+=("python3 boto3 round trip: python3-boto3 is not installed (apt-get install python3-boto3)")
fi

echo "== aws CLI round trip (test/cli)"
if command -v aws >/dev/null 2>&1; then
	test/cli/roundtrip.sh
else
	echo "skipped: the aws CLI is not installed"
	skipped+=("aws CLI round trip: the aws CLI is not installed")
fi
