/* [Database] dburi, the SQLObject-style connection URI of the database
 * accounting backend (PROTOCOL.md 5.1):
 *
 *   mysql://user:password@host[:port]/database
 *   mysql://user:password@[::1]:3306/database
 *   mysql://user:password@localhost/database?unix_socket=/path/mysqld.sock
 *   mysql://user:password@/database?unix_socket=/path/mysqld.sock
 *
 * User, password and database are percent-decoded as SQLObject does (so a
 * password may hold "@" or "/" written %40, %2F); query values are
 * form-decoded. The parser is pure and never writes the password into an
 * error message. */
#ifndef MP_DATABASE_URI_H
#define MP_DATABASE_URI_H

#include <stddef.h>

#define DATABASE_URI_MAX 2048         /* characters of the whole URI */
#define DATABASE_URI_MAX_USER 128     /* bytes, decoded */
#define DATABASE_URI_MAX_PASSWORD 512 /* bytes, decoded */
#define DATABASE_URI_MAX_HOST 255     /* a DNS name or an address */
#define DATABASE_URI_MAX_DATABASE 64  /* MariaDB's limit on a schema name */
#define DATABASE_URI_MAX_SOCKET 107   /* sun_path less its NUL */
#define DATABASE_URI_MAX_IGNORED 255  /* the `ignored` list below */

struct database_uri {
	char user[DATABASE_URI_MAX_USER + 1];         /* "" = not given */
	char password[DATABASE_URI_MAX_PASSWORD + 1]; /* "" = none */
	/* "" = not given: localhost over the UNIX socket, as with
	 * "localhost"; an IPv6 address is stored without its brackets */
	char host[DATABASE_URI_MAX_HOST + 1];
	unsigned int port; /* 0 = not given (3306 over TCP) */
	char database[DATABASE_URI_MAX_DATABASE + 1];
	/* "" = none: over TCP, or libmariadb's default socket for localhost */
	char unix_socket[DATABASE_URI_MAX_SOCKET + 1];
	/* query parameters SQLObject knows but we have no use for (charset,
	 * debug, ...), comma-separated, for the caller to warn about */
	char ignored[DATABASE_URI_MAX_IGNORED + 1];
};

/* Parses uri into *out (zeroed first). The schemes are mysql and
 * mysql+mysqldb. Returns 0, or -EINVAL with err set to a one-line reason
 * that may quote the scheme, host, port or a parameter name, never the
 * user's password. */
int database_uri_parse(const char *uri, struct database_uri *out, char *err,
		       size_t errlen);

/* Writes a description for log lines, without the password:
 * "database DB on HOST:PORT as USER", "... on unix:PATH as USER" or
 * "... on localhost (default socket) as USER". */
void database_uri_describe(const struct database_uri *u, char *buf, size_t len);

#endif
