/* database_uri_parse() and database_uri_describe(): [Database] dburi in
 * SQLObject's mysql:// form (PROTOCOL.md 5.1), TCP and UNIX-socket forms,
 * percent-decoding, and no password in any message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "database_uri.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct good_case {
	const char *name;
	const char *uri;
	const char *user, *password, *host;
	unsigned int port;
	const char *database, *unix_socket, *ignored;
};

static const struct good_case good_cases[] = {
	{ "upstream sample config", "mysql://mediaproxy:CHANGEME@localhost/mediaproxy",
	  "mediaproxy", "CHANGEME", "localhost", 0, "mediaproxy", "", "" },
	{ "TCP with a port", "mysql://mp:s3cret@127.0.0.1:3307/acct",
	  "mp", "s3cret", "127.0.0.1", 3307, "acct", "", "" },
	{ "DNS name, default port", "mysql://mp:pw@db-1.example.com/mediaproxy",
	  "mp", "pw", "db-1.example.com", 0, "mediaproxy", "", "" },
	{ "IPv6 loopback with port", "mysql://mp:pw@[::1]:3306/mediaproxy",
	  "mp", "pw", "::1", 3306, "mediaproxy", "", "" },
	{ "IPv6 without port", "mysql://mp:pw@[2001:db8::5]/mediaproxy",
	  "mp", "pw", "2001:db8::5", 0, "mediaproxy", "", "" },
	{ "percent-encoded user and password",
	  "mysql://media%20proxy:p%40ss%2Fw%3Ard%25@db/mediaproxy",
	  "media proxy", "p@ss/w:rd%", "db", 0, "mediaproxy", "", "" },
	{ "unescaped @ in the password: the last @ ends it",
	  "mysql://mp:p@ss@db/mediaproxy", "mp", "p@ss", "db", 0, "mediaproxy", "", "" },
	{ "colons in the password", "mysql://mp:a:b:c@db/x", "mp", "a:b:c", "db", 0,
	  "x", "", "" },
	{ "plus in the password stays a plus", "mysql://mp:a+b@db/x", "mp", "a+b",
	  "db", 0, "x", "", "" },
	{ "UNIX socket with host localhost",
	  "mysql://mp:pw@localhost/mediaproxy?unix_socket=/run/mysqld/mysqld.sock",
	  "mp", "pw", "localhost", 0, "mediaproxy", "/run/mysqld/mysqld.sock", "" },
	{ "UNIX socket without host",
	  "mysql://mp:pw@/mediaproxy?unix_socket=/tmp/mdb.X/mysqld.sock",
	  "mp", "pw", "", 0, "mediaproxy", "/tmp/mdb.X/mysqld.sock", "" },
	{ "socket path form-encoded", "mysql://mp:pw@/db?unix_socket=%2Ftmp%2Fmy+sql.sock",
	  "mp", "pw", "", 0, "db", "/tmp/my sql.sock", "" },
	{ "no host, no socket: libmariadb's default socket", "mysql://mp:pw@/db",
	  "mp", "pw", "", 0, "db", "", "" },
	{ "no user at all (SQLObject allows it)", "mysql://db.example.com/mediaproxy",
	  "", "", "db.example.com", 0, "mediaproxy", "", "" },
	{ "user without password", "mysql://mp@db/mediaproxy", "mp", "", "db", 0,
	  "mediaproxy", "", "" },
	{ "empty password", "mysql://mp:@db/mediaproxy", "mp", "", "db", 0,
	  "mediaproxy", "", "" },
	{ "mysql+mysqldb scheme", "mysql+mysqldb://mp:pw@db/x", "mp", "pw", "db", 0,
	  "x", "", "" },
	{ "scheme in capitals", "MySQL://mp:pw@db/x", "mp", "pw", "db", 0, "x", "", "" },
	{ "SQLObject options we ignore",
	  "mysql://mp:pw@db/x?charset=utf8&debug=1&&use_unicode=1", "mp", "pw", "db", 0,
	  "x", "", "charset,debug,use_unicode" },
	{ "socket and an ignored option",
	  "mysql://mp:pw@localhost/x?charset=utf8mb4&unix_socket=/s.sock&",
	  "mp", "pw", "localhost", 0, "x", "/s.sock", "charset" },
	{ "percent-encoded database name", "mysql://mp:pw@db/media%2Dproxy", "mp", "pw",
	  "db", 0, "media-proxy", "", "" },
	{ "highest port", "mysql://mp:pw@db:65535/x", "mp", "pw", "db", 65535, "x", "", "" },
};

static void test_good_uris(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good_cases); i++) {
		const struct good_case *c = &good_cases[i];
		struct database_uri u;
		char err[256] = "";
		int rc = database_uri_parse(c->uri, &u, err, sizeof(err));

		if (rc)
			fail_msg("%s: rc %d (%s)", c->name, rc, err);
		if (strcmp(u.user, c->user) || strcmp(u.password, c->password) ||
		    strcmp(u.host, c->host) || u.port != c->port ||
		    strcmp(u.database, c->database) || strcmp(u.unix_socket, c->unix_socket) ||
		    strcmp(u.ignored, c->ignored))
			fail_msg("%s: got user \"%s\" password \"%s\" host \"%s\" port %u "
				 "database \"%s\" socket \"%s\" ignored \"%s\"", c->name, u.user,
				 u.password, u.host, u.port, u.database, u.unix_socket, u.ignored);
	}
}

struct bad_case {
	const char *name;
	const char *uri;
	const char *want; /* a phrase the message must contain */
};

static const struct bad_case bad_cases[] = {
	{ "empty option", "", "empty" },
	{ "PostgreSQL URI", "postgres://mp:pw@db/mediaproxy", "\"postgres\" is not supported" },
	{ "SQLite URI", "sqlite:///var/lib/mp.db", "\"sqlite\" is not supported" },
	{ "scheme forgotten", "mediaproxy:pw@localhost/mediaproxy", "no scheme" },
	{ "no database", "mysql://mp:pw@db", "/database" },
	{ "empty database", "mysql://mp:pw@db/", "no database name" },
	{ "two path segments", "mysql://mp:pw@db/a/b", "has a \"/\"" },
	{ "port 0", "mysql://mp:pw@db:0/x", "port" },
	{ "port above 65535", "mysql://mp:pw@db:65536/x", "port" },
	{ "port with letters", "mysql://mp:pw@db:33x6/x", "port" },
	{ "empty port", "mysql://mp:pw@db:/x", "port" },
	{ "port without host", "mysql://mp:pw@:3306/x", "port without a host" },
	{ "IPv6 without brackets", "mysql://mp:pw@::1/x", "brackets" },
	{ "unclosed bracket", "mysql://mp:pw@[::1/x", "\"]\"" },
	{ "junk after the bracket", "mysql://mp:pw@[::1]x/x", "only \":port\"" },
	{ "brackets around a name", "mysql://mp:pw@[dbhost]/x", "not an IPv6" },
	{ "space in the host", "mysql://mp:pw@db host/x", "invalid character" },
	{ "bad escape in the password", "mysql://mp:p%zz@db/x", "escape in the password" },
	{ "truncated escape in the password", "mysql://mp:pw%4@db/x",
	  "escape in the password" },
	{ "encoded NUL in the password", "mysql://mp:p%00w@db/x", "%00" },
	{ "bad escape in the user", "mysql://m%g1:pw@db/x", "escape in the user name" },
	{ "bad escape in the database", "mysql://mp:pw@db/x%2", "escape in the database" },
	{ "password without user", "mysql://:pw@db/x", "password without a user" },
	{ "socket with a TCP host", "mysql://mp:pw@127.0.0.1/x?unix_socket=/s.sock",
	  "needs the host localhost" },
	{ "socket and a port", "mysql://mp:pw@localhost:3306/x?unix_socket=/s.sock",
	  "port and unix_socket" },
	{ "relative socket path", "mysql://mp:pw@/x?unix_socket=mysqld.sock", "absolute" },
	{ "parameter without value", "mysql://mp:pw@/x?unix_socket", "without \"=value\"" },
	{ "TLS option we do not implement", "mysql://mp:pw@db/x?ssl_ca=/ca.pem",
	  "unsupported parameter \"ssl_ca\"" },
	{ "socket path too long",
	  "mysql://mp:pw@/x?unix_socket=/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock",
	  "longer than 107" },
	{ "database name too long",
	  "mysql://mp:pw@db/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
	  "database name is longer than 64" },
	{ "fragment", "mysql://mp:pw@db/x#frag", "\"#\"" },
	{ "tab inside", "mysql://mp:p\tw@db/x", "control character" },
};

static void test_bad_uris(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct database_uri u;
		char err[256] = "";
		int rc = database_uri_parse(c->uri, &u, err, sizeof(err));

		if (rc != -EINVAL)
			fail_msg("%s: rc %d, want -EINVAL", c->name, rc);
		if (!strstr(err, c->want))
			fail_msg("%s: error \"%s\" lacks \"%s\"", c->name, err, c->want);
		if (u.password[0] || u.user[0])
			fail_msg("%s: credentials left in the result", c->name);
	}
}

static void test_limits(void **state)
{
	char uri[DATABASE_URI_MAX + 64], err[256];
	struct database_uri u;
	int n;

	(void)state;
	/* a user name of exactly the limit fits; one byte more does not */
	n = snprintf(uri, sizeof(uri), "mysql://");
	memset(uri + n, 'u', DATABASE_URI_MAX_USER);
	snprintf(uri + n + DATABASE_URI_MAX_USER, sizeof(uri) - n - DATABASE_URI_MAX_USER,
		 ":pw@db/x");
	assert_int_equal(database_uri_parse(uri, &u, err, sizeof(err)), 0);
	assert_int_equal(strlen(u.user), DATABASE_URI_MAX_USER);
	memset(uri + n, 'u', DATABASE_URI_MAX_USER + 1);
	snprintf(uri + n + DATABASE_URI_MAX_USER + 1,
		 sizeof(uri) - n - DATABASE_URI_MAX_USER - 1, ":pw@db/x");
	assert_int_equal(database_uri_parse(uri, &u, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "user name is longer than 128"));

	/* the whole URI over its limit, in the password */
	n = snprintf(uri, sizeof(uri), "mysql://mp:");
	memset(uri + n, 'p', DATABASE_URI_MAX);
	snprintf(uri + n + DATABASE_URI_MAX, sizeof(uri) - n - DATABASE_URI_MAX, "@db/x");
	assert_int_equal(database_uri_parse(uri, &u, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "longer than 2048"));
	assert_null(strstr(err, "ppp"));
}

/* Mistakes operators make with a password, each containing S3cr3tPw: the
 * message must not quote any of it, whichever part it ended up in. */
static const char *const leaky_uris[] = {
	"mysql://mp:S3cr3tPw/x@db/mediaproxy",   /* "/" ends the host early */
	"mysql://mp:S3cr3tPw?@db/mediaproxy",    /* "?" too */
	"mysql://mp:S3cr3tPw:x/y@db/mediaproxy", /* looks like IPv6 */
	"mysql://mp:S3cr3tPw#1@db/mediaproxy",
	"mysql://mp:S3cr3tPw%G0@db/mediaproxy",
	"mysql://mp:S3cr3tPw@db:33o6/mediaproxy",
	"mysql://mp:S3cr3tPw@127.0.0.1/x?unix_socket=/s.sock",
	"mysql://mp:S3cr3tPw@db/mediaproxy?ssl_key=/k",
	"mysql://mp:S3cr3tPw@db host/mediaproxy",
	"postgres://mp:S3cr3tPw@db/mediaproxy",
	"mp:S3cr3tPw@db/mediaproxy",
	"mysql://S3cr3tPw",
	"mysql://:S3cr3tPw@db/x",
};

static void test_password_never_in_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(leaky_uris); i++) {
		struct database_uri u;
		char err[512] = "";
		int rc = database_uri_parse(leaky_uris[i], &u, err, sizeof(err));

		if (rc != -EINVAL)
			fail_msg("%s: rc %d, want -EINVAL", leaky_uris[i], rc);
		if (!err[0] || strstr(err, "S3cr3t") || strstr(err, "cr3tPw"))
			fail_msg("%s: message \"%s\" is empty or quotes the password",
				 leaky_uris[i], err);
	}
}

static void test_describe(void **state)
{
	static const struct {
		const char *uri, *want;
	} cases[] = {
		{ "mysql://mp:S3cr3tPw@127.0.0.1:3307/acct", "database acct on 127.0.0.1:3307 as mp" },
		{ "mysql://mp:S3cr3tPw@db/acct", "database acct on db:3306 as mp" },
		{ "mysql://mp:S3cr3tPw@[::1]/acct", "database acct on [::1]:3306 as mp" },
		{ "mysql://mp:S3cr3tPw@/acct?unix_socket=/tmp/m.sock",
		  "database acct on unix:/tmp/m.sock as mp" },
		{ "mysql://mp:S3cr3tPw@localhost/acct",
		  "database acct on localhost (default socket) as mp" },
		{ "mysql://db/acct", "database acct on db:3306" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct database_uri u;
		char err[256], buf[512];

		assert_int_equal(database_uri_parse(cases[i].uri, &u, err, sizeof(err)), 0);
		database_uri_describe(&u, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_uris),
		cmocka_unit_test(test_bad_uris),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_password_never_in_errors),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests_name("database_uri", tests, NULL, NULL);
}
