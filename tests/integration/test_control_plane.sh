#!/usr/bin/env bash
# The control plane end to end on loopback with the real daemons: one
# media-dispatcher, two media-relays (relay_ip 127.0.0.2 and 127.0.0.3,
# D8) over mutual TLS, the module protocol spoken like Kamailio and OpenSIPS
# (tests/tools/mpctl.py), the management interface over TLS and plain, TLS
# and passport refusals, and a call whose media really crosses a relay
# between two udp_peer phones. Relay failure, signals and dispatcher restart:
# test_control_failover.sh.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

make_test_certs || { echo "Bail out! make-certs.sh failed"; exit 1; }
read -r D1_PORT D1_MGMT D2_PORT D2_MGMT < <(free_ports 4)
SOCK=$TMP/d1/dispatcher.sock

write_dispatcher_conf "$TMP/d1.ini" "$D1_PORT" "$D1_MGMT" \
	"management_use_tls = yes" "management_passport = CN:management*"
start_daemon d1 media-dispatcher "$TMP/d1.ini" "$TMP/d1" "$TMP/d1.log"
write_relay_conf "$TMP/r2.ini" 127.0.0.2 "$D1_PORT" 0
write_relay_conf "$TMP/r3.ini" 127.0.0.3 "$D1_PORT" 1
if wait_for 5 log_has "$TMP/d1.log" 'started: module socket'; then
	start_daemon r2 media-relay "$TMP/r2.ini" "$TMP/r2" "$TMP/r2.log"
	start_daemon r3 media-relay "$TMP/r3.ini" "$TMP/r3" "$TMP/r3.log"
fi
both_resynced() {
	log_has "$TMP/d1.log" 'relay 127.0.0.2 resynchronised' &&
		log_has "$TMP/d1.log" 'relay 127.0.0.3 resynchronised'
}
if wait_for 10 both_resynced; then
	ok "both relays connect over mutual TLS from their relay_ip and are resynchronised"
else
	not_ok "both relays connect (dispatcher log: $(tail -5 "$TMP/d1.log"))"
	tap_done
fi
check "the proxy socket is created in the runtime dir (relative socket_path)" test -S "$SOCK"

# --- management over TLS --------------------------------------------------
summary=$(mgmt "$D1_MGMT" summary)
check "summary: every line is a JSON object with all fields of §3.4" \
	json_q summary-valid <<<"$summary"
check "summary lists exactly the two relays" test "$(json_q count <<<"$summary")" = 2
for ip in 127.0.0.2 127.0.0.3; do
	check "summary lists $ip as active" test "$(json_q status $ip <<<"$summary")" = active
done
want_version=$("$BIN/media-dispatcher" --version | awk '{print $NF}')
check "version answers the dispatcher's version ($want_version)" \
	test "$(mgmt "$D1_MGMT" version)" = "$want_version"
sessions=$(mgmt "$D1_MGMT" sessions); rc=$?
check "sessions with no call is the empty reply" test $rc -eq 0 -a -z "$sessions"

# Refused management clients: no reply, and a log line saying why.
out=$("$PY" "$MPCTL" mgmt --port "$D1_MGMT" --tls --ca "$TLS/ca.pem" summary 2>/dev/null); rc=$?
check "a TLS management client without a certificate gets no reply" test $rc -ne 0 -a -z "$out"
check "... and the dispatcher logs the refusal" \
	wait_for 3 log_has "$TMP/d1.log" 'management: refused .*did not return a certificate'
out=$("$PY" "$MPCTL" mgmt --port "$D1_MGMT" summary 2>/dev/null); rc=$?
check "a plain management client on the TLS port gets no reply" test $rc -ne 0 -a -z "$out"
check "... and the dispatcher logs the refusal" \
	wait_for 3 log_has "$TMP/d1.log" 'management: refused .*TLS handshake failed: .*wrong version'
out=$("$PY" "$MPCTL" mgmt --port "$D1_MGMT" --cert "$TLS/intruder.crt" --key "$TLS/intruder.key" \
	--ca "$TLS/ca.pem" summary 2>/dev/null); rc=$?
check "a client certificate of our CA failing management_passport gets no reply" \
	test $rc -ne 0 -a -z "$out"
check "... and the dispatcher logs the passport refusal" \
	wait_for 3 log_has "$TMP/d1.log" 'management: refused .*CN=intruder does not match passport'

# --- relay TLS refusals ---------------------------------------------------
# 127.0.0.5: a certificate from another CA (it trusts ours): the dispatcher
# refuses it. 127.0.0.6: everything from another CA: the relay refuses the
# dispatcher's certificate.
certs_dir "$TMP/certs-r5" "$TMP/tls-other/relay"
certs_dir "$TMP/certs-r6" "$TMP/tls-other/relay" "$TMP/tls-other"
write_relay_conf "$TMP/r5.ini" 127.0.0.5 "$D1_PORT" 2 "$TMP/certs-r5"
write_relay_conf "$TMP/r6.ini" 127.0.0.6 "$D1_PORT" 3 "$TMP/certs-r6"
start_daemon r5 media-relay "$TMP/r5.ini" "$TMP/r5" "$TMP/r5.log"
start_daemon r6 media-relay "$TMP/r6.ini" "$TMP/r6" "$TMP/r6.log"

# A second dispatcher: plain management, and a relay passport that the
# default relay certificate (CN=relay) fails and relay-trusted.crt passes.
write_dispatcher_conf "$TMP/d2.ini" "$D2_PORT" "$D2_MGMT" \
	"management_use_tls = no" "passport = CN:relay-trusted"
start_daemon d2 media-dispatcher "$TMP/d2.ini" "$TMP/d2" "$TMP/d2.log"
certs_dir "$TMP/certs-r7" "$TLS/relay-trusted"
write_relay_conf "$TMP/r4.ini" 127.0.0.4 "$D2_PORT" 4
write_relay_conf "$TMP/r7.ini" 127.0.0.7 "$D2_PORT" 5 "$TMP/certs-r7"
if wait_for 5 log_has "$TMP/d2.log" 'started: module socket'; then
	start_daemon r4 media-relay "$TMP/r4.ini" "$TMP/r4" "$TMP/r4.log"
	start_daemon r7 media-relay "$TMP/r7.ini" "$TMP/r7" "$TMP/r7.log"
fi

check "a relay certificate from another CA is refused, the dispatcher logs why" \
	wait_for 5 log_has "$TMP/d1.log" 'relay 127.0.0.5: TLS handshake failed: certificate .*rejected'
check "... and that relay logs that the dispatcher refused it" \
	wait_for 5 log_has "$TMP/r5.log" 'ERROR.*dispatcher 127.0.0.1.*closed the connection right after the handshake \(.*unknown ca\)'
check "a relay trusting another CA refuses the dispatcher's certificate and logs it" \
	wait_for 5 log_has "$TMP/r6.log" 'ERROR.*dispatcher 127.0.0.1.*TLS handshake failed: certificate .*CN=dispatcher rejected'
check "... and the dispatcher logs the failed handshake" \
	wait_for 5 log_has "$TMP/d1.log" 'relay 127.0.0.6: TLS handshake failed'
check "a relay certificate failing the dispatcher's passport is refused and logged" \
	wait_for 5 log_has "$TMP/d2.log" 'relay 127.0.0.4: passport mismatch'
check "... and that relay logs that the dispatcher closed the connection" \
	wait_for 5 log_has "$TMP/r4.log" 'ERROR.*dispatcher 127.0.0.1.*closed the connection right after the handshake'
check "a relay certificate matching the passport is accepted" \
	wait_for 5 log_has "$TMP/d2.log" 'relay 127.0.0.7: connected'

summary=$(mgmt "$D1_MGMT" summary)
check "summary still lists only 127.0.0.2 and 127.0.0.3" \
	test "$(json_q count <<<"$summary")" = 2 -a "$(json_q status 127.0.0.5 <<<"$summary")" = absent \
	-a "$(json_q status 127.0.0.6 <<<"$summary")" = absent
summary=$("$PY" "$MPCTL" mgmt --port "$D2_MGMT" summary)
check "plain management (management_use_tls = no): summary lists the accepted relay only" \
	test "$(json_q status 127.0.0.7 <<<"$summary")" = active -a \
	"$(json_q status 127.0.0.4 <<<"$summary")" = absent
check "plain management: version" test "$("$PY" "$MPCTL" mgmt --port "$D2_MGMT" version)" = "$want_version"
out=$("$PY" "$MPCTL" mgmt --port "$D2_MGMT" frobnicate)
check "plain management: an unknown command gets error" test "$out" = error
for d in r4 r5 r6 r7 d2; do
	stop_daemon $d; rc=$?
	check "$d exits 0 on SIGTERM" test $rc -eq 0
done

# --- a call, with media through the relay ------------------------------------
read -r PA PB < <(free_ports 2 udp)
# The bytes Kamailio 5.6 sends (PROTOCOL.md Appendix A): its header order and
# its empty-valued to_tag and media_relay lines.
printf 'update\r\ntype: request\r\ndialog_id: 3431:9579\r\ncall_id: 1-16898@127.0.0.1\r\ncseq: 1\r\nfrom_uri: uac@127.0.0.1:54784\r\nto_uri: uas@127.0.0.1:32968\r\nfrom_tag: 16898SIPpTag001\r\nto_tag: \r\nuser_agent: e2e-uac\r\nsignaling_ip: 127.0.0.1\r\nmedia_relay: \r\nmedia: audio:127.0.0.1:%s:sendrecv:ice=no\r\n\r\n' \
	"$PA" >"$TMP/offer"
printf 'update\r\ntype: reply\r\ndialog_id: 3431:9579\r\ncall_id: 1-16898@127.0.0.1\r\ncseq: 1\r\nfrom_uri: uac@127.0.0.1:54784\r\nto_uri: uas@127.0.0.1:32968\r\nfrom_tag: 16898SIPpTag001\r\nto_tag: 16885SIPpTag011\r\nuser_agent: e2e-uas\r\nsignaling_ip: 127.0.0.1\r\nmedia_relay: \r\nmedia: audio:127.0.0.1:%s:sendrecv:ice=no\r\n\r\n' \
	"$PB" >"$TMP/answer"
printf 'remove\r\ncall_id: 1-16898@127.0.0.1\r\nfrom_tag: 16898SIPpTag001\r\nto_tag: 16885SIPpTag011\r\n\r\n' \
	>"$TMP/remove"
offer_reply=$(mod "$SOCK" raw "$TMP/offer")
check "offer (Kamailio's bytes) is answered 'relay_ip port' ($offer_reply)" \
	grep -qE '^127\.0\.0\.[23] [1-9][0-9]*$' <<<"$offer_reply"
answer_reply=$(mod "$SOCK" raw "$TMP/answer")
check "answer is answered 'relay_ip port' ($answer_reply)" \
	grep -qE '^127\.0\.0\.[23] [1-9][0-9]*$' <<<"$answer_reply"
read -r RIP callee_port <<<"$offer_reply"
read -r RIP2 caller_port <<<"$answer_reply"
check "offer and answer are on the same relay, on different ports" \
	test "$RIP" = "$RIP2" -a "$caller_port" != "$callee_port"
IFS=: read -r lo hi < <(sed -n 's/^port_range = //p' "$TMP/r${RIP##*.}.ini")
check "both ports lie in that relay's port_range ($lo:$hi)" test "${lo:-0}" -le "$caller_port" \
	-a "$caller_port" -lt "${hi:-0}" -a "$lo" -le "$callee_port" -a "$callee_port" -lt "$hi"

# The phones: the caller sends to the caller-facing port of the answer's
# reply, the callee to the callee-facing port of the offer's reply.
"$UDP_PEER" talk --bind "127.0.0.1:$PA" --to "$RIP:$caller_port" --count 50 --size 172 --pt 0 \
	--expect 40 --interval-us 2000 --delay-ms 100 --timeout-ms 3000 >"$TMP/caller.out" 2>&1 &
caller=$!
"$UDP_PEER" talk --bind "127.0.0.1:$PB" --to "$RIP:$callee_port" --count 40 --size 100 --pt 8 \
	--expect 50 --interval-us 2000 --delay-ms 100 --timeout-ms 3000 >"$TMP/callee.out" 2>&1 &
callee=$!
wait $caller $callee
check "the callee receives all 50 caller packets intact, only from $RIP:$callee_port ($(tail -1 "$TMP/callee.out"))" \
	grep -q "^packets=50 bytes=8600 bad=0 sources=$RIP:$callee_port " "$TMP/callee.out"
check "the caller receives all 40 callee packets intact, only from $RIP:$caller_port ($(tail -1 "$TMP/caller.out"))" \
	grep -q "^packets=40 bytes=4000 bad=0 sources=$RIP:$caller_port " "$TMP/caller.out"

sessions=$(mgmt "$D1_MGMT" sessions)
check "sessions: one JSON object" test "$(json_q count <<<"$sessions")" = 1
got=$(json_q session 1-16898@127.0.0.1 from_tag to_tag from_uri caller_ua callee_ua <<<"$sessions")
check "sessions: the call's tags, URI and user agents ($got)" \
	test "$got" = "16898SIPpTag001 16885SIPpTag011 uac@127.0.0.1:54784 e2e-uac e2e-uas"
got=$(json_q session 1-16898@127.0.0.1 streams.0.caller_bytes streams.0.caller_packets \
	streams.0.callee_bytes streams.0.callee_packets <<<"$sessions")
check "sessions: bytes and packets equal what each phone sent (D4) ($got)" test "$got" = "8600 50 4000 40"
got=$(json_q session 1-16898@127.0.0.1 streams.0.caller_codec streams.0.callee_codec <<<"$sessions")
check "sessions: codecs from the payload types (0 G711u, 8 G711a) ($got)" test "$got" = "G711u G711a"
got=$(json_q session 1-16898@127.0.0.1 streams.0.caller_local streams.0.callee_local \
	streams.0.caller_remote streams.0.callee_remote streams.0.status <<<"$sessions")
check "sessions: local and latched remote addresses, status active ($got)" \
	test "$got" = "$RIP:$caller_port $RIP:$callee_port 127.0.0.1:$PA 127.0.0.1:$PB active"
check "summary counts the call on $RIP" \
	test "$(mgmt "$D1_MGMT" summary | "$PY" -c "
import json, sys
print([o['session_count'] for o in map(json.loads, sys.stdin) if o['ip'] == '$RIP'][0])")" = 1
check "remove (Kamailio's bytes) is answered removed" test "$(mod "$SOCK" raw "$TMP/remove")" = removed
sessions=$(mgmt "$D1_MGMT" sessions)
check "sessions is empty after the remove" test -z "$sessions"
check "a second remove of the same call gets error" test "$(mod "$SOCK" raw "$TMP/remove")" = error

# --- dialog_id forms, malformed requests --------------------------------------
# OpenSIPS 3.4 sends the dialog id as one 64-bit decimal (Appendix A).
{
	printf 'update\r\ntype: request\r\ndialog_id: 14693415284398571601\r\ncall_id: 1-3883@127.0.0.1\r\ncseq: 1\r\nfrom_uri: caller@127.0.0.1:58326\r\nto_uri: callee@127.0.0.1:37132\r\nfrom_tag: 3883SIPpTag001\r\nto_tag: \r\nuser_agent: e2e-opensips-uac\r\nsignaling_ip: 127.0.0.1\r\nmedia_relay: \r\nmedia: audio:127.0.0.1:47504:sendrecv:ice=no\r\n\r\n'
	printf 'remove\r\ncall_id: 1-3883@127.0.0.1\r\nfrom_tag: 3883SIPpTag001\r\nto_tag: 3880SIPpTag011\r\n\r\n'
} >"$TMP/opensips"
out=$(mod "$SOCK" raw --split "$TMP/opensips" | tr '\n' '|')
check "OpenSIPS' 64-bit decimal dialog_id is accepted; remove without an answer works ($out)" \
	grep -qE '^127\.0\.0\.[23] [1-9][0-9]*\|removed\|$' <<<"$out"
out=$(mod "$SOCK" update --type request --call-id kam-form --from-tag k1 --dialog-id 1:2 \
	--media audio:127.0.0.1:4000:sendrecv:ice=no)
check "Kamailio's h_entry:h_id dialog_id is accepted ($out)" grep -qE '^127\.0\.0\.[23] [0-9]+$' <<<"$out"
check "... and removed" test "$(mod "$SOCK" remove --call-id kam-form --from-tag k1)" = removed

# One connection, as a SIP worker keeps it: each bad request gets error
# and the ones after it are still served.
{
	printf 'update\r\ntype: request\r\ncseq: 1\r\nfrom_tag: x\r\nfrom_uri: a@b\r\nto_uri: c@d\r\nuser_agent: u\r\nmedia: audio:127.0.0.1:4000:sendrecv:ice=no\r\n\r\n'
	printf 'update\r\ntype: offer\r\ncall_id: bad-type\r\ncseq: 1\r\nfrom_tag: x\r\nfrom_uri: a@b\r\nto_uri: c@d\r\nuser_agent: u\r\nmedia: audio:127.0.0.1:4000:sendrecv:ice=no\r\n\r\n'
	printf 'hello there\r\nnot: a request\r\n\r\n'
	printf '\x01\x02\xfe\xff garbage\r\n\r\n'
	printf 'remove\r\ncall_id: never-seen\r\nfrom_tag: x\r\n\r\n'
	printf 'update\r\ntype: request\r\ndialog_id: 7:8\r\ncall_id: after-bad\r\ncseq: 1\r\nfrom_uri: a@b\r\nto_uri: c@d\r\nfrom_tag: x\r\nto_tag: \r\nuser_agent: u\r\nsignaling_ip: 127.0.0.1\r\nmedia_relay: \r\nmedia: audio:127.0.0.1:4000:sendrecv:ice=no\r\n\r\n'
	printf 'remove\r\ncall_id: after-bad\r\nfrom_tag: x\r\nto_tag: \r\n\r\n'
} >"$TMP/bad"
mapfile -t replies < <(mod "$SOCK" raw --split "$TMP/bad")
check "an update without call_id gets error (${replies[0]:-})" test "${replies[0]:-}" = error
check "an update with type neither request nor reply gets error (${replies[1]:-})" \
	test "${replies[1]:-}" = error
check "an unknown command gets error (${replies[2]:-})" test "${replies[2]:-}" = error
check "binary garbage gets error (${replies[3]:-})" test "${replies[3]:-}" = error
check "a remove for an unknown call gets error (${replies[4]:-})" test "${replies[4]:-}" = error
check "the next update on the same connection is served (${replies[5]:-})" \
	grep -qE '^127\.0\.0\.[23] [0-9]+$' <<<"${replies[5]:-}"
check "and so is its remove (${replies[6]:-})" test "${replies[6]:-}" = removed
check "the dispatcher logs each fault: missing call_id" log_has "$TMP/d1.log" 'rejected: missing call_id'
check "the dispatcher logs each fault: bad type" log_has "$TMP/d1.log" 'rejected: type is neither'
check "the dispatcher logs each fault: unknown command" log_has "$TMP/d1.log" 'hello request rejected: unknown command'
# An oversized line: error, and that connection is closed; others go on.
{ printf 'update\r\ncall_id: '; head -c 20000 /dev/zero | tr '\0' 'x'; printf '\r\n\r\n'; } >"$TMP/huge"
check "an oversized line gets error" test "$(mod "$SOCK" raw "$TMP/huge")" = error
check "the dispatcher logs the oversized line" log_has "$TMP/d1.log" 'line is over [0-9]+ bytes'
out=$(mod "$SOCK" update --type request --call-id after-huge --from-tag y \
	--media audio:127.0.0.1:4000:sendrecv:ice=no)
check "a new connection after it is served ($out)" grep -qE '^127\.0\.0\.[23] [0-9]+$' <<<"$out"
mod "$SOCK" remove --call-id after-huge --from-tag y >/dev/null

# --- selection -------------------------------------------------------------------
for ip in 127.0.0.2 127.0.0.3; do
	good=0
	for i in 1 2 3; do
		out=$(mod "$SOCK" update --type request --call-id "pref-$ip-$i" --from-tag p \
			--media-relay "$ip" --media audio:127.0.0.1:4000:sendrecv:ice=no)
		[ "${out%% *}" = "$ip" ] && good=$((good + 1))
		mod "$SOCK" remove --call-id "pref-$ip-$i" --from-tag p >/dev/null
	done
	check "media_relay: $ip is preferred (3 of 3 calls placed there)" test $good -eq 3
done
out=$(mod "$SOCK" update --type request --call-id pref-unknown --from-tag p \
	--media-relay 127.0.0.9 --media audio:127.0.0.1:4000:sendrecv:ice=no)
check "media_relay naming no connected relay: placed on another one ($out)" \
	grep -qE '^127\.0\.0\.[23] [0-9]+$' <<<"$out"
check "... with a warning naming it" log_has "$TMP/d1.log" 'media_relay 127.0.0.9 is not a connected active relay'
mod "$SOCK" remove --call-id pref-unknown --from-tag p >/dev/null

: >"$TMP/many" && : >"$TMP/many-remove"
for i in $(seq 1 24); do
	printf 'update\r\ntype: request\r\ndialog_id: 1:%d\r\ncall_id: spread-%d\r\ncseq: 1\r\nfrom_uri: a@b\r\nto_uri: c@d\r\nfrom_tag: s%d\r\nto_tag: \r\nuser_agent: u\r\nsignaling_ip: 127.0.0.1\r\nmedia_relay: \r\nmedia: audio:127.0.0.1:%d:sendrecv:ice=no,video:127.0.0.1:%d:sendrecv:ice=no\r\n\r\n' \
		"$i" "$i" "$i" $((6000 + 4 * i)) $((6002 + 4 * i)) >>"$TMP/many"
	printf 'remove\r\ncall_id: spread-%d\r\nfrom_tag: s%d\r\nto_tag: \r\n\r\n' "$i" "$i" >>"$TMP/many-remove"
done
mod "$SOCK" raw --split "$TMP/many" >"$TMP/many.out"
check "24 calls, two streams each: every reply is an IP and two ports" \
	test "$(grep -cE '^127\.0\.0\.[23] [1-9][0-9]* [1-9][0-9]*$' "$TMP/many.out")" -eq 24
on2=$(grep -c '^127\.0\.0\.2 ' "$TMP/many.out"); on3=$(grep -c '^127\.0\.0\.3 ' "$TMP/many.out")
check "random selection spreads them over both relays ($on2 on .2, $on3 on .3)" \
	test "$on2" -gt 0 -a "$on3" -gt 0
summary=$(mgmt "$D1_MGMT" summary)
got=$("$PY" -c "
import json, sys
s = {o['ip']: (o['session_count'], o['stream_count']) for o in map(json.loads, sys.stdin)}
print(s['127.0.0.2'][0], s['127.0.0.2'][1], s['127.0.0.3'][0], s['127.0.0.3'][1])" <<<"$summary")
check "summary's session and stream counts match the placement ($got)" \
	test "$got" = "$on2 $((2 * on2)) $on3 $((2 * on3))"
check "all 24 are removed on one connection" \
	test "$(mod "$SOCK" raw --split "$TMP/many-remove" | grep -c '^removed$')" -eq 24
check "sessions is empty at the end" test -z "$(mgmt "$D1_MGMT" sessions)"

# --- shutdown ---------------------------------------------------------------------
# Two calls left open: the saved call table keeps each dialog_id in the form
# it arrived in (the MI request to end the dialog needs that form).
for form in osips:14693415284398571601 kam:3431:9579; do
	mod "$SOCK" update --type request --call-id "keep-${form%%:*}" --from-tag k \
		--dialog-id "${form#*:}" --media audio:127.0.0.1:4000:sendrecv:ice=no >/dev/null
done
stop_daemon d1; rc=$?
check "d1 exits 0 on SIGTERM" test $rc -eq 0
check "the proxy socket is removed on exit" test ! -e "$SOCK"
check "the saved call table keeps OpenSIPS' decimal dialog_id as it came" \
	grep -qE '"call_id": *"keep-osips".*"dialog_id": *"14693415284398571601"' "$TMP/d1/dispatcher_state"
check "... and Kamailio's h_entry:h_id" \
	grep -qE '"call_id": *"keep-kam".*"dialog_id": *"3431:9579"' "$TMP/d1/dispatcher_state"
for d in r2 r3; do
	stop_daemon $d; rc=$?
	check "$d exits 0 on SIGTERM" test $rc -eq 0
done
check "no sanitizer report in any daemon log" sanitizer_clean
tap_done
