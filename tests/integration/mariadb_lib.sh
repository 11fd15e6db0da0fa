# A private, throwaway MariaDB server for the integration tests (sourced
# after lib.sh and control_lib.sh, not run), as ../shared/docs/SERVICES.md describes it: a
# datadir in $TMP, TCP on a free 127.0.0.1 port plus a UNIX socket, root
# without a password over the socket, stopped by PID (never the system
# service). The server can be stopped and started again on the same datadir
# and port, to test what clients do while it is away.
# shellcheck shell=bash

MDB_DIR=$TMP/mariadb
MDB_SOCK=$MDB_DIR/mysqld.sock
MDB_LOG=$MDB_DIR/error.log
MDB_PORT=""
MDB_PID=""
MDB_SBIN=${MDB_SBIN:-/usr/sbin}
_mdb_cleanup_set=""

# mdb_missing: prints what is missing to run a private server; false when
# nothing is.
mdb_missing() {
	local t missing=""
	for t in "$MDB_SBIN/mariadbd" mariadb-install-db mariadb mariadb-admin; do
		command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
	done
	[ -n "$missing" ] || return 1
	echo "not installed:$missing (apt-get install mariadb-server mariadb-client)"
}

# As root, both mariadb-install-db and mariadbd need --user=root (mariadbd
# refuses to run as root without it).
_mdb_user_opt() { [ "$(id -u)" != 0 ] || echo --user=root; }

# mdb_start: the first time creates the datadir and picks the port; later
# calls restart the server on both. Returns once it answers a ping, or
# non-zero with the end of its error log on stderr.
mdb_start() {
	if [ ! -d "$MDB_DIR/data" ]; then
		mkdir -p "$MDB_DIR" || return 1
		# --no-defaults must come first, or /etc/mysql/my.cnf is read.
		mariadb-install-db --no-defaults --datadir="$MDB_DIR/data" \
			--auth-root-authentication-method=normal --skip-test-db \
			$(_mdb_user_opt) >"$MDB_DIR/install.log" 2>&1 || {
			tail -20 "$MDB_DIR/install.log" >&2
			return 1
		}
	fi
	[ -n "$MDB_PORT" ] || read -r MDB_PORT < <(free_ports 1)
	if [ -z "$_mdb_cleanup_set" ]; then
		at_exit mdb_stop
		_mdb_cleanup_set=1
	fi
	"$MDB_SBIN/mariadbd" --no-defaults --datadir="$MDB_DIR/data" --socket="$MDB_SOCK" \
		--pid-file="$MDB_DIR/mysqld.pid" --bind-address=127.0.0.1 --port="$MDB_PORT" \
		--log-error="$MDB_LOG" --innodb-buffer-pool-size=16M --skip-name-resolve \
		$(_mdb_user_opt) >>"$MDB_DIR/stdout.log" 2>&1 &
	MDB_PID=$!
	wait_for 30 _mdb_up_or_dead
	if ! kill -0 "$MDB_PID" 2>/dev/null || ! _mdb_ping; then
		echo "mariadbd did not come up:" >&2
		tail -20 "$MDB_LOG" >&2
		mdb_stop
		return 1
	fi
}

_mdb_ping() {
	mariadb-admin --no-defaults --socket="$MDB_SOCK" -uroot ping >/dev/null 2>&1
}
_mdb_up_or_dead() { _mdb_ping || ! kill -0 "$MDB_PID" 2>/dev/null; }

# mdb_stop [SIGNAL]: TERM by default (a clean shutdown), KILL for a crash;
# waits until the process is gone (KILL after 20 s).
mdb_stop() {
	local sig=${1:-TERM}
	[ -n "$MDB_PID" ] || return 0
	kill "-$sig" "$MDB_PID" 2>/dev/null
	wait_for 20 process_gone "$MDB_PID" || kill -KILL "$MDB_PID" 2>/dev/null
	wait "$MDB_PID" 2>/dev/null
	MDB_PID=""
}

# mdb_root SQL [DATABASE]: runs SQL as root over the socket; rows go to
# stdout tab-separated, without column names.
mdb_root() {
	mariadb --no-defaults --socket="$MDB_SOCK" -uroot -N -B -e "$1" ${2:+"$2"}
}

# mdb_create_user NAME PASSWORD GRANTS DATABASE: one account for socket
# logins (@localhost) and one for TCP from 127.0.0.1 (--skip-name-resolve).
mdb_create_user() {
	local name=$1 pw=$2 grants=$3 db=$4 host sql=""
	for host in localhost 127.0.0.1; do
		sql="$sql CREATE USER '$name'@'$host' IDENTIFIED BY '$pw';"
		sql="$sql GRANT $grants ON \`$db\`.* TO '$name'@'$host';"
	done
	mdb_root "$sql"
}
