/* config.ini for both daemons: MediaProxy 2.x sections and options with
 * their defaults, plus our additions (PROTOCOL.md 6 and 9, docs/config.md).
 * Loading is pure: it reads the one file and never logs; warnings go to a
 * callback and the first error is returned as text naming file:line. */
#ifndef MP_CONFIG_H
#define MP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "net.h"

#define CONFIG_DEFAULT_DIR "/etc/mediaproxy"
#define CONFIG_DISPATCHER_PORT 25060  /* [Relay] dispatchers, [Dispatcher] listen */
#define CONFIG_MANAGEMENT_PORT 25061  /* [Dispatcher] listen_management */
#define CONFIG_MAX_LINE 4096          /* characters per line, without the newline */
#define CONFIG_MAX_FILE (1024 * 1024) /* bytes */
#define CONFIG_MAX_LIST 256           /* entries in one list option */
#define CONFIG_MAX_SECONDS 315360000u /* 10 years: any longer is a typo */

enum config_forwarding {
	CONFIG_FWD_AUTO,
	CONFIG_FWD_XDP,
	CONFIG_FWD_CONNTRACK,
	CONFIG_FWD_USERSPACE,
};

enum config_selection {
	CONFIG_SELECT_RANDOM,
	CONFIG_SELECT_LEAST_LOADED,
};

enum config_mgmt_format {
	CONFIG_MGMT_LINES, /* one JSON object per line, as upstream */
	CONFIG_MGMT_ARRAY, /* one JSON array */
};

enum config_mi_protocol {
	CONFIG_MI_AUTO, /* decided per dialog id, PROTOCOL.md D13 */
	CONFIG_MI_OPENSIPS_TEXT,
	CONFIG_MI_OPENSIPS_JSON,
	CONFIG_MI_KAMAILIO_JSONRPC,
};

/* [Dispatcher] accounting: a bit set */
#define CONFIG_ACCT_JSONL 0x1u
#define CONFIG_ACCT_DATABASE 0x2u
#define CONFIG_ACCT_RADIUS 0x4u

struct config_endpoint_list {
	struct net_endpoint *items;
	size_t count;
};

struct config_cidr_list {
	struct net_cidr *items;
	size_t count;
};

struct config_str_list {
	char **items;
	size_t count;
};

/* Relay ports: [start, end), both even; RTP on even ports. */
struct config_port_range {
	unsigned int start;
	unsigned int end; /* exclusive; may be 65536 */
};

/* Durations are whole seconds unless marked otherwise. */
struct config_relay {
	struct config_endpoint_list dispatchers; /* port defaults to 25060 */
	char *passport;            /* X509 name filter; NULL = None, no check */
	struct net_addr relay_ip;  /* AF_UNSPEC: address of the default route */
	struct net_addr advertised_ip; /* AF_UNSPEC: not set */
	bool auto_detect_interfaces;
	struct config_port_range port_range;
	enum log_level log_level;
	unsigned int stream_timeout;
	unsigned int on_hold_timeout;
	unsigned int dns_check_interval;
	unsigned int reconnect_delay;
	unsigned int keepalive_interval;
	unsigned int traffic_sampling_period; /* 0 = off */
	unsigned int userspace_transmit_every; /* forward 1 of N in user space */
	struct config_cidr_list routable_private_ranges;
	enum config_forwarding forwarding;     /* our addition */
	struct config_str_list interfaces;     /* our addition; empty = auto */
	char *bpf_pin_dir; /* our addition; NULL = /sys/fs/bpf/mediaproxy/<relay_ip>,
			    * '.' and ':' written '_' (bpffs refuses dots) */
};

struct config_dispatcher {
	char *socket_path; /* as written; relative = in the runtime dir */
	struct net_endpoint listen;            /* default any:25060 */
	struct net_endpoint listen_management; /* default any:25061 */
	bool management_use_tls;
	char *passport;            /* NULL = None */
	char *management_passport; /* NULL = None */
	enum log_level log_level;
	unsigned int relay_timeout;
	unsigned int relay_recover_interval;
	unsigned int cleanup_dead_relays_after;
	unsigned int cleanup_expired_sessions_after;
	unsigned int accounting;      /* CONFIG_ACCT_* bits; 0 = none */
	int accounting_line;          /* line that set accounting, 0 = default */
	double relay_request_timeout; /* our addition; seconds, > 0 */
	char *accounting_file;        /* our addition; absolute */
	char *accounting_spool;       /* our addition; absolute directory */
	unsigned int accounting_spool_size; /* our addition; MiB the spool may use */
	enum config_selection selection;          /* our addition */
	enum config_mgmt_format management_format; /* our addition */
};

struct config_tls {
	char *certs_path; /* absolute */
	unsigned int verify_interval;
};

struct config_database {
	char *dburi; /* "" = not set */
	char *sessions_table;
	char *callid_column;
	char *fromtag_column;
	char *totag_column;
	char *info_column;
};

struct config_radius {
	char *config_file;           /* absolute */
	char *additional_dictionary; /* absolute */
};

struct config_opensips {
	char *socket_path; /* the proxy's MI socket, as written */
	unsigned int max_connections;
	enum config_mi_protocol mi_protocol; /* our addition */
	char *location_table;                /* accepted, unused */
};

struct mp_config {
	char *file; /* the file as named by the caller */
	char *dir;  /* absolute directory that relative paths resolve against */
	struct config_relay relay;
	struct config_dispatcher dispatcher;
	struct config_tls tls;
	struct config_database database;
	struct config_radius radius;
	struct config_opensips opensips;
};

/* Called once per warning (unknown section or option, an option set twice,
 * a range with host bits). message has no file:line prefix. */
typedef void (*config_warn_fn)(void *ctx, const char *file, int line,
			       const char *message);

/* Fills cfg with the defaults, relative paths resolved against
 * CONFIG_DEFAULT_DIR, as if an empty file had been read there. Returns 0 or
 * -ENOMEM (cfg is then empty; config_free() is still safe). */
int config_init_defaults(struct mp_config *cfg);

/* Reads the file at path: defaults (relative paths resolved against the
 * file's directory) overlaid with what the file sets. cfg must be zeroed or
 * hold a config (config_init_defaults() or an earlier load); that is freed
 * first. Returns 0, or -1 with err set to "FILE:LINE: ..." (or "FILE:
 * cannot read: ...") and cfg emptied. warn may be NULL. Not thread-safe: it
 * sets libinih's process-wide options (our daemons load once, at start). */
int config_load(struct mp_config *cfg, const char *path, config_warn_fn warn,
		void *warn_ctx, char *err, size_t errlen);

/* config_load() on a buffer already in memory; name stands for the file in
 * messages and its directory anchors relative paths. */
int config_load_buffer(struct mp_config *cfg, const char *name, const char *buf,
		       size_t len, config_warn_fn warn, void *warn_ctx,
		       char *err, size_t errlen);

/* Releases everything cfg owns and zeroes it; safe to call twice. */
void config_free(struct mp_config *cfg);

/* Checks what only the dispatcher needs: database accounting needs a
 * dburi. Returns 0 or -1 with err set. */
int config_check_dispatcher(const struct mp_config *cfg, char *err, size_t errlen);

/* Puts path into out as is when absolute, else as runtime_dir/path (D7:
 * sockets, state file, session table). Returns 0, -EINVAL for an empty
 * path, or -ENAMETOOLONG when out is too small. */
int config_runtime_path(const char *runtime_dir, const char *path, char *out,
			size_t outlen);

/* Names for logging the choices back. */
const char *config_forwarding_name(enum config_forwarding fwd);
/* The reverse, as config.ini spells it (auto, xdp, conntrack, userspace);
 * -1 for an unknown name. */
int config_forwarding_from_name(const char *name);
const char *config_selection_name(enum config_selection sel);
const char *config_mgmt_format_name(enum config_mgmt_format fmt);
const char *config_mi_protocol_name(enum config_mi_protocol proto);

#endif
