/* bufferevent_openssl glue for the two ends of the relay link (see
 * linkio.h). */
#include "linkio.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"

/* OpenSSL keeps the peer certificate only once it verified, so the subject
 * of a refused one is noted here, on the SSL, as verification fails. The
 * index is process-wide by OpenSSL's design; both daemons are single
 * threaded, so taking it lazily is safe. */
static int subject_index = -1;

static void free_subject(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			 void *argp)
{
	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	free(ptr);
}

static int note_refused_subject(int ok, X509_STORE_CTX *sc)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sc, SSL_get_ex_data_X509_STORE_CTX_idx());
	X509 *leaf = X509_STORE_CTX_get0_cert(sc);
	char subject[256];

	if (!ok && ssl && leaf && !SSL_get_ex_data(ssl, subject_index)) {
		tls_subject_name(leaf, subject, sizeof(subject));
		SSL_set_ex_data(ssl, subject_index, strdup(subject));
	}
	return ok;	/* the verdict is OpenSSL's, unchanged */
}

struct bufferevent *linkio_bev_new(struct event_base *base, int fd, SSL_CTX *tls, bool server)
{
	struct bufferevent *bev;
	SSL *ssl;

	if (subject_index < 0)
		subject_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_subject);
	ssl = SSL_new(tls);
	if (!ssl) {
		ERR_clear_error();
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	if (subject_index >= 0)
		SSL_set_verify(ssl, SSL_get_verify_mode(ssl), note_refused_subject);
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
					     server ? BUFFEREVENT_SSL_ACCEPTING :
						      BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		/* libevent may or may not have freed ssl and closed fd on
		 * its way out (it depends on where it failed): leaking them
		 * on this allocation failure beats a double free. */
		errno = ENOMEM;
		return NULL;
	}
	/* Peers that just close the socket are common (a relay killed with
	 * SIGKILL): report that as EOF, not as a TLS error. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* TLS failures that are about a certificate, ours or theirs: the alerts a
 * peer sends when it refuses our certificate, and our own refusals. */
static bool reason_is_cert(int reason)
{
	switch (reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_NO_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		return true;
	default:
		return false;
	}
}

/* Appends the OpenSSL errors libevent saved for bev; true if there were any.
 * libevent also queues the SSL_get_error() code itself (a small number
 * with no library part): that says nothing a reader can use. */
static bool openssl_errors(struct bufferevent *bev, char *buf, size_t len, bool *cert)
{
	size_t used = 0;
	unsigned long e;
	bool any = false;

	while ((e = bufferevent_get_openssl_error(bev))) {
		const char *r = ERR_reason_error_string(e);
		char code[48];

		if (ERR_GET_LIB(e) == 0)
			continue;
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
		/* OpenSSL 3's name for a peer that closed without close_notify */
		if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
			r = "connection closed by peer";
#endif
		if (!r) {
			snprintf(code, sizeof(code), "OpenSSL error %#lx", e);
			r = code;
		}
		if (reason_is_cert(ERR_GET_REASON(e)))
			*cert = true;
		if (used < len) {
			int n = snprintf(buf + used, len - used, "%s%s", any ? "; " : "", r);

			used += n > 0 ? (size_t)n : 0;
		}
		any = true;
	}
	return any;
}

/* Our side refused the peer's certificate. */
static bool we_refused(SSL *ssl, char *buf, size_t len)
{
	long vr = SSL_get_verify_result(ssl);
	const char *subject = subject_index >= 0 ? SSL_get_ex_data(ssl, subject_index) : NULL;

	if (vr == X509_V_OK)
		return false;
	snprintf(buf, len, "certificate %s rejected: %s", subject ? subject : "(subject unknown)",
		 X509_verify_cert_error_string(vr));
	return true;
}

void linkio_explain(struct bufferevent *bev, short what, char *buf, size_t len,
		    bool *cert_problem)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	bool cert = false;
	int fd = bufferevent_getfd(bev), soerr = 0;
	socklen_t sl = sizeof(soerr);

	if (!len)
		return;
	buf[0] = '\0';
	if (ssl && we_refused(ssl, buf, len)) {
		cert = true;
		while (bufferevent_get_openssl_error(bev))
			;	/* "certificate verify failed": said better above */
	} else if (openssl_errors(bev, buf, len, &cert)) {
		/* e.g. "tlsv1 alert unknown ca": the peer refused us */
	} else if (what & BEV_EVENT_EOF) {
		snprintf(buf, len, "connection closed by peer");
	} else if (what & BEV_EVENT_TIMEOUT) {
		snprintf(buf, len, "timed out");
	} else if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr) {
		snprintf(buf, len, "%s", strerror(soerr));
	} else {
		snprintf(buf, len, "connection reset or I/O error");
	}
	ERR_clear_error();
	if (cert_problem)
		*cert_problem = cert;
}

void linkio_excerpt(const char *p, size_t len, char *out, size_t outlen)
{
	size_t o = 0, i, n = len < LINKIO_EXCERPT ? len : LINKIO_EXCERPT;

	if (outlen < LINKIO_EXCERPT_BUF) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	out[o++] = '"';
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	out[o++] = '"';
	if (n < len)
		o += (size_t)snprintf(out + o, outlen - o, "...");
	out[o] = '\0';
}

void linkio_set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

double linkio_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timeval linkio_timeval(double seconds)
{
	struct timeval tv;

	if (seconds < 0)
		seconds = 0;
	tv.tv_sec = (time_t)seconds;
	tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
	if (tv.tv_usec >= 1000000) {
		tv.tv_sec++;
		tv.tv_usec -= 1000000;
	}
	return tv;
}
