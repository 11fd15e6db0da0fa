/* config.ini loader: libinih splits lines, our reader hands it one physical
 * line at a time (so every message names the real file:line), and a table
 * of known options turns each value into typed fields of struct mp_config.
 * MediaProxy's Python configparser grammar is kept: ; and # comments,
 * inline "; comment" after white space, indented continuation lines. */
#include "config.h"
#include "passport.h"

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
#define SECTION_MAX 64    /* inih keeps at most 49 characters */

enum opt_type {
	T_BOOL,
	T_SECONDS,  /* whole seconds, >= min */
	T_UINT,     /* whole number in [min, max] */
	T_DECIMAL,  /* seconds with a fraction, > 0 */
	T_LOGLEVEL,
	T_ENUM,
	T_PORT_RANGE,
	T_IP,       /* empty = unset */
	T_LISTEN,   /* ip[:port] or any[:port] */
	T_HOSTS,    /* list of host[:port] */
	T_CIDRS,
	T_IFNAMES,
	T_ACCOUNTING,
	T_PASSPORT,
	T_CONF_PATH, /* relative to the config file's directory */
	T_PATH,      /* kept as written */
	T_PIN_DIR,   /* absolute, empty = derive at runtime */
	T_IDENT,     /* SQL table or column name */
	T_STRING,
};

struct enum_name {
	const char *name;
	int value;
};

struct option {
	const char *section;
	const char *name;
	enum opt_type type;
	size_t off; /* field in struct mp_config */
	unsigned int min, max;
	uint16_t port;                /* T_LISTEN default port */
	const struct enum_name *enums; /* T_ENUM, NULL-terminated */
};

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
static const struct enum_name bool_names[] = {
	{ "yes", 1 }, { "true", 1 }, { "on", 1 }, { "1", 1 },
	{ "no", 0 }, { "false", 0 }, { "off", 0 }, { "0", 0 }, { NULL, 0 },
};

/* Enum fields are written through an int. */
_Static_assert(sizeof(enum config_forwarding) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");

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

/* State of one load. The reader and the handler run in turn: inih asks
 * for a line, then calls the handler for it, so `line` is always the line
 * the handler is looking at. */
struct load {
	struct mp_config *cfg;
	const char *name;
	const char *pos, *end;
	int line;            /* physical line last handed to inih */
	bool indented;       /* it began with white space */
	int section_line;    /* line of the current section header */
	int opt_line;        /* line of the option being applied */
	int warned_section;  /* section_line already warned as unknown */
	struct {
		bool active;
		char section[SECTION_MAX];
		char name[SECTION_MAX + 16];
		char *value;
		size_t len, cap;
		int line;
	} pending;           /* the option being read, with continuations */
	int seen[N_OPTIONS]; /* line that set each option, 0 = not yet */
	config_warn_fn warn;
	void *warn_ctx;
	char *err;
	size_t errlen;
	int fail_line; /* line of the first error, 0 = none */
	bool failed;
	char why[160]; /* filled by a value parser that rejects */
};

__attribute__((format(printf, 2, 3)))
static void set_why(struct load *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->why, sizeof(st->why), fmt, ap);
	va_end(ap);
}

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

__attribute__((format(printf, 3, 4)))
static void warn(struct load *st, int line, const char *fmt, ...)
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

/* ---- value parsers: 0, or -1 with st->why set ---------------------------- */

static int replace_str(struct load *st, void *field, const char *value)
{
	char **slot = field, *copy = value ? strdup(value) : NULL;

	if (value && !copy) {
		set_why(st, "out of memory");
		return -1;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

static int lookup_enum(const struct enum_name *names, const char *value)
{
	for (; names->name; names++)
		if (!strcasecmp(names->name, value))
			return names->value;
	return -1;
}

/* Whole number, digits only; -1 if not one or above limit. */
static long long parse_whole(const char *s, unsigned long long limit)
{
	unsigned long long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (unsigned long long)(*s - '0');
		if (v > limit)
			return -2;
	}
	return (long long)v;
}

static int parse_number(struct load *st, const struct option *opt,
			const char *value, void *field)
{
	unsigned int max = opt->type == T_SECONDS ? CONFIG_MAX_SECONDS : opt->max;
	long long v = parse_whole(value, max);

	if (v == -1) {
		set_why(st, "not a whole number");
		return -1;
	}
	if (v == -2) {
		set_why(st, "too large (at most %u)", max);
		return -1;
	}
	if (v < opt->min) {
		set_why(st, "%lld is too small", v);
		return -1;
	}
	*(unsigned int *)field = (unsigned int)v;
	return 0;
}

/* Decimal seconds: digits with at most one '.', no sign or exponent, so
 * that strtod's hex, inf and nan forms never get in. */
static int parse_decimal(struct load *st, const struct option *opt,
			 const char *value, void *field)
{
	size_t digits = strspn(value, "0123456789"), frac = 0;
	double v;

	if (value[digits] == '.')
		frac = strspn(value + digits + 1, "0123456789");
	if (digits + frac == 0 || value[digits + (value[digits] == '.') + frac] ||
	    digits > 9) {
		set_why(st, "not a decimal number");
		return -1;
	}
	v = strtod(value, NULL);
	if (v <= 0 || v > opt->max) {
		set_why(st, "out of range");
		return -1;
	}
	*(double *)field = v;
	return 0;
}

static int parse_enum(struct load *st, const struct option *opt,
		      const char *value, void *field)
{
	int v;

	if (opt->type == T_LOGLEVEL)
		v = log_level_from_name(value);
	else
		v = lookup_enum(opt->type == T_BOOL ? bool_names : opt->enums, value);
	if (v < 0) {
		set_why(st, "unknown value");
		return -1;
	}
	if (opt->type == T_BOOL)
		*(bool *)field = v;
	else
		*(int *)field = v;
	return 0;
}

static int parse_range_port(struct load *st, const char *s, size_t len,
			    unsigned int *port)
{
	char buf[16];
	long long v;

	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || len >= sizeof(buf)) {
		set_why(st, "not start:end");
		return -1;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	v = parse_whole(buf, 999999);
	if (v < 0) {
		set_why(st, "'%s' is not a port number", buf);
		return -1;
	}
	if (v < 1024 || v > 65536) {
		set_why(st, "port %lld is outside [1024, 65536]", v);
		return -1;
	}
	if (v % 2) {
		set_why(st, "port %lld is odd", v);
		return -1;
	}
	*port = (unsigned int)v;
	return 0;
}

static int parse_port_range(struct load *st, const struct option *opt,
			    const char *value, void *field)
{
	const char *colon = strchr(value, ':');
	struct config_port_range r;

	(void)opt;
	if (!colon) {
		set_why(st, "no ':' between start and end");
		return -1;
	}
	if (parse_range_port(st, value, (size_t)(colon - value), &r.start) < 0 ||
	    parse_range_port(st, colon + 1, strlen(colon + 1), &r.end) < 0)
		return -1;
	if (r.start >= r.end) {
		set_why(st, "start %u is not below end %u", r.start, r.end);
		return -1;
	}
	*(struct config_port_range *)field = r;
	return 0;
}

static int parse_ip(struct load *st, const struct option *opt,
		    const char *value, void *field)
{
	struct net_addr a;

	(void)opt;
	memset(&a, 0, sizeof(a));
	if (*value && net_addr_parse(value, &a) < 0) {
		set_why(st, "not an IP address");
		return -1;
	}
	if (net_addr_is_any(&a) ||
	    (a.family == AF_INET && (ntohl(a.v4.s_addr) >> 28) == 0xe) ||
	    (a.family == AF_INET6 && IN6_IS_ADDR_MULTICAST(&a.v6))) {
		set_why(st, "an unspecified or multicast address cannot be used");
		return -1;
	}
	*(struct net_addr *)field = a;
	return 0;
}

static int parse_listen(struct load *st, const struct option *opt,
			const char *value, void *field)
{
	if (net_endpoint_parse(value, opt->port, NET_EP_ANY, field) < 0) {
		set_why(st, "not an address and port");
		return -1;
	}
	return 0;
}

/* Copies the next list entry (separated by any run of commas and white
 * space) into tok. Returns 1, 0 at the end, -1 if the entry is too long. */
static int next_token(const char **p, char *tok, size_t toklen)
{
	const char *s = *p + strspn(*p, ", \t\r\n\v\f");
	size_t n = strcspn(s, ", \t\r\n\v\f");

	*p = s + n;
	if (n == 0)
		return 0;
	if (n >= toklen) {
		snprintf(tok, toklen, "%.*s", (int)n, s);
		return -1;
	}
	memcpy(tok, s, n);
	tok[n] = '\0';
	return 1;
}

/* Grows a list array to hold one more element of size elem. */
static int list_grow(struct load *st, void **items, size_t count, size_t elem)
{
	void *n;

	if (count >= CONFIG_MAX_LIST) {
		set_why(st, "more than %d entries", CONFIG_MAX_LIST);
		return -1;
	}
	n = realloc(*items, (count + 1) * elem);
	if (!n) {
		set_why(st, "out of memory");
		return -1;
	}
	*items = n;
	return 0;
}

static int parse_hosts(struct load *st, const struct option *opt,
		       const char *value, void *field)
{
	struct config_endpoint_list l = { NULL, 0 }, *out = field;
	char tok[NET_HOST_MAX + 8];
	int rc;

	while ((rc = next_token(&value, tok, sizeof(tok))) != 0) {
		if (rc < 0 || list_grow(st, (void **)&l.items, l.count, sizeof(*l.items)) < 0 ||
		    net_endpoint_parse(tok, opt->port, NET_EP_HOSTNAME, &l.items[l.count]) < 0) {
			if (rc < 0 || !st->why[0])
				set_why(st, "'%s' is not host[:port]", tok);
			free(l.items);
			return -1;
		}
		l.count++;
	}
	free(out->items);
	*out = l;
	return 0;
}

static int add_cidr(struct load *st, struct config_cidr_list *l, const char *tok)
{
	char fixed[INET6_ADDRSTRLEN + 8];
	bool host_bits;

	if (!strcasecmp(tok, "any")) {
		if (add_cidr(st, l, "0.0.0.0/0") < 0)
			return -1;
		return add_cidr(st, l, "::/0");
	}
	if (list_grow(st, (void **)&l->items, l->count, sizeof(*l->items)) < 0)
		return -1;
	if (net_cidr_parse(tok, &l->items[l->count], &host_bits) < 0) {
		set_why(st, "'%s' is not address/prefix", tok);
		return -1;
	}
	if (host_bits) {
		net_cidr_format(&l->items[l->count], fixed, sizeof(fixed));
		warn(st, st->opt_line, "[Relay] routable_private_ranges: %s has "
		     "host bits set; using %s", tok, fixed);
	}
	l->count++;
	return 0;
}

static int parse_cidrs(struct load *st, const struct option *opt,
		       const char *value, void *field)
{
	struct config_cidr_list l = { NULL, 0 }, *out = field;
	char tok[INET6_ADDRSTRLEN + 8];
	int rc;

	(void)opt;
	if (!strcasecmp(value, "none"))
		value = "";
	while ((rc = next_token(&value, tok, sizeof(tok))) != 0) {
		if (rc < 0 || add_cidr(st, &l, tok) < 0) {
			if (rc < 0)
				set_why(st, "'%s' is not address/prefix", tok);
			free(l.items);
			return -1;
		}
	}
	free(out->items);
	*out = l;
	return 0;
}

static void free_strs(struct config_str_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

/* Linux's rule (dev_valid_name): 1..15 bytes, not "." or "..", no '/',
 * ':' or white space. */
static bool ifname_valid(const char *s)
{
	return *s && strlen(s) < 16 && strcmp(s, ".") && strcmp(s, "..") &&
	       !strchr(s, '/') && !strchr(s, ':');
}

static int parse_ifnames(struct load *st, const struct option *opt,
			 const char *value, void *field)
{
	struct config_str_list l = { NULL, 0 }, *out = field;
	char tok[64];
	int rc;

	(void)opt;
	while ((rc = next_token(&value, tok, sizeof(tok))) != 0) {
		if (rc < 0 || !ifname_valid(tok)) {
			set_why(st, "'%s' is not an interface name", tok);
			goto err;
		}
		if (list_grow(st, (void **)&l.items, l.count, sizeof(*l.items)) < 0)
			goto err;
		if (!(l.items[l.count] = strdup(tok))) {
			set_why(st, "out of memory");
			goto err;
		}
		l.count++;
	}
	free_strs(out);
	*out = l;
	return 0;
err:
	free_strs(&l);
	return -1;
}

static int parse_accounting(struct load *st, const struct option *opt,
			    const char *value, void *field)
{
	unsigned int mask = 0;
	char tok[32];
	int rc, v;

	if (!strcasecmp(value, "none"))
		value = "";
	while ((rc = next_token(&value, tok, sizeof(tok))) != 0) {
		v = rc < 0 ? -1 : lookup_enum(opt->enums, tok);
		if (v < 0) {
			set_why(st, "unknown backend '%s'", tok);
			return -1;
		}
		mask |= (unsigned int)v;
	}
	*(unsigned int *)field = mask;
	st->cfg->dispatcher.accounting_line = st->opt_line;
	return 0;
}

/* Stored as written; passport_parse() (the TLS code's own parser) checks
 * it now so that a bad filter fails at load with file:line. */
static int parse_passport(struct load *st, const struct option *opt,
			  const char *value, void *field)
{
	struct passport p;

	(void)opt;
	if (passport_parse(value, &p, st->why, sizeof(st->why)) < 0)
		return -1;
	return replace_str(st, field, p.n ? value : NULL);
}

/* dir/rel without doubling a '/' when dir is "/"; returns what snprintf does */
static int join_path(char *out, size_t len, const char *dir, const char *rel)
{
	size_t d = strlen(dir);

	return snprintf(out, len, "%s%s%s", dir, d && dir[d - 1] == '/' ? "" : "/", rel);
}

static int parse_path(struct load *st, const struct option *opt,
		      const char *value, void *field)
{
	char path[PATH_MAX];
	int n;

	if (opt->type == T_PIN_DIR && !*value)
		return replace_str(st, field, NULL);
	if (!*value) {
		set_why(st, "empty");
		return -1;
	}
	if (opt->type == T_PIN_DIR && value[0] != '/') {
		set_why(st, "not an absolute path");
		return -1;
	}
	if (opt->type == T_CONF_PATH && value[0] != '/')
		n = join_path(path, sizeof(path), st->cfg->dir, value);
	else
		n = snprintf(path, sizeof(path), "%s", value);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		set_why(st, "path too long");
		return -1;
	}
	return replace_str(st, field, path);
}

static int parse_string(struct load *st, const struct option *opt,
			const char *value, void *field)
{
	if (opt->type == T_IDENT &&
	    (!*value || strlen(value) > 64 ||
	     strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			   "0123456789_$") != strlen(value))) {
		set_why(st, "not a plain SQL name");
		return -1;
	}
	return replace_str(st, field, value);
}

typedef int (*value_parser)(struct load *, const struct option *, const char *, void *);

static const value_parser parsers[] = {
	[T_BOOL] = parse_enum,          [T_SECONDS] = parse_number,
	[T_UINT] = parse_number,        [T_DECIMAL] = parse_decimal,
	[T_LOGLEVEL] = parse_enum,      [T_ENUM] = parse_enum,
	[T_PORT_RANGE] = parse_port_range, [T_IP] = parse_ip,
	[T_LISTEN] = parse_listen,      [T_HOSTS] = parse_hosts,
	[T_CIDRS] = parse_cidrs,        [T_IFNAMES] = parse_ifnames,
	[T_ACCOUNTING] = parse_accounting, [T_PASSPORT] = parse_passport,
	[T_CONF_PATH] = parse_path,     [T_PATH] = parse_path,
	[T_PIN_DIR] = parse_path,       [T_IDENT] = parse_string,
	[T_STRING] = parse_string,
};

static void join_names(const struct enum_name *names, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; names->name && used < len; names++) {
		int n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
				 names->name);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

/* The accepted form of an option, for error messages. */
static const char *expected(const struct option *opt, char *buf, size_t len)
{
	switch (opt->type) {
	case T_BOOL:
		return "yes, no, true, false, on, off, 1 or 0";
	case T_SECONDS:
		return opt->min ? "a whole number of seconds, at least 1" :
				  "a whole number of seconds (0 turns it off)";
	case T_UINT:
		snprintf(buf, len, "a whole number from %u to %u", opt->min, opt->max);
		return buf;
	case T_DECIMAL:
		snprintf(buf, len, "seconds above 0 and at most %u, e.g. 0.15", opt->max);
		return buf;
	case T_LOGLEVEL:
		return "CRITICAL, ERROR, WARNING, INFO or DEBUG";
	case T_ENUM:
		join_names(opt->enums, buf, len);
		return buf;
	case T_PORT_RANGE:
		return "start:end, both even, in [1024, 65536], start < end (e.g. 50000:60000)";
	case T_IP:
		return "an IPv4 or IPv6 address";
	case T_LISTEN:
		return "ip[:port], [ipv6][:port] or any[:port]";
	case T_HOSTS:
		return "host[:port] or [ipv6][:port] entries separated by commas or spaces";
	case T_CIDRS:
		return "address/prefix entries separated by commas or spaces (e.g. 10.0.0.0/8)";
	case T_IFNAMES:
		return "interface names separated by commas or spaces";
	case T_ACCOUNTING:
		return "jsonl, database and/or radius separated by commas or spaces";
	case T_PASSPORT:
		return "None or AN:value[, AN:value...] with AN one of O, OU, CN, C, L, ST, EMAIL";
	case T_PIN_DIR:
		return "an absolute directory on a bpf filesystem, or empty for "
		       "/sys/fs/bpf/mediaproxy/<relay_ip>";
	case T_IDENT:
		return "a table or column name of letters, digits, _ or $";
	default:
		return "a file path";
	}
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
		warn(st, st->section_line, "unknown section [%s] ignored (section "
		     "names are case-sensitive: [%s]?)", section, fold);
	else
		warn(st, st->section_line, "unknown section [%s] ignored", section);
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
		warn(st, line, "option '%s' outside any section ignored", name);
		return 0;
	}
	if (!known_section(section, &fold)) {
		unknown_section(st, section);
		return 0;
	}
	if (!(opt = find_option(section, name))) {
		warn(st, line, "unknown option '%s' in [%s] ignored", name, section);
		return 0;
	}
	if (st->seen[opt - options])
		warn(st, line, "[%s] %s set again (first on line %d); the last value wins",
		     section, opt->name, st->seen[opt - options]);
	st->why[0] = '\0';
	st->opt_line = line;
	if (parsers[opt->type](st, opt, value, (char *)st->cfg + opt->off) < 0) {
		fail(st, line, "[%s] %s = '%s': %s; expected %s", section, opt->name,
		     value, st->why, expected(opt, buf, sizeof(buf)));
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
	n = join_path(path, sizeof(path), a, b);
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

	cfg->tls.verify_interval = 300;
	cfg->opensips.max_connections = 10;
	cfg->opensips.mi_protocol = CONFIG_MI_AUTO;

	err = dup_into(&cfg->dir, dir, NULL);
	err |= dup_into(&d->socket_path, "dispatcher.sock", NULL);
	err |= dup_into(&d->accounting_file, "/var/log/mediaproxy/accounting.jsonl", NULL);
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
	free_strs(&cfg->relay.interfaces);
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
				    .end = buf + len, .warn = warn_fn,
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
