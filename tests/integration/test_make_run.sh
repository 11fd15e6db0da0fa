#!/usr/bin/env bash
# `make run`'s script as a new user sees it: it generates config and
# certificates, starts both daemons in the foreground, prints its paths, and
# stops both cleanly on Ctrl-C (SIGINT to the script).
set -u
. "$(dirname "$0")/lib.sh"

export MP_RUN_DIR=$TMP/run MP_BIN=$BIN
setsid "$MP_ROOT/scripts/run.sh" >"$TMP/run.out" 2>&1 &
script=$!
at_exit "kill -TERM -$script 2>/dev/null"

if wait_for 10 test -s "$MP_RUN_DIR/dispatcher.pid" -a -s "$MP_RUN_DIR/relay.pid"; then
	ok "both daemons start and write their pid files"
else
	not_ok "both daemons start (output: $(cat "$TMP/run.out"))"
fi
dpid=$(cat "$MP_RUN_DIR/dispatcher.pid" 2>/dev/null || echo 0)
rpid=$(cat "$MP_RUN_DIR/relay.pid" 2>/dev/null || echo 0)
check "the generated config.ini enables jsonl accounting (D11)" \
	grep -qE '^accounting *= *jsonl' "$MP_RUN_DIR/config.ini"
check "the generated config.ini makes private ranges routable (D5)" \
	grep -qE '^routable_private_ranges *= *127.0.0.0/8' "$MP_RUN_DIR/config.ini"
check "sample certificates are generated" test -s "$MP_RUN_DIR/tls/ca.pem" -a -s "$MP_RUN_DIR/tls/relay.key"
for path in config.ini dispatcher.sock dispatcher.pid relay.pid dispatcher.log relay.log accounting.jsonl; do
	check "the banner names $path" grep -qF "$MP_RUN_DIR/$path" "$TMP/run.out"
done
check "logs are written" wait_for 5 grep -q 'media-relay.*started' "$MP_RUN_DIR/relay.log"

# One answered call through the module socket leaves one accounting line.
mp() { python3 "$MP_ROOT/tests/tools/mpctl.py" --socket "$MP_RUN_DIR/dispatcher.sock" "$@"; }
wait_for 10 grep -q 'resynchronised' "$MP_RUN_DIR/dispatcher.log"
mp update --type request --call-id run-call --from-tag rf --cseq 1 \
	--media audio:127.0.0.1:40000:sendrecv:ice=no >/dev/null
mp update --type reply --call-id run-call --from-tag rf --to-tag rt --cseq 1 \
	--media audio:127.0.0.1:40002:sendrecv:ice=no >/dev/null
check "a call answered through the module socket is removed" \
	test "$(mp remove --call-id run-call --from-tag rf --to-tag rt)" = removed
one_record() { [ "$(grep -c '"call_id":"run-call"' "$MP_RUN_DIR/accounting.jsonl" 2>/dev/null)" = 1 ]; }
check "... and leaves one record in accounting.jsonl" wait_for 5 one_record

# Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
kill -INT -"$script"
if wait_for 10 process_gone "$script"; then
	ok "the script ends on Ctrl-C"
else
	not_ok "the script ends on Ctrl-C"
fi
check "media-dispatcher stopped" process_gone "$dpid"
check "media-relay stopped" process_gone "$rpid"
check "pid files removed on a clean stop" test ! -e "$MP_RUN_DIR/dispatcher.pid" -a ! -e "$MP_RUN_DIR/relay.pid"
tap_done
