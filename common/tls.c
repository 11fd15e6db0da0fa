/* OpenSSL contexts for mutual TLS and the post-handshake peer check (see
 * tls.h). Errors are returned as text for the caller to log with the
 * connection it belongs to; this file never logs. The OpenSSL error queue
 * is emptied on every failure path so that a later, unrelated SSL call does
 * not report our stale error. */
#include "tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

/* Subject entries looked at per certificate; more can only make a passport
 * fail (a pair must find a match), never pass. */
#define TLS_MAX_SUBJECT_FIELDS 32

static const int attr_nids[PASSPORT_ATTR_COUNT] = {
	[PASSPORT_ATTR_O] = NID_organizationName,
	[PASSPORT_ATTR_OU] = NID_organizationalUnitName,
	[PASSPORT_ATTR_CN] = NID_commonName,
	[PASSPORT_ATTR_C] = NID_countryName,
	[PASSPORT_ATTR_L] = NID_localityName,
	[PASSPORT_ATTR_ST] = NID_stateOrProvinceName,
	[PASSPORT_ATTR_EMAIL] = NID_pkcs9_emailAddress,
};

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The reason OpenSSL queued first (the innermost one, e.g. "no start line"
 * rather than "PEM lib"), then an empty queue. */
static const char *ssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "unknown OpenSSL error";
}

int tls_files_from_dir(struct tls_files *out, const char *certs_dir, const char *role)
{
	struct {
		char *dst;
		const char *name, *suffix;
	} f[] = {
		{ out->ca, "ca", ".pem" },
		{ out->crl, "crl", ".pem" },
		{ out->cert, role, ".crt" },
		{ out->key, role, ".key" },
	};

	memset(out, 0, sizeof(*out));
	if (!role || (strcmp(role, "dispatcher") && strcmp(role, "relay")))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		int n = snprintf(f[i].dst, PATH_MAX, "%s/%s%s", certs_dir, f[i].name, f[i].suffix);

		if (n < 0 || n >= PATH_MAX) {
			memset(out, 0, sizeof(*out));
			return -ENAMETOOLONG;
		}
	}
	if (access(out->crl, F_OK) < 0 && errno == ENOENT)
		out->crl[0] = '\0';
	return 0;
}

static uint64_t stamp_file(uint64_t h, const char *path)
{
	struct stat st;
	uint64_t v[4] = { 0 };

	if (stat(path, &st) == 0) {
		v[0] = st.st_ino;
		v[1] = (uint64_t)st.st_size;
		v[2] = (uint64_t)st.st_mtim.tv_sec;
		v[3] = (uint64_t)st.st_mtim.tv_nsec;
	}
	for (size_t i = 0; i < sizeof(v); i++) {	/* FNV-1a over the bytes */
		h ^= ((const unsigned char *)v)[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t tls_files_stamp(const struct tls_files *files)
{
	char crl[PATH_MAX];
	uint64_t h = 0xcbf29ce484222325ULL;
	const char *slash = strrchr(files->ca, '/');

	h = stamp_file(h, files->ca);
	h = stamp_file(h, files->cert);
	h = stamp_file(h, files->key);
	if (files->crl[0])
		return stamp_file(h, files->crl);
	/* No CRL yet: watch for crl.pem appearing beside ca.pem. */
	if (slash && snprintf(crl, sizeof(crl), "%.*s/crl.pem", (int)(slash - files->ca),
			      files->ca) < (int)sizeof(crl))
		h = stamp_file(h, crl);
	return h;
}

static int check_readable(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) < 0 || access(path, R_OK) < 0) {
		set_err(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s %s is not a regular file", what, path);
		return -1;
	}
	return 0;
}

/* load_verify_locations() also takes a file holding only CRLs; that would
 * make every handshake fail later with a vaguer message. */
static bool store_has_cert(X509_STORE *store)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);

	for (int i = 0; i < sk_X509_OBJECT_num(objs); i++)
		if (X509_OBJECT_get_type(sk_X509_OBJECT_value(objs, i)) == X509_LU_X509)
			return true;
	return false;
}

/* Adds every CRL in path to store and turns on CRL checking for the whole
 * chain. A CRL file with no CRL in it is an error, not "no revocation". */
static int load_crls(X509_STORE *store, const char *path, char *err, size_t errlen)
{
	BIO *bio = BIO_new_file(path, "r");
	X509_CRL *crl;
	int count = 0;

	if (!bio) {
		set_err(err, errlen, "CRL file %s: %s", path, ssl_reason());
		return -1;
	}
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL))) {
		int ok = X509_STORE_add_crl(store, crl);

		X509_CRL_free(crl);
		if (!ok) {
			BIO_free(bio);
			set_err(err, errlen, "CRL file %s: %s", path, ssl_reason());
			return -1;
		}
		count++;
	}
	BIO_free(bio);
	/* Reading stops with a "no start line" error at the end of the file. */
	if (count == 0) {
		set_err(err, errlen, "CRL file %s: no CRL found (%s)", path, ssl_reason());
		return -1;
	}
	ERR_clear_error();
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return 0;
}

/* Encrypted keys are refused rather than prompting on the terminal (a
 * daemon has none); u notes that a passphrase was wanted. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag;
	if (u)
		*(bool *)u = true;
	return -1;
}

static int load_identity(SSL_CTX *ctx, const struct tls_files *f, char *err, size_t errlen)
{
	bool wanted_password = false;
	int rc;

	SSL_CTX_set_default_passwd_cb(ctx, no_password);
	if (SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1) {
		set_err(err, errlen, "certificate file %s: %s", f->cert, ssl_reason());
		return -1;
	}
	SSL_CTX_set_default_passwd_cb_userdata(ctx, &wanted_password);
	rc = SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	if (rc != 1) {
		/* Loading already compares the key with the certificate. */
		if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
			ERR_clear_error();
			set_err(err, errlen, "private key file %s does not match certificate %s",
				f->key, f->cert);
		} else if (wanted_password) {
			ERR_clear_error();
			set_err(err, errlen,
				"private key file %s is encrypted; a daemon cannot ask for the passphrase",
				f->key);
		} else {
			set_err(err, errlen, "private key file %s: %s", f->key, ssl_reason());
		}
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		set_err(err, errlen, "private key file %s does not match certificate %s (%s)",
			f->key, f->cert, ssl_reason());
		return -1;
	}
	return 0;
}

static int load_trust(SSL_CTX *ctx, const struct tls_files *f, bool server, char *err,
		      size_t errlen)
{
	if (SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1) {
		set_err(err, errlen, "CA file %s: %s", f->ca, ssl_reason());
		return -1;
	}
	if (!store_has_cert(SSL_CTX_get_cert_store(ctx))) {
		set_err(err, errlen, "CA file %s: no certificate found", f->ca);
		return -1;
	}
	if (server) {
		/* Tells clients which CA we accept, so one holding several
		 * certificates can pick the right one. */
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(f->ca);

		if (!names) {
			set_err(err, errlen, "CA file %s: %s", f->ca, ssl_reason());
			return -1;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (f->crl[0] && load_crls(SSL_CTX_get_cert_store(ctx), f->crl, err, errlen) < 0)
		return -1;
	return 0;
}

/* Every connection must be checked against the files as they are now, and
 * links are long-lived, so resumption buys nothing: turn it off entirely
 * (cache, TLS 1.2 tickets and TLS 1.3 tickets). Renegotiation could swap
 * the peer certificate after tls_verify_peer(), so refuse it too. */
static void set_policy(SSL_CTX *ctx, bool server)
{
	static const unsigned char sid_ctx[] = "mediaproxy";

	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   NULL);
}

SSL_CTX *tls_context_new(const struct tls_files *files, bool server, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if (check_readable("CA file", files->ca, err, errlen) < 0 ||
	    (files->crl[0] && check_readable("CRL file", files->crl, err, errlen) < 0) ||
	    check_readable("certificate file", files->cert, err, errlen) < 0 ||
	    check_readable("private key file", files->key, err, errlen) < 0)
		return NULL;

	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!ctx) {
		set_err(err, errlen, "SSL_CTX_new: %s", ssl_reason());
		return NULL;
	}
	set_policy(ctx, server);
	if (load_identity(ctx, files, err, errlen) < 0 ||
	    load_trust(ctx, files, server, err, errlen) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void tls_subject_name(X509 *cert, char *buf, size_t len)
{
	if (!len)
		return;
	if (!cert || !X509_NAME_oneline(X509_get_subject_name(cert), buf, (int)len))
		snprintf(buf, len, "(no certificate)");
}

static int attr_from_nid(int nid)
{
	for (int i = 0; i < PASSPORT_ATTR_COUNT; i++)
		if (attr_nids[i] == nid)
			return i;
	return -1;
}

bool tls_passport_match(const struct passport *p, X509 *cert)
{
	struct passport_field fields[TLS_MAX_SUBJECT_FIELDS];
	unsigned char *utf8[TLS_MAX_SUBJECT_FIELDS];
	X509_NAME *name;
	size_t n = 0;
	bool ok;

	if (!p || p->n == 0)
		return true;
	if (!cert || !(name = X509_get_subject_name(cert)))
		return false;
	for (int i = 0; i < X509_NAME_entry_count(name) && n < TLS_MAX_SUBJECT_FIELDS; i++) {
		X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
		int attr = attr_from_nid(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)));
		int len;

		if (attr < 0)
			continue;
		/* Compare in UTF-8 whatever the ASN.1 string type is. */
		len = ASN1_STRING_to_UTF8(&utf8[n], X509_NAME_ENTRY_get_data(e));
		if (len < 0)
			continue;
		fields[n] = (struct passport_field){ attr, (const char *)utf8[n], (size_t)len };
		n++;
	}
	ok = passport_match(p, fields, n);
	for (size_t i = 0; i < n; i++)
		OPENSSL_free(utf8[i]);
	ERR_clear_error();
	return ok;
}

int tls_verify_peer(SSL *ssl, const struct passport *p, char *err, size_t errlen)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	char subject[256], spec[512];
	long vr;

	if (!cert) {
		set_err(err, errlen, "peer sent no certificate");
		return -EPERM;
	}
	tls_subject_name(cert, subject, sizeof(subject));
	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		set_err(err, errlen, "certificate %s rejected: %s", subject,
			X509_verify_cert_error_string(vr));
		return -EPERM;
	}
	if (!tls_passport_match(p, cert)) {
		passport_format(p, spec, sizeof(spec));
		set_err(err, errlen, "certificate %s does not match passport \"%s\"", subject, spec);
		return -EPERM;
	}
	return 0;
}

int tls_reverify_peer(SSL_CTX *ctx, SSL *ssl, char *err, size_t errlen)
{
	X509 *cert = SSL_get0_peer_certificate(ssl);
	X509_STORE_CTX *sc;
	char subject[256];
	int rc = -EPERM;

	if (!cert) {
		set_err(err, errlen, "peer sent no certificate");
		return -EPERM;
	}
	tls_subject_name(cert, subject, sizeof(subject));
	sc = X509_STORE_CTX_new();
	if (!sc || !X509_STORE_CTX_init(sc, SSL_CTX_get_cert_store(ctx), cert,
					 SSL_get_peer_cert_chain(ssl))) {
		set_err(err, errlen, "re-verify %s: %s", subject, ssl_reason());
		X509_STORE_CTX_free(sc);
		return -ENOMEM;
	}
	/* The same purpose check the handshake applied to this peer. */
	X509_STORE_CTX_set_default(sc, SSL_is_server(ssl) ? "ssl_client" : "ssl_server");
	if (X509_verify_cert(sc) == 1)
		rc = 0;
	else
		set_err(err, errlen, "certificate %s no longer valid: %s", subject,
			X509_verify_cert_error_string(X509_STORE_CTX_get_error(sc)));
	X509_STORE_CTX_free(sc);
	ERR_clear_error();
	return rc;
}
