#!/bin/sh
# install-test-deps.sh installs the external tools the e2e tests drive: kafkajs (npm, from
# e2e/kafkajs/package-lock.json) and kcat (the librdkafka command-line client, a Debian
# package). It does nothing for what is already there. kcat needs apt-get and root. apt's
# output is shown only when a step fails.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)

# kafkajs for e2e/groups_clients_test.go.
if command -v npm >/dev/null 2>&1 && [ ! -f "$root/e2e/kafkajs/node_modules/kafkajs/package.json" ]; then
	(cd "$root/e2e/kafkajs" && npm ci --no-audit --no-fund --loglevel=error)
fi

if command -v kcat >/dev/null 2>&1; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: kcat is not installed and installing it needs root: run 'sudo $0', or install the Debian package kcat yourself" >&2
	exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-test-deps: apt-get not found; install kcat (https://github.com/edenhill/kcat) by hand" >&2
	exit 1
fi

aptlog=$(mktemp)
trap 'rm -f "$aptlog"' EXIT

# quietly runs "$@" with its output in $aptlog, and shows that output if it fails.
quietly() {
	if ! "$@" >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		echo "install-test-deps: failed: $*" >&2
		exit 1
	fi
}

export DEBIAN_FRONTEND=noninteractive
quietly apt-get update -qq
quietly apt-get install -y -qq --no-install-recommends kcat

if ! command -v kcat >/dev/null 2>&1; then
	echo "install-test-deps: kcat still not on PATH after apt-get install" >&2
	exit 1
fi
echo "install-test-deps: installed kcat ($(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*/\1/p'))"
