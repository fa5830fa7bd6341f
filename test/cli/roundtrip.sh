#!/usr/bin/env bash
# Round trip through the aws CLI, unchanged, against a fresh server:
# create/get/list/tag/untag/delete a room and mint a chat token.
# Usage: IVSCHATD_BIN=/path/to/ivschatd test/cli/roundtrip.sh
set -euo pipefail
bin=${IVSCHATD_BIN:?set IVSCHATD_BIN to the ivschatd binary}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
IVSCHATD_ACCESS_KEY_ID=AKIDCLITEST IVSCHATD_SECRET_ACCESS_KEY=cli-test-secret \
	"$bin" --listen 127.0.0.1:$port --data-dir "$dir" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
	curl -sf http://127.0.0.1:$port/healthz >/dev/null && break
	sleep 0.1
done
export AWS_ACCESS_KEY_ID=AKIDCLITEST AWS_SECRET_ACCESS_KEY=cli-test-secret AWS_DEFAULT_REGION=us-west-2
aws() { command aws --endpoint-url http://127.0.0.1:$port --output json "$@"; }
passed=0 failed=0
check() { # name, condition command...
	local name=$1; shift
	if "$@"; then passed=$((passed + 1)); else echo "FAIL: $name" >&2; failed=$((failed + 1)); fi
}
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

room=$(aws ivschat create-room --name cli-room --maximum-message-length 120 --tags team=video)
arn=$(echo "$room" | json '["arn"]')
check "create-room returns the room" test "$(echo "$room" | json '["maximumMessageLength"]')" = 120
check "get-room" test "$(aws ivschat get-room --identifier "$arn" | json '["name"]')" = cli-room
check "list-rooms" test "$(aws ivschat list-rooms | json '["rooms"][0]["arn"]')" = "$arn"
aws ivschat tag-resource --resource-arn "$arn" --tags stage=main >/dev/null
aws ivschat untag-resource --resource-arn "$arn" --tag-keys team >/dev/null
check "tags" test "$(aws ivschat list-tags-for-resource --resource-arn "$arn" | json '["tags"]')" = "{'stage': 'main'}"
tok=$(aws ivschat create-chat-token --room-identifier "$arn" --user-id u1 --capabilities SEND_MESSAGE)
check "create-chat-token" python3 -c "import json,re,sys; t=json.loads(sys.argv[1])['token']; sys.exit(0 if re.fullmatch('[A-Za-z0-9_-]+', t) else 1)" "$tok"
check "validation error" bash -c "command aws --endpoint-url http://127.0.0.1:$port ivschat create-room --maximum-message-length 501 2>&1 | grep -q ValidationException"
aws ivschat delete-room --identifier "$arn"
check "delete-room" bash -c "command aws --endpoint-url http://127.0.0.1:$port ivschat get-room --identifier '$arn' 2>&1 | grep -q ResourceNotFoundException"
echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
