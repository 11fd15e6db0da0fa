#!/usr/bin/env bash
# The database accounting backend (PROTOCOL.md 5.1, D15, issue 6) against a
# private mariadbd, through the real dispatcher and relay: answered calls
# become one row each in a table the dispatcher creates (default and custom
# names, over TCP and over the UNIX socket) whose info blob is the record;
# a user without CREATE gets the reason and the CREATE TABLE statement in
# the log while records stay spooled, and they arrive once an administrator
# runs that statement; a server killed and restarted on the same datadir
# loses and duplicates nothing. A record delivered twice (acct_deliver)
# stays one row, in our InnoDB table and in an upstream-style MyISAM table
# whose unique key a NULL to_tag defeats.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
. "$(dirname "$0")/accounting_lib.sh"
. "$(dirname "$0")/mariadb_lib.sh"

ACCT_DELIVER=$MP_BUILD/tests/helpers/acct_deliver
DB=mediaproxy
# "@" and "/" in the password: the dburi carries it percent-encoded.
DB_PW='mp@sec/ret'
DB_PW_URI='mp%40sec%2Fret'

if why=$(mdb_missing); then
	skip "database accounting against a private MariaDB" "$why"
	tap_done
fi
if [ ! -x "$ACCT_DELIVER" ]; then
	echo "Bail out! $ACCT_DELIVER is not built (make all)"
	exit 1
fi
if ! mdb_start; then
	not_ok "a private mariadbd starts (see $MDB_LOG)"
	tap_done
fi
ok "a private mariadbd answers on 127.0.0.1:$MDB_PORT and $MDB_SOCK"
mdb_root "CREATE DATABASE $DB" &&
	mdb_create_user mediaproxy "$DB_PW" "CREATE, ALTER, INSERT, SELECT" $DB &&
	mdb_create_user mp_nocreate nc-secret "INSERT, SELECT" $DB
check "database $DB, a user with the documented grants and one without CREATE" test $? = 0

DBURI_TCP="mysql://mediaproxy:$DB_PW_URI@127.0.0.1:$MDB_PORT/$DB"
DBURI_SOCK="mysql://mediaproxy:$DB_PW_URI@/$DB?unix_socket=$MDB_SOCK"

# --- helpers ------------------------------------------------------------------
# db_rows TABLE CALL-ID [CALLID-COLUMN]: rows of that call.
db_rows() { mdb_root "SELECT COUNT(*) FROM \`$1\` WHERE \`${3:-call_id}\` = '$2'" $DB; }

# db_has N TABLE CALLID-COLUMN CALL-ID...: each call has exactly N rows.
db_has() {
	local n=$1 table=$2 col=$3 cid
	shift 3
	for cid in "$@"; do [ "$(db_rows "$table" "$cid" "$col" 2>/dev/null)" = "$n" ] || return 1; done
}

# db_counts TABLE CALLID-COLUMN CALL-ID...: "cid=N ..." for the TAP comments.
db_counts() {
	local table=$1 col=$2 cid out=""
	shift 2
	for cid in "$@"; do out="$out $cid=$(db_rows "$table" "$cid" "$col" 2>/dev/null)"; done
	echo "${out# }"
}

# db_row_matches TABLE CALL-ID CALLID-COL FROMTAG-COL TOTAG-COL INFO-COL: the
# row's info blob, parsed as JSON, equals the call's record (the same record
# the jsonl backend wrote), carries the relay's real counters, and the tag
# columns hold the record's tags.
db_row_matches() {
	local table=$1 cid=$2 row
	row=$(mdb_root "SELECT \`$4\`, IFNULL(\`$5\`, '<NULL>'), HEX(\`$6\`) FROM \`$table\`
		WHERE \`$3\` = '$cid'" $DB) || return 1
	"$PY" - "$row" "$(jsonl_record "$cid")" <<'EOF'
import json, sys
rows = sys.argv[1].splitlines()
if len(rows) != 1:
    print("# %d rows" % len(rows)); sys.exit(1)
ftag, ttag, info = rows[0].split("\t")
blob = json.loads(bytes.fromhex(info).decode())
rec = json.loads(sys.argv[2])
if blob != rec:
    print("# stored %s\n# record %s" % (blob, rec)); sys.exit(1)
s = blob["streams"][0]
if (s["caller_packets"], s["callee_packets"]) != (20, 20):
    print("# not the relay's counters: %s" % s); sys.exit(1)
if (ftag, ttag) != (rec["from_tag"], rec["to_tag"] or "<NULL>"):
    print("# tags %s/%s, record %s/%s" % (ftag, ttag, rec["from_tag"], rec["to_tag"])); sys.exit(1)
EOF
}

# db_dispatcher SPOOL-NAME [Database]-LINE...: restarts the dispatcher with
# jsonl and database accounting, its own spool, and these [Database] lines.
db_dispatcher() {
	local spool=$1
	shift
	stop_daemon d1
	write_dispatcher_conf "$TMP/d1.ini" "$ACCT_PORT" "$ACCT_MGMT" \
		"management_use_tls = no" "accounting = jsonl, database" \
		"accounting_file = $ACCT_FILE" "accounting_spool = $TMP/$spool" \
		"[Database]" "$@"
	acct_start_dispatcher
}

log_count() { grep -cE -- "$1" "$ACCT_LOG"; }
# lacks NEEDLE TEXT
lacks() { ! grep -qF -- "$1" <<<"$2"; }
pending_is() { [ "$(acct_pending database)" = "$1" ]; }

# --- TCP, default names: the table is created --------------------------------
if ! acct_start_daemons "accounting = jsonl, database" "[Database]" "dburi = $DBURI_TCP"; then
	not_ok "dispatcher and relay come up with database accounting ($(tail -3 "$ACCT_LOG"))"
	tap_done
fi
ok "dispatcher and relay come up with accounting = jsonl, database over TCP"
acct_call db-tcp-1 "7:1" && acct_call db-tcp-2 "7:2"
check "two answered calls through dispatcher and relay" test $? = 0
check "each arrives as exactly one row in media_sessions" \
	wait_for 15 db_has 1 media_sessions call_id db-tcp-1 db-tcp-2
echo "# rows per call: $(db_counts media_sessions call_id db-tcp-1 db-tcp-2)"
check "the dispatcher logs creating the table" \
	log_has "$ACCT_LOG" 'database: created table `media_sessions` in database mediaproxy on 127\.0\.0\.1'
ddl=$(mdb_root "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$DB'
	AND TABLE_NAME = 'media_sessions';
	SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS
	WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 'media_sessions' AND NON_UNIQUE = 0
	GROUP BY INDEX_NAME ORDER BY INDEX_NAME;
	SELECT GROUP_CONCAT(CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE, ' ', IS_NULLABLE)
	ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS
	WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 'media_sessions'" | tr '\n' '|')
check "the table is D15's: InnoDB, id key, UNIQUE (call_id, from_tag) ($ddl)" test "$ddl" = \
	"InnoDB|call_id,from_tag|id|id int(11) NO,call_id varchar(255) NO,from_tag varchar(64) NO,to_tag varchar(64) YES,info mediumblob YES|"
check "the stored info blob equals the record, tags in their columns" \
	db_row_matches media_sessions db-tcp-1 call_id from_tag to_tag info
check "the password appears nowhere in the dispatcher log" \
	lacks "$DB_PW" "$(cat "$ACCT_LOG")"
check "... not even percent-encoded" lacks "$DB_PW_URI" "$(cat "$ACCT_LOG")"

# --- UNIX socket, custom table and column names -------------------------------
db_dispatcher spool-sock "dburi = $DBURI_SOCK" "sessions_table = acct_legs" \
	"callid_column = cid" "fromtag_column = ftag" "totag_column = ttag" \
	"info_column = stats\$json"
check "the dispatcher restarts with a unix_socket dburi and custom names" test $? = 0
acct_call db-sock-1
check "the call arrives as one row in acct_legs over the UNIX socket" \
	wait_for 15 db_has 1 acct_legs cid db-sock-1
echo "# rows per call: $(db_counts acct_legs cid db-sock-1)"
cols=$(mdb_root "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION)
	FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 'acct_legs'")
check "acct_legs has the configured columns ($cols)" test "$cols" = 'id,cid,ftag,ttag,stats$json'
check "its info blob equals the record" db_row_matches acct_legs db-sock-1 cid ftag ttag 'stats$json'
check "the log names the socket" log_has "$ACCT_LOG" "connected to database $DB on unix:$MDB_SOCK as mediaproxy"
check "nothing of it went to media_sessions" test "$(db_rows media_sessions db-sock-1)" = 0

# --- a user without CREATE: the DDL is logged, records stay spooled -----------
advice='cannot be created: CREATE command denied to user .mp_nocreate.*an administrator runs: CREATE TABLE IF NOT EXISTS `locked_legs`'
db_dispatcher spool-nocreate "dburi = mysql://mp_nocreate:nc-secret@127.0.0.1:$MDB_PORT/$DB" \
	"sessions_table = locked_legs"
check "the dispatcher restarts with a user lacking CREATE" test $? = 0
for i in 1 2 3; do acct_call "db-nc-$i"; done
check "the reason and the CREATE TABLE statement are logged" wait_for 10 log_has "$ACCT_LOG" "$advice"
check "the three records are pending for the database backend" wait_for 10 pending_is 3
check "... and delivered to jsonl meanwhile" wait_for 5 jsonl_has 1 db-nc-1 db-nc-2 db-nc-3
sleep 4 # the engine retries after 1 s, 2 s, ...: the advice must not repeat
n_advice=$(log_count "$advice")
n_retry=$(log_count 'accounting database: call db-nc-1 not delivered yet, will retry: create table `locked_legs`: CREATE command denied')
check "the statement is logged once, not per attempt ($n_advice time(s))" test "$n_advice" = 1
check "the engine logs the backend's reason ($n_retry)" test "$n_retry" -ge 1
last=$(acct_status | "$PY" -c '
import json, sys
print([o for o in map(json.loads, filter(str.strip, sys.stdin)) if o["backend"] == "database"][0]["last_error"])')
check "accounting shows why ($last)" grep -q 'create table `locked_legs`: CREATE command denied' <<<"$last"
check "no table appeared" test "$(mdb_root "SHOW TABLES LIKE 'locked\\_legs'" $DB)" = ""
echo "# pending while refused: $(acct_pending database); rows: none (no table)"
# The administrator runs exactly the logged statement.
stmt=$(grep -E -- "$advice" "$ACCT_LOG" | tail -1 | sed 's/.*an administrator runs: //')
mdb_root "$stmt" $DB
check "the logged statement runs as is for root ($stmt)" test $? = 0
check "after that every spooled record arrives" wait_for 40 db_has 1 locked_legs call_id db-nc-1 db-nc-2 db-nc-3
echo "# rows per call after the admin created the table: $(db_counts locked_legs call_id db-nc-1 db-nc-2 db-nc-3)"
check "... and nothing is pending" wait_for 5 pending_is 0
check "the blob of a record that waited equals it" \
	db_row_matches locked_legs db-nc-2 call_id from_tag to_tag info

# --- the server is killed for a while and restarted ---------------------------
db_dispatcher spool-outage "dburi = $DBURI_TCP"
check "the dispatcher restarts on media_sessions over TCP" test $? = 0
acct_call db-out-0
check "a call before the outage is stored" wait_for 15 db_has 1 media_sessions call_id db-out-0
connects=$(log_count 'database: connected to')
mdb_stop KILL
ok "mariadbd killed (SIGKILL, pid gone)"
for i in 1 2 3 4; do acct_call "db-out-$i"; done
check "calls during the outage wait in the spool" wait_for 10 pending_is 4
echo "# pending during the outage: $(acct_pending database)"
last=$(acct_status | "$PY" -c '
import json, sys
print([o for o in map(json.loads, filter(str.strip, sys.stdin)) if o["backend"] == "database"][0]["last_error"])')
check "accounting shows the connect error ($last)" \
	grep -qE "connect to database $DB on 127\.0\.0\.1:$MDB_PORT as mediaproxy: Can't connect" <<<"$last"
sleep 2
if mdb_start; then ok "mariadbd restarted on the same datadir and port"; else not_ok "mariadbd restarted"; fi
check "after the restart every record arrives" \
	wait_for 60 db_has 1 media_sessions call_id db-out-1 db-out-2 db-out-3 db-out-4
check "... nothing is pending" wait_for 5 pending_is 0
counts=$(db_counts media_sessions call_id db-out-0 db-out-1 db-out-2 db-out-3 db-out-4)
echo "# rows per call after the outage: $counts"
check "every call of the outage test has exactly one row" \
	test "$counts" = "db-out-0=1 db-out-1=1 db-out-2=1 db-out-3=1 db-out-4=1"
check "the backend reconnected" test "$(log_count 'database: connected to')" -gt "$connects"
check "the earlier rows are intact (one each)" db_has 1 media_sessions call_id db-tcp-1 db-tcp-2
stop_daemon d1

# --- a record delivered twice ------------------------------------------------
# Records as the dispatcher spooled them, one with to_tag null as upstream
# tables hold for calls answered without a To tag.
"$PY" - "$(jsonl_record db-tcp-1)" "$(jsonl_record db-tcp-2)" >"$TMP/twice.jsonl" <<'EOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
a["call_id"], a["to_tag"] = "db-twice-null", None
b["call_id"] = "db-twice-tag"
print(json.dumps(a)); print(json.dumps(b))
EOF
write_deliver_conf() {
	printf '[Dispatcher]\naccounting = database\n[Database]\ndburi = %s\nsessions_table = %s\n' \
		"$DBURI_TCP" "$1" >"$TMP/$1.ini"
}
deliver_twice() {
	local out
	out=$("$ACCT_DELIVER" "$TMP/$1.ini" database --attempts 3 <"$TMP/twice.jsonl" \
		2>>"$TMP/deliver.log") && out=$out$'\n'$("$ACCT_DELIVER" "$TMP/$1.ini" database \
		--attempts 3 <"$TMP/twice.jsonl" 2>>"$TMP/deliver.log") || { echo "# $out"; return 1; }
	[ "$(grep -c '^delivered ' <<<"$out")" = 4 ] || { echo "# $out"; return 1; }
}

write_deliver_conf media_sessions
check "acct_deliver hands both records to our table twice" deliver_twice media_sessions
counts=$(db_counts media_sessions call_id db-twice-null db-twice-tag)
echo "# rows per call, InnoDB table, each delivered twice: $counts"
check "INSERT IGNORE keeps one row each" test "$counts" = "db-twice-null=1 db-twice-tag=1"
check "the second delivery is logged as already stored" \
	log_has "$TMP/deliver.log" 'call db-twice-null from_tag ft-db-tcp-1 is already in `media_sessions`'

mdb_root "CREATE TABLE upstream_legs (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
	call_id VARCHAR(255) NOT NULL, from_tag VARCHAR(64) NOT NULL, to_tag VARCHAR(64) NULL,
	info MEDIUMBLOB, UNIQUE KEY call_leg (call_id, from_tag, to_tag)) ENGINE=MyISAM" $DB
check "an upstream-style MyISAM table (unique on call_id, from_tag, to_tag)" test $? = 0
write_deliver_conf upstream_legs
check "acct_deliver hands both records to it twice" deliver_twice upstream_legs
counts=$(db_counts upstream_legs call_id db-twice-null db-twice-tag)
echo "# rows per call, upstream MyISAM table, each delivered twice: $counts"
check "looking up before inserting keeps one row each, NULL to_tag included" \
	test "$counts" = "db-twice-null=1 db-twice-tag=1"
check "the backend said it would look records up (D15)" \
	log_has "$TMP/deliver.log" 'table `upstream_legs` has no unique key on \(call id, from tag\) alone'
check "the table was left as it was (MyISAM, not recreated)" test "$(mdb_root "SELECT ENGINE FROM
	information_schema.TABLES WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 'upstream_legs'")" = MyISAM
# Control: the upstream key alone lets a second NULL-to_tag row in, so the
# single row above is the lookup's doing.
mdb_root "INSERT INTO upstream_legs (call_id, from_tag, to_tag, info)
	SELECT call_id, from_tag, to_tag, info FROM upstream_legs WHERE call_id = 'db-twice-null'" $DB
check "(control: a plain INSERT of the same NULL-to_tag leg does duplicate it)" \
	test "$(db_rows upstream_legs db-twice-null)" = 2

# --- configuration errors are caught before any connection --------------------
printf '[Dispatcher]\naccounting = database\n[Database]\ndburi = postgres://mp:%s@db/x\n' \
	"$DB_PW_URI" >"$TMP/bad.ini"
out=$("$ACCT_DELIVER" "$TMP/bad.ini" database </dev/null 2>&1)
rc=$?
check "a postgres:// dburi is refused at open ($out)" \
	test "$rc" = 2 -a -n "$(grep -F 'scheme "postgres" is not supported' <<<"$out")"
check "... without quoting the password" lacks "$DB_PW_URI" "$out"

check "no sanitizer report in the daemon logs" sanitizer_clean
tap_done
