/* Flow entries of the XDP program (xdp_flows.h): turning forward_pairs into
 * relay_flows keys and values and back, keeping counters when an entry is
 * rewritten, and finding the pairs an earlier relay left. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "log.h"
#include "xdp_flows.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524 /* the kernel's own "not supported", seen by user space */
#endif

static int endpoint_to_raw(const struct forward_endpoint *ep, __u8 addr[RELAY_ADDR_LEN],
			   __u16 *port)
{
	memset(addr, 0, RELAY_ADDR_LEN);
	if (ep->addr.family == AF_INET) {
		addr[10] = addr[11] = 0xff; /* ::ffff:a.b.c.d */
		memcpy(addr + 12, &ep->addr.v4, 4);
	} else if (ep->addr.family == AF_INET6) {
		memcpy(addr, &ep->addr.v6, 16);
	} else {
		return -EAFNOSUPPORT;
	}
	*port = htons(ep->port);
	return 0;
}

static void endpoint_from_raw(const __u8 addr[RELAY_ADDR_LEN], __u16 port, __u8 family,
			      struct forward_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	if (family == RELAY_FAMILY_INET) {
		ep->addr.family = AF_INET;
		memcpy(&ep->addr.v4, addr + 12, 4);
	} else {
		ep->addr.family = AF_INET6;
		memcpy(&ep->addr.v6, addr, 16);
	}
	ep->port = ntohs(port);
}

static int key_from_local(const struct forward_endpoint *local, struct relay_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = local->addr.family == AF_INET ? RELAY_FAMILY_INET : RELAY_FAMILY_INET6;
	return endpoint_to_raw(local, k->addr, &k->port);
}

/* The program does no v4<->v6 translation: all four endpoints share one
 * family, the relay_ip's. */
static int flow_to_entry(const struct forward_flow *f, struct relay_flow_key *k,
			 struct relay_flow_value *v)
{
	int family = f->local.addr.family;

	if (f->source.addr.family != family || f->out_local.addr.family != family ||
	    f->destination.addr.family != family)
		return -EAFNOSUPPORT;
	memset(v, 0, sizeof(*v));
	v->family = family == AF_INET ? RELAY_FAMILY_INET : RELAY_FAMILY_INET6;
	if (key_from_local(&f->local, k) ||
	    endpoint_to_raw(&f->source, v->src_addr, &v->src_port) ||
	    endpoint_to_raw(&f->destination, v->dst_addr, &v->dst_port) ||
	    endpoint_to_raw(&f->out_local, v->new_src_addr, &v->new_src_port))
		return -EAFNOSUPPORT;
	return 0;
}

static void flow_from_entry(const struct relay_flow_key *k, const struct relay_flow_value *v,
			    struct forward_flow *f)
{
	endpoint_from_raw(k->addr, k->port, k->family, &f->local);
	endpoint_from_raw(v->src_addr, v->src_port, k->family, &f->source);
	endpoint_from_raw(v->new_src_addr, v->new_src_port, v->family, &f->out_local);
	endpoint_from_raw(v->dst_addr, v->dst_port, v->family, &f->destination);
}

static void counters_from(const struct relay_flow_value *v, struct forward_counters *c)
{
	if (!c)
		return;
	c->bytes = v->bytes;
	c->packets = v->packets;
	c->last_seen_ns = v->last_seen_ns;
}

static void counters_carry(struct relay_flow_value *to, const struct relay_flow_value *from)
{
	to->bytes = from->bytes;
	to->packets = from->packets;
	to->last_seen_ns = from->last_seen_ns;
}

/* Writes one direction. Over an existing entry the counters carry over
 * (read, then write), so a stream's counts never go backwards; packets the
 * program counts between the two steps are lost, which is why an entry
 * that already says the same is left untouched. old and had_old let the
 * caller undo the write. */
static int flow_put(int fd, const struct forward_flow *f, struct relay_flow_value *old,
		    bool *had_old)
{
	struct relay_flow_key key;
	struct relay_flow_value val, cmp;
	int err = flow_to_entry(f, &key, &val);

	if (err)
		return err;
	*had_old = !bpf_map_lookup_elem(fd, &key, old);
	if (*had_old) {
		cmp = *old;
		counters_carry(&cmp, &val);
		cmp.egress = val.egress; /* the program's route cache is not ours */
		if (!memcmp(&cmp, &val, sizeof(val)))
			return 0;
		counters_carry(&val, old); /* with the cache zeroed: invalid */
	}
	if (bpf_map_update_elem(fd, &key, &val, BPF_ANY))
		return -errno;
	return 0;
}

static void flow_undo(int fd, const struct forward_flow *f, const struct relay_flow_value *old,
		      bool had_old)
{
	struct relay_flow_key key;
	struct relay_flow_value v;

	if (key_from_local(&f->local, &key))
		return;
	if (!had_old) {
		bpf_map_delete_elem(fd, &key);
		return;
	}
	v = *old;
	/* a cache read back may be torn: the program looks up again */
	memset(&v.egress, 0, sizeof(v.egress));
	bpf_map_update_elem(fd, &key, &v, BPF_ANY);
}

/* 0, -ENOENT (c zeroed), or another -errno. */
static int flow_get(int fd, const struct forward_endpoint *local, bool delete,
		    struct forward_counters *c)
{
	struct relay_flow_key key;
	struct relay_flow_value v;
	int err;

	if (c)
		memset(c, 0, sizeof(*c));
	err = key_from_local(local, &key);
	if (err)
		return err;
	if (!delete)
		err = bpf_map_lookup_elem(fd, &key, &v);
	else
		err = bpf_map_lookup_and_delete_elem(fd, &key, &v);
	if (err && delete && (errno == EINVAL || errno == ENOTSUPP || errno == EOPNOTSUPP)) {
		/* before Linux 5.14 hash maps have no lookup-and-delete */
		err = bpf_map_lookup_elem(fd, &key, &v);
		if (!err)
			err = bpf_map_delete_elem(fd, &key);
	}
	if (err)
		return -errno;
	counters_from(&v, c);
	return 0;
}

int xdp_flows_add(int fd, const struct forward_pair *pair)
{
	struct relay_flow_value old_fwd, old_back;
	bool had_fwd, had_back;
	int err;

	err = flow_put(fd, &pair->forward, &old_fwd, &had_fwd);
	if (err)
		return err;
	err = flow_put(fd, &pair->backward, &old_back, &had_back);
	if (err)
		flow_undo(fd, &pair->forward, &old_fwd, had_fwd);
	return err;
}

int xdp_flows_get(int fd, const struct forward_pair *pair, bool remove,
		  struct forward_counters *forward, struct forward_counters *backward)
{
	int e1 = flow_get(fd, &pair->forward.local, remove, forward);
	int e2 = flow_get(fd, &pair->backward.local, remove, backward);

	if (e1 && e1 != -ENOENT)
		return e1;
	if (e2 && e2 != -ENOENT)
		return e2;
	return e1 && e2 ? -ENOENT : 0;
}

static void key_of_new_src(const struct relay_flow_value *v, struct relay_flow_key *k)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->addr, v->new_src_addr, RELAY_ADDR_LEN);
	k->port = v->new_src_port;
	k->family = v->family;
}

/* The two directions of a leg point at each other: each one's new source
 * is the other one's key. */
static bool entries_mirror(const struct relay_flow_key *k1, const struct relay_flow_value *v1,
			   const struct relay_flow_key *k2, const struct relay_flow_value *v2)
{
	struct relay_flow_key back, fore;

	key_of_new_src(v1, &fore);
	key_of_new_src(v2, &back);
	return !memcmp(&fore, k2, sizeof(fore)) && !memcmp(&back, k1, sizeof(back)) &&
	       memcmp(k1, k2, sizeof(*k1));
}

static int pairs_push(struct xdp_flows_pair **pairs, size_t *count, size_t *cap,
		      const struct relay_flow_key *fwd, const struct relay_flow_key *back)
{
	if (*count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct xdp_flows_pair *p = realloc(*pairs, ncap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*pairs = p;
		*cap = ncap;
	}
	(*pairs)[(*count)++] = (struct xdp_flows_pair){ *fwd, *back };
	return 0;
}

int xdp_flows_scan(int fd, struct xdp_flows_pair **pairs, size_t *count)
{
	struct relay_flow_key key, next, mirror;
	struct relay_flow_value v, mv;
	size_t cap = 0, orphans = 0, entries = 0;
	bool first = true;

	*pairs = NULL;
	*count = 0;
	while (!bpf_map_get_next_key(fd, first ? NULL : &key, &next)) {
		first = false;
		key = next;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		entries++;
		key_of_new_src(&v, &mirror);
		if (bpf_map_lookup_elem(fd, &mirror, &mv) ||
		    !entries_mirror(&key, &v, &mirror, &mv)) {
			orphans++;
			log_debug("xdp: pinned flow on port %u has no mirror entry; left alone",
				  ntohs(key.port));
			continue;
		}
		if (memcmp(&key, &mirror, sizeof(key)) < 0 &&
		    pairs_push(pairs, count, &cap, &key, &mirror))
			return -ENOMEM;
	}
	log_info("xdp: adopted %zu flow pairs from the pinned map (%zu entries, %zu without "
		 "a mirror)", *count, entries, orphans);
	return 0;
}

void xdp_flows_report(int fd, const struct xdp_flows_pair *pairs, size_t count,
		      xdp_flows_fn fn, void *ctx)
{
	for (size_t i = 0; i < count; i++) {
		const struct xdp_flows_pair *kp = &pairs[i];
		struct relay_flow_value vf, vb;
		struct forward_counters cf, cb;
		struct forward_pair pair;

		if (bpf_map_lookup_elem(fd, &kp->forward, &vf) ||
		    bpf_map_lookup_elem(fd, &kp->backward, &vb) ||
		    !entries_mirror(&kp->forward, &vf, &kp->backward, &vb))
			continue;
		flow_from_entry(&kp->forward, &vf, &pair.forward);
		flow_from_entry(&kp->backward, &vb, &pair.backward);
		counters_from(&vf, &cf);
		counters_from(&vb, &cb);
		fn(ctx, &pair, &cf, &cb);
	}
}
