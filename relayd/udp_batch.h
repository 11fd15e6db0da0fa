/* Batched UDP I/O for the relay's media sockets: one recvmmsg() fills up to
 * UDP_BATCH_MAX datagrams with their source addresses, and one sendmmsg()
 * sends a run of them to a single destination. The receive buffers belong
 * to the batch and are reused; a send points back into them, so a
 * forwarded payload is never copied in user space. */
#ifndef MP_UDP_BATCH_H
#define MP_UDP_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define UDP_BATCH_MAX 32      /* datagrams per system call */
#define UDP_BATCH_SLOT 65536  /* bytes per datagram buffer: any UDP payload fits */

struct udp_batch {
	unsigned int count;                   /* datagrams in the last receive */
	struct mmsghdr msgs[UDP_BATCH_MAX];
	struct iovec iov[UDP_BATCH_MAX];
	struct sockaddr_storage src[UDP_BATCH_MAX];
	uint8_t *buf;                         /* UDP_BATCH_MAX * UDP_BATCH_SLOT */
};

/* Allocates the buffers. Returns 0 or -ENOMEM. */
int udp_batch_init(struct udp_batch *b);
void udp_batch_free(struct udp_batch *b);

/* Receives what fd has queued, up to UDP_BATCH_MAX datagrams, without
 * blocking. Returns the count (0 when nothing was waiting) or -errno. */
int udp_batch_recv(struct udp_batch *b, int fd);

static inline const uint8_t *udp_batch_data(const struct udp_batch *b, unsigned int i)
{
	return b->iov[i].iov_base;
}

static inline size_t udp_batch_len(const struct udp_batch *b, unsigned int i)
{
	return b->msgs[i].msg_len;
}

static inline const struct sockaddr *udp_batch_src(const struct udp_batch *b, unsigned int i)
{
	return (const struct sockaddr *)&b->src[i];
}

/* Sends the n datagrams in iov (one iovec each) from fd to dst. A full
 * socket buffer ends the run early: media is not worth queueing, so the
 * rest is dropped. Returns the number sent or -errno (nothing sent). */
int udp_batch_send(int fd, const struct sockaddr *dst, socklen_t dstlen,
		   struct iovec *iov, unsigned int n);

#endif
