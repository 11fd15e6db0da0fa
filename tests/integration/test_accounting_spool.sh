#!/usr/bin/env bash
# The durable accounting spool with the real daemons on loopback (issue 6):
# the jsonl backend writes one record per answered call; while it cannot
# write, records wait in the spool (`accounting` shows the backlog, D12);
# a dispatcher SIGKILLed with undelivered records delivers all of them,
# once, after its restart; a spool whose last segment was corrupted in the
# middle and torn at the end delivers everything else, logging what it
# skipped; HUP re-opens accounting_file for logrotate (D17).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
. "$(dirname "$0")/accounting_lib.sh"

if ! acct_start_daemons "accounting = jsonl"; then
	not_ok "dispatcher and relay come up with accounting = jsonl ($(tail -3 "$ACCT_LOG"))"
	tap_done
fi
ok "dispatcher and relay come up with accounting = jsonl"
check "the dispatcher logs the jsonl backend as ready" \
	log_has "$ACCT_LOG" 'accounting: jsonl backend ready, 0 record'

# --- records are written, once each ---------------------------------------
for i in 1 2 3; do acct_call "spool-ok-$i" "100:$i"; done
check "three answered calls give exactly one record each" \
	wait_for 5 jsonl_has 1 spool-ok-1 spool-ok-2 spool-ok-3
rec=$(jsonl_record spool-ok-1)
check "the record is the statistics object plus dialog_id and timed_out" \
	"$PY" -c '
import json, sys
r = json.loads(sys.argv[1])
want = ["call_id", "from_tag", "from_uri", "to_tag", "to_uri", "start_time", "duration",
        "caller_ua", "callee_ua", "username", "streams", "dialog_id", "timed_out"]
missing = [k for k in want if k not in r]
assert not missing, missing
assert r["dialog_id"] == "100:1" and r["timed_out"] is False, r
assert "all_streams_ice" not in r, "all_streams_ice only on expiry"
s = r["streams"][0]
assert (s["caller_packets"], s["callee_packets"]) == (20, 20), s
assert (s["caller_bytes"], s["callee_bytes"]) == (20 * 172, 20 * 100), s
' "$rec"
out=$(acct_status)
check "accounting (D12) shows the jsonl backend with nothing pending ($out)" \
	"$PY" -c '
import json, sys
objs = [json.loads(l) for l in sys.argv[1].splitlines() if l.strip()]
assert len(objs) == 1, objs
o = objs[0]
assert o["backend"] == "jsonl" and o["pending"] == 0 and o["last_error"] is None, o
assert isinstance(o["oldest_age_s"], (int, float)), o
' "$out"

# An unanswered call (offer, then remove) gets no record (D16).
offer "$ACCT_SOCK" spool-unanswered ft-u "audio:127.0.0.1:40000:sendrecv:ice=no" >/dev/null
mod "$ACCT_SOCK" remove --call-id spool-unanswered --from-tag ft-u >/dev/null
sleep 0.5
check "an unanswered call gets no record (D16)" test "$(jsonl_count spool-unanswered)" = 0

# --- HUP re-opens the file (logrotate) -------------------------------------
mv "$ACCT_FILE" "$ACCT_FILE.1"
kill -HUP "${PID[d1]}"
acct_call spool-after-hup
check "after mv + HUP the next record goes to a new accounting_file" \
	wait_for 5 jsonl_has 1 spool-after-hup
check "... and not to the rotated one" test "$(grep -c spool-after-hup "$ACCT_FILE.1")" = 0

# --- the backend cannot write: records wait in the spool --------------------
# A directory where the file should be: open() fails (even for root).
mv "$ACCT_FILE" "$ACCT_FILE.2"
mkdir "$ACCT_FILE"
kill -HUP "${PID[d1]}"
for i in 1 2 3 4 5; do acct_call "spool-wait-$i"; done
pending() { [ "$(acct_pending jsonl)" = "$1" ]; }
check "with the file unwritable, 5 records wait in the spool ($(acct_pending jsonl) pending)" \
	wait_for 5 pending 5
check "the dispatcher logs why it cannot deliver" \
	log_has "$ACCT_LOG" 'accounting jsonl: call spool-wait-1 not delivered yet, will retry: cannot open'
err=$(acct_status | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.readline())["last_error"])')
check "accounting shows the last error ($err)" grep -q 'Is a directory' <<<"$err"

# --- SIGKILL with undelivered records, restart: all delivered, once --------
acct_kill_dispatcher
rmdir "$ACCT_FILE"
mv "$ACCT_FILE.2" "$ACCT_FILE"
acct_start_dispatcher
check "after SIGKILL and restart the dispatcher finds the 5 spooled records" \
	log_has "$ACCT_LOG" 'accounting: jsonl backend ready, 5 record'
check "... and delivers each of them exactly once" \
	wait_for 10 jsonl_has 1 spool-wait-{1,2,3,4,5}
total=$(wc -l <"$ACCT_FILE")
echo "# SIGKILL test: 5 records spooled while undeliverable, $total lines in the file after restart"
check "no record was written twice or lost across the files" \
	test "$(cat "$ACCT_FILE" "$ACCT_FILE.1" | grep -c '"call_id":"spool-')" = 9

# --- the crash window: delivered, but the cursor not yet moved -------------
# The record being delivered when the process died is handed over again
# after the restart; the jsonl backend must not write it twice. Simulated
# by putting back the cursor file saved before that record was delivered.
stop_daemon d1
cp "$ACCT_SPOOL/cursor-jsonl" "$TMP/cursor.before"
acct_start_dispatcher
acct_call spool-window
wait_for 5 jsonl_has 1 spool-window
stop_daemon d1
cp "$TMP/cursor.before" "$ACCT_SPOOL/cursor-jsonl"
acct_start_dispatcher
check "after the rewind the dispatcher has the record to deliver again" \
	log_has "$ACCT_LOG" 'accounting: jsonl backend ready, 1 record'
acct_call spool-window-2
check "a record handed over again after a crash is not written twice" \
	wait_for 5 jsonl_has 1 spool-window spool-window-2
check "... and the dispatcher says so" \
	log_has "$ACCT_LOG" 'record of call spool-window is already the last line'

# --- corrupt middle frame and torn tail -------------------------------------
mv "$ACCT_FILE" "$ACCT_FILE.3"
mkdir "$ACCT_FILE"
kill -HUP "${PID[d1]}"
for i in 1 2 3 4; do acct_call "spool-corrupt-$i"; done
wait_for 5 pending 4
stop_daemon d1
seg=$(ls "$ACCT_SPOOL"/seg-*.log | tail -1)
# Damage the record of spool-corrupt-2 inside its JSON (its checksum no
# longer matches) and leave half a frame at the end, as a crash mid-append.
sed -i 's/"call_id":"spool-corrupt-2"/"call_id":"spool-corrupX-2"/' "$seg"
printf '%s' "$(grep -F 'spool-corrupt-3' "$seg" | head -c 60)" >>"$seg"
rmdir "$ACCT_FILE"
mv "$ACCT_FILE.3" "$ACCT_FILE"
acct_start_dispatcher
check "the torn tail is cut off with a log line" wait_for 5 log_has "$ACCT_LOG" 'spool.*(torn|truncat)'
check "records before and after the corrupt one are delivered once" \
	wait_for 10 jsonl_has 1 spool-corrupt-1 spool-corrupt-3 spool-corrupt-4
check "the corrupt record is skipped, with a log line" \
	log_has "$ACCT_LOG" 'spool.*(corrupt|checksum|crc)'
check "... and nothing of it reaches the file" \
	test "$(grep -c 'spool-corrupt-2\|spool-corrupX-2' "$ACCT_FILE")" = 0
echo "# corruption test: 4 spooled, 3 delivered, 1 corrupt skipped, $(wc -l <"$ACCT_FILE") lines in the file"

stop_daemon r2
stop_daemon d1
check "no sanitizer report in the daemon logs" sanitizer_clean "$ACCT_LOG" "$TMP/r2.log"
tap_done
