/* Which interfaces the relay's XDP program runs on, and keeping it attached
 * there across relay restarts (PROTOCOL.md D6, D9). Only forward_xdp.c uses
 * this module; it owns the program and the maps. */
#ifndef MP_XDP_IFACE_H
#define MP_XDP_IFACE_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward.h"

struct xdp_program;

/* How the program got onto an interface, most preferred first. */
enum xdp_iface_method {
	XDP_IFACE_NONE,
	XDP_IFACE_LINK,    /* a BPF link pinned at <pin_dir>/link-<ifname> */
	XDP_IFACE_LIBXDP,  /* libxdp (its dispatcher or its own single attach) */
	XDP_IFACE_NETLINK, /* plain single-program attach, no link */
};

struct xdp_iface {
	char name[IF_NAMESIZE];
	int ifindex;
	bool required;     /* owns relay_ip or was configured: failing is fatal */
	/* Set by xdp_iface_attach(). */
	enum xdp_iface_method method;
	bool adopted;      /* took over what an earlier relay left attached */
	bool skb_mode;     /* generic (SKB) mode rather than native */
	int link_fd;       /* XDP_IFACE_LINK, else -1 */
	int prog_fd;       /* XDP_IFACE_NETLINK: the attached program (not owned) */
	struct xdp_program *xprog; /* XDP_IFACE_LIBXDP */
};

/* Fills out[] with the interfaces to attach to: the configured ones
 * (opts->interfaces; each must exist and must not be a loopback), else
 * every interface that owns relay_ip plus every UP non-loopback interface
 * with an address of relay_ip's family (traffic for relay_ip can come in
 * on any of them, and redirects go out of any of them). A relay_ip on a
 * loopback interface is refused: XDP cannot redirect to local sockets.
 * 0, or -errno with `why` filled. */
int xdp_iface_select(const struct forward_options *opts, struct xdp_iface *out,
		     size_t max, size_t *count, char *why, size_t whylen);

/* Attaches prog_fd to ifc. A pinned link left for this interface by an
 * earlier relay is taken over and switched to prog_fd without a gap;
 * otherwise a new link (native mode, then SKB mode) is created and pinned
 * under pin_dir, so the program stays when the relay dies. Where links
 * are not possible: libxdp, then a plain netlink attach. Logs the method
 * and mode. 0, or -errno with `why` filled. */
int xdp_iface_attach(struct xdp_iface *ifc, int prog_fd, const char *pin_dir,
		     char *why, size_t whylen);

/* keep: leave the program attached (link stays pinned) and free only our
 * handles. Otherwise detach it and remove the link pin. */
void xdp_iface_release(struct xdp_iface *ifc, const char *pin_dir, bool keep);

/* Detaches and unpins every link-* pin under pin_dir that belongs to no
 * interface in ifaces[] (an interface dropped from the config). */
void xdp_iface_remove_stale(const char *pin_dir, const struct xdp_iface *ifaces,
			    size_t count);

#endif
