#!/usr/bin/env bash
# RivetKit side by side: installs rivetkit@2.3.19 (pinned by package.json
# and package-lock.json here) into a scratch directory, then runs the
# bench rows RivetKit takes part in (capped parameters) against the
# baseline, `rivet serve` and RivetKit, and prints the table, the JSON
# lines and the ratio table.
#
#   bash bench/peer/run.sh                              # -scenario capped -target all (~6 min)
#   bash bench/peer/run.sh -scenario all -target all    # everything in one run (~17 min)
#   bash bench/peer/run.sh -scenario engine -target engine   # make bench-engine: rivetgo's and
#       # RivetKit's runners behind rivet-engine (needs `make engine`; ~25 min on a loaded machine)
#
# Needs Go, Node 20+ and npm. RivetKit's registry.start() runs the
# rivet-engine binary shipped in @rivetkit/engine-cli-<platform>; each
# RivetKit start gets a private HOME, so its engine keeps its data in a
# fresh directory. The output is also written to $scratch/report-<time>.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
scratch=${RIVET_BENCH_PEER_DIR:-${TMPDIR:-/tmp}/rivetgo-bench-peer}

command -v node >/dev/null || { echo "run.sh: node (20+) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "run.sh: npm is required" >&2; exit 1; }
mkdir -p "$scratch"
cp "$here/package.json" "$here/package-lock.json" "$here/server.mjs" "$scratch/"
# npm install, not npm ci: the lockfile leaves out the other platforms'
# optional binaries of rivetkit, which npm ci rejects; install still takes
# every version from the lockfile.
(cd "$scratch" && npm install --no-audit --no-fund --loglevel=error)

args=("$@")
if [ ${#args[@]} -eq 0 ]; then
	args=(-scenario capped -target all)
fi
report="$scratch/report-$(date -u +%Y%m%dT%H%M%SZ).txt"
cd "$root"
echo "bench: go run ./bench -peer-dir $scratch ${args[*]} (output also in $report)" >&2
go run ./bench -peer-dir "$scratch" "${args[@]}" | tee "$report"
