/* The port pool (ports.h): pairs live in one array and move between a free
 * queue and a bad list, both doubly linked through array indices, so a
 * take, a release and taking one specific pair are all O(1). */
#include "ports.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

#define NIL (-1)

enum pair_state { PAIR_FREE, PAIR_TAKEN, PAIR_BAD };

struct pair_node {
	int32_t prev, next; /* indices into nodes, NIL at either end */
	uint8_t state;      /* enum pair_state */
};

struct pair_list {
	int32_t head, tail;
	size_t count;
};

struct ports_pool {
	struct net_addr relay_ip;
	unsigned int start;     /* first RTP port */
	size_t npairs;
	size_t taken;
	size_t max_taken;       /* ports_take() refuses beyond; 0 = no cap */
	struct pair_list free;  /* FIFO: take from head, release to tail */
	struct pair_list bad;   /* could not be bound, oldest first */
	struct pair_node *nodes;
};

static uint16_t node_port(const struct ports_pool *pool, int32_t i)
{
	return (uint16_t)(pool->start + 2 * (unsigned int)i);
}

static void list_push_tail(struct ports_pool *pool, struct pair_list *l, int32_t i)
{
	struct pair_node *n = &pool->nodes[i];

	n->next = NIL;
	n->prev = l->tail;
	if (l->tail != NIL)
		pool->nodes[l->tail].next = i;
	else
		l->head = i;
	l->tail = i;
	l->count++;
}

static void list_push_head(struct ports_pool *pool, struct pair_list *l, int32_t i)
{
	struct pair_node *n = &pool->nodes[i];

	n->prev = NIL;
	n->next = l->head;
	if (l->head != NIL)
		pool->nodes[l->head].prev = i;
	else
		l->tail = i;
	l->head = i;
	l->count++;
}

static void list_unlink(struct ports_pool *pool, struct pair_list *l, int32_t i)
{
	struct pair_node *n = &pool->nodes[i];

	if (n->prev != NIL)
		pool->nodes[n->prev].next = n->next;
	else
		l->head = n->next;
	if (n->next != NIL)
		pool->nodes[n->next].prev = n->prev;
	else
		l->tail = n->prev;
	n->prev = n->next = NIL;
	l->count--;
}

int ports_pool_new(struct ports_pool **out, const struct net_addr *relay_ip,
		   const struct config_port_range *range)
{
	struct ports_pool *pool;

	*out = NULL;
	if (relay_ip->family != AF_INET && relay_ip->family != AF_INET6)
		return -EINVAL;
	if (range->start >= range->end || range->end > 65536 ||
	    range->start % 2 || range->end % 2 || range->start == 0)
		return -EINVAL;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->relay_ip = *relay_ip;
	pool->start = range->start;
	pool->npairs = (range->end - range->start) / 2;
	pool->nodes = calloc(pool->npairs, sizeof(*pool->nodes));
	if (!pool->nodes) {
		free(pool);
		return -ENOMEM;
	}
	pool->free.head = pool->free.tail = NIL;
	pool->bad.head = pool->bad.tail = NIL;
	for (size_t i = 0; i < pool->npairs; i++) {
		pool->nodes[i].state = PAIR_FREE;
		list_push_tail(pool, &pool->free, (int32_t)i);
	}
	*out = pool;
	return 0;
}

void ports_pool_free(struct ports_pool *pool)
{
	if (!pool)
		return;
	if (pool->taken)
		log_warn("%s: %zu port pairs still taken", __func__, pool->taken);
	free(pool->nodes);
	free(pool);
}

static int bind_one(const struct net_addr *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	int len = net_addr_to_sockaddr(ip, port, &ss);
	int fd, err;

	if (len < 0)
		return len;
	fd = socket(ip->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* Binds both ports of the pair at index i into out. 0 or -errno. */
static int bind_pair(struct ports_pool *pool, int32_t i, struct ports_pair *out)
{
	uint16_t port = node_port(pool, i);
	int rtp, rtcp;

	rtp = bind_one(&pool->relay_ip, port);
	if (rtp < 0)
		return rtp;
	rtcp = bind_one(&pool->relay_ip, port + 1);
	if (rtcp < 0) {
		close(rtp);
		return rtcp;
	}
	out->rtp_port = port;
	out->fd[0] = rtp;
	out->fd[1] = rtcp;
	return 0;
}

static void mark_taken(struct ports_pool *pool, int32_t i)
{
	pool->nodes[i].state = PAIR_TAKEN;
	pool->taken++;
}

static void mark_bad(struct ports_pool *pool, int32_t i)
{
	log_warn("%s: cannot use port pair %u/%u: in use by another socket",
		 __func__, node_port(pool, i), node_port(pool, i) + 1);
	pool->nodes[i].state = PAIR_BAD;
	list_push_tail(pool, &pool->bad, i);
}

/* Upstream's rule: once the bad pairs outnumber the free ones, give them
 * all another chance (whatever held them may have let go). */
static void recycle_bad(struct ports_pool *pool)
{
	log_debug("%s: %zu bad port pairs, %zu free: recycling the bad ones",
		  __func__, pool->bad.count, pool->free.count);
	while (pool->bad.head != NIL) {
		int32_t i = pool->bad.head;

		list_unlink(pool, &pool->bad, i);
		pool->nodes[i].state = PAIR_FREE;
		list_push_tail(pool, &pool->free, i);
	}
}

int ports_take(struct ports_pool *pool, struct ports_pair *out)
{
	bool recycled = false;

	out->fd[0] = out->fd[1] = -1;
	out->rtp_port = 0;
	for (;;) {
		int32_t i;
		int rc;

		/* recycle at most once per call: pairs that fail again stay
		 * bad, so the loop ends after one pass over the queue */
		if (!recycled && pool->bad.count > pool->free.count) {
			recycle_bad(pool);
			recycled = true;
		}
		if (pool->free.head == NIL ||
		    (pool->max_taken && pool->taken >= pool->max_taken))
			return -EBUSY;
		i = pool->free.head;
		list_unlink(pool, &pool->free, i);
		rc = bind_pair(pool, i, out);
		if (rc == 0) {
			mark_taken(pool, i);
			return 0;
		}
		if (rc != -EADDRINUSE) {
			list_push_head(pool, &pool->free, i);
			return log_errno(rc, "%s: bind port pair %u/%u", __func__,
					 node_port(pool, i), node_port(pool, i) + 1);
		}
		mark_bad(pool, i);
	}
}

int ports_take_specific(struct ports_pool *pool, uint16_t rtp_port,
			struct ports_pair *out)
{
	struct pair_list *from;
	int32_t i;
	int rc;

	out->fd[0] = out->fd[1] = -1;
	out->rtp_port = 0;
	if (rtp_port < pool->start || rtp_port % 2 ||
	    (size_t)(rtp_port - pool->start) / 2 >= pool->npairs)
		return -EINVAL;
	i = (int32_t)((rtp_port - pool->start) / 2);
	if (pool->nodes[i].state == PAIR_TAKEN)
		return -EBUSY;
	from = pool->nodes[i].state == PAIR_BAD ? &pool->bad : &pool->free;
	list_unlink(pool, from, i);
	rc = bind_pair(pool, i, out);
	if (rc == 0) {
		mark_taken(pool, i);
		return 0;
	}
	if (rc == -EADDRINUSE) {
		mark_bad(pool, i);
		return rc;
	}
	list_push_tail(pool, from, i);
	return log_errno(rc, "%s: bind port pair %u/%u", __func__, rtp_port, rtp_port + 1);
}

void ports_release(struct ports_pool *pool, struct ports_pair *pair)
{
	int32_t i;

	for (int k = 0; k < 2; k++) {
		if (pair->fd[k] >= 0)
			close(pair->fd[k]);
		pair->fd[k] = -1;
	}
	if (!pair->rtp_port)
		return;
	i = (int32_t)((pair->rtp_port - pool->start) / 2);
	if (pair->rtp_port < pool->start || (size_t)i >= pool->npairs ||
	    pool->nodes[i].state != PAIR_TAKEN) {
		log_warn("%s: port %u was not taken from this pool", __func__, pair->rtp_port);
		pair->rtp_port = 0;
		return;
	}
	pool->nodes[i].state = PAIR_FREE;
	pool->taken--;
	list_push_tail(pool, &pool->free, i);
	pair->rtp_port = 0;
}

const struct net_addr *ports_relay_ip(const struct ports_pool *pool)
{
	return &pool->relay_ip;
}

void ports_get_usage(const struct ports_pool *pool, struct ports_usage *out)
{
	out->free = pool->free.count;
	out->taken = pool->taken;
	out->bad = pool->bad.count;
}

int ports_raise_nofile_limit(const struct config_port_range *range)
{
	rlim_t need = (rlim_t)(range->end - range->start) + PORTS_NOFILE_MARGIN;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return log_errno(-errno, "%s: getrlimit(RLIMIT_NOFILE)", __func__);
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		log_warn("%s: port_range %u:%u needs %llu open files, but the hard limit is %llu: "
			 "about %llu streams at most", __func__, range->start, range->end,
			 (unsigned long long)need, (unsigned long long)rl.rlim_max,
			 rl.rlim_max > PORTS_NOFILE_MARGIN ?
			 (unsigned long long)(rl.rlim_max - PORTS_NOFILE_MARGIN) / 4 : 0ULL);
		need = rl.rlim_max;
	}
	if (rl.rlim_cur >= need)
		return 0;
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return log_errno(-errno, "%s: setrlimit(RLIMIT_NOFILE, %llu)", __func__,
				 (unsigned long long)need);
	log_debug("%s: open file limit raised to %llu", __func__, (unsigned long long)need);
	return 0;
}

size_t ports_pool_limit_by_nofile(struct ports_pool *pool)
{
	struct rlimit rl;

	pool->max_taken = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return 0;
	if (rl.rlim_cur / 2 >= pool->npairs + PORTS_NOFILE_MARGIN / 2)
		return 0; /* every pair fits */
	pool->max_taken = rl.rlim_cur > PORTS_NOFILE_MARGIN ?
			  (size_t)(rl.rlim_cur - PORTS_NOFILE_MARGIN) / 2 : 0;
	if (!pool->max_taken)
		pool->max_taken = 1; /* 0 would mean no cap */
	log_warn("%s: the open file limit (%llu) allows %zu of the %zu port pairs; new "
		 "sessions are refused beyond that", __func__, (unsigned long long)rl.rlim_cur,
		 pool->max_taken, pool->npairs);
	return pool->max_taken;
}
