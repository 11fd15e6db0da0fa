/* config.ini loader: libinih splits lines, our reader hands it one physical
 * line at a time (so every message names the real file:line), and a table
 * of known options sends each value to its parser in config_values.c, which
 * fills the typed field of struct mp_config. MediaProxy's Python
 * configparser grammar is kept: ; and # comments, inline "; comment" after
 * white space, indented continuation lines. */
#include "config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Debian's libinih exports its compile-time options as variables. Weak, so
 * a build of inih without them still links; the reader then enforces the
 * smaller line limit inih passes it (an error, never a truncation). */
#pragma weak ini_max_line
#pragma weak ini_allow_multiline
#pragma weak ini_allow_inline_comments
#pragma weak ini_allow_bom
#pragma weak ini_stop_on_first_error
#pragma weak ini_allow_no_value
#pragma weak ini_use_stack

#define PENDING_MAX 65536 /* a value joined from continuation lines */

static const struct enum_name forwarding_names[] = {
	{ "auto", CONFIG_FWD_AUTO }, { "xdp", CONFIG_FWD_XDP },
	{ "conntrack", CONFIG_FWD_CONNTRACK }, { "userspace", CONFIG_FWD_USERSPACE },
	{ NULL, 0 },
};
static const struct enum_name selection_names[] = {
	{ "random", CONFIG_SELECT_RANDOM },
	{ "least_loaded", CONFIG_SELECT_LEAST_LOADED },
	{ NULL, 0 },
};
static const struct enum_name mgmt_format_names[] = {
	{ "lines", CONFIG_MGMT_LINES }, { "array", CONFIG_MGMT_ARRAY }, { NULL, 0 },
};
static const struct enum_name mi_protocol_names[] = {
	{ "auto", CONFIG_MI_AUTO }, { "opensips-text", CONFIG_MI_OPENSIPS_TEXT },
	{ "opensips-json", CONFIG_MI_OPENSIPS_JSON },
	{ "kamailio-jsonrpc", CONFIG_MI_KAMAILIO_JSONRPC }, { NULL, 0 },
};
static const struct enum_name accounting_names[] = {
	{ "jsonl", CONFIG_ACCT_JSONL }, { "database", CONFIG_ACCT_DATABASE },
	{ "radius", CONFIG_ACCT_RADIUS }, { NULL, 0 },
};

#define F(field) offsetof(struct mp_config, field)
#define RELAY(n, t, ...) { "Relay", #n, t, F(relay.n), __VA_ARGS__ }
#define DISP(n, t, ...) { "Dispatcher", #n, t, F(dispatcher.n), __VA_ARGS__ }
#define DB(n) { "Database", #n, T_IDENT, F(database.n), 0, 0, 0, NULL }

static const struct option options[] = {
	RELAY(dispatchers, T_HOSTS, 0, 0, CONFIG_DISPATCHER_PORT, NULL),
	RELAY(passport, T_PASSPORT, 0, 0, 0, NULL),
	RELAY(relay_ip, T_IP, 0, 0, 0, NULL),
	RELAY(advertised_ip, T_IP, 0, 0, 0, NULL),
	RELAY(auto_detect_interfaces, T_BOOL, 0, 0, 0, NULL),
	RELAY(port_range, T_PORT_RANGE, 0, 0, 0, NULL),
	RELAY(log_level, T_LOGLEVEL, 0, 0, 0, NULL),
	RELAY(stream_timeout, T_SECONDS, 1, 0, 0, NULL),
	RELAY(on_hold_timeout, T_SECONDS, 1, 0, 0, NULL),
	RELAY(dns_check_interval, T_SECONDS, 1, 0, 0, NULL),
	RELAY(reconnect_delay, T_SECONDS, 1, 0, 0, NULL),
	RELAY(keepalive_interval, T_SECONDS, 1, 0, 0, NULL),
	RELAY(traffic_sampling_period, T_SECONDS, 0, 0, 0, NULL),
	RELAY(userspace_transmit_every, T_UINT, 1, 1000000, 0, NULL),
	RELAY(routable_private_ranges, T_CIDRS, 0, 0, 0, NULL),
	RELAY(forwarding, T_ENUM, 0, 0, 0, forwarding_names),
	RELAY(interfaces, T_IFNAMES, 0, 0, 0, NULL),
	RELAY(bpf_pin_dir, T_PIN_DIR, 0, 0, 0, NULL),

	DISP(socket_path, T_PATH, 0, 0, 0, NULL),
	DISP(listen, T_LISTEN, 0, 0, CONFIG_DISPATCHER_PORT, NULL),
	DISP(listen_management, T_LISTEN, 0, 0, CONFIG_MANAGEMENT_PORT, NULL),
	DISP(management_use_tls, T_BOOL, 0, 0, 0, NULL),
	DISP(passport, T_PASSPORT, 0, 0, 0, NULL),
	DISP(management_passport, T_PASSPORT, 0, 0, 0, NULL),
	DISP(log_level, T_LOGLEVEL, 0, 0, 0, NULL),
	DISP(relay_timeout, T_SECONDS, 1, 0, 0, NULL),
	DISP(relay_recover_interval, T_SECONDS, 1, 0, 0, NULL),
	DISP(cleanup_dead_relays_after, T_SECONDS, 1, 0, 0, NULL),
	DISP(cleanup_expired_sessions_after, T_SECONDS, 1, 0, 0, NULL),
	DISP(accounting, T_ACCOUNTING, 0, 0, 0, accounting_names),
	DISP(relay_request_timeout, T_DECIMAL, 0, 3600, 0, NULL),
	DISP(accounting_file, T_CONF_PATH, 0, 0, 0, NULL),
	DISP(accounting_spool, T_CONF_PATH, 0, 0, 0, NULL),
	DISP(accounting_spool_size, T_UINT, 1, 1048576, 0, NULL),
	DISP(selection, T_ENUM, 0, 0, 0, selection_names),
	DISP(management_format, T_ENUM, 0, 0, 0, mgmt_format_names),

	{ "TLS", "certs_path", T_CONF_PATH, F(tls.certs_path), 0, 0, 0, NULL },
	{ "TLS", "verify_interval", T_SECONDS, F(tls.verify_interval), 1, 0, 0, NULL },

	{ "Database", "dburi", T_STRING, F(database.dburi), 0, 0, 0, NULL },
	DB(sessions_table), DB(callid_column), DB(fromtag_column),
	DB(totag_column), DB(info_column),

	{ "Radius", "config_file", T_CONF_PATH, F(radius.config_file), 0, 0, 0, NULL },
	{ "Radius", "additional_dictionary", T_CONF_PATH,
	  F(radius.additional_dictionary), 0, 0, 0, NULL },

	{ "OpenSIPS", "socket_path", T_PATH, F(opensips.socket_path), 0, 0, 0, NULL },
	{ "OpenSIPS", "max_connections", T_UINT, F(opensips.max_connections),
	  1, 1000, 0, NULL },
	{ "OpenSIPS", "mi_protocol", T_ENUM, F(opensips.mi_protocol), 0, 0, 0,
	  mi_protocol_names },
	{ "OpenSIPS", "location_table", T_IDENT, F(opensips.location_table),
	  0, 0, 0, NULL },
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static const char *const sections[] = {
	"Relay", "Dispatcher", "TLS", "Database", "Radius", "OpenSIPS",
};

__attribute__((format(printf, 3, 4)))
static void fail(struct load *st, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (st->failed)
		return;
	st->failed = true;
	st->fail_line = line;
	n = snprintf(st->err, st->errlen, "%s:%d: ", st->name, line);
	if (n < 0 || (size_t)n >= st->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(st->err + n, st->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

void config_load_warn(struct load *st, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!st->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->warn(st->warn_ctx, st->name, line, msg);
}

/* ---- one option line ---------------------------------------------------- */

static const struct option *find_option(const char *section, const char *name)
{
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (!strcmp(options[i].section, section) &&
		    !strcasecmp(options[i].name, name))
			return &options[i];
	return NULL;
}

static bool known_section(const char *section, const char **fold)
{
	*fold = NULL;
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (!strcmp(sections[i], section))
			return true;
		if (!strcasecmp(sections[i], section))
			*fold = sections[i];
	}
	return false;
}

static void unknown_section(struct load *st, const char *section)
{
	const char *fold;

	if (st->warned_section == st->section_line)
		return;
	st->warned_section = st->section_line;
	known_section(section, &fold);
	if (fold)
		config_load_warn(st, st->section_line, "unknown section [%s] ignored "
				 "(section names are case-sensitive: [%s]?)",
				 section, fold);
	else
		config_load_warn(st, st->section_line, "unknown section [%s] ignored",
				 section);
}

static int apply(struct load *st, const char *section, const char *name,
		 const char *value, int line)
{
	const struct option *opt;
	const char *fold;
	char buf[128];

	if (!*name) {
		fail(st, line, "syntax error: '= %s': no option name before '='; "
		     "expected option = value", value);
		return -1;
	}
	if (!*section && !st->section_line) {
		config_load_warn(st, line, "option '%s' outside any section ignored",
				 name);
		return 0;
	}
	if (!known_section(section, &fold)) {
		unknown_section(st, section);
		return 0;
	}
	if (!(opt = find_option(section, name))) {
		config_load_warn(st, line, "unknown option '%s' in [%s] ignored",
				 name, section);
		return 0;
	}
	if (st->seen[opt - options])
		config_load_warn(st, line, "[%s] %s set again (first on line %d); "
				 "the last value wins", section, opt->name,
				 st->seen[opt - options]);
	st->why[0] = '\0';
	st->opt_line = line;
	if (config_value_parse(st, opt, value, (char *)st->cfg + opt->off) < 0) {
		fail(st, line, "[%s] %s = '%s': %s; expected %s", section, opt->name,
		     value, st->why, config_value_expected(opt, buf, sizeof(buf)));
		return -1;
	}
	st->seen[opt - options] = line;
	return 0;
}

/* Applies the option being read, if any. */
static int flush(struct load *st)
{
	int rc;

	if (!st->pending.active)
		return 0;
	st->pending.active = false;
	rc = apply(st, st->pending.section, st->pending.name,
		   st->pending.value ? st->pending.value : "", st->pending.line);
	st->pending.len = 0;
	return rc;
}

static int pending_append(struct load *st, const char *sep, const char *text,
			  size_t len)
{
	size_t need = st->pending.len + strlen(sep) + len + 1;

	if (need > PENDING_MAX) {
		fail(st, st->pending.line, "[%s] %s: value longer than %d characters",
		     st->pending.section, st->pending.name, PENDING_MAX);
		return -1;
	}
	if (need > st->pending.cap) {
		char *n = realloc(st->pending.value, need);

		if (!n) {
			fail(st, st->line, "out of memory");
			return -1;
		}
		st->pending.value = n;
		st->pending.cap = need;
	}
	st->pending.len += (size_t)sprintf(st->pending.value + st->pending.len,
					   "%s%.*s", sep, (int)len, text);
	return 0;
}

/* inih strips "; comment" on option lines but not on continuation lines;
 * strip it there too so both read alike. */
static int append_continuation(struct load *st, const char *value)
{
	size_t n = value[0] ? 1 : 0;

	while (value[n] && !(value[n] == ';' && isspace((unsigned char)value[n - 1])))
		n++;
	while (n && isspace((unsigned char)value[n - 1]))
		n--;
	return pending_append(st, st->pending.len ? " " : "", value, n);
}

static int on_option(void *user, const char *section, const char *name,
		     const char *value)
{
	struct load *st = user;

	if (st->failed)
		return 0;
	if (st->indented && st->pending.active)
		return append_continuation(st, value) == 0;
	if (flush(st) < 0)
		return 0;
	st->pending.active = true;
	st->pending.line = st->line;
	snprintf(st->pending.section, sizeof(st->pending.section), "%s", section);
	snprintf(st->pending.name, sizeof(st->pending.name), "%s", name);
	return pending_append(st, "", value, strlen(value)) == 0;
}

/* ---- lines -------------------------------------------------------------- */

/* Watches for a section header the way inih will see it (a '[' line that
 * is not the indented continuation of an option), so that the option
 * before it is applied first and the header's line is known. */
static int note_line(struct load *st, const char *line)
{
	const char *p = line;

	st->indented = isspace((unsigned char)line[0]);
	if (st->line == 1 && !strncmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	p += strspn(p, " \t\r\n\v\f");
	if (*p != '[' || (st->indented && st->pending.active))
		return 0;
	/* the option before the header still belongs to the old section */
	if (flush(st) < 0)
		return -1;
	st->section_line = st->line;
	return 0;
}

/* inih's fgets-like reader: one physical line per call, without its line
 * end; num is inih's buffer size. */
static char *read_line(char *str, int num, void *user)
{
	struct load *st = user;
	const char *nl;
	size_t len, next;

	if (st->failed || st->pos >= st->end)
		return NULL;
	nl = memchr(st->pos, '\n', (size_t)(st->end - st->pos));
	len = (size_t)((nl ? nl : st->end) - st->pos);
	next = len + (nl != NULL);
	if (len && st->pos[len - 1] == '\r')
		len--;
	st->line++;
	if (memchr(st->pos, '\0', len)) {
		fail(st, st->line, "line contains a NUL byte");
		return NULL;
	}
	if (num < 1 || len > (size_t)num - 1) {
		fail(st, st->line, "line too long (%zu characters, at most %d)",
		     len, num - 1);
		return NULL;
	}
	memcpy(str, st->pos, len);
	str[len] = '\0';
	st->pos += next;
	return note_line(st, str) < 0 ? NULL : str;
}

/* Describes the syntax error inih found on line `line`. */
static void syntax_error(struct load *st, const char *buf, size_t buflen, int line)
{
	const char *p = buf, *end = buf + buflen, *nl;
	int n = 1;

	while (n < line && (nl = memchr(p, '\n', (size_t)(end - p)))) {
		p = nl + 1;
		n++;
	}
	if (line == 1 && end - p >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
		p += 3;
	nl = memchr(p, '\n', (size_t)(end - p));
	n = (int)((nl ? nl : end) - p);
	while (n && isspace((unsigned char)p[n - 1]))
		n--;
	while (n && isspace((unsigned char)*p))
		p++, n--;
	st->failed = false;
	if (n && *p == '[')
		fail(st, line, "syntax error: '%.*s': no ']' closing the section name; "
		     "expected [Section]", n, p);
	else
		fail(st, line, "syntax error: '%.*s': not a comment, [Section] or "
		     "option line; expected option = value", n, p);
}

static void ini_setup(void)
{
	if (&ini_max_line)
		ini_max_line = CONFIG_MAX_LINE + 1; /* the line and its NUL */
	if (&ini_use_stack)
		ini_use_stack = true;
	if (&ini_allow_multiline)
		ini_allow_multiline = true;
	if (&ini_allow_inline_comments)
		ini_allow_inline_comments = true;
	if (&ini_allow_bom)
		ini_allow_bom = true;
	if (&ini_allow_no_value)
		ini_allow_no_value = false;
	if (&ini_stop_on_first_error)
		ini_stop_on_first_error = true;
}

/* ---- defaults and lifetime ------------------------------------------------ */

/* *slot = a, or a joined with the relative path b */
static int dup_into(char **slot, const char *a, const char *b)
{
	char path[PATH_MAX];
	int n;

	if (!b) {
		*slot = strdup(a);
		return *slot ? 0 : -ENOMEM;
	}
	n = config_join_path(path, sizeof(path), a, b);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	*slot = strdup(path);
	return *slot ? 0 : -ENOMEM;
}

static int init_defaults_in(struct mp_config *cfg, const char *dir)
{
	struct config_relay *r = &cfg->relay;
	struct config_dispatcher *d = &cfg->dispatcher;
	int err = 0;

	memset(cfg, 0, sizeof(*cfg));
	r->port_range = (struct config_port_range){ 50000, 60000 };
	r->log_level = LOG_LEVEL_INFO;
	r->stream_timeout = 90;
	r->on_hold_timeout = 7200;
	r->dns_check_interval = 60;
	r->reconnect_delay = 10;
	r->keepalive_interval = 10;
	r->traffic_sampling_period = 15;
	r->userspace_transmit_every = 1;
	r->forwarding = CONFIG_FWD_AUTO;

	d->listen = (struct net_endpoint){ .port = CONFIG_DISPATCHER_PORT, .any = true };
	d->listen_management = (struct net_endpoint){ .port = CONFIG_MANAGEMENT_PORT,
						      .any = true };
	d->management_use_tls = true;
	d->log_level = LOG_LEVEL_INFO;
	d->relay_timeout = 5;
	d->relay_recover_interval = 60;
	d->cleanup_dead_relays_after = 43200;
	d->cleanup_expired_sessions_after = 86400;
	d->relay_request_timeout = 0.15;
	d->selection = CONFIG_SELECT_RANDOM;
	d->management_format = CONFIG_MGMT_LINES;
	d->accounting_spool_size = 1024;

	cfg->tls.verify_interval = 300;
	cfg->opensips.max_connections = 10;
	cfg->opensips.mi_protocol = CONFIG_MI_AUTO;

	err = dup_into(&cfg->dir, dir, NULL);
	err |= dup_into(&d->socket_path, "dispatcher.sock", NULL);
	err |= dup_into(&d->accounting_file, "/var/log/mediaproxy/accounting.jsonl", NULL);
	err |= dup_into(&d->accounting_spool, "/var/spool/mediaproxy/accounting", NULL);
	err |= dup_into(&cfg->tls.certs_path, dir, "tls");
	err |= dup_into(&cfg->database.dburi, "", NULL);
	err |= dup_into(&cfg->database.sessions_table, "media_sessions", NULL);
	err |= dup_into(&cfg->database.callid_column, "call_id", NULL);
	err |= dup_into(&cfg->database.fromtag_column, "from_tag", NULL);
	err |= dup_into(&cfg->database.totag_column, "to_tag", NULL);
	err |= dup_into(&cfg->database.info_column, "info", NULL);
	err |= dup_into(&cfg->radius.config_file, "/etc/opensips/radius/client.conf", NULL);
	err |= dup_into(&cfg->radius.additional_dictionary, dir, "radius/dictionary");
	err |= dup_into(&cfg->opensips.socket_path, "/var/run/opensips/socket", NULL);
	err |= dup_into(&cfg->opensips.location_table, "location", NULL);
	if (err) {
		config_free(cfg);
		return -ENOMEM; /* or a directory too long to be of use */
	}
	return 0;
}

int config_init_defaults(struct mp_config *cfg)
{
	return init_defaults_in(cfg, CONFIG_DEFAULT_DIR);
}

void config_free(struct mp_config *cfg)
{
	char **strs[] = {
		&cfg->file, &cfg->dir, &cfg->relay.passport, &cfg->relay.bpf_pin_dir,
		&cfg->dispatcher.socket_path, &cfg->dispatcher.passport,
		&cfg->dispatcher.management_passport, &cfg->dispatcher.accounting_file,
		&cfg->dispatcher.accounting_spool,
		&cfg->tls.certs_path, &cfg->database.dburi,
		&cfg->database.sessions_table, &cfg->database.callid_column,
		&cfg->database.fromtag_column, &cfg->database.totag_column,
		&cfg->database.info_column, &cfg->radius.config_file,
		&cfg->radius.additional_dictionary, &cfg->opensips.socket_path,
		&cfg->opensips.location_table,
	};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	free(cfg->relay.dispatchers.items);
	free(cfg->relay.routable_private_ranges.items);
	config_str_list_free(&cfg->relay.interfaces);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- loading -------------------------------------------------------------- */

/* The absolute directory of the file `name`. */
static char *dir_of(const char *name)
{
	const char *slash = strrchr(name, '/');
	char cwd[PATH_MAX], *dir;
	int n;

	if (slash == name)
		return strdup("/");
	if (name[0] == '/')
		return strndup(name, (size_t)(slash - name));
	if (!getcwd(cwd, sizeof(cwd)))
		snprintf(cwd, sizeof(cwd), ".");
	if (slash)
		n = asprintf(&dir, "%s/%.*s", cwd, (int)(slash - name), name);
	else
		n = asprintf(&dir, "%s", cwd);
	return n < 0 ? NULL : dir;
}

static int parse_buffer(struct load *st, const char *buf, size_t len)
{
	int rc;

	ini_setup();
	rc = ini_parse_stream(read_line, st, on_option, st);
	if (!st->failed)
		flush(st);
	/* inih reports only a line number; it is the first error unless one
	 * of ours came earlier (an option is applied when the next begins). */
	if (rc > 0 && (!st->failed || rc < st->fail_line))
		syntax_error(st, buf, len, rc);
	else if (rc < 0 && !st->failed)
		fail(st, st->line, "out of memory");
	free(st->pending.value);
	st->pending.value = NULL;
	return st->failed ? -1 : 0;
}

int config_load_buffer(struct mp_config *cfg, const char *name, const char *buf,
		       size_t len, config_warn_fn warn_fn, void *warn_ctx,
		       char *err, size_t errlen)
{
	struct mp_config fresh;
	int seen[N_OPTIONS] = { 0 };
	struct load st;
	char *dir = dir_of(name);
	int rc = -1;

	/* built aside, so that cfg (defaults, say) is released exactly once */
	memset(&fresh, 0, sizeof(fresh));
	config_free(cfg);
	if (!dir || init_defaults_in(&fresh, dir) < 0 || !(fresh.file = strdup(name))) {
		snprintf(err, errlen, "%s: out of memory", name);
	} else if (len > CONFIG_MAX_FILE) {
		snprintf(err, errlen, "%s: too large (%zu bytes, at most %d)", name,
			 len, CONFIG_MAX_FILE);
	} else {
		st = (struct load){ .cfg = &fresh, .name = name, .pos = buf,
				    .end = buf + len, .seen = seen, .warn = warn_fn,
				    .warn_ctx = warn_ctx, .err = err, .errlen = errlen };
		rc = parse_buffer(&st, buf, len);
	}
	free(dir);
	if (rc < 0)
		config_free(&fresh);
	*cfg = fresh;
	return rc;
}

/* Reads a whole file of at most CONFIG_MAX_FILE bytes (one more is read to
 * tell a file that is too big). Returns the length or -errno. */
static ssize_t read_file(const char *path, char **out)
{
	size_t cap = CONFIG_MAX_FILE + 1, len = 0;
	char *buf;
	ssize_t n;
	int fd, err;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (!(buf = malloc(cap))) {
		close(fd);
		return -ENOMEM;
	}
	while (len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			free(buf);
			close(fd);
			return err;
		}
		len += (size_t)n;
	}
	close(fd);
	*out = buf;
	return (ssize_t)len;
}

int config_load(struct mp_config *cfg, const char *path, config_warn_fn warn_fn,
		void *warn_ctx, char *err, size_t errlen)
{
	char *buf = NULL;
	ssize_t len = read_file(path, &buf);
	int rc;

	if (len < 0) {
		config_free(cfg);
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror((int)-len));
		return -1;
	}
	rc = config_load_buffer(cfg, path, buf, (size_t)len, warn_fn, warn_ctx,
				err, errlen);
	free(buf);
	return rc;
}

int config_check_dispatcher(const struct mp_config *cfg, char *err, size_t errlen)
{
	if ((cfg->dispatcher.accounting & CONFIG_ACCT_DATABASE) &&
	    !cfg->database.dburi[0]) {
		snprintf(err, errlen, "%s:%d: [Dispatcher] accounting includes database "
			 "but [Database] dburi is not set; expected dburi = "
			 "mysql://user:password@host/database", cfg->file,
			 cfg->dispatcher.accounting_line);
		return -1;
	}
	return 0;
}

int config_runtime_path(const char *runtime_dir, const char *path, char *out,
			size_t outlen)
{
	int n;

	if (!path || !*path)
		return -EINVAL;
	if (path[0] == '/')
		n = snprintf(out, outlen, "%s", path);
	else
		n = snprintf(out, outlen, "%s/%s", runtime_dir, path);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static const char *enum_name(const struct enum_name *names, int v)
{
	for (; names->name; names++)
		if (names->value == v)
			return names->name;
	return "unknown";
}

const char *config_forwarding_name(enum config_forwarding fwd)
{
	return enum_name(forwarding_names, fwd);
}

int config_forwarding_from_name(const char *name)
{
	return config_enum_lookup(forwarding_names, name);
}

const char *config_selection_name(enum config_selection sel)
{
	return enum_name(selection_names, sel);
}

const char *config_mgmt_format_name(enum config_mgmt_format fmt)
{
	return enum_name(mgmt_format_names, fmt);
}

const char *config_mi_protocol_name(enum config_mi_protocol proto)
{
	return enum_name(mi_protocol_names, proto);
}
