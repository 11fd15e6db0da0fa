/* Mutual TLS between a dispatcher context and relay/management contexts,
 * with real handshakes over a socketpair, using certificates that
 * tls/make-certs.sh makes in a temporary directory: passport accepted and
 * refused, a certificate from another CA, a revoked certificate (at the
 * handshake and by a later re-verification), missing and mismatched files.
 * Run from the repository root (the test runner does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>

#include "passport.h"
#include "tls.h"

#include "test_shell.h"

#define MAKE_CERTS "tls/make-certs.sh"
/* Commands run quietly; their output is shown only when they fail. */
#define sh(...) test_shell_run(tmpdir, __VA_ARGS__)

static char tmpdir[] = "/tmp/mp-test-tls.XXXXXX";
static char dir_a[256];	/* CA "a": the one both daemons trust */
static char dir_b[256];	/* CA "b": another CA, no crl.pem */

static int group_teardown(void **state)
{
	(void)state;
	test_shell_rm_tree(tmpdir);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(dir_a, sizeof(dir_a), "%s/a", tmpdir);
	snprintf(dir_b, sizeof(dir_b), "%s/b", tmpdir);
	if (access(MAKE_CERTS, X_OK)) {
		fprintf(stderr, "# %s not found: run from the repository root\n", MAKE_CERTS);
		goto fail;
	}
	if (sh(MAKE_CERTS " %s --days 2", dir_a) ||
	    sh(MAKE_CERTS " %s --cert relay2", dir_a) ||
	    sh(MAKE_CERTS " %s --revoke relay2", dir_a) ||
	    sh(MAKE_CERTS " %s --cert wild --subj '/C=NL/O=AG Projects/OU=Relays/CN=relay5.example.com'",
	       dir_a) ||
	    sh("openssl pkey -in %s/relay.key -aes256 -passout pass:secret -out %s/encrypted.key",
	       dir_a, dir_a) ||
	    sh(MAKE_CERTS " %s --days 2", dir_b) ||
	    sh("rm %s/crl.pem", dir_b))
		goto fail;
	return 0;
fail:
	group_teardown(state);
	return -1;
}

/* Files of dir/role.{crt,key} trusting dir_a's CA and CRL. */
static void files_for(struct tls_files *f, const char *dir, const char *name)
{
	assert_int_equal(tls_files_from_dir(f, dir_a, "relay"), 0);
	snprintf(f->cert, sizeof(f->cert), "%s/%s.crt", dir, name);
	snprintf(f->key, sizeof(f->key), "%s/%s.key", dir, name);
}

static SSL_CTX *ctx_or_fail(const struct tls_files *f, bool server)
{
	char err[512] = "";
	SSL_CTX *ctx = tls_context_new(f, server, err, sizeof(err));

	if (!ctx)
		fail_msg("tls_context_new: %s", err);
	return ctx;
}

static SSL_CTX *dispatcher_ctx(void)
{
	struct tls_files f;

	assert_int_equal(tls_files_from_dir(&f, dir_a, "dispatcher"), 0);
	assert_true(f.crl[0]);
	return ctx_or_fail(&f, true);
}

struct link {
	SSL *server, *client;
	int fds[2];
	bool server_done, client_done;
	bool failed;
};

/* Steps one side; returns 1 when it has finished, 0 to go on, -1 on error. */
static int step(SSL *ssl, bool *done)
{
	int rc, e;

	if (*done)
		return 1;
	rc = SSL_do_handshake(ssl);
	if (rc == 1) {
		*done = true;
		return 1;
	}
	e = SSL_get_error(ssl, rc);
	return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Runs a handshake between the two contexts over a non-blocking
 * socketpair, both ends in this thread. Returns 0 when both ends finished. */
static int link_open(struct link *l, SSL_CTX *server, SSL_CTX *client)
{
	memset(l, 0, sizeof(*l));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, l->fds), 0);
	l->server = SSL_new(server);
	l->client = SSL_new(client);
	assert_non_null(l->server);
	assert_non_null(l->client);
	SSL_set_fd(l->server, l->fds[0]);
	SSL_set_fd(l->client, l->fds[1]);
	SSL_set_accept_state(l->server);
	SSL_set_connect_state(l->client);
	for (int i = 0; i < 100; i++) {
		int c = step(l->client, &l->client_done);
		int s = step(l->server, &l->server_done);

		if (c < 0 || s < 0) {
			l->failed = true;
			ERR_clear_error();
			return -1;
		}
		if (c == 1 && s == 1)
			return 0;
	}
	l->failed = true;
	return -1;
}

static void link_close(struct link *l)
{
	SSL_free(l->server);
	SSL_free(l->client);
	close(l->fds[0]);
	close(l->fds[1]);
	ERR_clear_error();
}

static struct passport passport_of(const char *spec)
{
	struct passport p;
	char err[256];

	if (passport_parse(spec, &p, err, sizeof(err)))
		fail_msg("passport \"%s\": %s", spec, err);
	return p;
}

/* Data goes both ways once the link is up. */
static void exchange(struct link *l)
{
	char buf[16];

	assert_int_equal(SSL_write(l->client, "ping\r\n", 6), 6);
	assert_int_equal(SSL_read(l->server, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "ping\r\n", 6);
	assert_int_equal(SSL_write(l->server, "pong\r\n", 6), 6);
	assert_int_equal(SSL_read(l->client, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "pong\r\n", 6);
}

static void test_relay_link_with_passports(void **state)
{
	struct passport relays = passport_of("O:MediaProxy Test, CN:relay*");
	struct passport dispatchers = passport_of("CN:dispatcher");
	SSL_CTX *sctx = dispatcher_ctx(), *cctx;
	struct tls_files f;
	struct link l;
	char err[512];

	(void)state;
	assert_int_equal(tls_files_from_dir(&f, dir_a, "relay"), 0);
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, sctx, cctx), 0);
	assert_true(SSL_version(l.server) >= TLS1_2_VERSION);
	if (tls_verify_peer(l.server, &relays, err, sizeof(err)))
		fail_msg("dispatcher side: %s", err);
	if (tls_verify_peer(l.client, &dispatchers, err, sizeof(err)))
		fail_msg("relay side: %s", err);
	assert_int_equal(tls_verify_peer(l.server, NULL, err, sizeof(err)), 0);
	/* The CRL is in force and the relay has not been revoked. */
	assert_int_equal(tls_reverify_peer(sctx, l.server, err, sizeof(err)), 0);
	assert_int_equal(tls_reverify_peer(cctx, l.client, err, sizeof(err)), 0);
	exchange(&l);
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_passport_mismatch(void **state)
{
	struct passport p = passport_of("O:MediaProxy Test, CN:dispatcher");
	SSL_CTX *sctx = dispatcher_ctx(), *cctx;
	struct tls_files f;
	struct link l;
	char err[512] = "";

	(void)state;
	files_for(&f, dir_a, "relay");
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, sctx, cctx), 0);
	assert_int_equal(tls_verify_peer(l.server, &p, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "does not match passport"));
	assert_non_null(strstr(err, "CN=relay"));
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

/* Subject C=NL/O=AG Projects/OU=Relays/CN=relay5.example.com. */
static void test_passport_on_full_subject(void **state)
{
	static const struct {
		const char *spec;
		bool want;
	} cases[] = {
		{ "O:AG Projects, CN:*.example.com", true },
		{ "C:NL, OU:Relays, CN:relay*", true },
		{ "OU:Relays, CN:*.example.org", false },
		{ "L:Amsterdam", false },
	};
	SSL_CTX *sctx = dispatcher_ctx(), *cctx;
	struct tls_files f;
	struct link l;
	char err[512] = "";

	(void)state;
	files_for(&f, dir_a, "wild");
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, sctx, cctx), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct passport p = passport_of(cases[i].spec);
		int rc = tls_verify_peer(l.server, &p, err, sizeof(err));

		if ((rc == 0) != cases[i].want)
			fail_msg("\"%s\": rc %d (%s)", cases[i].spec, rc, err);
	}
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_client_from_other_ca(void **state)
{
	SSL_CTX *sctx = dispatcher_ctx(), *cctx;
	struct tls_files f;
	struct link l;
	char err[512] = "";

	(void)state;
	files_for(&f, dir_b, "relay");	/* trusts a, presents b's cert */
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, sctx, cctx), -1);
	assert_false(l.server_done);
	assert_int_not_equal(SSL_get_verify_result(l.server), X509_V_OK);
	assert_int_equal(tls_verify_peer(l.server, NULL, err, sizeof(err)), -EPERM);
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static int accept_anything(int ok, X509_STORE_CTX *sc)
{
	(void)ok; (void)sc;
	return 1;
}

/* Even if a verify callback let a bad chain through the handshake (as a
 * careless caller might), tls_verify_peer() still refuses it. */
static void test_verify_result_checked_after_handshake(void **state)
{
	SSL_CTX *sctx = dispatcher_ctx(), *cctx;
	struct tls_files f;
	struct link l;
	char err[512] = "";

	(void)state;
	SSL_CTX_set_verify(sctx, SSL_CTX_get_verify_mode(sctx), accept_anything);
	files_for(&f, dir_b, "relay");
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, sctx, cctx), 0);
	assert_int_equal(tls_verify_peer(l.server, NULL, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "rejected"));
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_server_from_other_ca(void **state)
{
	SSL_CTX *sctx, *cctx;
	struct tls_files f;
	struct link l;

	(void)state;
	files_for(&f, dir_b, "dispatcher");
	sctx = ctx_or_fail(&f, true);
	files_for(&f, dir_a, "relay");
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, sctx, cctx), -1);
	assert_false(l.client_done);
	assert_int_not_equal(SSL_get_verify_result(l.client), X509_V_OK);
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_revoked_client(void **state)
{
	SSL_CTX *sctx = dispatcher_ctx(), *cctx;
	struct tls_files f;
	struct link l;

	(void)state;
	files_for(&f, dir_a, "relay2");
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, sctx, cctx), -1);
	assert_int_equal(SSL_get_verify_result(l.server), X509_V_ERR_CERT_REVOKED);
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

/* A dispatcher started before the CRL existed accepts relay2; once the
 * CRL is there, re-verifying the open link against a context rebuilt
 * from the files rejects it (upstream's verify_interval check). */
static void test_revoked_later(void **state)
{
	SSL_CTX *old_ctx, *new_ctx, *cctx;
	struct tls_files f;
	struct link l;
	char err[512] = "";

	(void)state;
	assert_int_equal(tls_files_from_dir(&f, dir_a, "dispatcher"), 0);
	f.crl[0] = '\0';
	old_ctx = ctx_or_fail(&f, true);
	files_for(&f, dir_a, "relay2");
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, old_ctx, cctx), 0);
	assert_int_equal(tls_verify_peer(l.server, NULL, err, sizeof(err)), 0);
	assert_int_equal(tls_reverify_peer(old_ctx, l.server, err, sizeof(err)), 0);

	new_ctx = dispatcher_ctx();
	assert_int_equal(tls_reverify_peer(new_ctx, l.server, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "revoked"));
	assert_non_null(strstr(err, "CN=relay2"));
	SSL_CTX_free(old_ctx);	/* the link holds its own reference */
	exchange(&l);
	link_close(&l);
	SSL_CTX_free(new_ctx);
	SSL_CTX_free(cctx);
}

/* management_use_tls: a client must present a certificate. */
static void test_client_without_certificate(void **state)
{
	SSL_CTX *sctx = dispatcher_ctx(), *cctx;
	char ca[PATH_MAX + 8];
	struct link l;

	(void)state;
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir_a);
	cctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cctx);
	assert_int_equal(SSL_CTX_load_verify_locations(cctx, ca, NULL), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	assert_int_equal(link_open(&l, sctx, cctx), -1);
	assert_false(l.server_done);
	assert_null(SSL_get0_peer_certificate(l.server));
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_management_client(void **state)
{
	struct passport p = passport_of("CN:management*");
	SSL_CTX *sctx = dispatcher_ctx(), *cctx;
	struct tls_files f;
	struct link l;
	char err[512] = "";

	(void)state;
	files_for(&f, dir_a, "client");
	cctx = ctx_or_fail(&f, false);
	assert_int_equal(link_open(&l, sctx, cctx), 0);
	if (tls_verify_peer(l.server, &p, err, sizeof(err)))
		fail_msg("%s", err);
	exchange(&l);
	link_close(&l);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void test_min_version(void **state)
{
	SSL_CTX *sctx = dispatcher_ctx();

	(void)state;
	assert_int_equal(SSL_CTX_get_min_proto_version(sctx), TLS1_2_VERSION);
	assert_true(SSL_CTX_get_verify_mode(sctx) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
	SSL_CTX_free(sctx);
}

static void expect_ctx_error(const struct tls_files *f, const char *want1, const char *want2)
{
	char err[1024] = "";
	SSL_CTX *ctx = tls_context_new(f, true, err, sizeof(err));

	if (ctx) {
		SSL_CTX_free(ctx);
		fail_msg("context built, want an error naming %s", want1);
	}
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("error \"%s\" lacks \"%s\" / \"%s\"", err, want1, want2 ? want2 : "");
}

static void test_file_errors(void **state)
{
	struct tls_files f;
	char path[PATH_MAX + 16];
	FILE *fp;

	(void)state;
	snprintf(path, sizeof(path), "%s/empty", tmpdir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(tls_files_from_dir(&f, path, "relay"), 0);
	assert_string_equal(f.crl, "");
	expect_ctx_error(&f, f.ca, "No such file");

	files_for(&f, dir_a, "relay");
	snprintf(f.key, sizeof(f.key), "%s/missing.key", dir_a);
	expect_ctx_error(&f, "missing.key", "No such file");

	files_for(&f, dir_a, "relay");
	snprintf(f.key, sizeof(f.key), "%s/dispatcher.key", dir_a);
	expect_ctx_error(&f, "does not match", "relay.crt");

	files_for(&f, dir_a, "relay");
	snprintf(f.cert, sizeof(f.cert), "%s/ca.key", dir_a);
	expect_ctx_error(&f, "certificate file", "ca.key");

	files_for(&f, dir_a, "relay");
	snprintf(f.crl, sizeof(f.crl), "%s/bad-crl.pem", tmpdir);
	fp = fopen(f.crl, "w");
	assert_non_null(fp);
	fputs("not a CRL\n", fp);
	fclose(fp);
	expect_ctx_error(&f, "bad-crl.pem", "no CRL");

	files_for(&f, dir_a, "relay");
	snprintf(f.ca, sizeof(f.ca), "%s/bad-crl.pem", tmpdir);
	expect_ctx_error(&f, "CA file", "bad-crl.pem");

	/* A CRL given as the CA would make every handshake fail later. */
	files_for(&f, dir_a, "relay");
	snprintf(f.ca, sizeof(f.ca), "%s/crl.pem", dir_a);
	expect_ctx_error(&f, "no certificate found", "crl.pem");

	/* No terminal prompt for a passphrase: a clear refusal. */
	files_for(&f, dir_a, "relay");
	snprintf(f.key, sizeof(f.key), "%s/encrypted.key", dir_a);
	expect_ctx_error(&f, "encrypted", "encrypted.key");

	files_for(&f, dir_a, "relay");
	snprintf(f.key, sizeof(f.key), "%s", dir_a);
	expect_ctx_error(&f, "not a regular file", dir_a);
}

static void test_files_from_dir(void **state)
{
	struct tls_files f;
	char path[PATH_MAX + 16], longdir[PATH_MAX + 1];

	(void)state;
	assert_int_equal(tls_files_from_dir(&f, dir_a, "dispatcher"), 0);
	snprintf(path, sizeof(path), "%s/ca.pem", dir_a);
	assert_string_equal(f.ca, path);
	snprintf(path, sizeof(path), "%s/crl.pem", dir_a);
	assert_string_equal(f.crl, path);
	snprintf(path, sizeof(path), "%s/dispatcher.crt", dir_a);
	assert_string_equal(f.cert, path);
	snprintf(path, sizeof(path), "%s/dispatcher.key", dir_a);
	assert_string_equal(f.key, path);

	assert_int_equal(tls_files_from_dir(&f, dir_b, "relay"), 0);
	assert_string_equal(f.crl, "");	/* b has no crl.pem */
	assert_int_equal(tls_files_from_dir(&f, dir_a, "client"), -EINVAL);
	memset(longdir, 'x', PATH_MAX - 4);
	longdir[PATH_MAX - 4] = '\0';
	assert_int_equal(tls_files_from_dir(&f, longdir, "relay"), -ENAMETOOLONG);
}

/* The stamp moves when a file is rewritten or a CRL appears. */
static void test_files_stamp(void **state)
{
	struct tls_files f;
	uint64_t s1, s2;

	(void)state;
	assert_int_equal(tls_files_from_dir(&f, dir_b, "relay"), 0);
	s1 = tls_files_stamp(&f);
	assert_true(s1 == tls_files_stamp(&f));
	assert_int_equal(sh("cp %s/crl.pem %s/crl.pem", dir_a, dir_b), 0);
	s2 = tls_files_stamp(&f);
	assert_true(s1 != s2);
	assert_int_equal(sh("rm %s/crl.pem", dir_b), 0);

	assert_int_equal(tls_files_from_dir(&f, dir_a, "relay"), 0);
	s1 = tls_files_stamp(&f);
	assert_int_equal(sh(MAKE_CERTS " %s --revoke relay2", dir_a), 0);	/* rewrites crl.pem */
	assert_true(s1 != tls_files_stamp(&f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relay_link_with_passports),
		cmocka_unit_test(test_passport_mismatch),
		cmocka_unit_test(test_passport_on_full_subject),
		cmocka_unit_test(test_client_from_other_ca),
		cmocka_unit_test(test_verify_result_checked_after_handshake),
		cmocka_unit_test(test_server_from_other_ca),
		cmocka_unit_test(test_revoked_client),
		cmocka_unit_test(test_revoked_later),
		cmocka_unit_test(test_client_without_certificate),
		cmocka_unit_test(test_management_client),
		cmocka_unit_test(test_min_version),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_files_from_dir),
		cmocka_unit_test(test_files_stamp),
	};

	return cmocka_run_group_tests_name("tls", tests, group_setup, group_teardown);
}
