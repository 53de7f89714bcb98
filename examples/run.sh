#!/usr/bin/env bash
# Runs both examples against a real `authgate serve` with the sandbox, in a
# scratch directory on a free loopback port. .ci/run calls it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/authgate" "$root/cmd/authgate"
cd "$work"
./authgate serve --addr 127.0.0.1:0 >"$work/out" 2>"$work/log" &
pid=$!
for _ in $(seq 1 100); do
  grep -q '^authgate is serving on ' "$work/out" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; exit 1; }
  sleep 0.1
done
export AUTHGATE_URL="$(sed -n 's/^authgate is serving on \([^ ]*\).*/\1/p' "$work/out")"
export AUTHGATE_API_KEY="$(sed -n 's/^admin key: //p' "$work/out")"
[ -n "$AUTHGATE_URL" ] && [ -n "$AUTHGATE_API_KEY" ] || { cat "$work/out" "$work/log"; exit 1; }

echo "-- python"
python3 "$root/examples/python/connect_and_token.py" | tee "$work/py"
grep -q '^reauth_required: Ask the user to reconnect' "$work/py"
echo "-- typescript (node $(node --version))"
node "$root/examples/typescript/connect_and_token.ts" | tee "$work/ts"
grep -q '^reauth_required: Ask the user to reconnect' "$work/ts"
# Neither example leaves its consent preset behind (while one is set, every
# Google connect on the server would complete as the example's account).
python3 - <<'PY'
import json, os, urllib.request
left = json.load(urllib.request.urlopen(os.environ["AUTHGATE_URL"] + "/sandbox/admin/consent"))["consents"]
assert left == [], "consent presets left behind: %r" % left
print("-- no consent preset left behind")
PY
