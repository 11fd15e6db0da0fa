/* recvmmsg()/sendmmsg() helpers for the media sockets (udp_batch.h). */
#include "udp_batch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int udp_batch_init(struct udp_batch *b)
{
	memset(b, 0, sizeof(*b));
	b->buf = malloc((size_t)UDP_BATCH_MAX * UDP_BATCH_SLOT);
	if (!b->buf)
		return -ENOMEM;
	return 0;
}

void udp_batch_free(struct udp_batch *b)
{
	free(b->buf);
	b->buf = NULL;
	b->count = 0;
}

int udp_batch_recv(struct udp_batch *b, int fd)
{
	int n;

	/* recvmmsg() writes msg_namelen and msg_len back, so every field is
	 * set again before each call */
	for (unsigned int i = 0; i < UDP_BATCH_MAX; i++) {
		struct msghdr *h = &b->msgs[i].msg_hdr;

		b->iov[i].iov_base = b->buf + (size_t)i * UDP_BATCH_SLOT;
		b->iov[i].iov_len = UDP_BATCH_SLOT;
		memset(h, 0, sizeof(*h));
		h->msg_name = &b->src[i];
		h->msg_namelen = sizeof(b->src[i]);
		h->msg_iov = &b->iov[i];
		h->msg_iovlen = 1;
		b->msgs[i].msg_len = 0;
	}
	b->count = 0;
	do
		n = recvmmsg(fd, b->msgs, UDP_BATCH_MAX, MSG_DONTWAIT, NULL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	b->count = (unsigned int)n;
	return n;
}

int udp_batch_send(int fd, const struct sockaddr *dst, socklen_t dstlen,
		   struct iovec *iov, unsigned int n)
{
	struct mmsghdr msgs[UDP_BATCH_MAX];
	unsigned int next = 0, sent = 0, retried = UINT_MAX;
	int err = 0;

	if (n > UDP_BATCH_MAX)
		n = UDP_BATCH_MAX;
	memset(msgs, 0, sizeof(msgs[0]) * n);
	for (unsigned int i = 0; i < n; i++) {
		msgs[i].msg_hdr.msg_name = (void *)dst;
		msgs[i].msg_hdr.msg_namelen = dstlen;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (next < n) {
		int rc = sendmmsg(fd, msgs + next, n - next, MSG_DONTWAIT);

		if (rc > 0) {
			next += (unsigned int)rc;
			sent += (unsigned int)rc;
			continue;
		}
		if (rc < 0 && errno == EINTR)
			continue;
		/* An ICMP error left by an earlier datagram (the peer was
		 * not listening yet) is reported on this send instead of this
		 * datagram going out: it is consumed now, so try once more. */
		if (rc < 0 && errno == ECONNREFUSED && retried != next) {
			retried = next;
			continue;
		}
		if (rc == 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
			if (rc < 0 && !err)
				err = -errno;
			break;
		}
		/* this one datagram failed (EMSGSIZE, an unreachable
		 * destination): skip it, the rest may still go */
		if (!err)
			err = -errno;
		next++;
	}
	return sent || !err ? (int)sent : err;
}
