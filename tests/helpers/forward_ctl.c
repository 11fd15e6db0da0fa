/* forward_ctl: drives one forwarding backend (relayd/forward.h) by hand, so
 * the netns tests can exercise xdp and conntrack without the session layer.
 * It binds the relay ports like the relay does, then reads commands from
 * stdin and answers each with one line on stdout:
 *
 *   add    CALLER_FACING_PORT CALLER_IP:PORT CALLEE_FACING_PORT CALLEE_IP:PORT
 *   read   (same four arguments)  -> "ok fwd_bytes=.. fwd_packets=.. fwd_seen=0|1
 *                                     back_bytes=.. back_packets=.. back_seen=0|1"
 *   remove (same four arguments)  -> the final counters, as read
 *   adopted                       -> "ok N" then one "pair ..." line per pair
 *   quit clean|keep               -> closes the backend (D6 modes) and exits
 *
 * Options: --backend auto|xdp|conntrack|userspace --relay-ip IP
 *          [--ports MIN:MAX] [--pin-dir DIR] [--nft-table NAME]
 *          [--interfaces IF[,IF...]] */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "forward.h"
#include "log.h"
#include "net.h"

#define MAX_BOUND 256

static int bound_fds[MAX_BOUND];
static int bound_count;

static int parse_addr_port(const char *s, struct forward_endpoint *ep)
{
	struct net_endpoint parsed;

	if (net_endpoint_parse(s, 0, 0, &parsed) || parsed.port == 0 ||
	    net_addr_parse(parsed.host, &ep->addr))
		return -1;
	ep->port = parsed.port;
	return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
	return net_port_parse(s, port);
}

/* Binds a UDP socket on relay_ip:port, as the relay's port pool would. */
static void bind_port(const struct net_addr *relay_ip, uint16_t port)
{
	struct sockaddr_storage ss;
	int len = net_addr_to_sockaddr(relay_ip, port, &ss), fd;

	if (len < 0 || bound_count == MAX_BOUND)
		return;
	fd = socket(relay_ip->family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len)) {
		close(fd);
		return;
	}
	bound_fds[bound_count++] = fd;
}

/* "CPORT CALLER CPORT2 CALLEE" -> the pair the relay would install. */
static int parse_pair(char *args, const struct net_addr *relay_ip, struct forward_pair *pair)
{
	char *tok[4], *save = NULL;
	struct forward_endpoint caller, callee;
	uint16_t caller_port, callee_port;

	for (int i = 0; i < 4; i++) {
		tok[i] = strtok_r(i ? NULL : args, " \t\r\n", &save);
		if (!tok[i])
			return -1;
	}
	if (parse_port(tok[0], &caller_port) || parse_addr_port(tok[1], &caller) ||
	    parse_port(tok[2], &callee_port) || parse_addr_port(tok[3], &callee))
		return -1;
	memset(pair, 0, sizeof(*pair));
	pair->forward.local = (struct forward_endpoint){ *relay_ip, caller_port };
	pair->forward.source = caller;
	pair->forward.out_local = (struct forward_endpoint){ *relay_ip, callee_port };
	pair->forward.destination = callee;
	pair->backward.local = pair->forward.out_local;
	pair->backward.source = callee;
	pair->backward.out_local = pair->forward.local;
	pair->backward.destination = caller;
	return 0;
}

static void print_counters(const char *status, const struct forward_counters *f,
			   const struct forward_counters *b)
{
	printf("%s fwd_bytes=%llu fwd_packets=%llu fwd_seen=%d back_bytes=%llu "
	       "back_packets=%llu back_seen=%d\n", status,
	       (unsigned long long)f->bytes, (unsigned long long)f->packets, f->last_seen_ns != 0,
	       (unsigned long long)b->bytes, (unsigned long long)b->packets, b->last_seen_ns != 0);
}

static void print_adopted(void *ctx, const struct forward_pair *pair,
			  const struct forward_counters *f, const struct forward_counters *b)
{
	char caller[NET_ADDRPORT_STRLEN], callee[NET_ADDRPORT_STRLEN];

	(void)ctx;
	net_addr_port_format(&pair->forward.source.addr, pair->forward.source.port,
			     caller, sizeof(caller));
	net_addr_port_format(&pair->backward.source.addr, pair->backward.source.port,
			     callee, sizeof(callee));
	printf("pair %u %s %u %s fwd_packets=%llu back_packets=%llu\n",
	       pair->forward.local.port, caller, pair->backward.local.port, callee,
	       (unsigned long long)f->packets, (unsigned long long)b->packets);
}

static int run_commands(const struct forward_backend *backend, struct forward *fw,
			const struct net_addr *relay_ip)
{
	char line[1024];

	while (fgets(line, sizeof(line), stdin)) {
		struct forward_counters f = { 0 }, b = { 0 };
		struct forward_pair pair;
		char *args = line + strcspn(line, " \t\r\n");
		size_t cmdlen = (size_t)(args - line);
		int err;

		if (cmdlen == 4 && !strncmp(line, "quit", 4)) {
			backend->close(fw, strstr(args, "keep") ? FORWARD_CLOSE_KEEP
							      : FORWARD_CLOSE_CLEAN);
			printf("ok bye\n");
			return 0;
		}
		if (cmdlen == 7 && !strncmp(line, "adopted", 7)) {
			printf("ok\n");
			if (backend->foreach_adopted)
				backend->foreach_adopted(fw, print_adopted, NULL);
			printf("end\n");
			continue;
		}
		if (parse_pair(args, relay_ip, &pair)) {
			printf("error bad arguments\n");
			continue;
		}
		if (cmdlen == 3 && !strncmp(line, "add", 3)) {
			bind_port(relay_ip, pair.forward.local.port);
			bind_port(relay_ip, pair.backward.local.port);
			err = backend->add_pair(fw, &pair);
			printf(err ? "error %s\n" : "ok\n", strerror(-err));
		} else if (cmdlen == 4 && !strncmp(line, "read", 4)) {
			err = backend->read_pair(fw, &pair, &f, &b);
			if (err)
				printf("error %s\n", strerror(-err));
			else
				print_counters("ok", &f, &b);
		} else if (cmdlen == 6 && !strncmp(line, "remove", 6)) {
			err = backend->remove_pair(fw, &pair, &f, &b);
			if (err)
				printf("error %s\n", strerror(-err));
			else
				print_counters("ok", &f, &b);
		} else {
			printf("error unknown command\n");
		}
	}
	backend->close(fw, FORWARD_CLOSE_KEEP); /* stdin closed: like a crash */
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' }, { "relay-ip", required_argument, NULL, 'r' },
		{ "ports", required_argument, NULL, 'p' }, { "pin-dir", required_argument, NULL, 'd' },
		{ "nft-table", required_argument, NULL, 'n' },
		{ "interfaces", required_argument, NULL, 'i' }, { NULL, 0, NULL, 0 },
	};
	struct forward_options opts = { .port_min = 40000, .port_max = 40999,
					.flow_max = 4096, .nft_table = "mediaproxy_test" };
	struct config_str_list interfaces = { NULL, 0 };
	enum config_forwarding choice = CONFIG_FWD_AUTO;
	const struct forward_backend *backend;
	struct forward *fw;
	char *list = NULL;
	int opt;

	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("forward_ctl", LOG_LEVEL_DEBUG, false);
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b': {
			int fwd = config_forwarding_from_name(optarg);

			if (fwd < 0)
				goto usage;
			choice = (enum config_forwarding)fwd;
			break;
		}
		case 'r': if (net_addr_parse(optarg, &opts.relay_ip)) goto usage; break;
		case 'p': {
			unsigned a, b;

			if (sscanf(optarg, "%u:%u", &a, &b) != 2 || a > b || b > 65535)
				goto usage;
			opts.port_min = (uint16_t)a;
			opts.port_max = (uint16_t)b;
			break;
		}
		case 'd': opts.pin_dir = optarg; break;
		case 'n': opts.nft_table = optarg; break;
		case 'i': list = optarg; break;
		default: goto usage;
		}
	}
	if (opts.relay_ip.family == AF_UNSPEC)
		goto usage;
	if (list) {
		static char *names[16];

		for (char *save = NULL, *tok = strtok_r(list, ",", &save);
		     tok && interfaces.count < 16; tok = strtok_r(NULL, ",", &save))
			names[interfaces.count++] = tok;
		interfaces.items = names;
		opts.interfaces = &interfaces;
	}
	if (forward_open(choice, &opts, &backend, &fw))
		return 1;
	printf("ready %s\n", backend->name);
	return run_commands(backend, fw, &opts.relay_ip);
usage:
	fprintf(stderr, "usage: forward_ctl --relay-ip IP [--backend auto|xdp|conntrack|userspace] "
			"[--ports MIN:MAX] [--pin-dir DIR] [--nft-table NAME] [--interfaces A,B]\n");
	return 2;
}
