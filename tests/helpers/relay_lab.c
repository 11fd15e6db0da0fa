/* relay_lab: the relay's data plane without a dispatcher. It opens a
 * forwarding backend exactly as media-relay does (forward_open), creates
 * streams through the relay's own stream API, and takes commands on stdin,
 * one answer line each on stdout, so the netns tests can place calls:
 *
 *   stream CALLER_IP:PORT CALLEE_IP:PORT  -> "ok ID CALLER_FACING CALLEE_FACING"
 *   sdp ID caller|callee IP:PORT          -> "ok"
 *   hold ID caller|callee on|off          -> "ok"
 *   stats ID                              -> "ok caller_bytes=.. caller_packets=..
 *                                             callee_bytes=.. callee_packets=.. dropped=..
 *                                             caller_codec=.. callee_codec=..
 *                                             caller_remote=.. callee_remote=.."
 *   close ID                              -> the final stats line
 *   quit clean|keep                       -> closes everything (D6 modes), exits
 * Timed-out streams are announced as "timeout ID REASON WAIT".
 *
 * Options: --backend auto|xdp|conntrack|userspace --relay-ip IP
 *          [--ports START:END] [--pin-dir DIR] [--nft-table NAME]
 *          [--interfaces A,B] [--routable CIDR[,CIDR]] [--stream-timeout S]
 *          [--flow-max N]
 * --ports is config.ini's port_range: both even, END exclusive. The stream
 * table grows on demand (the load benchmark places thousands of calls), so
 * the only limits are the port range, RLIMIT_NOFILE and --flow-max (the XDP
 * map's capacity in flow directions; each latched leg takes two). Without
 * --flow-max it is one per port of the range, as media-relay sizes it, but
 * at least 4096. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "forward.h"
#include "log.h"
#include "net.h"
#include "ports.h"
#include "stream.h"

#define LAB_STREAMS_MIN 64

struct lab {
	struct event_base *base;
	struct stream_env *env;
	struct ports_pool *pool;
	const struct forward_backend *backend;
	struct forward *fw;
	struct stream **streams; /* index = the stream's ID; NULL = free */
	size_t streams_cap;
	size_t streams_free_hint; /* no free slot below this index */
	unsigned int stream_timeout;
	enum forward_close_mode close_mode;
	char line[4096];
	size_t line_len;
};

static int parse_addr_port(const char *s, struct net_addr *addr, uint16_t *port)
{
	struct net_endpoint ep;

	if (!s || net_endpoint_parse(s, 0, 0, &ep) || net_addr_parse(ep.host, addr))
		return -1;
	*port = ep.port;
	return 0;
}

static int parse_side(const char *s, enum stream_side *side)
{
	if (s && !strcmp(s, "caller"))
		*side = STREAM_CALLER;
	else if (s && !strcmp(s, "callee"))
		*side = STREAM_CALLEE;
	else
		return -1;
	return 0;
}

static struct stream *lab_stream(struct lab *lab, const char *id_text, int *id)
{
	char *end;
	long v = id_text ? strtol(id_text, &end, 10) : -1;

	if (!id_text || *end || v < 0 || (size_t)v >= lab->streams_cap || !lab->streams[v])
		return NULL;
	*id = (int)v;
	return lab->streams[v];
}

static void print_stats(struct stream *s)
{
	struct stream_stats st;

	stream_get_stats(s, &st);
	printf("ok caller_bytes=%llu caller_packets=%llu callee_bytes=%llu callee_packets=%llu "
	       "dropped=%llu caller_codec=%s callee_codec=%s caller_remote=%s callee_remote=%s\n",
	       (unsigned long long)st.side[STREAM_CALLER].bytes,
	       (unsigned long long)st.side[STREAM_CALLER].packets,
	       (unsigned long long)st.side[STREAM_CALLEE].bytes,
	       (unsigned long long)st.side[STREAM_CALLEE].packets,
	       (unsigned long long)st.dropped_packets, st.side[STREAM_CALLER].codec,
	       st.side[STREAM_CALLEE].codec, st.side[STREAM_CALLER].remote,
	       st.side[STREAM_CALLEE].remote);
}

static const char *timeout_name(enum stream_timeout why)
{
	switch (why) {
	case STREAM_NO_TRAFFIC_TIMEOUT: return "no-traffic";
	case STREAM_IDLE_TIMEOUT: return "idle";
	case STREAM_ON_HOLD_TIMEOUT: return "on-hold";
	default: return "active";
	}
}

static void on_timeout(struct stream *s, enum stream_timeout why, unsigned int wait, void *ctx)
{
	struct lab *lab = ctx;

	for (size_t i = 0; i < lab->streams_cap; i++)
		if (lab->streams[i] == s)
			printf("timeout %zu %s %u\n", i, timeout_name(why), wait);
}

/* The lowest free ID, growing the table when it is full; -1 without memory. */
static int lab_free_id(struct lab *lab)
{
	size_t id, cap;
	struct stream **grown;

	for (id = lab->streams_free_hint; id < lab->streams_cap && lab->streams[id]; id++)
		;
	if (id == lab->streams_cap) {
		cap = lab->streams_cap ? lab->streams_cap * 2 : LAB_STREAMS_MIN;
		if (cap > INT_MAX)
			return -1;
		grown = realloc(lab->streams, cap * sizeof(*grown));
		if (!grown)
			return -1;
		memset(grown + lab->streams_cap, 0, (cap - lab->streams_cap) * sizeof(*grown));
		lab->streams = grown;
		lab->streams_cap = cap;
	}
	lab->streams_free_hint = id + 1;
	return (int)id;
}

static void cmd_stream(struct lab *lab, char **save)
{
	struct net_addr caller, callee;
	uint16_t caller_port, callee_port;
	struct stream *s;
	int id, err;

	if (parse_addr_port(strtok_r(NULL, " ", save), &caller, &caller_port) ||
	    parse_addr_port(strtok_r(NULL, " ", save), &callee, &callee_port)) {
		printf("error bad arguments\n");
		return;
	}
	id = lab_free_id(lab);
	if (id < 0) {
		printf("error too many streams\n");
		return;
	}
	err = stream_new(lab->env, &s);
	if (err) {
		lab->streams_free_hint = (size_t)id;
		printf("error %s\n", strerror(-err));
		return;
	}
	stream_set_sdp(s, STREAM_CALLER, &caller, caller_port);
	stream_set_sdp(s, STREAM_CALLEE, &callee, callee_port);
	stream_set_timeout_cb(s, on_timeout, lab);
	lab->streams[id] = s;
	printf("ok %d %u %u\n", id, stream_local_port(s, STREAM_CALLER),
	       stream_local_port(s, STREAM_CALLEE));
}

static void lab_command(struct lab *lab, char *line)
{
	char *save = NULL, *cmd = strtok_r(line, " ", &save), *arg;
	enum stream_side side;
	struct net_addr addr;
	struct stream *s;
	uint16_t port;
	int id;

	if (!cmd)
		return;
	if (!strcmp(cmd, "stream")) {
		cmd_stream(lab, &save);
		return;
	}
	if (!strcmp(cmd, "quit")) {
		arg = strtok_r(NULL, " ", &save);
		lab->close_mode = arg && !strcmp(arg, "keep") ? FORWARD_CLOSE_KEEP
							      : FORWARD_CLOSE_CLEAN;
		event_base_loopbreak(lab->base);
		return;
	}
	s = lab_stream(lab, strtok_r(NULL, " ", &save), &id);
	if (!s) {
		printf("error no such stream\n");
		return;
	}
	if (!strcmp(cmd, "stats")) {
		print_stats(s);
	} else if (!strcmp(cmd, "close")) {
		stream_close(s);
		print_stats(s);
		stream_free(s);
		lab->streams[id] = NULL;
		if ((size_t)id < lab->streams_free_hint)
			lab->streams_free_hint = (size_t)id;
	} else if (!strcmp(cmd, "sdp") && !parse_side(strtok_r(NULL, " ", &save), &side) &&
		   !parse_addr_port(strtok_r(NULL, " ", &save), &addr, &port)) {
		stream_set_sdp(s, side, &addr, port);
		printf("ok\n");
	} else if (!strcmp(cmd, "hold") && !parse_side(strtok_r(NULL, " ", &save), &side) &&
		   (arg = strtok_r(NULL, " ", &save))) {
		stream_set_hold(s, side, !strcmp(arg, "on"));
		printf("ok\n");
	} else {
		printf("error bad command\n");
	}
}

static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct lab *lab = arg;
	ssize_t n = read(fd, lab->line + lab->line_len, sizeof(lab->line) - 1 - lab->line_len);
	char *nl;

	(void)what;
	if (n <= 0) {  /* stdin closed: leave the flows, as a crash would */
		lab->close_mode = FORWARD_CLOSE_KEEP;
		event_base_loopbreak(lab->base);
		return;
	}
	lab->line_len += (size_t)n;
	lab->line[lab->line_len] = '\0';
	while ((nl = strchr(lab->line, '\n'))) {
		*nl = '\0';
		if (nl > lab->line && nl[-1] == '\r')
			nl[-1] = '\0';
		lab_command(lab, lab->line);
		lab->line_len -= (size_t)(nl + 1 - lab->line);
		memmove(lab->line, nl + 1, lab->line_len + 1);
	}
	if (lab->line_len == sizeof(lab->line) - 1)
		lab->line_len = 0; /* an absurd line: drop it */
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct lab *lab = arg;

	(void)fd;
	(void)what;
	stream_env_check_timeouts(lab->env, lab->stream_timeout, 7200);
}

static int parse_list(char *text, struct config_cidr_list *cidrs)
{
	static struct net_cidr items[16];

	cidrs->items = items;
	cidrs->count = 0;
	for (char *save = NULL, *tok = strtok_r(text, ",", &save); tok && cidrs->count < 16;
	     tok = strtok_r(NULL, ",", &save))
		if (net_cidr_parse(tok, &items[cidrs->count++], NULL))
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' }, { "relay-ip", required_argument, NULL, 'r' },
		{ "ports", required_argument, NULL, 'p' }, { "pin-dir", required_argument, NULL, 'd' },
		{ "nft-table", required_argument, NULL, 'n' },
		{ "interfaces", required_argument, NULL, 'i' },
		{ "routable", required_argument, NULL, 'R' },
		{ "stream-timeout", required_argument, NULL, 't' },
		{ "flow-max", required_argument, NULL, 'F' }, { NULL, 0, NULL, 0 },
	};
	struct forward_options fopts = { .flow_max = 4096, .nft_table = "mediaproxy_lab" };
	struct config_port_range range = { 40000, 41000 };
	struct config_cidr_list routable = { NULL, 0 };
	struct config_str_list interfaces = { NULL, 0 };
	enum config_forwarding choice = CONFIG_FWD_AUTO;
	struct lab lab = { .stream_timeout = 90, .close_mode = FORWARD_CLOSE_CLEAN };
	struct event *stdin_ev = NULL, *tick = NULL;
	struct timeval second = { 1, 0 };
	static char *names[16];
	bool flow_max_given = false;
	int opt, rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("relay_lab", LOG_LEVEL_INFO, false);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b': {
			int fwd = config_forwarding_from_name(optarg);

			if (fwd < 0)
				goto usage;
			choice = (enum config_forwarding)fwd;
			break;
		}
		case 'r': if (net_addr_parse(optarg, &fopts.relay_ip)) goto usage; break;
		case 'p':
			if (sscanf(optarg, "%u:%u", &range.start, &range.end) != 2 ||
			    range.start >= range.end || range.end > 65536)
				goto usage;
			break;
		case 'd': fopts.pin_dir = optarg; break;
		case 'n': fopts.nft_table = optarg; break;
		case 'i':
			for (char *save = NULL, *tok = strtok_r(optarg, ",", &save);
			     tok && interfaces.count < 16; tok = strtok_r(NULL, ",", &save))
				names[interfaces.count++] = tok;
			interfaces.items = names;
			fopts.interfaces = &interfaces;
			break;
		case 'R': if (parse_list(optarg, &routable)) goto usage; break;
		case 't': lab.stream_timeout = (unsigned)atoi(optarg); break;
		case 'F': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || v == 0 || v > (1UL << 24))
				goto usage;
			fopts.flow_max = (unsigned int)v;
			flow_max_given = true;
			break;
		}
		default: goto usage;
		}
	}
	if (fopts.relay_ip.family == AF_UNSPEC)
		goto usage;
	fopts.port_min = (uint16_t)range.start;
	fopts.port_max = (uint16_t)(range.end - 1);
	if (!flow_max_given && range.end - range.start > fopts.flow_max)
		fopts.flow_max = range.end - range.start;

	ports_raise_nofile_limit(&range);
	lab.base = event_base_new();
	if (!lab.base)
		goto out;
	rc = ports_pool_new(&lab.pool, &fopts.relay_ip, &range);
	if (rc) {
		log_errno(rc, "port pool %u:%u", range.start, range.end);
		rc = 1;
		goto out;
	}
	if (forward_open(choice, &fopts, &lab.backend, &lab.fw))
		goto out;
	struct stream_env_options eopts = {
		.base = lab.base, .pool = lab.pool, .backend = lab.backend, .fw = lab.fw,
		.routable_private_ranges = &routable,
	};
	if (stream_env_new(&lab.env, &eopts))
		goto out;
	stdin_ev = event_new(lab.base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, &lab);
	tick = event_new(lab.base, -1, EV_PERSIST, on_tick, &lab);
	if (!stdin_ev || !tick || event_add(stdin_ev, NULL) || event_add(tick, &second))
		goto out;
	printf("ready %s\n", lab.backend->name);
	event_base_dispatch(lab.base);
	stream_env_keep_flows(lab.env, lab.close_mode == FORWARD_CLOSE_KEEP);
	rc = 0;
out:
	if (stdin_ev)
		event_free(stdin_ev);
	if (tick)
		event_free(tick);
	if (lab.env)
		stream_env_free(lab.env);
	if (lab.fw)
		lab.backend->close(lab.fw, lab.close_mode);
	if (lab.pool)
		ports_pool_free(lab.pool);
	if (lab.base)
		event_base_free(lab.base);
	free(lab.streams);
	if (rc == 0)
		printf("ok bye\n");
	return rc;
usage:
	fprintf(stderr, "usage: relay_lab --relay-ip IP [--backend auto|xdp|conntrack|userspace] "
			"[--ports MIN:MAX] [--pin-dir DIR] [--nft-table NAME] [--interfaces A,B] "
			"[--routable CIDR,...] [--stream-timeout S] [--flow-max N]\n");
	return 2;
}
