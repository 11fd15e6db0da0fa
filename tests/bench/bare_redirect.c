/* bare_redirect: loads tests/bench/bare_redirect.bpf.c on one interface of
 * the current network namespace (run it in the relay's with nsenter) and
 * keeps it attached, in native (driver) mode through a BPF link, until
 * stdin closes or SIGTERM/SIGINT; the link goes away with the process, so
 * nothing is left behind even if it is killed.
 *
 *   bare_redirect --in IFNAME --out IFNAME --dmac MAC
 *
 * --dmac is the next hop's MAC on the --out side; the source MAC is --out's
 * own. Prints "ready native IN->OUT" once attached and
 * "done redirected=N" (frames the program handed to the redirect) at exit.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/if_link.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bare_redirect.skel.h"

#define BARE_ETH_ALEN 6

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int parse_mac(const char *s, unsigned char mac[BARE_ETH_ALEN])
{
	unsigned int b[BARE_ETH_ALEN];
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != BARE_ETH_ALEN)
		return -EINVAL;
	for (int i = 0; i < BARE_ETH_ALEN; i++) {
		if (b[i] > 0xff)
			return -EINVAL;
		mac[i] = (unsigned char)b[i];
	}
	return 0;
}

static int iface_mac(const char *name, unsigned char mac[BARE_ETH_ALEN])
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), err = 0;

	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, BARE_ETH_ALEN);
	close(fd);
	return err;
}

/* Blocks until stdin reaches EOF or a signal asks us to stop. */
static void wait_for_stop(void)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	char buf[256];

	while (!stop_flag) {
		if (poll(&p, 1, 500) < 0 && errno != EINTR)
			return;
		if ((p.revents & (POLLIN | POLLHUP)) && read(STDIN_FILENO, buf, sizeof(buf)) <= 0)
			return;
	}
}

static unsigned long long sum_count(struct bare_redirect_bpf *skel)
{
	int ncpu = libbpf_num_possible_cpus();
	unsigned long long total = 0;
	__u64 *vals;
	__u32 zero = 0;

	if (ncpu <= 0)
		return 0;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (vals && !bpf_map_lookup_elem(bpf_map__fd(skel->maps.bare_count), &zero, vals))
		for (int i = 0; i < ncpu; i++)
			total += vals[i];
	free(vals);
	return total;
}

/* The skeleton's whole life: open, set rodata, load, fill the devmap,
 * attach, wait, report, destroy. */
static int bare_run(const char *in, const char *out, const unsigned char dmac[BARE_ETH_ALEN])
{
	LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = XDP_FLAGS_DRV_MODE);
	unsigned int in_idx = if_nametoindex(in), out_idx = if_nametoindex(out), zero = 0;
	struct bare_redirect_bpf *skel;
	unsigned char smac[BARE_ETH_ALEN];
	int err, link_fd = -1;

	if (!in_idx || !out_idx) {
		fprintf(stderr, "bare_redirect: no interface %s\n", in_idx ? out : in);
		return -ENODEV;
	}
	err = iface_mac(out, smac);
	if (err) {
		fprintf(stderr, "bare_redirect: MAC of %s: %s\n", out, strerror(-err));
		return err;
	}
	skel = bare_redirect_bpf__open();
	if (!skel)
		return -errno;
	memcpy((void *)skel->rodata->bare_dmac, dmac, BARE_ETH_ALEN);
	memcpy((void *)skel->rodata->bare_smac, smac, BARE_ETH_ALEN);
	err = bare_redirect_bpf__load(skel);
	if (err) {
		fprintf(stderr, "bare_redirect: load: %s\n", strerror(-err));
		goto cleanup;
	}
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.bare_tx), &zero, &out_idx, BPF_ANY)) {
		err = -errno;
		fprintf(stderr, "bare_redirect: devmap <- %s: %s\n", out, strerror(-err));
		goto cleanup;
	}
	link_fd = bpf_link_create(bpf_program__fd(skel->progs.bare_redirect), (int)in_idx,
				  BPF_XDP, &lopts);
	if (link_fd < 0) {
		err = -errno;
		fprintf(stderr, "bare_redirect: native attach to %s: %s\n", in, strerror(-err));
		goto cleanup;
	}
	printf("ready native %s->%s\n", in, out);
	wait_for_stop();
	printf("done redirected=%llu\n", sum_count(skel));
cleanup:
	if (link_fd >= 0)
		close(link_fd);
	bare_redirect_bpf__destroy(skel);
	return err;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "in", required_argument, NULL, 'i' }, { "out", required_argument, NULL, 'o' },
		{ "dmac", required_argument, NULL, 'm' }, { NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	const char *in = NULL, *out = NULL;
	unsigned char dmac[BARE_ETH_ALEN];
	int opt, have_mac = 0;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i': in = optarg; break;
		case 'o': out = optarg; break;
		case 'm':
			if (parse_mac(optarg, dmac))
				goto usage;
			have_mac = 1;
			break;
		default: goto usage;
		}
	}
	if (!in || !out || !have_mac)
		goto usage;
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	return bare_run(in, out, dmac) ? 1 : 0;
usage:
	fprintf(stderr, "usage: bare_redirect --in IFNAME --out IFNAME --dmac MAC\n");
	return 2;
}
