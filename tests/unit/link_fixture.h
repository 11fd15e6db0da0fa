/* Harness for test_relay_link.c: certificates from tls/make-certs.sh in a
 * temporary directory, one event loop shared by both ends of the link, the
 * log captured to a file while the loop runs (so tests can check what each
 * side said), and hand-made TLS peers that send whatever a test wants.
 * Run from the repository root (the test runner does). */
#ifndef TEST_LINK_FIXTURE_H
#define TEST_LINK_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "linkio.h"
#include "log.h"
#include "passport.h"
#include "tls.h"

#include "test_shell.h"

#define MAKE_CERTS "tls/make-certs.sh"
/* Commands run quietly; their output is shown only when they fail. */
#define sh(...) test_shell_run(tmpdir, __VA_ARGS__)

static char tmpdir[] = "/tmp/mp-test-link.XXXXXX";
static char dir_a[256];	/* CA "a": what both daemons trust */
static char dir_b[256];	/* CA "b": a stranger */
static char log_path[300];
static int log_fd = -1, saved_stderr = -1;
static off_t log_mark;	/* start of the current test's log */
static struct event_base *base;
static struct event *tick;

/* --- shell, temp dir --------------------------------------------------- */

static void remove_tmpdir(void)
{
	test_shell_rm_tree(tmpdir);
}

/* --- log capture --------------------------------------------------------- */

/* The daemons' code logs to stderr; while the loop runs, that is our file. */
static void capture_on(void)
{
	fflush(stderr);
	dup2(log_fd, STDERR_FILENO);
}

static void capture_off(void)
{
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
}

/* This test's log so far, NUL-terminated; caller frees. */
static char *log_text(void)
{
	off_t end = lseek(log_fd, 0, SEEK_END);
	size_t len = end > log_mark ? (size_t)(end - log_mark) : 0;
	char *buf = calloc(1, len + 1);
	ssize_t got;

	assert_non_null(buf);
	got = pread(log_fd, buf, len, log_mark);
	buf[got > 0 ? got : 0] = '\0';
	return buf;
}

static int log_count(const char *needle)
{
	char *text = log_text(), *p = text;
	int n = 0;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	free(text);
	return n;
}

static bool log_has(const char *needle)
{
	return log_count(needle) > 0;
}

static void dump_log(void)
{
	char *text = log_text(), *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "#   %s\n", line);
	free(text);
}

#define expect_log(needle)                                                   \
	do {                                                                 \
		if (!log_has(needle)) {                                      \
			dump_log();                                          \
			fail_msg("log lacks \"%s\"", (needle));              \
		}                                                            \
	} while (0)

/* --- the loop ------------------------------------------------------------ */

static double now_s(void)
{
	return linkio_now();
}

/* Runs the loop until cond holds or secs pass; fails the test on timeout. */
#define WAIT(cond, secs)                                                     \
	do {                                                                 \
		double end_ = now_s() + (secs);                              \
		capture_on();                                                \
		while (!(cond) && now_s() < end_)                            \
			event_base_loop(base, EVLOOP_ONCE);                  \
		capture_off();                                               \
		if (!(cond)) {                                               \
			dump_log();                                          \
			fail_msg("timed out after %.1f s waiting for %s",    \
				 (double)(secs), #cond);                     \
		}                                                            \
	} while (0)

static void run_for(double secs)
{
	double end = now_s() + secs;

	capture_on();
	while (now_s() < end)
		event_base_loop(base, EVLOOP_ONCE);
	capture_off();
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
}

/* --- certificates and contexts -------------------------------------------- */

static SSL_CTX *ctx_from(const char *dir, const char *name, const char *ca_dir, bool server)
{
	struct tls_files f;
	char err[512] = "";
	SSL_CTX *ctx;

	assert_int_equal(tls_files_from_dir(&f, ca_dir, "relay"), 0);
	snprintf(f.cert, sizeof(f.cert), "%s/%s.crt", dir, name);
	snprintf(f.key, sizeof(f.key), "%s/%s.key", dir, name);
	ctx = tls_context_new(&f, server, err, sizeof(err));
	if (!ctx)
		fail_msg("tls_context_new: %s", err);
	return ctx;
}

/* A client that trusts CA a but has no certificate of its own. */
static SSL_CTX *ctx_without_cert(void)
{
	char ca[300];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir_a);
	assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

static struct passport passport_of(const char *spec)
{
	struct passport p;
	char err[256];

	if (passport_parse(spec, &p, err, sizeof(err)))
		fail_msg("passport \"%s\": %s", spec, err);
	return p;
}

/* A TCP port nobody listens on right now. */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* --- hand-made TLS peers ------------------------------------------------------ */

/* One end of a TLS connection driven by the test: it records every line it
 * receives and sends what the test writes. */
struct peer {
	struct bufferevent *bev;
	bool up, closed;
	int pings;
	char lines[64][256];	/* the last lines received (ring) */
	int n_lines;
	bool answer_pings;
};

static void peer_read_cb(struct bufferevent *bev, void *arg)
{
	struct peer *p = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF))) {
		if (!strcmp(line, "ping")) {
			p->pings++;
			if (p->answer_pings)
				bufferevent_write(bev, "pong\r\n", 6);
		}
		snprintf(p->lines[p->n_lines % 64], sizeof(p->lines[0]), "%s", line);
		p->n_lines++;
		free(line);
	}
}

static void peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct peer *p = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		p->up = true;
		return;
	}
	p->closed = true;
	p->up = false;
}

static bool peer_got(const struct peer *p, const char *prefix)
{
	int first = p->n_lines > 64 ? p->n_lines - 64 : 0;

	for (int i = first; i < p->n_lines; i++)
		if (!strncmp(p->lines[i % 64], prefix, strlen(prefix)))
			return true;
	return false;
}

static void peer_start(struct peer *p, int fd, SSL_CTX *ctx, bool server)
{
	p->bev = linkio_bev_new(base, fd, ctx, server);
	assert_non_null(p->bev);
	bufferevent_setcb(p->bev, peer_read_cb, NULL, peer_event_cb, p);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
}

static void peer_free(struct peer *p)
{
	if (p->bev)
		bufferevent_free(p->bev);
	p->bev = NULL;
}

/* A client from `from` to 127.0.0.1:port (loopback connects at once). */
static void peer_connect(struct peer *p, const char *from, uint16_t port, SSL_CTX *ctx)
{
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	inet_pton(AF_INET, from, &src.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	dst.sin_port = htons(port);
	assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&dst, sizeof(dst)), 0);
	evutil_make_socket_nonblocking(fd);
	memset(p, 0, sizeof(*p));
	peer_start(p, fd, ctx, false);
}

/* A server on 127.0.0.1:port that accepts one connection at a time into
 * peer (replacing the previous one) and counts them. */
struct fake_server {
	struct evconnlistener *listener;
	SSL_CTX *ctx;
	struct peer peer;
	int accepted;
	bool answer_pings;
};

static void fake_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			   int salen, void *arg)
{
	struct fake_server *s = arg;

	(void)l; (void)sa; (void)salen;
	peer_free(&s->peer);
	memset(&s->peer, 0, sizeof(s->peer));
	s->peer.answer_pings = s->answer_pings;
	peer_start(&s->peer, fd, s->ctx, true);
	s->accepted++;
}

static void fake_server_open(struct fake_server *s, uint16_t port, SSL_CTX *ctx)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	memset(s, 0, sizeof(*s));
	s->ctx = ctx;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	s->listener = evconnlistener_new_bind(base, fake_accept_cb, s,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
					      (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(s->listener);
}

static void fake_server_close(struct fake_server *s)
{
	peer_free(&s->peer);
	if (s->listener)
		evconnlistener_free(s->listener);
	s->listener = NULL;
}

/* --- group set-up ------------------------------------------------------------ */

static int fixture_teardown(void **state)
{
	(void)state;
	if (log_fd >= 0)
		close(log_fd);
	if (saved_stderr >= 0)
		close(saved_stderr);
	remove_tmpdir();
	return 0;
}

static int fixture_setup(void **state)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(dir_a, sizeof(dir_a), "%s/a", tmpdir);
	snprintf(dir_b, sizeof(dir_b), "%s/b", tmpdir);
	snprintf(log_path, sizeof(log_path), "%s/daemons.log", tmpdir);
	if (access(MAKE_CERTS, X_OK)) {
		fprintf(stderr, "# %s not found: run from the repository root\n", MAKE_CERTS);
		goto fail;
	}
	if (sh(MAKE_CERTS " %s --days 2", dir_a) ||
	    sh(MAKE_CERTS " %s --cert revoked", dir_a) ||
	    sh(MAKE_CERTS " %s --revoke revoked", dir_a) ||
	    sh(MAKE_CERTS " %s --days 2", dir_b))
		goto fail;
	log_fd = open(log_path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	saved_stderr = dup(STDERR_FILENO);
	if (log_fd < 0 || saved_stderr < 0)
		goto fail;
	log_init("test", LOG_LEVEL_DEBUG, false);
	return 0;
fail:
	fixture_teardown(state);
	return -1;
}

/* Per test: a fresh loop with a 10 ms tick, so WAIT re-checks often. */
static void loop_setup(void)
{
	struct timeval tv = { 0, 10000 };

	log_mark = lseek(log_fd, 0, SEEK_END);
	base = event_base_new();
	assert_non_null(base);
	tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(tick, &tv);
}

/* MP_TEST_SHOW_LOG=1 prints each test's log (as TAP comments). */
static void loop_teardown(void)
{
	/* Let closed connections' deferred callbacks run out. */
	run_for(0.02);
	if (getenv("MP_TEST_SHOW_LOG"))
		dump_log();
	event_free(tick);
	event_base_free(base);
	base = NULL;
	ERR_clear_error();
}

#endif
