#!/usr/bin/env bash
# scripts/local-cluster.sh: a local Rivet Engine cluster in one command.
#
# Starts two rivet-engine nodes sharing one PostgreSQL database and NATS,
# and two rivetgo runners (`rivet serve --example demo` with RIVET_ENGINE),
# one connected to each node, then prints the endpoints and waits. Ctrl-C
# stops everything. See docs/scaling.md.
#
# Needs: PostgreSQL (psql) and NATS running, Go, and rivet-engine
# (`make engine` installs it; or set RIVET_ENGINE_BIN).
#
# Settings (environment variables, all optional):
#   RIVET_CLUSTER_PG     PostgreSQL server URL   (postgres://postgres@127.0.0.1:5432/postgres)
#   RIVET_CLUSTER_DB     database for the engine (rivet_local_cluster; created if missing)
#   RIVET_CLUSTER_NATS   NATS address host:port  (127.0.0.1:4222)
#   RIVET_CLUSTER_PORT   first port; node 0 uses PORT..PORT+2, node 1 PORT+10..PORT+12 (6420)
#   RIVET_CLUSTER_DIR    configs and logs        (.rivet-cluster)
#   RIVET_CLUSTER_EXAMPLE registry the runners serve (demo)
#   RIVET_ENGINE_BIN     rivet-engine binary     (internal/enginetest/npm/...)
#   RIVET_BIN            rivet binary            (built from ./cmd/rivet)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pg=${RIVET_CLUSTER_PG:-postgres://postgres@127.0.0.1:5432/postgres}
db=${RIVET_CLUSTER_DB:-rivet_local_cluster}
nats=${RIVET_CLUSTER_NATS:-127.0.0.1:4222}
port=${RIVET_CLUSTER_PORT:-6420}
dir=${RIVET_CLUSTER_DIR:-.rivet-cluster}
example=${RIVET_CLUSTER_EXAMPLE:-demo}

die() { echo "local-cluster: $*" >&2; exit 1; }

engine=${RIVET_ENGINE_BIN:-}
if [[ -z $engine ]]; then
	case "$(uname -s)/$(uname -m)" in
	Linux/x86_64) plat=engine-cli-linux-x64-musl ;;
	Linux/aarch64) plat=engine-cli-linux-arm64-musl ;;
	Darwin/x86_64) plat=engine-cli-darwin-x64 ;;
	Darwin/arm64) plat=engine-cli-darwin-arm64 ;;
	*) die "no rivet-engine build for $(uname -s)/$(uname -m)" ;;
	esac
	engine=$root/internal/enginetest/npm/node_modules/@rivetkit/$plat/rivet-engine
fi
[[ -x $engine ]] || die "rivet-engine not found at $engine (run \`make engine\` or set RIVET_ENGINE_BIN)"
command -v psql >/dev/null || die "psql not found (needed to create the database)"
command -v curl >/dev/null || die "curl not found"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# The engine's database: created once, kept between runs (drop it to start
# from nothing: psql "$RIVET_CLUSTER_PG" -c 'DROP DATABASE rivet_local_cluster').
psql -q "$pg" -v ON_ERROR_STOP=1 -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
	psql -q "$pg" -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null ||
	die "cannot create database $db on $pg"
dburl=$(printf '%s' "$pg" | sed -E "s#^(postgres(ql)?://[^/]+)/[^?]*#\1/$db#")
case $dburl in *\?*) dburl="$dburl&sslmode=disable" ;; *) dburl="$dburl?sslmode=disable" ;; esac

pids=() # engine nodes first, then runners
cleanup() {
	trap - INT TERM EXIT
	echo "local-cluster: stopping" >&2
	# Runners first, while the engine is up, so they hand their actors
	# back (a graceful stop); then the engine nodes.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

# node N: guard (the client endpoint) on port+10N, api_peer +1, metrics +2.
start_node() {
	local n=$1 guard=$((port + 10 * $1)) peer=$((port + 10 * $1 + 1)) metrics=$((port + 10 * $1 + 2))
	cat >"$dir/node$n.json" <<EOF
{
  "guard": {"host": "127.0.0.1", "port": $guard},
  "api_peer": {"host": "127.0.0.1", "port": $peer},
  "metrics": {"host": "127.0.0.1", "port": $metrics},
  "telemetry": {"enabled": false},
  "topology": {
    "datacenter_label": 1,
    "datacenters": {"default": {"datacenter_label": 1, "is_leader": true,
      "public_url": "http://127.0.0.1:$guard", "peer_url": "http://127.0.0.1:$peer"}}
  },
  "postgres": {"url": "$dburl", "nats": {"addresses": ["$nats"]}},
  "nats": {"addresses": ["$nats"]}
}
EOF
	"$engine" start --config "$dir/node$n.json" >"$dir/node$n.log" 2>&1 &
	pids+=($!)
	# Ready: /health answers, the default namespace exists and the epoxy
	# replica is active (before that, writes such as runner configs fail).
	for _ in $(seq 1 600); do
		if curl -fs "http://127.0.0.1:$guard/health" >/dev/null &&
			curl -fs "http://127.0.0.1:$guard/namespaces?name=default" | grep -q '"name":"default"' &&
			curl -fs "http://127.0.0.1:$peer/epoxy/coordinator/state" | grep -q '"Active"'; then
			return 0
		fi
		kill -0 "${pids[-1]}" 2>/dev/null || die "engine node $n exited; see $dir/node$n.log"
		sleep 0.1
	done
	die "engine node $n not ready after 60 s; see $dir/node$n.log"
}

start_node 0
start_node 1
endpoint0=http://127.0.0.1:$port
endpoint1=http://127.0.0.1:$((port + 10))

# The engine refuses runners of a pool without a runner config.
curl -fsS -X PUT -H 'content-type: application/json' \
	-d '{"datacenters":{"default":{"normal":{}}}}' \
	"$endpoint0/runner-configs/default?namespace=default" >/dev/null ||
	die "cannot create the runner config of pool default"

rivet=${RIVET_BIN:-}
if [[ -z $rivet ]]; then
	rivet=$dir/rivet
	(cd "$root" && go build -o "$rivet" ./cmd/rivet) || die "go build ./cmd/rivet failed"
fi

# Runner N connects to node N (runner keys must be 3-128 characters).
for n in 0 1; do
	ep=$endpoint0
	[[ $n == 1 ]] && ep=$endpoint1
	RIVET_ENGINE=$ep RIVET_RUNNER_KEY=local-runner-$n "$rivet" serve --example "$example" >"$dir/runner$n.log" 2>&1 &
	pids+=($!)
done
for n in 0 1; do
	for _ in $(seq 1 300); do
		grep -q "connected to the engine" "$dir/runner$n.log" && break
		kill -0 "${pids[2 + n]}" 2>/dev/null || die "runner $n exited; see $dir/runner$n.log"
		sleep 0.1
	done
	grep -q "connected to the engine" "$dir/runner$n.log" || die "runner $n did not connect; see $dir/runner$n.log"
done

cat <<EOF
Rivet Engine cluster running (example "$example"):
  endpoint   $endpoint0   (node 0; node 1 is $endpoint1)
  runners    local-runner-0 -> node 0, local-runner-1 -> node 1
  database   $db (PostgreSQL), NATS $nats
  logs       $dir
Try:
  curl -X POST -H 'content-type: application/json' -d '{"args":[1]}' \\
    '$endpoint0/gateway/counter/action/increment?rvt-namespace=default&rvt-method=getOrCreate&rvt-runner=default&rvt-key=hello'
Ctrl-C stops the cluster.
EOF
wait -n "${pids[@]}" || true
die "a process exited; see the logs in $dir"
