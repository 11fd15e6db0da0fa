/* Opening and closing the relay's data plane, and its periodic tick. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dataplane.h"
#include "log.h"

/* How often streams are checked: often enough that a conntrack entry is
 * refreshed well inside its timeout, and that timeouts fire within a few
 * seconds of their limit. */
#define DATAPLANE_TICK_SECONDS 5
/* Flow map capacity: a flow is keyed by the relay port its packets arrive
 * at, so the port range bounds the number of flows. */
#define DATAPLANE_FLOWS_PER_PORT 1

/* The address of the interface the default route leaves through: what
 * MediaProxy binds to when relay_ip is not set. A connected UDP socket
 * sends nothing; the kernel only picks the source address. */
static int default_route_address(struct net_addr *out)
{
	static const char *const probes[] = { "192.0.2.1", "2001:db8::1" };

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		struct sockaddr_storage ss, local;
		socklen_t len = sizeof(local);
		struct net_addr probe;
		uint16_t port;
		int fd, sslen;

		if (net_addr_parse(probes[i], &probe))
			continue;
		sslen = net_addr_to_sockaddr(&probe, 9, &ss);
		fd = socket(probe.family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (!connect(fd, (struct sockaddr *)&ss, (socklen_t)sslen) &&
		    !getsockname(fd, (struct sockaddr *)&local, &len) &&
		    !net_addr_from_sockaddr((struct sockaddr *)&local, out, &port)) {
			close(fd);
			return 0;
		}
		close(fd);
	}
	return -ENETUNREACH;
}

static void dataplane_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dataplane *dp = arg;
	uint64_t now = stream_env_now(dp->streams);
	unsigned int period = dp->config->traffic_sampling_period;

	(void)fd;
	(void)what;
	stream_env_check_timeouts(dp->streams, dp->config->stream_timeout,
				  dp->config->on_hold_timeout);
	if (period && now - dp->last_sample_ns >= (uint64_t)period * 1000000000u) {
		dp->bps_relayed = traffic_sampler_sample(&dp->sampler,
							 stream_env_relayed_bytes(dp->streams), now);
		dp->last_sample_ns = now;
	}
}

static int dataplane_resolve_relay_ip(struct dataplane *dp)
{
	char text[INET6_ADDRSTRLEN];

	if (dp->config->relay_ip.family != AF_UNSPEC) {
		dp->relay_ip = dp->config->relay_ip;
		return 0;
	}
	if (default_route_address(&dp->relay_ip)) {
		log_error("relay_ip is not set and there is no default route to take it from");
		return -1;
	}
	net_addr_format(&dp->relay_ip, text, sizeof(text));
	log_info("relay_ip not set: using %s, the address of the default route", text);
	return 0;
}

int dataplane_open(struct dataplane *dp, struct event_base *base,
		   const struct config_relay *config)
{
	const struct config_port_range *range = &config->port_range;
	struct forward_options fopts = { 0 };
	/* A sampling period shorter than the tick would be stretched to it. */
	unsigned int period = config->traffic_sampling_period;
	struct timeval tick = {
		period && period < DATAPLANE_TICK_SECONDS ? period : DATAPLANE_TICK_SECONDS, 0
	};
	int err;

	memset(dp, 0, sizeof(*dp));
	dp->config = config;
	traffic_sampler_init(&dp->sampler);
	if (dataplane_resolve_relay_ip(dp))
		return -1;
	ports_raise_nofile_limit(range);
	err = ports_pool_new(&dp->pool, &dp->relay_ip, range);
	if (err) {
		log_errno(err, "cannot set up port_range %u:%u", range->start, range->end);
		return -1;
	}
	ports_pool_limit_by_nofile(dp->pool);

	fopts.relay_ip = dp->relay_ip;
	fopts.interfaces = &config->interfaces;
	fopts.pin_dir = config->bpf_pin_dir;
	fopts.port_min = (uint16_t)range->start;
	fopts.port_max = (uint16_t)(range->end - 1);
	fopts.flow_max = (range->end - range->start) * DATAPLANE_FLOWS_PER_PORT;
	if (forward_open(config->forwarding, &fopts, &dp->backend, &dp->fw))
		return -1;

	struct stream_env_options eopts = {
		.base = base, .pool = dp->pool, .backend = dp->backend, .fw = dp->fw,
		.routable_private_ranges = &config->routable_private_ranges,
		.transmit_every = config->userspace_transmit_every,
	};
	err = stream_env_new(&dp->streams, &eopts);
	if (err) {
		log_errno(err, "cannot set up streams");
		return -1;
	}
	dp->last_sample_ns = stream_env_now(dp->streams);
	traffic_sampler_sample(&dp->sampler, 0, dp->last_sample_ns);
	dp->tick = event_new(base, -1, EV_PERSIST, dataplane_on_tick, dp);
	if (!dp->tick || event_add(dp->tick, &tick)) {
		log_error("cannot start the stream timer");
		return -1;
	}
	return 0;
}

void dataplane_close(struct dataplane *dp, enum forward_close_mode mode)
{
	if (dp->tick)
		event_free(dp->tick);
	if (dp->streams) {
		stream_env_keep_flows(dp->streams, mode == FORWARD_CLOSE_KEEP);
		stream_env_free(dp->streams);
	}
	if (dp->fw)
		dp->backend->close(dp->fw, mode);
	if (dp->pool)
		ports_pool_free(dp->pool);
	memset(dp, 0, sizeof(*dp));
}
