/* Mutual TLS for the dispatcher <-> relay link and the management port
 * (PROTOCOL.md 2.1, 3.1): which files to load, building an OpenSSL SSL_CTX
 * from them, and checking a peer after the handshake (CA/CRL result plus
 * the passport). Nothing here does I/O on a connection, so the contexts and
 * SSL objects work with libevent's bufferevent_openssl unchanged.
 *
 * Re-reading the files (D17 HUP, or tls_files_stamp() changing) is simply
 * building a new context with tls_context_new() and using it for new
 * connections: an SSL holds its own reference on the SSL_CTX it was made
 * from, so SSL_CTX_free() on the old context right after the swap is safe.
 * If the new files are broken, keep the old context and log the error. */
#ifndef MP_TLS_H
#define MP_TLS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "passport.h"

struct tls_files {
	char ca[PATH_MAX];	/* CA certificate(s), PEM */
	char crl[PATH_MAX];	/* CRL(s), PEM; "" = no CRL checking */
	char cert[PATH_MAX];	/* our certificate (chain), PEM */
	char key[PATH_MAX];	/* our private key, PEM */
};

/* Fills out with certs_dir/{ca.pem, crl.pem, <role>.crt, <role>.key}, role
 * being "dispatcher" or "relay". crl is left empty when crl.pem does not
 * exist (MediaProxy treats the CRL as optional); other files are only
 * checked by tls_context_new(). Returns 0, -EINVAL for another role, or
 * -ENAMETOOLONG. */
int tls_files_from_dir(struct tls_files *out, const char *certs_dir, const char *role);

/* A value that changes whenever one of the files is replaced, rewritten or
 * appears/disappears (mtime, size and inode of each). A caller that wants
 * upstream's "re-read when the files change" compares it every
 * verify_interval and, when it differs, calls tls_files_from_dir() and
 * tls_context_new() again. With files->crl empty, a crl.pem appearing
 * beside ca.pem changes the stamp too. */
uint64_t tls_files_stamp(const struct tls_files *files);

/* Builds a context for one side of a link: TLS 1.2 or later, our cert and
 * key (checked to belong together), peer verification against the CA and,
 * when files->crl is set, the CRL for every certificate in the chain.
 * A server context demands a client certificate. Session resumption is off,
 * so every connection is fully verified against the current files.
 * Returns NULL with a message naming the file in err on error. */
SSL_CTX *tls_context_new(const struct tls_files *files, bool server, char *err, size_t errlen);

/* Checks a connection whose handshake has completed: the peer sent a
 * certificate, it verified (CA, CRL, dates) and its subject satisfies p (p
 * NULL or empty = no constraint). Returns 0, or -EPERM with the reason and
 * the peer's subject in err. After a failed handshake it still explains a
 * certificate that our side rejected; when it returns 0 there, the peer
 * refused us or the link broke (see the OpenSSL error queue, e.g.
 * bufferevent_get_openssl_error()). */
int tls_verify_peer(SSL *ssl, const struct passport *p, char *err, size_t errlen);

/* Verifies the peer of an established connection again, now, against the
 * CA and CRL of ctx (the current context, possibly rebuilt from new files):
 * upstream re-checks expiry and revocation every verify_interval. Returns
 * 0, -EPERM with the reason in err, or -ENOMEM. */
int tls_reverify_peer(SSL_CTX *ctx, SSL *ssl, char *err, size_t errlen);

/* True when cert's subject satisfies p (NULL p = no constraint). */
bool tls_passport_match(const struct passport *p, X509 *cert);

/* Writes cert's subject as "/O=.../CN=..." (for log lines) into buf. */
void tls_subject_name(X509 *cert, char *buf, size_t len);

#endif
