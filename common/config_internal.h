/* Private to common/config*.c; nothing else includes it (the API is config.h).
 * Shared by the loader (config.c: option table, inih callbacks, lines) and
 * the value parsers (config_values.c): the option descriptor, the state of
 * one load, and the few functions one side calls in the other. */
#ifndef MP_CONFIG_INTERNAL_H
#define MP_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

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

/* State of one load. The reader and the handler run in turn: inih asks
 * for a line, then calls the handler for it, so `line` is always the line
 * the handler is looking at. Value parsers use only cfg, opt_line and why
 * (and warnings through config_load_warn()). */
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
	int *seen;           /* per option table entry: line that set it, 0 = not yet */
	config_warn_fn warn;
	void *warn_ctx;
	char *err;
	size_t errlen;
	int fail_line; /* line of the first error, 0 = none */
	bool failed;
	char why[160]; /* filled by a value parser that rejects */
};

/* config.c: passes a warning about `line` to the caller's callback, if any. */
__attribute__((format(printf, 3, 4)))
void config_load_warn(struct load *st, int line, const char *fmt, ...);

/* config_values.c: parses value into field (a member of st->cfg) by the
 * type of opt. Returns 0, or -1 with st->why saying what is wrong. */
int config_value_parse(struct load *st, const struct option *opt,
		       const char *value, void *field);

/* config_values.c: the accepted form of opt's value, for error messages;
 * either a constant or buf (len bytes) filled in. */
const char *config_value_expected(const struct option *opt, char *buf, size_t len);

/* config_values.c: dir/rel without doubling a '/' when dir is "/"; returns
 * what snprintf does. */
int config_join_path(char *out, size_t len, const char *dir, const char *rel);

/* config_values.c: frees every string and the array; l is left empty. */
void config_str_list_free(struct config_str_list *l);

/* The value of a case-insensitive name in a NULL-terminated table, or -1. */
int config_enum_lookup(const struct enum_name *names, const char *value);

#endif
