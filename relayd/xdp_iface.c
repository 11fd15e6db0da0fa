/* Interfaces for the relay's XDP program: choosing them (PROTOCOL.md D9),
 * attaching with a pinned BPF link that outlives the relay (D6), and the
 * fallbacks where a link is not possible: libxdp, then a plain netlink
 * attach. Every attach logs its method and mode, as D9 asks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/if_link.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include "log.h"
#include "xdp_iface.h"

#define LINK_PREFIX "link-"
/* The program's name in the kernel (its function name, 15 chars max):
 * how a program left attached by an earlier relay is recognised. */
#define RELAY_PROG_NAME "relay_xdp"

static void why_set(char *why, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

static const char *mode_name(bool skb)
{
	return skb ? "SKB (generic) mode" : "native mode";
}

/* --- choosing interfaces ------------------------------------------------ */

static bool addr_is_loopback(const struct net_addr *a)
{
	if (a->family == AF_INET)
		return (ntohl(a->v4.s_addr) >> 24) == 127;
	return a->family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&a->v6);
}

static bool ifa_has_addr(const struct ifaddrs *p, const struct net_addr *want)
{
	struct net_addr got;

	if (!p->ifa_addr || net_addr_from_sockaddr(p->ifa_addr, &got, NULL))
		return false;
	return net_addr_equal(&got, want);
}

/* getifaddrs() lists every link once with an AF_PACKET entry, so an
 * interface without addresses is found too. */
static const struct ifaddrs *ifa_find(const struct ifaddrs *all, const char *name)
{
	for (const struct ifaddrs *p = all; p; p = p->ifa_next)
		if (!strcmp(p->ifa_name, name))
			return p;
	return NULL;
}

static int iface_push(struct xdp_iface *out, size_t max, size_t *count,
		      const char *name, bool required)
{
	unsigned int ifindex;

	for (size_t i = 0; i < *count; i++) {
		if (!strcmp(out[i].name, name)) {
			out[i].required |= required;
			return 0;
		}
	}
	if (*count == max)
		return -E2BIG;
	ifindex = if_nametoindex(name);
	if (!ifindex)
		return -ENODEV;
	memset(&out[*count], 0, sizeof(out[0]));
	snprintf(out[*count].name, sizeof(out[0].name), "%s", name);
	out[*count].ifindex = (int)ifindex;
	out[*count].required = required;
	out[*count].link_fd = -1;
	out[*count].prog_fd = -1;
	(*count)++;
	return 0;
}

static int select_configured(const struct config_str_list *names,
			     const struct ifaddrs *all, struct xdp_iface *out,
			     size_t max, size_t *count, char *why, size_t whylen)
{
	for (size_t i = 0; i < names->count; i++) {
		const char *name = names->items[i];
		const struct ifaddrs *p = ifa_find(all, name);
		int err;

		if (!p) {
			why_set(why, whylen, "interface %s (from `interfaces`) does not exist", name);
			return -ENODEV;
		}
		if (p->ifa_flags & IFF_LOOPBACK) {
			why_set(why, whylen, "interface %s is a loopback interface; "
				"XDP cannot redirect to local destinations", name);
			return -EINVAL;
		}
		err = iface_push(out, max, count, name, true);
		if (err) {
			why_set(why, whylen, "interface %s: %s", name,
				err == -E2BIG ? "too many interfaces" : strerror(-err));
			return err;
		}
	}
	return 0;
}

static int select_auto(const struct net_addr *relay_ip, const char *ip,
		       const struct ifaddrs *all, struct xdp_iface *out,
		       size_t max, size_t *count, char *why, size_t whylen)
{
	const struct ifaddrs *p;
	bool owned = false;

	for (p = all; p; p = p->ifa_next) {
		if (!ifa_has_addr(p, relay_ip))
			continue;
		owned = true;
		if (!(p->ifa_flags & IFF_LOOPBACK))
			iface_push(out, max, count, p->ifa_name, true);
	}
	if (!owned) {
		why_set(why, whylen, "relay_ip %s is not an address of any interface", ip);
		return -EADDRNOTAVAIL;
	}
	if (*count == 0) {
		why_set(why, whylen, "relay_ip %s is on lo; XDP cannot redirect to local "
			"destinations", ip);
		return -EADDRNOTAVAIL;
	}
	for (p = all; p; p = p->ifa_next) {
		if (!p->ifa_addr || p->ifa_addr->sa_family != relay_ip->family ||
		    !(p->ifa_flags & IFF_UP) || (p->ifa_flags & IFF_LOOPBACK))
			continue;
		if (iface_push(out, max, count, p->ifa_name, false) == -E2BIG) {
			log_warn("xdp: more than %zu interfaces; %s and later ones are left out",
				 max, p->ifa_name);
			break;
		}
	}
	return 0;
}

int xdp_iface_select(const struct forward_options *opts, struct xdp_iface *out,
		     size_t max, size_t *count, char *why, size_t whylen)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	struct ifaddrs *all;
	int err;

	*count = 0;
	net_addr_format(&opts->relay_ip, ip, sizeof(ip));
	if (addr_is_loopback(&opts->relay_ip)) {
		why_set(why, whylen, "relay_ip %s is on lo; XDP cannot redirect to local "
			"destinations", ip);
		return -EADDRNOTAVAIL;
	}
	if (getifaddrs(&all)) {
		err = -errno;
		why_set(why, whylen, "cannot list interfaces: %s", strerror(-err));
		return err;
	}
	if (opts->interfaces && opts->interfaces->count)
		err = select_configured(opts->interfaces, all, out, max, count, why, whylen);
	else
		err = select_auto(&opts->relay_ip, ip, all, out, max, count, why, whylen);
	freeifaddrs(all);
	return err;
}

/* --- attaching ----------------------------------------------------------- */

static int link_path(char *buf, size_t len, const char *pin_dir, const char *ifname)
{
	int n = snprintf(buf, len, "%s/" LINK_PREFIX "%s", pin_dir, ifname);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static bool attached_in_skb_mode(int ifindex)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);

	return !bpf_xdp_query(ifindex, 0, &q) && q.attach_mode == XDP_ATTACHED_SKB;
}

/* Drops a pinned link: detached even if someone else holds an fd to it. */
static void link_drop(int fd, const char *path)
{
	if (fd >= 0) {
		bpf_link_detach(fd);
		close(fd);
	}
	unlink(path);
}

/* Takes over the link an earlier relay pinned for this interface and points
 * it at the new program: the old program runs until the switch, so no
 * packet falls back to user space. 1 = taken over, 0 = nothing usable was
 * pinned (a stale pin is removed). */
static int link_adopt(struct xdp_iface *ifc, int prog_fd, const char *path)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path);

	if (fd < 0) {
		if (errno != ENOENT) {
			log_warn("xdp: %s: cannot open pinned link %s (%s); replacing it",
				 ifc->name, path, strerror(errno));
			unlink(path);
		}
		return 0;
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != BPF_LINK_TYPE_XDP ||
	    info.xdp.ifindex != (__u32)ifc->ifindex) {
		log_info("xdp: %s: pinned link %s is stale (its interface went away or was "
			 "renamed); replacing it", ifc->name, path);
		link_drop(fd, path);
		return 0;
	}
	if (bpf_link_update(fd, prog_fd, NULL)) {
		log_warn("xdp: %s: cannot switch pinned link %s to the new program (%s); "
			 "attaching anew", ifc->name, path, strerror(errno));
		link_drop(fd, path);
		return 0;
	}
	ifc->method = XDP_IFACE_LINK;
	ifc->adopted = true;
	ifc->link_fd = fd;
	ifc->skb_mode = attached_in_skb_mode(ifc->ifindex);
	log_info("xdp: %s: took over the pinned BPF link %s (%s) and switched it to the "
		 "new program without a gap", ifc->name, path, mode_name(ifc->skb_mode));
	return 1;
}

/* A new link, native mode first: SKB mode costs an skb per packet. */
static int link_new(struct xdp_iface *ifc, int prog_fd, const char *path)
{
	int fd = -1, err = 0;

	for (int skb = 0; skb <= 1 && fd < 0; skb++) {
		LIBBPF_OPTS(bpf_link_create_opts, o,
			    .flags = skb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);

		fd = bpf_link_create(prog_fd, ifc->ifindex, BPF_XDP, &o);
		if (fd >= 0) {
			ifc->skb_mode = skb;
			break;
		}
		err = -errno;
		log_info("xdp: %s: BPF link in %s failed: %s", ifc->name, mode_name(skb),
			 strerror(-err));
		if (err == -EBUSY || err == -EEXIST)
			break; /* another program holds it: no mode helps */
	}
	if (fd < 0)
		return err;
	if (bpf_obj_pin(fd, path)) {
		err = -errno;
		log_warn("xdp: %s: cannot pin the link at %s: %s", ifc->name, path, strerror(-err));
		close(fd); /* the last reference: detaches */
		return err;
	}
	ifc->method = XDP_IFACE_LINK;
	ifc->link_fd = fd;
	log_info("xdp: %s: attached with a BPF link pinned at %s, %s", ifc->name, path,
		 mode_name(ifc->skb_mode));
	return 0;
}

/* The program now attached to ifindex: its id, name and mode. */
static int current_prog(int ifindex, __u32 *id, char *name, size_t namelen, bool *skb)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd;

	*id = 0;
	if (bpf_xdp_query(ifindex, 0, &q))
		return -errno;
	*id = q.prog_id ? q.prog_id : q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id;
	*skb = q.attach_mode == XDP_ATTACHED_SKB || (!q.drv_prog_id && q.skb_prog_id);
	snprintf(name, namelen, "?");
	if (!*id)
		return 0;
	fd = bpf_prog_get_fd_by_id(*id);
	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		snprintf(name, namelen, "%s", info.name);
	close(fd);
	return 0;
}

/* After libxdp added us to a dispatcher, earlier relays' copies of the
 * program would still run ahead of ours: remove them. */
static void libxdp_remove_older(struct xdp_iface *ifc, __u32 our_id)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifc->ifindex);
	struct xdp_program *p;

	if (libxdp_get_error(mp) || !mp)
		return;
	for (p = xdp_multiprog__next_prog(NULL, mp); p; p = xdp_multiprog__next_prog(p, mp)) {
		if (strcmp(xdp_program__name(p), RELAY_PROG_NAME) || xdp_program__id(p) == our_id)
			continue;
		if (!xdp_program__detach(p, ifc->ifindex, xdp_multiprog__attach_mode(mp), 0))
			log_info("xdp: %s: removed an earlier relay's program (id %u) from the "
				 "libxdp dispatcher", ifc->name, xdp_program__id(p));
	}
	xdp_multiprog__close(mp);
}

/* libxdp shares the interface with other XDP programs through its
 * dispatcher where the kernel allows that (TESTING.md: not here). */
static int libxdp_attach(struct xdp_iface *ifc, int prog_fd)
{
	int dupfd = fcntl(prog_fd, F_DUPFD_CLOEXEC, 3), err = -EINVAL;
	struct xdp_program *xp;

	if (dupfd < 0)
		return -errno;
	xp = xdp_program__from_fd(dupfd); /* owns dupfd from here on */
	if (libxdp_get_error(xp)) {
		close(dupfd);
		return (int)libxdp_get_error(xp);
	}
	for (int skb = 0; skb <= 1; skb++) {
		err = xdp_program__attach(xp, ifc->ifindex, skb ? XDP_MODE_SKB : XDP_MODE_NATIVE, 0);
		if (!err) {
			ifc->method = XDP_IFACE_LIBXDP;
			ifc->xprog = xp;
			ifc->skb_mode = skb;
			log_info("xdp: %s: attached through libxdp, %s", ifc->name, mode_name(skb));
			libxdp_remove_older(ifc, xdp_program__id(xp));
			return 0;
		}
		log_info("xdp: %s: libxdp in %s failed: %s", ifc->name, mode_name(skb),
			 strerror(-err));
	}
	xdp_program__close(xp);
	return err;
}

/* The classic single-program attach. An earlier relay's program attached
 * this way is replaced atomically; anyone else's is left alone. */
static int netlink_attach(struct xdp_iface *ifc, int prog_fd, char *why, size_t whylen)
{
	char name[BPF_OBJ_NAME_LEN];
	bool cur_skb = false, ours;
	__u32 cur_id;
	int cur_fd, err = 0;

	current_prog(ifc->ifindex, &cur_id, name, sizeof(name), &cur_skb);
	ours = cur_id && !strcmp(name, RELAY_PROG_NAME);
	if (cur_id && !ours) {
		why_set(why, whylen, "interface %s already runs XDP program %s (id %u)",
			ifc->name, name, cur_id);
		return -EBUSY;
	}
	cur_fd = ours ? bpf_prog_get_fd_by_id(cur_id) : -1;
	for (int skb = 0; skb <= 1; skb++) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, o);
		__u32 flags = skb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;

		if (ours && cur_fd >= 0 && skb == cur_skb) {
			flags |= XDP_FLAGS_REPLACE;
			o.old_prog_fd = cur_fd;
		} else {
			flags |= XDP_FLAGS_UPDATE_IF_NOEXIST;
		}
		err = bpf_xdp_attach(ifc->ifindex, prog_fd, flags, &o);
		if (!err) {
			ifc->method = XDP_IFACE_NETLINK;
			ifc->prog_fd = prog_fd;
			ifc->skb_mode = skb;
			ifc->adopted = ours;
			log_info("xdp: %s: attached as a single program (netlink, no link), %s%s",
				 ifc->name, mode_name(skb),
				 ours ? ", replacing an earlier relay's program" : "");
			break;
		}
		log_info("xdp: %s: netlink attach in %s failed: %s", ifc->name, mode_name(skb),
			 strerror(-err));
	}
	if (cur_fd >= 0)
		close(cur_fd);
	if (err && ours) /* a link we could not take over: not in our pin dir */
		why_set(why, whylen, "interface %s already runs %s (id %u), attached by another "
			"relay (another bpf_pin_dir)", ifc->name, name, cur_id);
	else if (err)
		why_set(why, whylen, "cannot attach XDP to %s: %s", ifc->name, strerror(-err));
	return err;
}

int xdp_iface_attach(struct xdp_iface *ifc, int prog_fd, const char *pin_dir,
		     char *why, size_t whylen)
{
	char path[PATH_MAX];
	int err;

	if (link_path(path, sizeof(path), pin_dir, ifc->name)) {
		why_set(why, whylen, "bpf_pin_dir %s is too long", pin_dir);
		return -ENAMETOOLONG;
	}
	if (link_adopt(ifc, prog_fd, path))
		return 0;
	err = link_new(ifc, prog_fd, path);
	if (!err)
		return 0;
	/* EBUSY: a program attached without a link holds the interface; only
	 * libxdp (its dispatcher) or netlink (our own old program) go on. */
	log_info("xdp: %s: no BPF link (%s); trying libxdp", ifc->name, strerror(-err));
	if (!libxdp_attach(ifc, prog_fd))
		return 0;
	log_info("xdp: %s: libxdp failed too; trying a single-program attach", ifc->name);
	return netlink_attach(ifc, prog_fd, why, whylen);
}

void xdp_iface_release(struct xdp_iface *ifc, const char *pin_dir, bool keep)
{
	char path[PATH_MAX];

	switch (ifc->method) {
	case XDP_IFACE_LINK:
		if (!keep && !link_path(path, sizeof(path), pin_dir, ifc->name))
			link_drop(ifc->link_fd, path);
		else
			close(ifc->link_fd); /* the pin keeps the link attached */
		ifc->link_fd = -1;
		break;
	case XDP_IFACE_LIBXDP:
		if (!keep)
			xdp_program__detach(ifc->xprog, ifc->ifindex,
					    ifc->skb_mode ? XDP_MODE_SKB : XDP_MODE_NATIVE, 0);
		xdp_program__close(ifc->xprog);
		ifc->xprog = NULL;
		break;
	case XDP_IFACE_NETLINK:
		if (!keep) {
			/* REPLACE: detach only if our program is still there. */
			LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = ifc->prog_fd);
			__u32 mode = ifc->skb_mode ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;

			bpf_xdp_detach(ifc->ifindex, mode | XDP_FLAGS_REPLACE, &o);
		}
		ifc->prog_fd = -1;
		break;
	case XDP_IFACE_NONE:
		return;
	}
	if (!keep)
		log_info("xdp: %s: detached", ifc->name);
	ifc->method = XDP_IFACE_NONE;
}

void xdp_iface_remove_stale(const char *pin_dir, const struct xdp_iface *ifaces,
			    size_t count)
{
	DIR *dir = opendir(pin_dir);
	struct dirent *de;

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		const char *ifname = de->d_name + strlen(LINK_PREFIX);
		char path[PATH_MAX];
		size_t i;

		if (strncmp(de->d_name, LINK_PREFIX, strlen(LINK_PREFIX)))
			continue;
		for (i = 0; i < count && strcmp(ifaces[i].name, ifname); i++)
			;
		if (i < count && ifaces[i].method == XDP_IFACE_LINK)
			continue;
		if (link_path(path, sizeof(path), pin_dir, ifname))
			continue;
		link_drop(bpf_obj_get(path), path);
		log_info("xdp: %s: detached an earlier relay's program (interface no longer "
			 "used)", ifname);
	}
	closedir(dir);
}
