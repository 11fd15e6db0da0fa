/* config.ini loading (common/config.c): every value type, every error path
 * with its file:line, warnings for what upstream files carry that we do not
 * know, continuation and long lines, and path resolution (PROTOCOL.md 6,
 * D7, D8, D10, D11). Files are written into a mkdtemp directory. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static char tmpdir[] = "/tmp/mp-config-test-XXXXXX";
static char cfg_path[PATH_MAX]; /* tmpdir/config.ini */

/* ---- helpers --------------------------------------------------------------- */

#define MAX_WARN 16

struct warnings {
	int n;
	int lines[MAX_WARN];
	char msgs[MAX_WARN][512];
	char file[PATH_MAX];
};

static void collect(void *ctx, const char *file, int line, const char *message)
{
	struct warnings *w = ctx;

	if (w->n < MAX_WARN) {
		w->lines[w->n] = line;
		snprintf(w->msgs[w->n], sizeof(w->msgs[0]), "%s", message);
	}
	snprintf(w->file, sizeof(w->file), "%s", file);
	w->n++;
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Writes text to cfg_path and loads it. */
static int load_text(const char *text, struct mp_config *cfg, struct warnings *w,
		     char *err, size_t errlen)
{
	memset(w, 0, sizeof(*w));
	err[0] = '\0';
	write_file(cfg_path, text, strlen(text));
	return config_load(cfg, cfg_path, collect, w, err, errlen);
}

static void join(char *buf, size_t len, const char *item)
{
	size_t used = strlen(buf);

	snprintf(buf + used, len - used, "%s%s", used ? "," : "", item);
}

static void render_endpoint(const struct net_endpoint *ep, char *buf, size_t len)
{
	if (ep->any)
		snprintf(buf, len, "any:%u", ep->port);
	else if (strchr(ep->host, ':'))
		snprintf(buf, len, "[%s]:%u", ep->host, ep->port);
	else
		snprintf(buf, len, "%s:%u", ep->host, ep->port);
}

static void render_addr(const struct net_addr *a, char *buf, size_t len)
{
	if (a->family == AF_UNSPEC)
		snprintf(buf, len, "unset");
	else
		assert_int_equal(net_addr_format(a, buf, len), 0);
}

static const char *str_or_null(const char *s)
{
	return s ? s : "NULL";
}

/* The value of one field as text, named "section.option". */
static void render(const struct mp_config *c, const char *key, char *buf, size_t len)
{
	const struct config_relay *r = &c->relay;
	const struct config_dispatcher *d = &c->dispatcher;
	char item[128];

	buf[0] = '\0';
	if (!strcmp(key, "relay.dispatchers")) {
		for (size_t i = 0; i < r->dispatchers.count; i++) {
			render_endpoint(&r->dispatchers.items[i], item, sizeof(item));
			join(buf, len, item);
		}
	} else if (!strcmp(key, "relay.routable_private_ranges")) {
		for (size_t i = 0; i < r->routable_private_ranges.count; i++) {
			net_cidr_format(&r->routable_private_ranges.items[i], item, sizeof(item));
			join(buf, len, item);
		}
	} else if (!strcmp(key, "relay.interfaces")) {
		for (size_t i = 0; i < r->interfaces.count; i++)
			join(buf, len, r->interfaces.items[i]);
	} else if (!strcmp(key, "relay.passport")) {
		snprintf(buf, len, "%s", str_or_null(r->passport));
	} else if (!strcmp(key, "relay.relay_ip")) {
		render_addr(&r->relay_ip, buf, len);
	} else if (!strcmp(key, "relay.advertised_ip")) {
		render_addr(&r->advertised_ip, buf, len);
	} else if (!strcmp(key, "relay.auto_detect_interfaces")) {
		snprintf(buf, len, "%s", r->auto_detect_interfaces ? "true" : "false");
	} else if (!strcmp(key, "relay.port_range")) {
		snprintf(buf, len, "%u:%u", r->port_range.start, r->port_range.end);
	} else if (!strcmp(key, "relay.log_level")) {
		snprintf(buf, len, "%s", log_level_name(r->log_level));
	} else if (!strcmp(key, "relay.stream_timeout")) {
		snprintf(buf, len, "%u", r->stream_timeout);
	} else if (!strcmp(key, "relay.on_hold_timeout")) {
		snprintf(buf, len, "%u", r->on_hold_timeout);
	} else if (!strcmp(key, "relay.dns_check_interval")) {
		snprintf(buf, len, "%u", r->dns_check_interval);
	} else if (!strcmp(key, "relay.reconnect_delay")) {
		snprintf(buf, len, "%u", r->reconnect_delay);
	} else if (!strcmp(key, "relay.keepalive_interval")) {
		snprintf(buf, len, "%u", r->keepalive_interval);
	} else if (!strcmp(key, "relay.traffic_sampling_period")) {
		snprintf(buf, len, "%u", r->traffic_sampling_period);
	} else if (!strcmp(key, "relay.userspace_transmit_every")) {
		snprintf(buf, len, "%u", r->userspace_transmit_every);
	} else if (!strcmp(key, "relay.forwarding")) {
		snprintf(buf, len, "%s", config_forwarding_name(r->forwarding));
	} else if (!strcmp(key, "relay.bpf_pin_dir")) {
		snprintf(buf, len, "%s", str_or_null(r->bpf_pin_dir));
	} else if (!strcmp(key, "dispatcher.socket_path")) {
		snprintf(buf, len, "%s", d->socket_path);
	} else if (!strcmp(key, "dispatcher.listen")) {
		render_endpoint(&d->listen, buf, len);
	} else if (!strcmp(key, "dispatcher.listen_management")) {
		render_endpoint(&d->listen_management, buf, len);
	} else if (!strcmp(key, "dispatcher.management_use_tls")) {
		snprintf(buf, len, "%s", d->management_use_tls ? "true" : "false");
	} else if (!strcmp(key, "dispatcher.passport")) {
		snprintf(buf, len, "%s", str_or_null(d->passport));
	} else if (!strcmp(key, "dispatcher.management_passport")) {
		snprintf(buf, len, "%s", str_or_null(d->management_passport));
	} else if (!strcmp(key, "dispatcher.log_level")) {
		snprintf(buf, len, "%s", log_level_name(d->log_level));
	} else if (!strcmp(key, "dispatcher.relay_timeout")) {
		snprintf(buf, len, "%u", d->relay_timeout);
	} else if (!strcmp(key, "dispatcher.cleanup_expired_sessions_after")) {
		snprintf(buf, len, "%u", d->cleanup_expired_sessions_after);
	} else if (!strcmp(key, "dispatcher.accounting")) {
		snprintf(buf, len, "%s%s%s", d->accounting & CONFIG_ACCT_JSONL ? "j" : "",
			 d->accounting & CONFIG_ACCT_DATABASE ? "d" : "",
			 d->accounting & CONFIG_ACCT_RADIUS ? "r" : "");
	} else if (!strcmp(key, "dispatcher.relay_request_timeout")) {
		snprintf(buf, len, "%.3f", d->relay_request_timeout);
	} else if (!strcmp(key, "dispatcher.accounting_file")) {
		snprintf(buf, len, "%s", d->accounting_file);
	} else if (!strcmp(key, "dispatcher.selection")) {
		snprintf(buf, len, "%s", config_selection_name(d->selection));
	} else if (!strcmp(key, "dispatcher.management_format")) {
		snprintf(buf, len, "%s", config_mgmt_format_name(d->management_format));
	} else if (!strcmp(key, "tls.certs_path")) {
		snprintf(buf, len, "%s", c->tls.certs_path);
	} else if (!strcmp(key, "tls.verify_interval")) {
		snprintf(buf, len, "%u", c->tls.verify_interval);
	} else if (!strcmp(key, "database.dburi")) {
		snprintf(buf, len, "%s", c->database.dburi);
	} else if (!strcmp(key, "database.sessions_table")) {
		snprintf(buf, len, "%s", c->database.sessions_table);
	} else if (!strcmp(key, "database.info_column")) {
		snprintf(buf, len, "%s", c->database.info_column);
	} else if (!strcmp(key, "radius.config_file")) {
		snprintf(buf, len, "%s", c->radius.config_file);
	} else if (!strcmp(key, "radius.additional_dictionary")) {
		snprintf(buf, len, "%s", c->radius.additional_dictionary);
	} else if (!strcmp(key, "opensips.socket_path")) {
		snprintf(buf, len, "%s", c->opensips.socket_path);
	} else if (!strcmp(key, "opensips.max_connections")) {
		snprintf(buf, len, "%u", c->opensips.max_connections);
	} else if (!strcmp(key, "opensips.mi_protocol")) {
		snprintf(buf, len, "%s", config_mi_protocol_name(c->opensips.mi_protocol));
	} else if (!strcmp(key, "opensips.location_table")) {
		snprintf(buf, len, "%s", c->opensips.location_table);
	} else {
		fail_msg("test bug: no renderer for %s", key);
	}
}

/* "$T" in an expected value stands for the temp directory. */
static void expand(const char *want, char *buf, size_t len)
{
	const char *at = strstr(want, "$T");

	if (at)
		snprintf(buf, len, "%.*s%s%s", (int)(at - want), want, tmpdir, at + 2);
	else
		snprintf(buf, len, "%s", want);
}

/* ---- good values --------------------------------------------------------- */

struct good_case {
	const char *name;
	const char *text;
	const char *key;
	const char *want;
};

static const struct good_case good_cases[] = {
	/* defaults, from an empty file */
	{ "empty file: port range default", "", "relay.port_range", "50000:60000" },
	{ "empty file: no dispatchers", "", "relay.dispatchers", "" },
	{ "empty file: relay_ip from default route", "", "relay.relay_ip", "unset" },
	{ "empty file: listen any:25060", "", "dispatcher.listen", "any:25060" },
	{ "empty file: management any:25061", "", "dispatcher.listen_management", "any:25061" },
	{ "empty file: no accounting (D11)", "", "dispatcher.accounting", "" },
	{ "empty file: relay_request_timeout 0.15", "", "dispatcher.relay_request_timeout", "0.150" },
	{ "empty file: certs next to the file", "", "tls.certs_path", "$T/tls" },
	{ "empty file: dictionary next to the file", "", "radius.additional_dictionary",
	  "$T/radius/dictionary" },
	{ "empty file: radius client.conf", "", "radius.config_file",
	  "/etc/opensips/radius/client.conf" },
	{ "empty file: socket stays relative", "", "dispatcher.socket_path", "dispatcher.sock" },
	{ "empty file: bpf_pin_dir derived at runtime", "", "relay.bpf_pin_dir", "NULL" },
	{ "empty file: log level INFO", "", "relay.log_level", "INFO" },
	{ "empty file: opensips socket", "", "opensips.socket_path", "/var/run/opensips/socket" },
	{ "empty file: accounting file", "", "dispatcher.accounting_file",
	  "/var/log/mediaproxy/accounting.jsonl" },

	/* lists */
	{ "dispatchers separated by spaces (sample)", "[Relay]\ndispatchers = example.com 1.2.3.4:12345\n",
	  "relay.dispatchers", "example.com:25060,1.2.3.4:12345" },
	{ "dispatchers separated by commas", "[Relay]\ndispatchers = a.example.com,b.example.com:1\n",
	  "relay.dispatchers", "a.example.com:25060,b.example.com:1" },
	{ "dispatchers with commas and spaces", "[Relay]\ndispatchers = 10.0.0.1 ,  10.0.0.2:2 ,10.0.0.3\n",
	  "relay.dispatchers", "10.0.0.1:25060,10.0.0.2:2,10.0.0.3:25060" },
	{ "dispatchers IPv6 bracketed and bare", "[Relay]\ndispatchers = [::1]:25070 [2001:db8::5] 2001:db8::6\n",
	  "relay.dispatchers", "[::1]:25070,[2001:db8::5]:25060,[2001:db8::6]:25060" },
	{ "dispatchers empty", "[Relay]\ndispatchers =\n", "relay.dispatchers", "" },
	{ "dispatchers over continuation lines", "[Relay]\ndispatchers = a.example.com\n"
	  "  b.example.com:7 ; second\n\tc.example.com\nport_range = 40000:40002\n",
	  "relay.dispatchers", "a.example.com:25060,b.example.com:7,c.example.com:25060" },
	{ "option after continuation still read", "[Relay]\ndispatchers = a.example.com\n"
	  "  b.example.com\nport_range = 40000:40002\n", "relay.port_range", "40000:40002" },
	{ "inline comment stripped", "[Relay]\nstream_timeout = 30 ; seconds\n",
	  "relay.stream_timeout", "30" },
	{ "CIDR list", "[Relay]\nroutable_private_ranges = 127.0.0.0/8, 10.0.0.0/8 172.16.0.0/12,192.168.0.0/16\n",
	  "relay.routable_private_ranges", "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16" },
	{ "CIDR list IPv6 and bare host", "[Relay]\nroutable_private_ranges = fd00::/8 192.0.2.7\n",
	  "relay.routable_private_ranges", "fd00::/8,192.0.2.7/32" },
	{ "CIDR list None", "[Relay]\nroutable_private_ranges = None\n",
	  "relay.routable_private_ranges", "" },
	{ "CIDR any", "[Relay]\nroutable_private_ranges = any\n",
	  "relay.routable_private_ranges", "0.0.0.0/0,::/0" },
	{ "interfaces", "[Relay]\ninterfaces = eth0, veth-r1 lo\n", "relay.interfaces", "eth0,veth-r1,lo" },

	/* ports, addresses */
	{ "port range widest", "[Relay]\nport_range = 1024:65536\n", "relay.port_range", "1024:65536" },
	{ "port range with spaces", "[Relay]\nport_range = 40000 : 40100\n", "relay.port_range", "40000:40100" },
	{ "relay_ip IPv4", "[Relay]\nrelay_ip = 127.0.0.2\n", "relay.relay_ip", "127.0.0.2" },
	{ "relay_ip IPv6", "[Relay]\nrelay_ip = 2001:DB8::1\n", "relay.relay_ip", "2001:db8::1" },
	{ "advertised_ip empty (sample)", "[Relay]\nadvertised_ip =\n", "relay.advertised_ip", "unset" },
	{ "advertised_ip set", "[Relay]\nadvertised_ip = 203.0.113.9\n", "relay.advertised_ip", "203.0.113.9" },
	{ "listen 0.0.0.0 (sample)", "[Dispatcher]\nlisten = 0.0.0.0\n", "dispatcher.listen", "0.0.0.0:25060" },
	{ "listen any with port", "[Dispatcher]\nlisten = any:26000\n", "dispatcher.listen", "any:26000" },
	{ "listen IPv6 with port", "[Dispatcher]\nlisten = [::1]:25060\n", "dispatcher.listen", "[::1]:25060" },
	{ "listen_management ip only", "[Dispatcher]\nlisten_management = 127.0.0.1\n",
	  "dispatcher.listen_management", "127.0.0.1:25061" },

	/* booleans, numbers, levels, enumerations */
	{ "bool yes", "[Relay]\nauto_detect_interfaces = yes\n", "relay.auto_detect_interfaces", "true" },
	{ "bool True (upstream spelling)", "[Relay]\nauto_detect_interfaces = True\n",
	  "relay.auto_detect_interfaces", "true" },
	{ "bool ON", "[Relay]\nauto_detect_interfaces = ON\n", "relay.auto_detect_interfaces", "true" },
	{ "bool 1", "[Relay]\nauto_detect_interfaces = 1\n", "relay.auto_detect_interfaces", "true" },
	{ "bool off", "[Dispatcher]\nmanagement_use_tls = off\n", "dispatcher.management_use_tls", "false" },
	{ "bool False", "[Dispatcher]\nmanagement_use_tls = False\n", "dispatcher.management_use_tls", "false" },
	{ "bool no", "[Dispatcher]\nmanagement_use_tls = no\n", "dispatcher.management_use_tls", "false" },
	{ "bool 0", "[Dispatcher]\nmanagement_use_tls = 0\n", "dispatcher.management_use_tls", "false" },
	{ "traffic sampling off", "[Relay]\ntraffic_sampling_period = 0\n",
	  "relay.traffic_sampling_period", "0" },
	{ "on hold timeout", "[Relay]\non_hold_timeout = 3600\n", "relay.on_hold_timeout", "3600" },
	{ "dns interval", "[Relay]\ndns_check_interval = 1\n", "relay.dns_check_interval", "1" },
	{ "reconnect delay", "[Relay]\nreconnect_delay = 3\n", "relay.reconnect_delay", "3" },
	{ "keepalive", "[Relay]\nkeepalive_interval = 20\n", "relay.keepalive_interval", "20" },
	{ "userspace transmit every", "[Relay]\nuserspace_transmit_every = 4\n",
	  "relay.userspace_transmit_every", "4" },
	{ "relay timeout", "[Dispatcher]\nrelay_timeout = 2\n", "dispatcher.relay_timeout", "2" },
	{ "cleanup expired", "[Dispatcher]\ncleanup_expired_sessions_after = 600\n",
	  "dispatcher.cleanup_expired_sessions_after", "600" },
	{ "verify interval", "[TLS]\nverify_interval = 60\n", "tls.verify_interval", "60" },
	{ "max connections", "[OpenSIPS]\nmax_connections = 3\n", "opensips.max_connections", "3" },
	{ "log level lower case", "[Relay]\nlog_level = debug\n", "relay.log_level", "DEBUG" },
	{ "log level WARN", "[Dispatcher]\nlog_level = WARN\n", "dispatcher.log_level", "WARNING" },
	{ "relay_request_timeout", "[Dispatcher]\nrelay_request_timeout = 0.25\n",
	  "dispatcher.relay_request_timeout", "0.250" },
	{ "relay_request_timeout whole", "[Dispatcher]\nrelay_request_timeout = 1\n",
	  "dispatcher.relay_request_timeout", "1.000" },
	{ "forwarding xdp", "[Relay]\nforwarding = xdp\n", "relay.forwarding", "xdp" },
	{ "forwarding conntrack", "[Relay]\nforwarding = Conntrack\n", "relay.forwarding", "conntrack" },
	{ "forwarding userspace", "[Relay]\nforwarding = userspace\n", "relay.forwarding", "userspace" },
	{ "selection least_loaded", "[Dispatcher]\nselection = least_loaded\n",
	  "dispatcher.selection", "least_loaded" },
	{ "management_format array", "[Dispatcher]\nmanagement_format = array\n",
	  "dispatcher.management_format", "array" },
	{ "mi_protocol kamailio", "[OpenSIPS]\nmi_protocol = kamailio-jsonrpc\n",
	  "opensips.mi_protocol", "kamailio-jsonrpc" },
	{ "mi_protocol text", "[OpenSIPS]\nmi_protocol = opensips-text\n",
	  "opensips.mi_protocol", "opensips-text" },
	{ "accounting all three", "[Dispatcher]\naccounting = radius, database jsonl\n",
	  "dispatcher.accounting", "jdr" },
	{ "accounting empty (sample)", "[Dispatcher]\naccounting =\n", "dispatcher.accounting", "" },

	/* passports, strings, paths */
	{ "passport None", "[Relay]\npassport = None\n", "relay.passport", "NULL" },
	{ "passport none lower case", "[Dispatcher]\npassport = none\n", "dispatcher.passport", "NULL" },
	{ "passport verbatim", "[Relay]\npassport = O:AG Projects, CN:*dispatcher\n",
	  "relay.passport", "O:AG Projects, CN:*dispatcher" },
	{ "management passport", "[Dispatcher]\nmanagement_passport = CN:relay*\n",
	  "dispatcher.management_passport", "CN:relay*" },
	{ "dburi", "[Database]\ndburi = mysql://mediaproxy:CHANGEME@localhost/mediaproxy\n",
	  "database.dburi", "mysql://mediaproxy:CHANGEME@localhost/mediaproxy" },
	{ "table name", "[Database]\nsessions_table = media_sessions_2\n",
	  "database.sessions_table", "media_sessions_2" },
	{ "column name", "[Database]\ninfo_column = info$x\n", "database.info_column", "info$x" },
	{ "location table", "[OpenSIPS]\nlocation_table = location\n", "opensips.location_table", "location" },
	{ "certs_path relative to the file", "[TLS]\ncerts_path = certs\n", "tls.certs_path", "$T/certs" },
	{ "certs_path absolute kept", "[TLS]\ncerts_path = /srv/tls\n", "tls.certs_path", "/srv/tls" },
	{ "dictionary relative", "[Radius]\nadditional_dictionary = dict/mp\n",
	  "radius.additional_dictionary", "$T/dict/mp" },
	{ "radius config relative", "[Radius]\nconfig_file = client.conf\n", "radius.config_file",
	  "$T/client.conf" },
	{ "accounting_file relative", "[Dispatcher]\naccounting_file = acct/records.jsonl\n",
	  "dispatcher.accounting_file", "$T/acct/records.jsonl" },
	{ "dispatcher socket kept relative (runtime dir)", "[Dispatcher]\nsocket_path = d.sock\n",
	  "dispatcher.socket_path", "d.sock" },
	{ "opensips socket kept as written", "[OpenSIPS]\nsocket_path = /run/opensips/socket\n",
	  "opensips.socket_path", "/run/opensips/socket" },
	{ "bpf_pin_dir set", "[Relay]\nbpf_pin_dir = /sys/fs/bpf/test-1\n", "relay.bpf_pin_dir",
	  "/sys/fs/bpf/test-1" },
	{ "bpf_pin_dir empty", "[Relay]\nbpf_pin_dir =\n", "relay.bpf_pin_dir", "NULL" },

	/* grammar */
	{ "option names are case-insensitive", "[Relay]\nPort_Range = 40000:40002\n",
	  "relay.port_range", "40000:40002" },
	{ "name:value form (configparser)", "[Relay]\nstream_timeout: 45\n", "relay.stream_timeout", "45" },
	{ "hash comments", "# c\n[Relay]\n  # indented c\nstream_timeout = 46\n",
	  "relay.stream_timeout", "46" },
	{ "CRLF line ends", "[Relay]\r\nstream_timeout = 47\r\n\r\n", "relay.stream_timeout", "47" },
	{ "UTF-8 BOM", "\xEF\xBB\xBF[Relay]\nstream_timeout = 48\n", "relay.stream_timeout", "48" },
	{ "no final newline", "[Relay]\nstream_timeout = 49", "relay.stream_timeout", "49" },
	{ "last value wins", "[Relay]\nstream_timeout = 50\nstream_timeout = 51\n",
	  "relay.stream_timeout", "51" },
	{ "section repeated", "[Relay]\nstream_timeout = 52\n[TLS]\n[Relay]\non_hold_timeout = 53\n",
	  "relay.stream_timeout", "52" },
	{ "indented option right after a header", "[Relay]\n  stream_timeout = 54\n",
	  "relay.stream_timeout", "54" },
};

static void test_good_values(void **state)
{
	char err[1024], got[2048], want[PATH_MAX];
	struct warnings w;
	struct mp_config cfg = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct good_case *c = &good_cases[i];

		if (load_text(c->text, &cfg, &w, err, sizeof(err)) != 0)
			fail_msg("%s: load failed: %s", c->name, err);
		render(&cfg, c->key, got, sizeof(got));
		expand(c->want, want, sizeof(want));
		if (strcmp(got, want))
			fail_msg("%s: %s = '%s', want '%s'", c->name, c->key, got, want);
		config_free(&cfg);
	}
}

/* ---- errors -------------------------------------------------------------- */

struct bad_case {
	const char *name;
	const char *text;
	int line;
	const char *want; /* the message after "FILE:LINE: " */
};

static const struct bad_case bad_cases[] = {
	{ "odd port range start", "[Relay]\nport_range = 50001:60000\n", 2,
	  "[Relay] port_range = '50001:60000': port 50001 is odd; expected start:end, "
	  "both even, in [1024, 65536], start < end (e.g. 50000:60000)" },
	{ "odd port range end", "[Relay]\nport_range = 50000:60001\n", 2, "port 60001 is odd" },
	{ "reversed port range", "[Relay]\nport_range = 60000:50000\n", 2,
	  "start 60000 is not below end 50000" },
	{ "empty port range", "[Relay]\nport_range = 50000:50000\n", 2,
	  "start 50000 is not below end 50000" },
	{ "port range below 1024", "[Relay]\nport_range = 1022:2000\n", 2,
	  "port 1022 is outside [1024, 65536]" },
	{ "port range above 65536", "[Relay]\nport_range = 50000:65538\n", 2,
	  "port 65538 is outside [1024, 65536]" },
	{ "port range garbage", "[Relay]\nport_range = lots\n", 2,
	  "[Relay] port_range = 'lots': no ':' between start and end" },
	{ "port range negative", "[Relay]\nport_range = -2:50000\n", 2, "'-2' is not a port number" },
	{ "port range three parts", "[Relay]\nport_range = 2000:3000:4000\n", 2,
	  "'3000:4000' is not a port number" },
	{ "bad boolean", "\n[Relay]\nauto_detect_interfaces = maybe\n", 3,
	  "[Relay] auto_detect_interfaces = 'maybe': unknown value; expected yes, no, true, "
	  "false, on, off, 1 or 0" },
	{ "bad integer", "[Relay]\nstream_timeout = 9o\n", 2,
	  "[Relay] stream_timeout = '9o': not a whole number; expected a whole number of "
	  "seconds, at least 1" },
	{ "negative integer", "[Relay]\non_hold_timeout = -1\n", 2, "not a whole number" },
	{ "integer with unit", "[Relay]\non_hold_timeout = 2h\n", 2, "not a whole number" },
	{ "integer too large", "[Relay]\non_hold_timeout = 99999999999999999999\n", 2,
	  "too large (at most 315360000)" },
	{ "zero dns_check_interval", "[Relay]\ndns_check_interval = 0\n", 2,
	  "[Relay] dns_check_interval = '0': 0 is too small; expected a whole number of "
	  "seconds, at least 1" },
	{ "zero reconnect_delay", "[Relay]\nreconnect_delay = 0\n", 2, "0 is too small" },
	{ "zero keepalive_interval", "[Relay]\nkeepalive_interval = 0\n", 2, "0 is too small" },
	{ "zero userspace_transmit_every", "[Relay]\nuserspace_transmit_every = 0\n", 2,
	  "0 is too small; expected a whole number from 1 to 1000000" },
	{ "zero max_connections", "[OpenSIPS]\nmax_connections = 0\n", 2, "0 is too small" },
	{ "empty integer", "[TLS]\nverify_interval =\n", 2,
	  "[TLS] verify_interval = '': not a whole number" },
	{ "bad float", "[Dispatcher]\nrelay_request_timeout = 0.1.5\n", 2,
	  "[Dispatcher] relay_request_timeout = '0.1.5': not a decimal number; expected "
	  "seconds above 0 and at most 3600, e.g. 0.15" },
	{ "float as hex", "[Dispatcher]\nrelay_request_timeout = 0x1p-3\n", 2, "not a decimal number" },
	{ "float nan", "[Dispatcher]\nrelay_request_timeout = nan\n", 2, "not a decimal number" },
	{ "float zero", "[Dispatcher]\nrelay_request_timeout = 0.0\n", 2, "out of range" },
	{ "bad log level", "[Relay]\nlog_level = LOUD\n", 2,
	  "[Relay] log_level = 'LOUD': unknown value; expected CRITICAL, ERROR, WARNING, "
	  "INFO or DEBUG" },
	{ "bad forwarding", "[Relay]\nforwarding = dpdk\n", 2,
	  "[Relay] forwarding = 'dpdk': unknown value; expected auto, xdp, conntrack, userspace" },
	{ "bad selection", "[Dispatcher]\nselection = round_robin\n", 2,
	  "expected random, least_loaded" },
	{ "bad management_format", "[Dispatcher]\nmanagement_format = xml\n", 2,
	  "expected lines, array" },
	{ "bad mi_protocol", "[OpenSIPS]\nmi_protocol = xmlrpc\n", 2,
	  "expected auto, opensips-text, opensips-json, kamailio-jsonrpc" },
	{ "bad accounting backend", "[Dispatcher]\naccounting = database, csv\n", 2,
	  "[Dispatcher] accounting = 'database, csv': unknown backend 'csv'; expected jsonl, "
	  "database and/or radius separated by commas or spaces" },
	{ "bad relay_ip", "[Relay]\nrelay_ip = 10.0.0.256\n", 2,
	  "[Relay] relay_ip = '10.0.0.256': not an IP address; expected an IPv4 or IPv6 address" },
	{ "hostname as relay_ip", "[Relay]\nrelay_ip = relay.example.com\n", 2, "not an IP address" },
	{ "unspecified relay_ip", "[Relay]\nrelay_ip = 0.0.0.0\n", 2,
	  "an unspecified or multicast address cannot be used" },
	{ "multicast advertised_ip", "[Relay]\nadvertised_ip = 224.0.0.1\n", 2,
	  "an unspecified or multicast address cannot be used" },
	{ "bad CIDR prefix", "[Relay]\nroutable_private_ranges = 10.0.0.0/8, 192.168.0.0/33\n", 2,
	  "[Relay] routable_private_ranges = '10.0.0.0/8, 192.168.0.0/33': '192.168.0.0/33' is "
	  "not address/prefix; expected address/prefix entries separated by commas or spaces" },
	{ "CIDR hostname", "[Relay]\nroutable_private_ranges = lan.example.com/24\n", 2,
	  "is not address/prefix" },
	{ "CIDR empty prefix", "[Relay]\nroutable_private_ranges = 10.0.0.0/\n", 2,
	  "is not address/prefix" },
	{ "bad dispatcher port", "[Relay]\ndispatchers = a.example.com:70000\n", 2,
	  "[Relay] dispatchers = 'a.example.com:70000': 'a.example.com:70000' is not host[:port]" },
	{ "bad dispatcher name", "[Relay]\ndispatchers = good.example.com bad!name\n", 2,
	  "'bad!name' is not host[:port]" },
	{ "dispatcher IPv4 in brackets", "[Relay]\ndispatchers = [10.0.0.1]:5\n", 2,
	  "is not host[:port]" },
	{ "dispatcher mistyped IPv4", "[Relay]\ndispatchers = 10.0.0.300\n", 2,
	  "'10.0.0.300' is not host[:port]" },
	{ "listen hostname", "[Dispatcher]\nlisten = dispatcher.example.com\n", 2,
	  "[Dispatcher] listen = 'dispatcher.example.com': not an address and port; expected "
	  "ip[:port], [ipv6][:port] or any[:port]" },
	{ "listen port 0", "[Dispatcher]\nlisten_management = any:0\n", 2, "not an address and port" },
	{ "interface name too long", "[Relay]\ninterfaces = eth0 averyveryverylongname\n", 2,
	  "'averyveryverylongname' is not an interface name" },
	{ "passport unknown attribute", "[Relay]\npassport = XX:foo\n", 2,
	  "[Relay] passport = 'XX:foo': " },
	{ "passport without colon", "[Dispatcher]\nmanagement_passport = relay\n", 2,
	  "[Dispatcher] management_passport = 'relay': " },
	{ "relative bpf_pin_dir", "[Relay]\nbpf_pin_dir = pins\n", 2,
	  "[Relay] bpf_pin_dir = 'pins': not an absolute path" },
	{ "empty certs_path", "[TLS]\ncerts_path =\n", 2, "[TLS] certs_path = '': empty; expected a file path" },
	{ "SQL injection in table name", "[Database]\nsessions_table = x; drop table y\n", 2,
	  "[Database] sessions_table = 'x; drop table y': not a plain SQL name" },
	{ "table name with space", "[Database]\ncallid_column = call id\n", 2, "not a plain SQL name" },
	{ "multi-line scalar", "[Relay]\nstream_timeout = 5\n  0\n", 2,
	  "[Relay] stream_timeout = '5 0': not a whole number" },

	/* syntax errors */
	{ "line without =", "[Relay]\nstream_timeout = 5\njust some words\n", 3,
	  "syntax error: 'just some words': not a comment, [Section] or option line; "
	  "expected option = value" },
	{ "section without ]", "[Relay]\nstream_timeout = 5\n\n[Dispatcher\nlisten = any\n", 4,
	  "syntax error: '[Dispatcher': no ']' closing the section name; expected [Section]" },
	{ "missing option name", "[Relay]\n= 5\n", 2, "syntax error: '= 5': no option name" },
	{ "earlier bad value wins over later syntax error",
	  "[Relay]\nport_range = 1:2\nwords\n", 2, "[Relay] port_range = '1:2'" },
	{ "NUL byte", "[Relay]\nstream_timeout = 5\0\n", 2, "line contains a NUL byte" },
};

static void test_bad_values(void **state)
{
	char err[1024], prefix[PATH_MAX + 32];
	struct warnings w;
	struct mp_config cfg = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t len = strlen(c->text);

		if (!strcmp(c->name, "NUL byte"))
			len += 2; /* the text goes on past its embedded NUL */
		memset(&w, 0, sizeof(w));
		write_file(cfg_path, c->text, len);
		if (config_load(&cfg, cfg_path, collect, &w, err, sizeof(err)) != -1)
			fail_msg("%s: loaded, want an error", c->name);
		snprintf(prefix, sizeof(prefix), "%s:%d: ", cfg_path, c->line);
		if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, c->want))
			fail_msg("%s: got\n  %s\nwant\n  %s%s", c->name, err, prefix, c->want);
		/* a failed load leaves nothing to free */
		assert_null(cfg.file);
		assert_null(cfg.tls.certs_path);
		config_free(&cfg);
	}
}

/* ---- warnings ------------------------------------------------------------- */

static void expect_warning(const struct warnings *w, int i, int line, const char *msg)
{
	assert_true(i < w->n);
	if (w->lines[i] != line || !strstr(w->msgs[i], msg))
		fail_msg("warning %d: line %d '%s', want line %d '%s'", i, w->lines[i],
			 w->msgs[i], line, msg);
}

static void test_unknown_section_and_options_warn(void **state)
{
	static const char text[] =
		"; MediaProxy 2.x file with SIP Thor bits\n" /* 1 */
		"[Relay]\n"                                  /* 2 */
		"stream_timeout = 60\n"                      /* 3 */
		"stats_collect_interval = 15\n"              /* 4: pre-2.0 name */
		"\n"                                         /* 5 */
		"[ThorNetwork]\n"                            /* 6 */
		"domain = sipthor.example.com\n"             /* 7 */
		"node_ip = 10.0.0.1\n"                       /* 8 */
		"[relay]\n"                                  /* 9 */
		"stream_timeout = 1\n"                       /* 10 */
		"[Dispatcher]\n"                             /* 11 */
		"relay_timeout = 3\n"                        /* 12 */
		"relay_timeout = 4\n";                       /* 13 */
	char err[1024];
	struct warnings w;
	struct mp_config cfg = { 0 };

	(void)state;
	assert_int_equal(load_text(text, &cfg, &w, err, sizeof(err)), 0);
	assert_int_equal(w.n, 4);
	assert_string_equal(w.file, cfg_path);
	expect_warning(&w, 0, 4, "unknown option 'stats_collect_interval' in [Relay] ignored");
	expect_warning(&w, 1, 6, "unknown section [ThorNetwork] ignored");
	expect_warning(&w, 2, 9, "unknown section [relay] ignored (section names are "
			      "case-sensitive: [Relay]?)");
	expect_warning(&w, 3, 13, "[Dispatcher] relay_timeout set again (first on line 12)");
	assert_int_equal(cfg.relay.stream_timeout, 60);
	assert_int_equal(cfg.dispatcher.relay_timeout, 4);
	config_free(&cfg);
}

static void test_other_warnings(void **state)
{
	char err[1024];
	struct warnings w;
	struct mp_config cfg = { 0 };

	(void)state;
	assert_int_equal(load_text("stray = 1\n[Relay]\nroutable_private_ranges = "
				   "192.168.1.5/24\n", &cfg, &w, err, sizeof(err)), 0);
	assert_int_equal(w.n, 2);
	expect_warning(&w, 0, 1, "option 'stray' outside any section ignored");
	expect_warning(&w, 1, 3, "192.168.1.5/24 has host bits set; using 192.168.1.0/24");
	assert_int_equal(cfg.relay.routable_private_ranges.count, 1);
	config_free(&cfg);

	/* no callback: warnings are dropped, the load still works */
	write_file(cfg_path, "[Nope]\nx = 1\n", 13);
	assert_int_equal(config_load(&cfg, cfg_path, NULL, NULL, err, sizeof(err)), 0);
	config_free(&cfg);
}

/* ---- the upstream sample, uncommented ------------------------------------ */

static void test_upstream_style_file(void **state)
{
	static const char text[] =
		"\n[Relay]\n"
		"dispatchers = example.com 1.2.3.4:12345\n"
		"passport = None\n"
		"auto_detect_interfaces = False\n"
		"advertised_ip =\n"
		"port_range = 50000:60000\n"
		"log_level = DEBUG\n"
		"stream_timeout = 90\n"
		"on_hold_timeout = 7200\n"
		"dns_check_interval = 60\n"
		"reconnect_delay = 10\n"
		"traffic_sampling_period = 15\n"
		"routable_private_ranges = 192.168.1.0/24\n"
		"\n[Dispatcher]\n"
		"socket_path = dispatcher.sock\n"
		"listen = 0.0.0.0\n"
		"listen_management = 0.0.0.0\n"
		"management_use_tls = yes\n"
		"passport = O:AG Projects, CN:relay*\n"
		"management_passport = None\n"
		"log_level = DEBUG\n"
		"relay_timeout = 5\n"
		"accounting = database,radius\n"
		"\n[TLS]\ncerts_path = tls\nverify_interval = 300\n"
		"\n[Database]\ndburi = mysql://mediaproxy:CHANGEME@localhost/mediaproxy\n"
		"sessions_table = media_sessions\ncallid_column = call_id\n"
		"fromtag_column = from_tag\ntotag_column = to_tag\ninfo_column = info\n"
		"\n[Radius]\nconfig_file = /etc/opensips/radius/client.conf\n"
		"additional_dictionary = radius/dictionary\n"
		"\n[OpenSIPS]\nsocket_path = /var/run/opensips/socket\nmax_connections = 10\n"
		"\n[ThorNetwork]\ndomain = None\nnode_ip = 10.0.0.1\n";
	char err[1024], path[PATH_MAX];
	struct warnings w;
	struct mp_config cfg = { 0 };

	(void)state;
	assert_int_equal(load_text(text, &cfg, &w, err, sizeof(err)), 0);
	assert_int_equal(w.n, 1);
	expect_warning(&w, 0, 47, "unknown section [ThorNetwork]");
	assert_int_equal(cfg.relay.dispatchers.count, 2);
	assert_string_equal(cfg.relay.dispatchers.items[0].host, "example.com");
	assert_int_equal(cfg.relay.log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg.dispatcher.accounting, CONFIG_ACCT_DATABASE | CONFIG_ACCT_RADIUS);
	assert_int_equal(cfg.dispatcher.accounting_line, 25);
	assert_string_equal(cfg.dispatcher.passport, "O:AG Projects, CN:relay*");
	snprintf(path, sizeof(path), "%s/tls", tmpdir);
	assert_string_equal(cfg.tls.certs_path, path);
	assert_string_equal(cfg.dir, tmpdir);
	assert_string_equal(cfg.file, cfg_path);
	assert_int_equal(config_check_dispatcher(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	config_free(&cfg); /* twice is harmless */
}

/* ---- files, lines and paths ----------------------------------------------- */

static void test_missing_and_unreadable_file(void **state)
{
	char err[1024], want[PATH_MAX + 64], path[PATH_MAX];
	struct mp_config cfg = { 0 };

	(void)state;
	snprintf(path, sizeof(path), "%s/nonexistent.ini", tmpdir);
	assert_int_equal(config_load(&cfg, path, NULL, NULL, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
	assert_string_equal(err, want);
	assert_null(cfg.file);
	config_free(&cfg);

	/* a directory opens but cannot be read */
	assert_int_equal(config_load(&cfg, tmpdir, NULL, NULL, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
	assert_string_equal(err, want);
}

static void test_long_lines(void **state)
{
	size_t n = 0, cap = CONFIG_MAX_LINE + 64;
	char *text = malloc(cap + 32), err[1024], want[PATH_MAX + 64];
	struct warnings w;
	struct mp_config cfg = { 0 };
	unsigned int i;

	(void)state;
	assert_non_null(text);
	/* far beyond inih's built-in 200 characters: every entry must arrive */
	n = (size_t)sprintf(text, "[Relay]\ndispatchers =");
	for (i = 0; n < 8 + 3000; i++)
		n += (size_t)sprintf(text + n, " dispatcher-%03u.example.com:%u", i, 20000 + i);
	n += (size_t)sprintf(text + n, "\nstream_timeout = 33\n");
	assert_int_equal(load_text(text, &cfg, &w, err, sizeof(err)), 0);
	assert_int_equal(cfg.relay.dispatchers.count, i);
	assert_string_equal(cfg.relay.dispatchers.items[i - 1].host + 15, "example.com");
	assert_int_equal(cfg.relay.dispatchers.items[i - 1].port, 20000 + i - 1);
	assert_int_equal(cfg.relay.stream_timeout, 33);
	config_free(&cfg);

	/* exactly CONFIG_MAX_LINE characters is fine, one more is an error */
	n = (size_t)sprintf(text, "[Database]\n; comment\ndburi = ");
	memset(text + n, 'x', CONFIG_MAX_LINE - 8);
	n += CONFIG_MAX_LINE - 8;
	strcpy(text + n, "\n");
	assert_int_equal(load_text(text, &cfg, &w, err, sizeof(err)), 0);
	assert_int_equal(strlen(cfg.database.dburi), CONFIG_MAX_LINE - 8);
	config_free(&cfg);

	strcpy(text + n, "y\n[Relay]\n");
	assert_int_equal(load_text(text, &cfg, &w, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: line too long (%d characters, at most %d)",
		 cfg_path, CONFIG_MAX_LINE + 1, CONFIG_MAX_LINE);
	assert_string_equal(err, want);
	free(text);
}

static void test_relative_config_path(void **state)
{
	char err[1024], sub[256], path[PATH_MAX], cwd[PATH_MAX];
	struct mp_config cfg = { 0 };

	(void)state;
	snprintf(sub, sizeof(sub), "%s/etc", tmpdir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/config.ini", sub);
	write_file(path, "[TLS]\ncerts_path = ../certs\n", 28);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	/* named relatively: paths still come out absolute */
	assert_int_equal(config_load(&cfg, "etc/config.ini", NULL, NULL, err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_string_equal(cfg.file, "etc/config.ini");
	assert_string_equal(cfg.dir, sub);
	snprintf(path, sizeof(path), "%s/../certs", sub);
	assert_string_equal(cfg.tls.certs_path, path);
	snprintf(path, sizeof(path), "%s/radius/dictionary", sub);
	assert_string_equal(cfg.radius.additional_dictionary, path);
	config_free(&cfg);
	snprintf(path, sizeof(path), "%s/config.ini", sub);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(sub), 0);
}

static void test_defaults_without_file(void **state)
{
	struct mp_config cfg = { 0 };
	char err[256];

	(void)state;
	assert_int_equal(config_init_defaults(&cfg), 0);
	assert_string_equal(cfg.dir, CONFIG_DEFAULT_DIR);
	assert_null(cfg.file);
	assert_string_equal(cfg.tls.certs_path, "/etc/mediaproxy/tls");
	assert_string_equal(cfg.radius.additional_dictionary, "/etc/mediaproxy/radius/dictionary");
	assert_int_equal(cfg.relay.port_range.start, 50000);
	assert_int_equal(cfg.relay.port_range.end, 60000);
	assert_int_equal(cfg.relay.stream_timeout, 90);
	assert_int_equal(cfg.relay.on_hold_timeout, 7200);
	assert_int_equal(cfg.relay.dns_check_interval, 60);
	assert_int_equal(cfg.relay.reconnect_delay, 10);
	assert_int_equal(cfg.relay.keepalive_interval, 10);
	assert_int_equal(cfg.relay.traffic_sampling_period, 15);
	assert_int_equal(cfg.relay.userspace_transmit_every, 1);
	assert_int_equal(cfg.relay.forwarding, CONFIG_FWD_AUTO);
	assert_false(cfg.relay.auto_detect_interfaces);
	assert_null(cfg.relay.passport);
	assert_int_equal(cfg.dispatcher.relay_timeout, 5);
	assert_int_equal(cfg.dispatcher.relay_recover_interval, 60);
	assert_int_equal(cfg.dispatcher.cleanup_dead_relays_after, 43200);
	assert_int_equal(cfg.dispatcher.cleanup_expired_sessions_after, 86400);
	assert_true(cfg.dispatcher.management_use_tls);
	assert_int_equal(cfg.dispatcher.selection, CONFIG_SELECT_RANDOM);
	assert_int_equal(cfg.dispatcher.management_format, CONFIG_MGMT_LINES);
	assert_int_equal(cfg.tls.verify_interval, 300);
	assert_string_equal(cfg.database.dburi, "");
	assert_string_equal(cfg.database.sessions_table, "media_sessions");
	assert_string_equal(cfg.database.callid_column, "call_id");
	assert_string_equal(cfg.database.fromtag_column, "from_tag");
	assert_string_equal(cfg.database.totag_column, "to_tag");
	assert_string_equal(cfg.database.info_column, "info");
	assert_int_equal(cfg.opensips.max_connections, 10);
	assert_int_equal(cfg.opensips.mi_protocol, CONFIG_MI_AUTO);
	assert_string_equal(cfg.opensips.location_table, "location");

	/* the daemons' pattern: defaults first, then the file replaces them
	 * (ASan's leak check proves the defaults were released) */
	assert_int_equal(config_load_buffer(&cfg, "/srv/config.ini", "[TLS]\n", 6, NULL,
					    NULL, err, sizeof(err)), 0);
	assert_string_equal(cfg.tls.certs_path, "/srv/tls");
	assert_int_equal(config_load_buffer(&cfg, "/srv/config.ini", "[TLS", 4, NULL,
					    NULL, err, sizeof(err)), -1);
	assert_null(cfg.dir);
	assert_int_equal(config_init_defaults(&cfg), 0);
	assert_int_equal(config_load(&cfg, "/nonexistent/config.ini", NULL, NULL, err,
				     sizeof(err)), -1);
	assert_null(cfg.dir);
	config_free(&cfg);
}

static void test_load_buffer(void **state)
{
	static const char text[] = "[Relay]\nstream_timeout = 12\n[Dispatcher]\nlisten = nope\n";
	char err[1024];
	struct mp_config cfg = { 0 };

	(void)state;
	assert_int_equal(config_load_buffer(&cfg, "/srv/mp/config.ini", text, 28, NULL,
					    NULL, err, sizeof(err)), 0);
	assert_int_equal(cfg.relay.stream_timeout, 12);
	assert_string_equal(cfg.tls.certs_path, "/srv/mp/tls");
	config_free(&cfg);
	/* the length counts, not a NUL */
	assert_int_equal(config_load_buffer(&cfg, "/srv/mp/config.ini", text, sizeof(text) - 1,
					    NULL, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/srv/mp/config.ini:4: [Dispatcher] listen = 'nope'"));
	/* a tiny error buffer truncates, never overflows */
	assert_int_equal(config_load_buffer(&cfg, "/x.ini", text, sizeof(text) - 1,
					    NULL, NULL, err, 8), -1);
	assert_string_equal(err, "/x.ini:");
}

static void test_check_dispatcher(void **state)
{
	char err[1024], want[PATH_MAX + 128];
	struct warnings w;
	struct mp_config cfg = { 0 };

	(void)state;
	assert_int_equal(load_text("[Dispatcher]\n\naccounting = jsonl database\n", &cfg, &w,
				   err, sizeof(err)), 0);
	assert_int_equal(config_check_dispatcher(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:3: [Dispatcher] accounting includes database but "
		 "[Database] dburi is not set", cfg_path);
	assert_non_null(strstr(err, want));
	config_free(&cfg);

	assert_int_equal(load_text("[Dispatcher]\naccounting = jsonl\n", &cfg, &w, err,
				   sizeof(err)), 0);
	assert_int_equal(config_check_dispatcher(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
}

static void test_runtime_path(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(config_runtime_path("/run/mediaproxy", "dispatcher.sock", out,
					     sizeof(out)), 0);
	assert_string_equal(out, "/run/mediaproxy/dispatcher.sock");
	assert_int_equal(config_runtime_path("/run/mediaproxy", "/tmp/d.sock", out,
					     sizeof(out)), 0);
	assert_string_equal(out, "/tmp/d.sock");
	assert_int_equal(config_runtime_path("/run/mediaproxy", "a-rather-long-name.sock",
					     out, sizeof(out)), -ENAMETOOLONG);
	assert_int_equal(config_runtime_path("/run/mediaproxy", "", out, sizeof(out)), -EINVAL);
	/* exactly fitting */
	assert_int_equal(config_runtime_path("/r", "1234567890123456789012345678", out,
					     sizeof(out)), 0);
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_int_equal(config_runtime_path("/r", "12345678901234567890123456789", out,
					     sizeof(out)), -ENAMETOOLONG);
}

static void test_enum_names(void **state)
{
	(void)state;
	assert_string_equal(config_forwarding_name(CONFIG_FWD_CONNTRACK), "conntrack");
	assert_string_equal(config_selection_name(CONFIG_SELECT_LEAST_LOADED), "least_loaded");
	assert_string_equal(config_mgmt_format_name(CONFIG_MGMT_ARRAY), "array");
	assert_string_equal(config_mi_protocol_name(CONFIG_MI_OPENSIPS_JSON), "opensips-json");
	assert_string_equal(config_forwarding_name((enum config_forwarding)99), "unknown");
}

/* ---- fixture -------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(cfg_path, sizeof(cfg_path), "%s/config.ini", tmpdir);
	return 0;
}

static int teardown(void **state)
{
	char sub[PATH_MAX];

	(void)state;
	unlink(cfg_path);
	snprintf(sub, sizeof(sub), "%s/etc/config.ini", tmpdir);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/etc", tmpdir);
	rmdir(sub);
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_values),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_unknown_section_and_options_warn),
		cmocka_unit_test(test_other_warnings),
		cmocka_unit_test(test_upstream_style_file),
		cmocka_unit_test(test_missing_and_unreadable_file),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_relative_config_path),
		cmocka_unit_test(test_defaults_without_file),
		cmocka_unit_test(test_load_buffer),
		cmocka_unit_test(test_check_dispatcher),
		cmocka_unit_test(test_runtime_path),
		cmocka_unit_test(test_enum_names),
	};

	return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
