/* config.ini value parsers: each turns the text of one option (after
 * continuation lines are joined) into the typed field the option table
 * points at, or says why not in st->why. The loader (config.c) picks the
 * parser by option type and adds file:line and the expected form. */
#include "config_internal.h"
#include "passport.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct enum_name bool_names[] = {
	{ "yes", 1 }, { "true", 1 }, { "on", 1 }, { "1", 1 },
	{ "no", 0 }, { "false", 0 }, { "off", 0 }, { "0", 0 }, { NULL, 0 },
};

/* Enum fields are written through an int (parse_enum). */
_Static_assert(sizeof(enum config_forwarding) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");

__attribute__((format(printf, 2, 3)))
static void set_why(struct load *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->why, sizeof(st->why), fmt, ap);
	va_end(ap);
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

int config_enum_lookup(const struct enum_name *names, const char *value)
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
		v = config_enum_lookup(opt->type == T_BOOL ? bool_names : opt->enums, value);
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
		config_load_warn(st, st->opt_line, "[Relay] routable_private_ranges: "
				 "%s has host bits set; using %s", tok, fixed);
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

void config_str_list_free(struct config_str_list *l)
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
	config_str_list_free(out);
	*out = l;
	return 0;
err:
	config_str_list_free(&l);
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
		v = rc < 0 ? -1 : config_enum_lookup(opt->enums, tok);
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

int config_join_path(char *out, size_t len, const char *dir, const char *rel)
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
		n = config_join_path(path, sizeof(path), st->cfg->dir, value);
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

/* a type added after T_STRING needs its parser here */
_Static_assert(sizeof(parsers) / sizeof(parsers[0]) == T_STRING + 1, "parsers");

int config_value_parse(struct load *st, const struct option *opt,
		       const char *value, void *field)
{
	return parsers[opt->type](st, opt, value, field);
}

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

const char *config_value_expected(const struct option *opt, char *buf, size_t len)
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
