/* The xdp forwarding backend (forward.h): loads bpf/relay.bpf.c through its
 * skeleton, pins its maps under bpf_pin_dir so that a restarted relay finds
 * the flows and counters of the previous one (PROTOCOL.md D6, D8), and
 * turns each forward_pair into two relay_flows entries. Choosing and
 * attaching interfaces lives in xdp_iface.c. */
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "forward.h"
#include "fs.h"
#include "log.h"
#include "relay.skel.h"
#include "relay_structs.h"
#include "xdp_flows.h"
#include "xdp_iface.h"

#define BPFFS_ROOT "/sys/fs/bpf"
#define PIN_DIR_DEFAULT_PARENT BPFFS_ROOT "/mediaproxy"

struct forward {
	struct relay_bpf *skel;
	int flows_fd;
	char pin_dir[PATH_MAX];
	bool default_pin_dir;
	bool maps_reused;           /* the flow map was left by an earlier relay */
	struct xdp_iface ifaces[RELAY_TX_PORTS_MAX];
	size_t iface_count;
	struct xdp_flows_pair *adopted; /* pairs in the pinned flow map at open */
	size_t adopted_count;
};

static void why_set(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

/* libbpf and libxdp talk through our log: their warnings (a verifier
 * refusal, an incompatible pinned map) are what an operator needs. */
static void lib_log(bool warn, const char *lib, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (!strncmp(line, lib, strlen(lib)))
		lib = ""; /* the line names its library already */
	log_msg(warn ? LOG_LEVEL_WARNING : LOG_LEVEL_DEBUG, "%s%s%s", lib, lib[0] ? ": " : "",
		line);
}

/* Their debug level (every CO-RE relocation) would drown ours: dropped. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_DEBUG)
		lib_log(level == LIBBPF_WARN, "libbpf", fmt, ap);
	return 0;
}

static int libxdp_log(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBXDP_DEBUG)
		lib_log(level == LIBXDP_WARN, "libxdp", fmt, ap);
	return 0;
}

/* --- preconditions ------------------------------------------------------- */

static bool cap_effective(const struct __user_cap_data_struct d[2], int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* Loading needs CAP_BPF + CAP_PERFMON (variable packet offsets) or
 * CAP_SYS_ADMIN; attaching needs CAP_NET_ADMIN. Checked up front so that
 * `auto` says so instead of a verifier error. */
static int check_privileges(char *why, size_t whylen)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	bool load;

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data)) {
		why_set(why, whylen, "cannot read our capabilities: %s", strerror(errno));
		return -EPERM;
	}
	load = cap_effective(data, CAP_SYS_ADMIN) ||
	       (cap_effective(data, CAP_BPF) && cap_effective(data, CAP_PERFMON));
	if (!load || !cap_effective(data, CAP_NET_ADMIN)) {
		why_set(why, whylen, "not permitted: needs root, or CAP_BPF, CAP_PERFMON and "
			"CAP_NET_ADMIN (running as uid %u without them)", (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == BPF_FS_MAGIC;
}

/* The relay runs as root, so it mounts bpffs where distributions expect
 * it rather than refusing to start. */
static int prepare_pin_dir(const char *dir, char *why, size_t whylen)
{
	int err;

	if (!strncmp(dir, BPFFS_ROOT "/", strlen(BPFFS_ROOT "/")) && !on_bpffs(BPFFS_ROOT)) {
		if (mount("bpf", BPFFS_ROOT, "bpf", 0, NULL)) {
			err = -errno;
			why_set(why, whylen, "bpffs is not mounted at " BPFFS_ROOT
				" and mounting it failed: %s", strerror(-err));
			return err;
		}
		log_info("xdp: mounted bpffs at " BPFFS_ROOT " (it was not mounted)");
	}
	err = fs_mkdir_parents(dir, 0700);
	if (err) {
		why_set(why, whylen, "cannot create bpf_pin_dir %s: %s%s", dir, strerror(-err),
			err == -EPERM && strchr(dir, '.') ? " (bpffs allows no '.' in names)" : "");
		return err;
	}
	if (!on_bpffs(dir)) {
		why_set(why, whylen, "bpf_pin_dir %s is not on a bpf filesystem", dir);
		return -ENOTDIR;
	}
	return 0;
}

static int pin_dir_choose(struct forward *fw, const struct forward_options *opts,
			  char *why, size_t whylen)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int n;

	if (opts->pin_dir && opts->pin_dir[0]) {
		n = snprintf(fw->pin_dir, sizeof(fw->pin_dir), "%s", opts->pin_dir);
	} else {
		/* bpffs refuses names with a dot (EPERM): 10.0.0.1 -> 10_0_0_1 */
		net_addr_format(&opts->relay_ip, ip, sizeof(ip));
		for (char *p = ip; (p = strchr(p, '.')); )
			*p = '_';
		n = snprintf(fw->pin_dir, sizeof(fw->pin_dir), PIN_DIR_DEFAULT_PARENT "/%s", ip);
		fw->default_pin_dir = true;
	}
	while (n > 1 && fw->pin_dir[n - 1] == '/')
		fw->pin_dir[--n] = '\0';
	/* room for "/link-<ifname>" under it */
	if (n < 0 || (size_t)n + 6 + IF_NAMESIZE >= sizeof(fw->pin_dir)) {
		why_set(why, whylen, "bpf_pin_dir is too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

/* --- loading ------------------------------------------------------------- */

/* Whether a pinned map fits this program: type, key, value and flags; the
 * flow map at any size (losing its flows would hurt more than ignoring a
 * new flow_max until a clean stop). */
static bool map_fits(const struct bpf_map *map, int fd, bool any_size, const char *path)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return false;
	/* the kernel marks every devmap read-only for programs */
	if (info.type == BPF_MAP_TYPE_DEVMAP_HASH || info.type == BPF_MAP_TYPE_DEVMAP)
		info.map_flags &= ~(__u32)BPF_F_RDONLY_PROG;
	if (info.type != (__u32)bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
	    info.value_size != bpf_map__value_size(map) ||
	    info.map_flags != bpf_map__map_flags(map))
		return false;
	if (info.max_entries == bpf_map__max_entries(map))
		return true;
	if (any_size)
		log_warn("xdp: keeping the pinned %s with its %u entries (not %u) and its flows; "
			 "a clean stop lets the size change", path, info.max_entries,
			 bpf_map__max_entries(map));
	return any_size;
}

/* A map an earlier relay pinned is reused if it fits: we decide and hand
 * libbpf the fd, because libbpf 1.1's own check refuses every pinned
 * devmap (the flag above). One that does not fit is replaced, with a log
 * line; a new map is pinned by libbpf at load. */
static int map_pin_prepare(struct bpf_map *map, const char *dir, bool any_size,
			   bool *reused)
{
	char path[PATH_MAX];
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
	*reused = false;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? bpf_map__set_pin_path(map, path) : -errno;
	if (map_fits(map, fd, any_size, path)) {
		err = bpf_map__reuse_fd(map, fd); /* takes a dup */
		close(fd);
		*reused = !err;
		return err;
	}
	close(fd);
	log_warn("xdp: pinned map %s does not fit this program (an upgrade?); replacing it, "
		 "its contents are lost", path);
	if (unlink(path))
		return -errno;
	return bpf_map__set_pin_path(map, path);
}

static int skel_load(struct forward *fw, const struct forward_options *opts,
		     char *why, size_t whylen)
{
	struct relay_bpf *skel;
	bool reused;
	int err;

	skel = fw->skel = relay_bpf__open();
	if (!skel) {
		why_set(why, whylen, "cannot open the XDP program: %s", strerror(errno));
		return -errno;
	}
	if (opts->port_max) {
		skel->rodata->relay_port_min = opts->port_min;
		skel->rodata->relay_port_max = opts->port_max;
	}
	if (opts->flow_max)
		bpf_map__set_max_entries(skel->maps.relay_flows, opts->flow_max);
	err = map_pin_prepare(skel->maps.relay_flows, fw->pin_dir, true, &fw->maps_reused);
	if (!err)
		err = map_pin_prepare(skel->maps.relay_stats, fw->pin_dir, false, &reused);
	if (!err)
		err = map_pin_prepare(skel->maps.relay_tx_ports, fw->pin_dir, false, &reused);
	if (err) {
		why_set(why, whylen, "cannot prepare map pins in %s: %s", fw->pin_dir,
			strerror(-err));
		return err;
	}
	err = relay_bpf__load(skel);
	if (err) {
		why_set(why, whylen, "loading the XDP program failed: %s (libbpf said why "
			"above)", strerror(-err));
		return err;
	}
	fw->flows_fd = bpf_map__fd(skel->maps.relay_flows);
	log_info("xdp: program loaded; maps %s in %s (flow map: %u entries), ports %u-%u",
		 fw->maps_reused ? "reused" : "pinned", fw->pin_dir,
		 bpf_map__max_entries(skel->maps.relay_flows),
		 skel->rodata->relay_port_min, skel->rodata->relay_port_max);
	return 0;
}

/* --- flows ---------------------------------------------------------------- */

static int xdp_add_pair(struct forward *fw, const struct forward_pair *pair)
{
	return xdp_flows_add(fw->flows_fd, pair);
}

static int xdp_read_pair(struct forward *fw, const struct forward_pair *pair,
			 struct forward_counters *fwd, struct forward_counters *back)
{
	return xdp_flows_get(fw->flows_fd, pair, false, fwd, back);
}

static int xdp_remove_pair(struct forward *fw, const struct forward_pair *pair,
			   struct forward_counters *fwd, struct forward_counters *back)
{
	return xdp_flows_get(fw->flows_fd, pair, true, fwd, back);
}

/* Reports what the flow map held at open, as it is now. */
static int xdp_foreach_adopted(struct forward *fw, xdp_flows_fn fn, void *ctx)
{
	xdp_flows_report(fw->flows_fd, fw->adopted, fw->adopted_count, fn, ctx);
	return 0;
}

/* --- interfaces and redirect targets ------------------------------------- */

static int tx_port_set(int fd, int ifindex, bool add)
{
	__u32 key = (__u32)ifindex;
	__u8 val[64];

	if (!add)
		return bpf_map_delete_elem(fd, &key) ? -errno : 0;
	/* the value is the target ifindex (a bare __u32, or the first member
	 * of struct bpf_devmap_val with no program) */
	memset(val, 0, sizeof(val));
	memcpy(val, &key, sizeof(key));
	return bpf_map_update_elem(fd, &key, val, BPF_ANY) ? -errno : 0;
}

/* Redirect targets must be in place before the program sees traffic;
 * entries for interfaces no longer used are dropped. */
static int tx_ports_fill(struct forward *fw)
{
	int fd = bpf_map__fd(fw->skel->maps.relay_tx_ports), err;
	__u32 key, next;
	bool first = true;

	if (bpf_map__value_size(fw->skel->maps.relay_tx_ports) > 64)
		return -EINVAL;
	while (!bpf_map_get_next_key(fd, first ? NULL : &key, &next)) {
		size_t i;

		first = false;
		key = next;
		for (i = 0; i < fw->iface_count && fw->ifaces[i].ifindex != (int)key; i++)
			;
		if (i == fw->iface_count)
			tx_port_set(fd, (int)key, false);
	}
	for (size_t i = 0; i < fw->iface_count; i++) {
		err = tx_port_set(fd, fw->ifaces[i].ifindex, true);
		if (err)
			return log_errno(err, "xdp: cannot add %s to relay_tx_ports",
					 fw->ifaces[i].name);
	}
	return 0;
}

/* Interfaces that own relay_ip (or were configured) must take the program;
 * for the others a failure only means their traffic goes through user
 * space, so they are dropped with a warning. */
static int attach_all(struct forward *fw, char *why, size_t whylen)
{
	int prog_fd = bpf_program__fd(fw->skel->progs.relay_xdp);
	int tx_fd = bpf_map__fd(fw->skel->maps.relay_tx_ports);
	size_t kept = 0;
	int err;

	for (size_t i = 0; i < fw->iface_count; i++) {
		struct xdp_iface *ifc = &fw->ifaces[i];

		err = xdp_iface_attach(ifc, prog_fd, fw->pin_dir, why, whylen);
		if (err && ifc->required) {
			fw->iface_count = kept; /* the attached ones, for the caller to undo */
			return err;
		}
		if (err) {
			log_warn("xdp: %s left out: %s", ifc->name, why);
			tx_port_set(tx_fd, ifc->ifindex, false);
			continue;
		}
		fw->ifaces[kept++] = *ifc;
	}
	fw->iface_count = kept;
	return 0;
}

/* --- open and close ------------------------------------------------------ */

static void pins_remove(struct forward *fw, bool warn)
{
	static const char *const maps[] = { "relay_flows", "relay_stats", "relay_tx_ports" };
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		if (snprintf(path, sizeof(path), "%s/%s", fw->pin_dir, maps[i]) < (int)sizeof(path))
			unlink(path);
	}
	if (rmdir(fw->pin_dir) && errno != ENOENT && warn)
		log_warn("xdp: cannot remove %s: %s", fw->pin_dir, strerror(errno));
	if (fw->default_pin_dir)
		rmdir(PIN_DIR_DEFAULT_PARENT); /* fails while other relays use it */
}

static void fw_free(struct forward *fw, bool keep)
{
	for (size_t i = 0; i < fw->iface_count; i++)
		xdp_iface_release(&fw->ifaces[i], fw->pin_dir, keep || fw->ifaces[i].adopted);
	relay_bpf__destroy(fw->skel);
	free(fw->adopted);
	free(fw);
}

static int xdp_open(struct forward **out, const struct forward_options *opts,
		    char *why, size_t whylen)
{
	struct forward *fw;
	int err;

	*out = NULL;
	err = check_privileges(why, whylen);
	if (err)
		return err;
	fw = calloc(1, sizeof(*fw));
	if (!fw)
		return -ENOMEM;
	fw->flows_fd = -1;
	libbpf_set_print(libbpf_log);
	libxdp_set_print(libxdp_log);
	err = xdp_iface_select(opts, fw->ifaces, RELAY_TX_PORTS_MAX, &fw->iface_count,
			       why, whylen);
	if (!err)
		err = pin_dir_choose(fw, opts, why, whylen);
	if (!err)
		err = prepare_pin_dir(fw->pin_dir, why, whylen);
	if (!err)
		err = skel_load(fw, opts, why, whylen);
	if (err) {
		fw->iface_count = 0; /* nothing attached yet */
		if (fw->pin_dir[0] && !fw->maps_reused)
			pins_remove(fw, false); /* only what this open created */
		fw_free(fw, true);
		return err;
	}
	if (fw->maps_reused && xdp_flows_scan(fw->flows_fd, &fw->adopted, &fw->adopted_count))
		log_warn("xdp: out of memory listing the pinned flows; none adopted");
	err = tx_ports_fill(fw);
	if (!err)
		err = attach_all(fw, why, whylen);
	if (err) {
		if (!why[0])
			why_set(why, whylen, "cannot set up redirect targets: %s", strerror(-err));
		/* undo what this open attached; what an earlier relay left stays */
		if (!fw->maps_reused)
			pins_remove(fw, false);
		fw_free(fw, false);
		return err;
	}
	xdp_iface_remove_stale(fw->pin_dir, fw->ifaces, fw->iface_count);
	*out = fw;
	return 0;
}

static void xdp_close(struct forward *fw, enum forward_close_mode mode)
{
	bool keep = mode == FORWARD_CLOSE_KEEP;

	if (!fw)
		return;
	for (size_t i = 0; i < fw->iface_count; i++)
		fw->ifaces[i].adopted = false; /* ours now: clean means detach all */
	if (!keep) {
		for (size_t i = 0; i < fw->iface_count; i++)
			xdp_iface_release(&fw->ifaces[i], fw->pin_dir, false);
		xdp_iface_remove_stale(fw->pin_dir, NULL, 0);
		pins_remove(fw, true);
		log_info("xdp: closed: program detached, pins under %s removed", fw->pin_dir);
	} else {
		log_info("xdp: closed, leaving the program attached and the maps pinned in %s",
			 fw->pin_dir);
	}
	fw_free(fw, keep);
}

const struct forward_backend forward_xdp_backend = {
	.name = "xdp",
	.open = xdp_open,
	.add_pair = xdp_add_pair,
	.read_pair = xdp_read_pair,
	.remove_pair = xdp_remove_pair,
	.foreach_adopted = xdp_foreach_adopted,
	.close = xdp_close,
	.in_kernel = true,
};
