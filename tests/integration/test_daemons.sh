#!/usr/bin/env bash
# Both daemons as an operator starts them: command line, config.ini errors and
# warnings with file:line, detaching with a pid file, and the signals of
# PROTOCOL.md D17. Real binaries, real certificates, real signals.
set -u
. "$(dirname "$0")/lib.sh"

"$MP_ROOT/tls/make-certs.sh" "$TMP/tls" >/dev/null 2>&1 || { not_ok "make-certs.sh"; tap_done; }

write_config() {    # write_config FILE [extra lines...]
	local file=$1; shift
	{
		echo "[Relay]"
		echo "dispatchers = 127.0.0.1:25060"
		echo "relay_ip = 127.0.0.1"
		echo "forwarding = userspace"
		echo "[Dispatcher]"
		echo "listen = 127.0.0.1:25060"
		echo "[TLS]"
		echo "certs_path = $TMP/tls"
		printf '%s\n' "$@"
	} >"$file"
}

for daemon in media-dispatcher media-relay; do
	out=$("$BIN/$daemon" --help 2>&1); rc=$?
	check "$daemon --help exits 0 and lists --runtime-dir" \
		test $rc -eq 0 -a -n "$(echo "$out" | grep -e --runtime-dir)"
	out=$("$BIN/$daemon" --version 2>&1); rc=$?
	check "$daemon --version prints a version" test $rc -eq 0 -a -n "$(echo "$out" | grep -E '[0-9]+\.[0-9]+')"
	"$BIN/$daemon" --bogus >/dev/null 2>&1; rc=$?
	check "$daemon rejects an unknown option with status 1" test $rc -eq 1
done

# expect_config_error NAME EXPECTED-REGEX FILE: the daemon must refuse to start
# with status 1 and one error line matching the regex.
expect_config_error() {
	local name=$1 want=$2 file=$3 daemon out rc errors
	for daemon in media-dispatcher media-relay; do
		out=$("$BIN/$daemon" --no-fork --config-file "$file" --runtime-dir "$TMP/run" 2>&1); rc=$?
		errors=$(echo "$out" | grep -c 'ERROR')
		if [ $rc -eq 1 ] && [ "$errors" -eq 1 ] && echo "$out" | grep 'ERROR' | grep -qE "$want"; then
			ok "$daemon: $name"
		else
			not_ok "$daemon: $name (rc=$rc, output: $out)"
		fi
	done
}

expect_config_error "missing config file names the file" \
	"$TMP/absent.ini" "$TMP/absent.ini"

write_config "$TMP/syntax.ini" "[Relay" "port_range = 50000:60000"
expect_config_error "syntax error names file:line" "syntax.ini:9" "$TMP/syntax.ini"

write_config "$TMP/range.ini" "[Relay]" "port_range = 50001:60000"
expect_config_error "odd port range names file:line and option" \
	"range.ini:10.*port_range" "$TMP/range.ini"

write_config "$TMP/range2.ini" "[Relay]" "port_range = 60000:50000"
expect_config_error "reversed port range names file:line" "range2.ini:10.*port_range" "$TMP/range2.ini"

write_config "$TMP/bool.ini" "[Dispatcher]" "management_use_tls = perhaps"
expect_config_error "bad boolean names file:line and option" \
	"bool.ini:10.*management_use_tls" "$TMP/bool.ini"

write_config "$TMP/nocerts.ini"
sed -i "s|certs_path = .*|certs_path = $TMP/no-such-dir|" "$TMP/nocerts.ini"
expect_config_error "missing certificates name the file" "no-such-dir" "$TMP/nocerts.ini"

# Unknown section and option: a warning with file:line, and the daemon runs.
write_config "$TMP/unknown.ini" "[ThorNetwork]" "domain = example.com" "[Relay]" "frobnicate = 1"
for daemon in media-dispatcher media-relay; do
	log="$TMP/$daemon-unknown.log"
	"$BIN/$daemon" --no-fork --config-file "$TMP/unknown.ini" --runtime-dir "$TMP/run-$daemon" \
		>"$log" 2>&1 &
	pid=$!
	at_exit "stop_pid $pid"
	pidfile="$TMP/run-$daemon/${daemon#media-}.pid"
	if wait_for 5 test -s "$pidfile" && [ "$(cat "$pidfile")" = "$pid" ]; then
		ok "$daemon starts in the foreground and writes $pidfile"
	else
		not_ok "$daemon starts in the foreground (log: $(cat "$log"))"
	fi
	check "$daemon warns about [ThorNetwork] at unknown.ini:9" grep -qE 'WARNING.*unknown.ini:9' "$log"
	check "$daemon warns about frobnicate at unknown.ini:12" grep -qE 'WARNING.*unknown.ini:12.*frobnicate' "$log"
	kill -TERM "$pid"
	wait_for 5 process_gone "$pid"
	wait "$pid"; rc=$?
	check "$daemon exits 0 on SIGTERM" test $rc -eq 0
	check "$daemon removes its pid file on exit" test ! -e "$pidfile"
done

# --config-dir DIR reads DIR/config.ini.
mkdir -p "$TMP/confdir"
write_config "$TMP/confdir/config.ini" "[Relay]" "port_range = 7:9"
expect_config_error "--config-dir reads DIR/config.ini" "confdir/config.ini:10" "$TMP/confdir/config.ini"
out=$("$BIN/media-relay" --no-fork --config-dir "$TMP/confdir" --runtime-dir "$TMP/run" 2>&1)
check "media-relay --config-dir DIR uses DIR/config.ini" grep -q 'confdir/config.ini:10' <<<"$out"

# Detached start: the starting command returns 0 once the daemon is up.
write_config "$TMP/good.ini"
for daemon in media-dispatcher media-relay; do
	run="$TMP/bg-$daemon"
	"$BIN/$daemon" --config-file "$TMP/good.ini" --runtime-dir "$run"; rc=$?
	pidfile="$run/${daemon#media-}.pid"
	pid=$(cat "$pidfile" 2>/dev/null || echo 0)
	check "$daemon detaches, returns 0 and leaves a live pid in $pidfile" \
		test $rc -eq 0 -a "$pid" -gt 0 -a -d "/proc/$pid"
	[ "$pid" -gt 0 ] && at_exit "kill -TERM $pid 2>/dev/null"
	"$BIN/$daemon" --config-file "$TMP/good.ini" --runtime-dir "$run" 2>"$TMP/second.log"; rc=$?
	check "a second $daemon on the same pid file fails with status 1" test $rc -eq 1
	if [ "$pid" -gt 0 ]; then
		kill -TERM "$pid"
		check "detached $daemon exits on SIGTERM and removes its pid file" \
			wait_for 5 test ! -e "$pidfile" -a ! -d "/proc/$pid"
	fi
done

# Signals: relay HUP (no sessions -> exits), USR2 (restart keeping media);
# dispatcher HUP/USR1 (re-read files, keep running).
start_fg() {    # start_fg DAEMON LOG: sets $pid
	"$BIN/$1" --no-fork --config-file "$TMP/good.ini" --runtime-dir "$TMP/sig-$1" >"$2" 2>&1 &
	pid=$!
	at_exit "stop_pid $pid"
	wait_for 5 test -s "$TMP/sig-$1/${1#media-}.pid"
}

for sig in HUP USR2 INT; do
	start_fg media-relay "$TMP/relay-$sig.log"
	kill -"$sig" "$pid"
	if wait_for 5 process_gone "$pid"; then
		wait "$pid"; rc=$?
		check "media-relay with no sessions exits 0 on SIG$sig" test $rc -eq 0
	else
		not_ok "media-relay with no sessions exits on SIG$sig"
	fi
	check "media-relay logs what SIG$sig means" grep -qE 'SIG'"$sig"'|Interrupt' "$TMP/relay-$sig.log"
done

start_fg media-dispatcher "$TMP/dispatcher-sig.log"
kill -HUP "$pid"; kill -USR1 "$pid"
reloads_logged() { [ "$(grep -cE 'SIG(HUP|USR1): re-opening.*re-reading the TLS' "$TMP/dispatcher-sig.log")" -eq 2 ]; }
check "media-dispatcher re-reads its files on SIGHUP and SIGUSR1 and keeps running" \
	wait_for 5 reloads_logged
check "media-dispatcher is still running after HUP/USR1" kill -0 "$pid"
kill -TERM "$pid"
wait_for 5 process_gone "$pid"; wait "$pid"; rc=$?
check "media-dispatcher exits 0 on SIGTERM" test $rc -eq 0

tap_done
