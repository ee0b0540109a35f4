#!/usr/bin/env bash
# cluster.sh: three chronik nodes on 127.0.0.1 in the foreground (make cluster).
#
# Node i (1..3) serves Kafka on 127.0.0.1:909(1+i), Raft on 127.0.0.1:1909(1+i), and keeps
# its data in $DATA_DIR/node<i>. Each output line is prefixed with [node<i>]. Ctrl-C (or
# SIGTERM) stops all three; if one node exits by itself the others keep running. The
# prefixing seds ignore Ctrl-C and end when their node does, so shutdown logs get through.
# Extra arguments are passed to every node, e.g. scripts/cluster.sh -wal-profile low.
set -euo pipefail

GO=${GO:-go}
DATA_DIR=${DATA_DIR:-./data}
BIN=${CHRONIK_BIN:-bin/chronik}
NODES=3

if [[ -z ${CHRONIK_BIN:-} ]]; then
	mkdir -p "$(dirname "$BIN")"
	"$GO" build -o "$BIN" ./cmd/chronik
fi

peers=""
for i in $(seq 1 $NODES); do
	peers+="${peers:+,}$i=127.0.0.1:$((9091 + i))/127.0.0.1:$((19091 + i))"
done

pids=()
stop() {
	trap - INT TERM
	echo "cluster: stopping ${pids[*]}" >&2
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
}
trap stop INT TERM

for i in $(seq 1 $NODES); do
	mkdir -p "$DATA_DIR/node$i"
	"$BIN" -node-id "$i" -peers "$peers" -data-dir "$DATA_DIR/node$i" "$@" \
		> >(trap '' INT TERM; exec sed -u "s/^/[node$i] /") 2>&1 &
	pids+=($!)
done
echo "cluster: nodes ${pids[*]} on 127.0.0.1:9092-$((9091 + NODES)); Ctrl-C stops them" >&2

# wait returns early when a trapped signal arrives; loop until every node has exited.
for pid in "${pids[@]}"; do
	while kill -0 "$pid" 2>/dev/null; do
		wait "$pid" 2>/dev/null || true
	done
done
echo "cluster: stopped" >&2
