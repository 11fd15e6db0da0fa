/* The `database` accounting backend (PROTOCOL.md 5.1, D15): one row per
 * record in [Database] sessions_table, through libmariadb. The connection
 * is made lazily on the delivery thread and dropped on any server error, so
 * the next attempt starts clean: connect, make sure the table exists, see
 * which unique keys it has, prepare the statements. A record handed over
 * twice (a retry after a lost reply) never becomes a second row. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "backend.h"
#include "database_uri.h"
#include "log.h"

#define DB_CONNECT_TIMEOUT 3u /* s */
#define DB_IO_TIMEOUT 5u      /* s, each read or write on the connection */
#define DB_ADVICE_INTERVAL 60 /* s between two logs of the CREATE TABLE advice */
#define DB_IDLE_PING 60       /* s idle after which the connection is pinged first */
#define DB_NAME_MAX 64        /* MariaDB's limit on a table or column name */
#define DB_SQL_MAX 1024

enum { COL_CALLID, COL_FROMTAG, COL_TOTAG, COL_INFO, COL_COUNT };

static const char *const col_options[COL_COUNT] = {
	"callid_column", "fromtag_column", "totag_column", "info_column",
};

struct db_state {
	struct database_uri uri;
	char where[512]; /* database_uri_describe(): no password */
	char table[DB_NAME_MAX + 1];
	char col[COL_COUNT][DB_NAME_MAX + 1];
	char create_sql[DB_SQL_MAX];
	MYSQL *conn;          /* NULL until connected */
	MYSQL_STMT *insert;   /* INSERT IGNORE, or INSERT after lookup */
	MYSQL_STMT *lookup;   /* only when the table lacks UNIQUE (call_id, from_tag) */
	time_t advised_at;    /* CLOCK_MONOTONIC s of the last CREATE TABLE advice */
	time_t used_at;       /* CLOCK_MONOTONIC s of the last delivery */
	bool advised;
};

/* [Database] names are pasted into SQL (quoted with backticks), so they
 * are held to what config.c accepts: letters, digits, _ and $. */
static bool db_ident_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= DB_NAME_MAX &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789_$") == n;
}

static int db_copy_name(char *dst, const char *src, const char *option, char *err,
			size_t errlen)
{
	if (!src || !db_ident_ok(src)) {
		snprintf(err, errlen, "[Database] %s: \"%.64s\" is not a plain SQL name "
			 "(1-%d letters, digits, _ or $)", option, src ? src : "",
			 DB_NAME_MAX);
		return -1;
	}
	strcpy(dst, src);
	return 0;
}

/* Table and column names from cfg; columns must differ from each other
 * and from the `id` key the CREATE TABLE adds. */
static int db_names(struct db_state *st, const struct config_database *db, char *err,
		    size_t errlen)
{
	const char *const cols[COL_COUNT] = {
		db->callid_column, db->fromtag_column, db->totag_column, db->info_column,
	};

	if (db_copy_name(st->table, db->sessions_table, "sessions_table", err, errlen))
		return -1;
	for (int i = 0; i < COL_COUNT; i++) {
		if (db_copy_name(st->col[i], cols[i], col_options[i], err, errlen))
			return -1;
		if (!strcasecmp(st->col[i], "id")) {
			snprintf(err, errlen, "[Database] %s: \"id\" is the table's own "
				 "key column; choose another name", col_options[i]);
			return -1;
		}
		for (int j = 0; j < i; j++)
			if (!strcasecmp(st->col[i], st->col[j])) {
				snprintf(err, errlen, "[Database] %s and %s are both \"%s\"",
					 col_options[j], col_options[i], st->col[i]);
				return -1;
			}
	}
	return 0;
}

/* D15's layout with the configured names, on one line so the operator can
 * paste it from the log. Binary collation: Call-IDs compare byte by byte
 * (RFC 3261 20.8), so two calls differing in case stay two rows. */
static void db_build_create(struct db_state *st)
{
	snprintf(st->create_sql, sizeof(st->create_sql),
		 "CREATE TABLE IF NOT EXISTS `%s` (`id` INT NOT NULL AUTO_INCREMENT "
		 "PRIMARY KEY, `%s` VARCHAR(255) NOT NULL, `%s` VARCHAR(64) NOT NULL, "
		 "`%s` VARCHAR(64) NULL, `%s` MEDIUMBLOB, UNIQUE KEY `call_leg` "
		 "(`%s`, `%s`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		 st->table, st->col[COL_CALLID], st->col[COL_FROMTAG], st->col[COL_TOTAG],
		 st->col[COL_INFO], st->col[COL_CALLID], st->col[COL_FROMTAG]);
}

static time_t db_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void db_disconnect(struct db_state *st)
{
	if (st->lookup)
		mysql_stmt_close(st->lookup);
	if (st->insert)
		mysql_stmt_close(st->insert);
	if (st->conn)
		mysql_close(st->conn);
	st->lookup = st->insert = NULL;
	st->conn = NULL;
}

/* Formats "<what>: <server message>" into err, drops the connection (the
 * next attempt reconnects and re-checks the table) and returns -EAGAIN. */
static int db_fail(struct db_state *st, const char *what, const char *msg,
		   char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", what, msg);
	db_disconnect(st);
	return -EAGAIN;
}

static int db_connect(struct db_state *st, char *err, size_t errlen)
{
	const struct database_uri *u = &st->uri;
	unsigned int connect_timeout = DB_CONNECT_TIMEOUT, io_timeout = DB_IO_TIMEOUT;
	my_bool reconnect = 0;
	char what[600];
	MYSQL *m = mysql_init(NULL);

	if (!m) {
		snprintf(err, errlen, "connect to %s: out of memory", st->where);
		return -EAGAIN;
	}
	/* No auto-reconnect: a silent reconnect would skip the table check
	 * and lose the prepared statements behind our back. */
	mysql_optionsv(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
	mysql_optionsv(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
	mysql_optionsv(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
	mysql_optionsv(m, MYSQL_OPT_RECONNECT, &reconnect);
	mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	st->conn = m;
	if (!mysql_real_connect(m, u->host[0] ? u->host : NULL, u->user[0] ? u->user : NULL,
				u->password, u->database, u->port,
				u->unix_socket[0] ? u->unix_socket : NULL, 0)) {
		snprintf(what, sizeof(what), "connect to %s", st->where);
		return db_fail(st, what, mysql_error(m), err, errlen);
	}
	return 0;
}

/* Runs a query that returns rows; *res is the stored result. */
static int db_select(struct db_state *st, const char *sql, const char *what,
		     MYSQL_RES **res, char *err, size_t errlen)
{
	if (mysql_query(st->conn, sql) || !(*res = mysql_store_result(st->conn)))
		return db_fail(st, what, mysql_error(st->conn), err, errlen);
	return 0;
}

static int db_table_exists(struct db_state *st, bool *exists, char *err, size_t errlen)
{
	char sql[DB_SQL_MAX];
	MYSQL_RES *res;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT 1 FROM information_schema.TABLES WHERE "
		 "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s'", st->table);
	if ((rc = db_select(st, sql, "look for the table", &res, err, errlen)))
		return rc;
	*exists = mysql_num_rows(res) > 0;
	mysql_free_result(res);
	return 0;
}

/* The operator's half of a refused CREATE: the reason and the statement,
 * at most once a minute however many records are waiting. */
static void db_advise(struct db_state *st, const char *why)
{
	time_t now = db_now();

	if (st->advised && now - st->advised_at < DB_ADVICE_INTERVAL)
		return;
	st->advised = true;
	st->advised_at = now;
	log_error("database: table `%s` does not exist in %s and cannot be created: %s; "
		  "accounting records stay spooled until an administrator runs: %s",
		  st->table, st->where, why, st->create_sql);
}

static int db_create_table(struct db_state *st, char *err, size_t errlen)
{
	char what[DB_NAME_MAX + 64];

	if (!mysql_query(st->conn, st->create_sql)) {
		log_info("database: created table `%s` in %s", st->table, st->where);
		return 0;
	}
	db_advise(st, mysql_error(st->conn));
	snprintf(what, sizeof(what), "create table `%s`", st->table);
	return db_fail(st, what, mysql_error(st->conn), err, errlen);
}

/* One unique index, gathered row by row from information_schema. */
struct db_index {
	const char *name;
	int columns;
	bool callid, fromtag, prefix;
};

static bool db_index_is_call_leg(const struct db_index *ix)
{
	return ix->name && ix->columns == 2 && ix->callid && ix->fromtag && !ix->prefix;
}

/* Whether some unique key (the primary one included) is on exactly
 * (call_id, from_tag), in either order and on whole columns: then INSERT
 * IGNORE alone keeps a retried record from becoming a second row. */
static int db_has_call_leg_key(struct db_state *st, bool *yes, char *err, size_t errlen)
{
	char sql[DB_SQL_MAX];
	struct db_index ix = { 0 };
	MYSQL_RES *res;
	MYSQL_ROW row;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT INDEX_NAME, COLUMN_NAME, SUB_PART FROM "
		 "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND "
		 "TABLE_NAME = '%s' AND NON_UNIQUE = 0 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
		 st->table);
	if ((rc = db_select(st, sql, "read the table's keys", &res, err, errlen)))
		return rc;
	*yes = false;
	while ((row = mysql_fetch_row(res)) && row[0] && row[1]) {
		if (!ix.name || strcmp(ix.name, row[0])) {
			*yes |= db_index_is_call_leg(&ix);
			ix = (struct db_index){ .name = row[0] };
		}
		ix.columns++;
		ix.callid |= !strcasecmp(row[1], st->col[COL_CALLID]);
		ix.fromtag |= !strcasecmp(row[1], st->col[COL_FROMTAG]);
		ix.prefix |= row[2] != NULL;
	}
	*yes |= db_index_is_call_leg(&ix);
	mysql_free_result(res);
	return 0;
}

static int db_prepare_one(struct db_state *st, MYSQL_STMT **out, const char *sql,
			  char *err, size_t errlen)
{
	*out = mysql_stmt_init(st->conn);
	if (!*out)
		return db_fail(st, "prepare", "out of memory", err, errlen);
	if (mysql_stmt_prepare(*out, sql, strlen(sql)))
		return db_fail(st, "prepare", mysql_stmt_error(*out), err, errlen);
	return 0;
}

/* With the call-leg key, INSERT IGNORE is the whole story (D15). Without
 * it (an upstream MyISAM table, unique on call_id, from_tag, to_tag, which
 * a NULL to_tag defeats), look the call leg up first and insert only when
 * absent; we are the only writer of our records. */
static int db_prepare(struct db_state *st, bool call_leg_key, char *err, size_t errlen)
{
	char sql[DB_SQL_MAX];
	int rc;

	snprintf(sql, sizeof(sql), "INSERT %sINTO `%s` (`%s`, `%s`, `%s`, `%s`) "
		 "VALUES (?, ?, ?, ?)", call_leg_key ? "IGNORE " : "", st->table,
		 st->col[COL_CALLID], st->col[COL_FROMTAG], st->col[COL_TOTAG],
		 st->col[COL_INFO]);
	if ((rc = db_prepare_one(st, &st->insert, sql, err, errlen)) || call_leg_key)
		return rc;
	snprintf(sql, sizeof(sql), "SELECT 1 FROM `%s` WHERE `%s` = ? AND `%s` = ? LIMIT 1",
		 st->table, st->col[COL_CALLID], st->col[COL_FROMTAG]);
	return db_prepare_one(st, &st->lookup, sql, err, errlen);
}

/* Connected, table present, statements prepared; or -EAGAIN. */
static int db_ready(struct db_state *st, char *err, size_t errlen)
{
	bool exists, call_leg_key;
	int rc;

	/* The server (wait_timeout) or a firewall may have dropped a
	 * connection idle for long: find out now and start a fresh one,
	 * rather than fail the record and wait out a backoff. */
	if (st->conn && db_now() - st->used_at >= DB_IDLE_PING && mysql_ping(st->conn)) {
		log_info("database: connection to %s was closed while idle (%s); "
			 "reconnecting", st->where, mysql_error(st->conn));
		db_disconnect(st);
	}
	if (st->conn)
		return 0;
	if ((rc = db_connect(st, err, errlen)) ||
	    (rc = db_table_exists(st, &exists, err, errlen)))
		return rc;
	if (!exists && (rc = db_create_table(st, err, errlen)))
		return rc;
	if ((rc = db_has_call_leg_key(st, &call_leg_key, err, errlen)) ||
	    (rc = db_prepare(st, call_leg_key, err, errlen)))
		return rc;
	st->advised = false;
	log_info("database: connected to %s (%s); table `%s` %s", st->where,
		 mysql_get_host_info(st->conn), st->table,
		 call_leg_key ? "has a unique key on the call leg: INSERT IGNORE"
			      : "has no unique key on (call id, from tag) alone: "
				"each record is looked up before it is inserted (D15)");
	return 0;
}

static void db_bind_text(MYSQL_BIND *b, const char *s)
{
	if (!s) {
		b->buffer_type = MYSQL_TYPE_NULL;
		return;
	}
	b->buffer_type = MYSQL_TYPE_STRING;
	b->buffer = (void *)s;
	b->buffer_length = strlen(s);
}

/* Errors that come from this record's values, not from the server's
 * state: retrying cannot help, so the engine logs the record and moves on. */
static bool db_error_is_record(unsigned int code)
{
	switch (code) {
	case ER_BAD_NULL_ERROR:
	case ER_WARN_DATA_OUT_OF_RANGE:
	case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
	case ER_DATA_TOO_LONG:
		return true;
	default:
		return false;
	}
}

/* err names the statement and the table; the engine adds the call id. */
static int db_stmt_fail(struct db_state *st, MYSQL_STMT *stmt, const char *what,
			char *err, size_t errlen)
{
	unsigned int code = mysql_stmt_errno(stmt);
	char ctx[DB_NAME_MAX + 32];

	snprintf(ctx, sizeof(ctx), "%s `%s`", what, st->table);
	if (db_error_is_record(code)) {
		snprintf(err, errlen, "%s: %s", ctx, mysql_stmt_error(stmt));
		return -EINVAL;
	}
	if (code == ER_NET_PACKET_TOO_LARGE || code == CR_NET_PACKET_TOO_LARGE) {
		snprintf(err, errlen, "%s: %s (the server's max_allowed_packet is too small "
			 "for this record)", ctx, mysql_stmt_error(stmt));
		db_disconnect(st);
		return -EMSGSIZE;
	}
	return db_fail(st, ctx, mysql_stmt_error(stmt), err, errlen);
}

static int db_lookup(struct db_state *st, const struct accounting_record *rec,
		     bool *found, char *err, size_t errlen)
{
	MYSQL_BIND b[2];

	memset(b, 0, sizeof(b));
	db_bind_text(&b[0], rec->call_id);
	db_bind_text(&b[1], rec->from_tag);
	if (mysql_stmt_bind_param(st->lookup, b) || mysql_stmt_execute(st->lookup) ||
	    mysql_stmt_store_result(st->lookup))
		return db_stmt_fail(st, st->lookup, "look up the call in", err, errlen);
	*found = mysql_stmt_num_rows(st->lookup) > 0;
	mysql_stmt_free_result(st->lookup);
	return 0;
}

static int db_insert(struct db_state *st, const struct accounting_record *rec,
		     bool *stored, char *err, size_t errlen)
{
	MYSQL_BIND b[COL_COUNT];

	memset(b, 0, sizeof(b));
	db_bind_text(&b[COL_CALLID], rec->call_id);
	db_bind_text(&b[COL_FROMTAG], rec->from_tag);
	db_bind_text(&b[COL_TOTAG], rec->to_tag);
	b[COL_INFO].buffer_type = MYSQL_TYPE_BLOB;
	b[COL_INFO].buffer = (void *)rec->json;
	b[COL_INFO].buffer_length = rec->len;
	if (mysql_stmt_bind_param(st->insert, b) || mysql_stmt_execute(st->insert)) {
		/* Without the call-leg key a duplicate can only be our own row
		 * under the upstream key: already delivered. */
		if (st->lookup && mysql_stmt_errno(st->insert) == ER_DUP_ENTRY) {
			*stored = false;
			return 0;
		}
		return db_stmt_fail(st, st->insert, "insert into", err, errlen);
	}
	*stored = mysql_stmt_affected_rows(st->insert) > 0;
	return 0;
}

static int db_deliver(void *state, const struct accounting_record *rec, char *err,
		      size_t errlen)
{
	struct db_state *st = state;
	bool found = false, stored = false;
	int rc;

	if ((rc = db_ready(st, err, errlen)))
		return rc;
	st->used_at = db_now();
	if (st->lookup && (rc = db_lookup(st, rec, &found, err, errlen)))
		return rc;
	if (!found && (rc = db_insert(st, rec, &stored, err, errlen)))
		return rc;
	if (stored)
		log_debug("database: stored call %s from_tag %s in `%s`", rec->call_id,
			  rec->from_tag, st->table);
	else
		log_info("database: call %s from_tag %s is already in `%s`; not stored "
			 "again", rec->call_id, rec->from_tag, st->table);
	return 0;
}

/* HUP/USR1: start over on the next record, which also re-reads the
 * table's keys (an administrator may have added the call-leg key). */
static void db_reopen(void *state)
{
	db_disconnect(state);
}

static void db_close(void *state)
{
	struct db_state *st = state;

	if (!st)
		return;
	db_disconnect(st);
	explicit_bzero(st->uri.password, sizeof(st->uri.password));
	free(st);
	mysql_library_end();
}

/* Warnings about dburi settings that are accepted but do less than the
 * operator may think. */
static void db_warn_uri(const struct database_uri *u)
{
	if (u->ignored[0])
		log_warn("[Database] dburi: ignoring parameter(s) %s", u->ignored);
	if (u->port && !u->unix_socket[0] &&
	    (!u->host[0] || !strcasecmp(u->host, "localhost")))
		log_warn("[Database] dburi: host localhost means the UNIX socket, so "
			 "port %u is not used; write 127.0.0.1 to connect over TCP",
			 u->port);
}

int accounting_database_open(struct accounting_backend *b, const struct mp_config *cfg,
			     char *err, size_t errlen)
{
	char why[256];
	struct db_state *st = calloc(1, sizeof(*st));

	if (!st) {
		snprintf(err, errlen, "database accounting: out of memory");
		return -1;
	}
	if (database_uri_parse(cfg->database.dburi ? cfg->database.dburi : "", &st->uri,
			       why, sizeof(why))) {
		snprintf(err, errlen, "[Database] %s", why);
		goto fail;
	}
	if (db_names(st, &cfg->database, err, errlen))
		goto fail;
	db_build_create(st);
	database_uri_describe(&st->uri, st->where, sizeof(st->where));
	/* Here, on the starting thread: mysql_init() on the delivery thread
	 * would otherwise initialise the library there, unsynchronised. */
	if (mysql_library_init(0, NULL, NULL)) {
		snprintf(err, errlen, "database accounting: cannot initialise libmariadb");
		goto fail;
	}
	db_warn_uri(&st->uri);
	*b = (struct accounting_backend){
		.name = "database", .state = st, .deliver = db_deliver,
		.reopen = db_reopen, .close = db_close,
	};
	return 0;
fail:
	explicit_bzero(st->uri.password, sizeof(st->uri.password));
	free(st);
	return -1;
}
