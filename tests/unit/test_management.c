/* dispatcherd/management.c on loopback, over plain TCP and mutual TLS (with
 * certificates from tls/make-certs.sh), against a fake relay layer defined
 * here: the relay_link.h functions management.c calls are implemented in
 * this file, so libdispatcher.a's relay_link.o is never linked in. Relays
 * answer, time out, answer `error`, answer garbage or never answer.
 * The dispatcher's event loop runs in a second thread; the test thread is a
 * blocking management client. Run from the repository root. */
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
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>

#include "log.h"
#include "management.h"
#include "management_cmd.h"
#include "relay_link.h"
#include "tls.h"

#include "test_shell.h"

#define MAKE_CERTS "tls/make-certs.sh"
#define WAIT_MS 5000 /* longest any step may take */

/* --- the fake relay layer ---------------------------------------------- */

enum fake_mode {
	FAKE_ANSWER,  /* the payload, after delay_ms */
	FAKE_TIMEOUT, /* -ETIMEDOUT, as the real deadline would, after 30 ms */
	FAKE_ERROR,   /* the relay's `error` */
	FAKE_GARBAGE, /* a payload that is not the JSON asked for */
	FAKE_HANG,    /* no answer until cancelled */
	FAKE_REFUSE,  /* relay_request_send() fails at once */
	FAKE_SYNC,    /* the payload, from inside relay_request_send() */
};

struct relay {
	struct relay *next;
	const char *ip;
	enum fake_mode summary_mode, sessions_mode;
	const char *summary, *sessions;
	int delay_ms;
};

struct relay_links {
	struct event_base *base;
	struct relay *first;
};

struct relay_request {
	relay_reply_fn reply;
	void *ctx;
	struct event *timer;
	int status;
	char *payload;
};

static struct relay_links fake_links;
static atomic_int fake_sent, fake_cancelled, fake_live;
static atomic_int fake_misuse; /* cmocka cannot fail from the loop thread */
static _Atomic double fake_timeout_s;

struct relay *relay_links_first(struct relay_links *links)
{
	return links->first;
}

struct relay *relay_links_next(struct relay *relay)
{
	return relay->next;
}

const char *relay_ip(const struct relay *relay)
{
	return relay->ip;
}

static void fake_request_free(struct relay_request *req)
{
	event_free(req->timer);
	free(req->payload);
	free(req);
	atomic_fetch_sub(&fake_live, 1);
}

static void fake_fire(evutil_socket_t fd, short what, void *arg)
{
	struct relay_request *req = arg;

	(void)fd;
	(void)what;
	req->reply(req->ctx, req->status, req->payload, req->payload ? strlen(req->payload) : 0);
	fake_request_free(req);
}

struct relay_request *relay_request_send(struct relay *relay, const char *command,
					 const char *header_block, size_t len,
					 double timeout_s, relay_reply_fn reply, void *ctx)
{
	bool summary = !strcmp(command, "summary");
	enum fake_mode mode = summary ? relay->summary_mode : relay->sessions_mode;
	struct relay_request *req;
	struct timeval tv = { 0, relay->delay_ms * 1000 };

	if ((!summary && strcmp(command, "sessions")) || len || strcmp(header_block, ""))
		atomic_store(&fake_misuse, 1);
	fake_timeout_s = timeout_s;
	if (mode == FAKE_REFUSE) {
		errno = ENOTCONN;
		return NULL;
	}
	if (mode == FAKE_SYNC) {
		static struct relay_request answered; /* never to be cancelled */
		const char *payload = summary ? relay->summary : relay->sessions;

		atomic_fetch_add(&fake_sent, 1);
		reply(ctx, 0, payload, strlen(payload));
		return &answered;
	}
	req = calloc(1, sizeof(*req));
	if (!req)
		abort();
	req->reply = reply;
	req->ctx = ctx;
	req->timer = evtimer_new(fake_links.base, fake_fire, req);
	switch (mode) {
	case FAKE_ANSWER:
		req->payload = strdup(summary ? relay->summary : relay->sessions);
		break;
	case FAKE_TIMEOUT:
		req->status = -ETIMEDOUT;
		tv.tv_usec = 30000;
		break;
	case FAKE_ERROR:
		req->payload = strdup("error");
		break;
	case FAKE_GARBAGE:
		req->payload = strdup(summary ? "[1, 2]" : "{\"not\": \"a list\"}");
		break;
	default:
		break;
	}
	if (mode != FAKE_HANG)
		evtimer_add(req->timer, &tv);
	atomic_fetch_add(&fake_sent, 1);
	atomic_fetch_add(&fake_live, 1);
	return req;
}

void relay_request_cancel(struct relay_request *req)
{
	if (!req->timer) {	/* the FAKE_SYNC placeholder */
		atomic_store(&fake_misuse, 1);
		return;
	}
	atomic_fetch_add(&fake_cancelled, 1);
	fake_request_free(req);
}

/* Relay payloads, written as a relay writes them. */
#define R1_SUMMARY "{\"ip\": \"127.0.0.2\", \"version\": \"0.1.0\", \"status\": \"active\", " \
	"\"uptime\": 12, \"session_count\": 2, \"stream_count\": 3, \"bps_relayed\": 128000.0}"
#define R3_SUMMARY "{\"ip\": \"127.0.0.4\", \"version\": \"0.1.0\", \"status\": \"halting\", " \
	"\"uptime\": 7, \"session_count\": 0, \"stream_count\": 0, \"bps_relayed\": 0.0}"
#define R2_ERROR "{\"status\": \"error\", \"ip\": \"127.0.0.3\"}"
#define S1 "{\"call_id\": \"a@192.0.2.10\", \"from_tag\": \"t1\", \"duration\": 63, " \
	"\"caller_ua\": \"Bj\\u00f6rk\", \"streams\": [{\"media_type\": \"audio\", " \
	"\"post_dial_delay\": 1.73}]}"
#define S2 "{\"call_id\": \"b@192.0.2.10\", \"from_tag\": \"t2\", \"to_tag\": null, \"streams\": []}"
#define S3 "{\"call_id\": \"c@192.0.2.11\", \"from_tag\": \"t3\", \"streams\": []}"

static struct relay relays[3];

/* r1 answers everything, r2 fails (mode per test), r3 answers. */
static void fake_reset(size_t connected)
{
	static const char *const ips[] = { "127.0.0.2", "127.0.0.3", "127.0.0.4" };
	size_t i;

	memset(relays, 0, sizeof(relays));
	for (i = 0; i < 3; i++) {
		relays[i].ip = ips[i];
		relays[i].next = i + 1 < connected ? &relays[i + 1] : NULL;
		relays[i].delay_ms = 5;
	}
	relays[0].summary = R1_SUMMARY;
	relays[0].sessions = "[" S1 ", " S2 "]";
	relays[0].delay_ms = 20; /* the slowest to answer, yet first in the reply */
	relays[1].summary_mode = relays[1].sessions_mode = FAKE_TIMEOUT;
	relays[2].summary = R3_SUMMARY;
	relays[2].sessions = "[" S3 "]";
	fake_links.first = connected ? &relays[0] : NULL;
	atomic_store(&fake_sent, 0);
	atomic_store(&fake_cancelled, 0);
	atomic_store(&fake_live, 0);
	fake_timeout_s = 0;
}

/* --- certificates and logs --------------------------------------------- */

static char tmpdir[] = "/tmp/mp-test-mgmt.XXXXXX";
static char certs[256];
static char logpath[300];
static int saved_stderr = -1;

static int group_teardown(void **state)
{
	(void)state;
	test_shell_rm_tree(tmpdir);
	return 0;
}

static int group_setup(void **state)
{
	char cmd[512];

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(certs, sizeof(certs), "%s/certs", tmpdir);
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	snprintf(cmd, sizeof(cmd), MAKE_CERTS " %s --days 2 >%s/mk.log 2>&1", certs, tmpdir);
	if (access(MAKE_CERTS, X_OK) || system(cmd)) {
		fprintf(stderr, "# %s failed (run from the repository root)\n", MAKE_CERTS);
		group_teardown(state);
		return -1;
	}
	return 0;
}

/* Everything logged during a test goes to logpath. */
static void log_capture_start(void)
{
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	log_init("test", LOG_LEVEL_DEBUG, false);
}

static void log_capture_stop(void)
{
	if (saved_stderr < 0)
		return;
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the log (written by the loop thread) holds text. */
static bool log_has(const char *text)
{
	static char buf[65536];
	long end = now_ms() + WAIT_MS;
	ssize_t n;
	int fd;

	do {
		fd = open(logpath, O_RDONLY);
		assert_true(fd >= 0);
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		buf[n > 0 ? n : 0] = '\0';
		if (strstr(buf, text))
			return true;
		usleep(5000);
	} while (now_ms() < end);
	fprintf(stdout, "# log lacks \"%s\"; it holds:\n", text);
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		fprintf(stdout, "#   %s\n", line);
	return false;
}

static bool wait_int(atomic_int *v, int want)
{
	long end = now_ms() + WAIT_MS;

	while (atomic_load(v) != want && now_ms() < end)
		usleep(2000);
	return atomic_load(v) == want;
}

static SSL_CTX *make_ctx(const char *role, const char *cert, bool server)
{
	struct tls_files f;
	char err[512] = "";
	SSL_CTX *ctx;

	assert_int_equal(tls_files_from_dir(&f, certs, role), 0);
	if (cert) {
		snprintf(f.cert, sizeof(f.cert), "%s/%s.crt", certs, cert);
		snprintf(f.key, sizeof(f.key), "%s/%s.key", certs, cert);
	}
	ctx = tls_context_new(&f, server, err, sizeof(err));
	if (!ctx)
		fail_msg("tls_context_new: %s", err);
	return ctx;
}

/* --- the dispatcher side: management port in a loop thread ------------- */

struct fixture {
	struct config_dispatcher config;
	struct management_options opts;
	struct passport passport;
	struct event_base *base;
	struct event *stop_ev;
	int stop_pipe[2];
	pthread_t thread;
	bool running;
	struct management *mgmt;
	uint16_t port;
};

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
	char b;

	(void)what;
	if (read(fd, &b, 1) != 1) {}
	event_base_loopbreak(arg);
}

static void *loop_main(void *arg)
{
	event_base_dispatch(arg);
	return NULL;
}

static void loop_start(struct fixture *f)
{
	assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f->base), 0);
	f->running = true;
}

static void loop_stop(struct fixture *f)
{
	char b = 1;

	if (!f->running)
		return;
	if (write(f->stop_pipe[1], &b, 1) != 1) {}
	pthread_join(f->thread, NULL);
	f->running = false;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->config = (struct config_dispatcher){
		.listen_management = { .host = "127.0.0.1", .port = 0 },
		.management_use_tls = false,
		.relay_timeout = 5,
		.management_format = CONFIG_MGMT_LINES,
	};
	f->base = event_base_new();
	if (!f->base || pipe(f->stop_pipe))
		return -1;
	f->stop_ev = event_new(f->base, f->stop_pipe[0], EV_READ | EV_PERSIST, stop_cb, f->base);
	event_add(f->stop_ev, NULL);
	fake_reset(2);
	fake_links.base = f->base;
	f->opts = (struct management_options){
		.base = f->base, .config = &f->config, .relay_links = &fake_links,
	};
	log_capture_start();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	loop_stop(f);
	management_close(f->mgmt);
	/* Every request we were sent was answered or cancelled. */
	fake_links.first = NULL;
	log_capture_stop();
	if (atomic_load(&fake_misuse)) {
		fprintf(stdout, "# relay_request_send() called with a bad command or headers\n");
		return -1;
	}
	if (atomic_load(&fake_live)) {
		fprintf(stdout, "# %d relay requests left behind\n", atomic_load(&fake_live));
		return -1;
	}
	SSL_CTX_free(f->opts.tls);
	event_free(f->stop_ev);
	close(f->stop_pipe[0]);
	close(f->stop_pipe[1]);
	event_base_free(f->base);
	free(f);
	return 0;
}

static void run(struct fixture *f)
{
	assert_int_equal(management_open(&f->mgmt, &f->opts), 0);
	f->port = management_port(f->mgmt);
	assert_true(f->port > 0);
	loop_start(f);
}

/* TLS with client.crt expected to carry this subject, or "" for none. */
static void use_tls(struct fixture *f, const char *passport)
{
	char err[256];

	f->config.management_use_tls = true;
	f->opts.tls = make_ctx("dispatcher", NULL, true);
	assert_int_equal(passport_parse(passport, &f->passport, err, sizeof(err)), 0);
	f->opts.passport = &f->passport;
}

/* --- the client side ---------------------------------------------------- */

struct client {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { WAIT_MS / 1000, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static struct client plain_client(const struct fixture *f)
{
	return (struct client){ .fd = tcp_connect(f->port) };
}

/* cert NULL: a client without a certificate. Returns with *handshake_ok
 * telling whether SSL_connect() succeeded. */
static struct client tls_client_ex(const struct fixture *f, const char *cert, bool *handshake_ok)
{
	struct client c = { .fd = tcp_connect(f->port) };

	if (cert) {
		c.ctx = make_ctx("relay", cert, false);
	} else {
		c.ctx = SSL_CTX_new(TLS_client_method());
		assert_non_null(c.ctx);
		SSL_CTX_set_verify(c.ctx, SSL_VERIFY_NONE, NULL);
	}
	c.ssl = SSL_new(c.ctx);
	SSL_set_fd(c.ssl, c.fd);
	*handshake_ok = SSL_connect(c.ssl) == 1;
	ERR_clear_error();
	return c;
}

static struct client tls_client(const struct fixture *f)
{
	bool ok;
	struct client c = tls_client_ex(f, "client", &ok);

	assert_true(ok);
	return c;
}

static void client_close(struct client *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	if (c->fd >= 0)
		close(c->fd);
	*c = (struct client){ .fd = -1 };
	ERR_clear_error();
}

static void client_send(struct client *c, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = c->ssl ? SSL_write(c->ssl, buf, (int)len) : write(c->fd, buf, len);
		assert_true(n > 0);
		buf += n;
		len -= (size_t)n;
	}
}

#define send_str(c, s) client_send((c), (s), strlen(s))

/* For a server that may already have hung up on us. */
static void client_try_send(struct client *c, const char *s)
{
	if (c->ssl ? SSL_write(c->ssl, s, (int)strlen(s)) : write(c->fd, s, strlen(s))) {}
	ERR_clear_error();
}

/* Up to len bytes; 0 at EOF, -1 on error or timeout. */
static ssize_t client_recv(struct client *c, char *buf, size_t len)
{
	ssize_t n;

	if (!c->ssl)
		return read(c->fd, buf, len);
	n = SSL_read(c->ssl, buf, (int)len);
	if (n <= 0) {
		int e = SSL_get_error(c->ssl, (int)n);

		ERR_clear_error();
		return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
	}
	return n;
}

/* Reads exactly the reply we expect, and compares every byte. */
static void expect(struct client *c, const char *want)
{
	size_t len = strlen(want), got = 0;
	char *buf = calloc(1, len + 1);
	ssize_t n;

	assert_non_null(buf);
	while (got < len) {
		n = client_recv(c, buf + got, len - got);
		if (n <= 0) {
			fprintf(stdout, "# wanted %zu bytes, got %zu then %s\n", len, got,
				n ? "an error" : "EOF");
			fail_msg("wanted \"%.200s\", got \"%.200s\"", want, buf);
		}
		got += (size_t)n;
	}
	if (memcmp(buf, want, len))
		fail_msg("got  \"%s\"\nwant \"%s\"", buf, want);
	free(buf);
}

/* The server closed without sending anything more. */
static void expect_closed(struct client *c)
{
	char b[64];
	ssize_t n = client_recv(c, b, sizeof(b));

	if (n > 0)
		fail_msg("wanted the connection closed, got %zd more bytes \"%.*s\"", n, (int)n, b);
	/* -1 may be a timeout only for plain TCP; TLS reports a reset too. */
	if (n < 0 && !c->ssl)
		assert_true(errno == ECONNRESET);
}

/* --- tests: plain TCP ---------------------------------------------------- */

static void test_version_and_quit(void **state)
{
	struct fixture *f = *state;
	struct client c, d;

	run(f);
	c = plain_client(f);
	send_str(&c, "version\r\n");
	expect(&c, MP_VERSION "\r\n");
	send_str(&c, "quit\r\n");
	expect_closed(&c);
	client_close(&c);
	d = plain_client(f);
	send_str(&d, "version\n"); /* bare LF */
	expect(&d, MP_VERSION "\r\n");
	send_str(&d, "exit\r\n");
	expect_closed(&d);
	client_close(&d);
	assert_int_equal(atomic_load(&fake_sent), 0);
}

static void test_summary_lines(void **state)
{
	struct fixture *f = *state;
	struct client c;

	fake_reset(3);
	run(f);
	c = plain_client(f);
	send_str(&c, "summary\r\n");
	expect(&c, R1_SUMMARY "\r\n" R2_ERROR "\r\n" R3_SUMMARY "\r\n\r\n");
	assert_true(fake_timeout_s == 5.0); /* relay_timeout, D2 */
	assert_true(log_has("relay 127.0.0.3: summary failed: Connection timed out"));
	/* The relay that answers `error`, or garbage, is shown the same way. */
	relays[1].summary_mode = FAKE_ERROR;
	relays[2].summary_mode = FAKE_GARBAGE;
	send_str(&c, "summary\r\n");
	expect(&c, R1_SUMMARY "\r\n" R2_ERROR "\r\n"
		   "{\"status\": \"error\", \"ip\": \"127.0.0.4\"}\r\n\r\n");
	assert_true(log_has("relay 127.0.0.4: summary answered \"[1, 2]\""));
	client_close(&c);
}

static void test_sessions_lines(void **state)
{
	struct fixture *f = *state;
	struct client c;

	fake_reset(3);
	relays[1].sessions_mode = FAKE_ERROR;
	run(f);
	c = plain_client(f);
	/* A failing relay is left out and logged, never an error (§8.5). */
	send_str(&c, "sessions\r\n");
	expect(&c, S1 "\r\n" S2 "\r\n" S3 "\r\n\r\n");
	assert_true(log_has("relay 127.0.0.3: sessions answered \"error\""));
	relays[1].sessions_mode = FAKE_REFUSE;
	relays[2].sessions_mode = FAKE_GARBAGE;
	send_str(&c, "sessions\r\n");
	expect(&c, S1 "\r\n" S2 "\r\n\r\n");
	assert_true(log_has("relay 127.0.0.3: sessions failed: Transport endpoint is not connected"));
	assert_true(log_has("relay 127.0.0.4: sessions answered \"{\"not\": \"a list\"}\""));
	client_close(&c);
}

static void test_array_format(void **state)
{
	struct fixture *f = *state;
	struct client c;

	fake_reset(3);
	f->config.management_format = CONFIG_MGMT_ARRAY;
	run(f);
	c = plain_client(f);
	send_str(&c, "summary\r\nsessions\r\naccounting\r\nversion\r\n");
	expect(&c, "[" R1_SUMMARY ", " R2_ERROR ", " R3_SUMMARY "]\r\n"
		   "[" S1 ", " S2 ", " S3 "]\r\n"
		   "[]\r\n"
		   MP_VERSION "\r\n");
	client_close(&c);
}

static void test_no_relays(void **state)
{
	struct fixture *f = *state;
	struct client c;

	fake_reset(0);
	run(f);
	c = plain_client(f);
	send_str(&c, "summary\r\nsessions\r\naccounting\r\nversion\r\n");
	expect(&c, "\r\n\r\n\r\n" MP_VERSION "\r\n");
	client_close(&c);
	assert_int_equal(atomic_load(&fake_sent), 0);
}

static void test_no_relay_links(void **state)
{
	struct fixture *f = *state;
	struct client c;

	f->opts.relay_links = NULL;
	f->config.management_format = CONFIG_MGMT_ARRAY;
	run(f);
	c = plain_client(f);
	send_str(&c, "summary\r\nsessions\r\n");
	expect(&c, "[]\r\n[]\r\n");
	client_close(&c);
}

/* A relay layer that answers before relay_request_send() returns must not
 * confuse the bookkeeping: the reply still waits for every relay, in
 * order, and the next pipelined command follows. */
static void test_synchronous_answers(void **state)
{
	struct fixture *f = *state;
	struct client c;

	fake_reset(3);
	relays[0].summary_mode = relays[2].summary_mode = FAKE_SYNC;
	relays[0].sessions_mode = relays[1].sessions_mode = relays[2].sessions_mode = FAKE_SYNC;
	relays[1].sessions = "[]";
	run(f);
	c = plain_client(f);
	send_str(&c, "summary\r\nsessions\r\nsummary\r\nversion\r\n");
	expect(&c, R1_SUMMARY "\r\n" R2_ERROR "\r\n" R3_SUMMARY "\r\n\r\n"
		   S1 "\r\n" S2 "\r\n" S3 "\r\n\r\n"
		   R1_SUMMARY "\r\n" R2_ERROR "\r\n" R3_SUMMARY "\r\n\r\n"
		   MP_VERSION "\r\n");
	client_close(&c);
}

static void test_unknown_and_empty_lines(void **state)
{
	struct fixture *f = *state;
	struct client c;

	run(f);
	c = plain_client(f);
	send_str(&c, "\r\n\r\nbogus\r\n\n  \r\nSUMMARY\r\n");
	expect(&c, "error\r\nerror\r\n");
	/* The NUL line is answered too; then the connection goes on. */
	client_send(&c, "su\0x\r\nversion\r\n", 15);
	expect(&c, "error\r\n" MP_VERSION "\r\n");
	assert_true(log_has("unknown command \"bogus\""));
	assert_true(log_has("unknown command \"su?x\""));
	client_close(&c);
}

static void test_pipelined_in_order(void **state)
{
	struct fixture *f = *state;
	struct client c;

	fake_reset(3);
	run(f);
	c = plain_client(f);
	/* summary waits ~30 ms for its relays; version, bogus and the rest
	 * must still come after it, in the order asked. */
	send_str(&c, "summary\r\nversion\r\nsessions\r\nbogus\r\naccounting\r\nversion\r\nexit\r\n"
		     "version\r\n");
	expect(&c, R1_SUMMARY "\r\n" R2_ERROR "\r\n" R3_SUMMARY "\r\n\r\n"
		   MP_VERSION "\r\n"
		   S1 "\r\n" S2 "\r\n" S3 "\r\n\r\n"
		   "error\r\n"
		   "\r\n"
		   MP_VERSION "\r\n");
	expect_closed(&c); /* nothing after exit is answered */
	client_close(&c);
}

static void test_many_pipelined(struct fixture *f, bool tls)
{
	enum { N = 300 };
	static char batch[N * 9 + 1], want[N * (sizeof(MP_VERSION) + 1) + 1];
	struct client c;
	size_t i;

	batch[0] = want[0] = '\0';
	for (i = 0; i < N; i++) {
		strcat(batch, "version\r\n");
		strcat(want, MP_VERSION "\r\n");
	}
	run(f);
	c = tls ? tls_client(f) : plain_client(f);
	/* Far more than the input watermark (one line) in one go. */
	send_str(&c, batch);
	expect(&c, want);
	send_str(&c, "quit\r\n");
	expect_closed(&c);
	client_close(&c);
}

static void test_many_pipelined_plain(void **state)
{
	test_many_pipelined(*state, false);
}

static void test_overlong_line(void **state)
{
	struct fixture *f = *state;
	char line[MANAGEMENT_MAX_LINE + 100];
	struct client c, d;

	run(f);
	memset(line, 'x', sizeof(line));
	c = plain_client(f);
	client_send(&c, line, sizeof(line)); /* no end of line at all */
	expect(&c, "error\r\n");
	expect_closed(&c);
	client_close(&c);
	assert_true(log_has("command line over 1024 bytes"));
	/* A long line that does end is refused the same way, after the
	 * commands before it were answered. */
	d = plain_client(f);
	send_str(&d, "version\r\n");
	line[MANAGEMENT_MAX_LINE + 1] = '\n';
	client_send(&d, line, MANAGEMENT_MAX_LINE + 2);
	expect(&d, MP_VERSION "\r\nerror\r\n");
	expect_closed(&d);
	client_close(&d);
}

static void test_disconnect_cancels(void **state)
{
	struct fixture *f = *state;
	struct client c;

	fake_reset(3);
	relays[1].summary_mode = FAKE_HANG;
	run(f);
	c = plain_client(f);
	send_str(&c, "summary\r\n");
	assert_true(wait_int(&fake_sent, 3));
	assert_true(wait_int(&fake_live, 1)); /* r1 and r3 answered, r2 hangs */
	client_close(&c);
	assert_true(wait_int(&fake_cancelled, 1));
	assert_true(wait_int(&fake_live, 0));
}

static void test_close_cancels(void **state)
{
	struct fixture *f = *state;
	struct client c;

	relays[0].sessions_mode = FAKE_HANG;
	run(f);
	c = plain_client(f);
	send_str(&c, "sessions\r\n");
	assert_true(wait_int(&fake_live, 1));
	/* Closing the port with a client waiting cancels its requests. */
	loop_stop(f);
	management_close(f->mgmt);
	f->mgmt = NULL;
	assert_int_equal(atomic_load(&fake_cancelled), 1);
	assert_int_equal(atomic_load(&fake_live), 0);
	/* libevent closes the sockets of freed bufferevents from its loop
	 * (or in event_base_free()). */
	loop_start(f);
	expect_closed(&c);
	client_close(&c);
}

static void test_input_cap(void **state)
{
	struct fixture *f = *state;
	static char flood[MANAGEMENT_MAX_INPUT + 4096];
	struct client c;
	size_t i, sent = 0;
	ssize_t n;

	relays[0].summary_mode = relays[1].summary_mode = FAKE_HANG;
	run(f);
	c = plain_client(f);
	send_str(&c, "summary\r\n");
	assert_true(wait_int(&fake_sent, 2));
	for (i = 0; i + 9 <= sizeof(flood); i += 9)
		memcpy(flood + i, "version\r\n", 9);
	/* The server may hang up before all of it is written. */
	while (sent < i && (n = write(c.fd, flood + sent, i - sent)) > 0)
		sent += (size_t)n;
	assert_true(log_has("bytes of commands queued unanswered, closing"));
	assert_true(wait_int(&fake_cancelled, 2));
	assert_true(wait_int(&fake_live, 0));
	client_close(&c);
}

/* Big replies to a client that reads slowly: the next command waits while
 * more than MANAGEMENT_MAX_BACKLOG is unsent, and every byte arrives in
 * order. */
static void test_slow_reader(void **state)
{
	enum { SESSIONS = 2000, ASKS = 8 };
	struct fixture *f = *state;
	size_t one = strlen(S3), i, len;
	char *payload, *want, *p;
	struct client c;

	fake_reset(1);
	payload = malloc(2 + SESSIONS * (one + 2));
	want = malloc(ASKS * (SESSIONS * (one + 2) + 2) + sizeof(MP_VERSION) + 2);
	assert_non_null(payload);
	assert_non_null(want);
	p = payload;
	*p++ = '[';
	for (i = 0; i < SESSIONS; i++)
		p += sprintf(p, "%s%s", i ? ", " : "", S3);
	strcpy(p, "]");
	relays[0].sessions = payload;
	p = want;
	for (i = 0; i < ASKS; i++) {
		for (size_t j = 0; j < SESSIONS; j++)
			p += sprintf(p, "%s\r\n", S3);
		p += sprintf(p, "\r\n");
	}
	sprintf(p, "%s\r\n", MP_VERSION);
	len = (size_t)(p - want);
	assert_true(len > 8 * MANAGEMENT_MAX_BACKLOG);
	run(f);
	c = plain_client(f);
	for (i = 0; i < ASKS; i++)
		send_str(&c, "sessions\r\n");
	send_str(&c, "version\r\n");
	usleep(200000); /* let the replies pile up */
	expect(&c, want);
	client_close(&c);
	free(want);
	free(payload);
}

static int fake_accounting(void *ctx, struct json_object *backends)
{
	static const char *const rows[] = {
		"{\"backend\": \"jsonl\", \"pending\": 0, \"oldest_age_s\": 0, \"last_error\": null}",
		"{\"backend\": \"database\", \"pending\": 3, \"oldest_age_s\": 42, "
		"\"last_error\": \"Can't connect to server on 'db' (111)\"}",
	};
	int *fail = ctx;

	if (*fail)
		return -EIO;
	for (size_t i = 0; i < 2; i++)
		json_object_array_add(backends, json_tokener_parse(rows[i]));
	return 0;
}

static void test_accounting(void **state)
{
	struct fixture *f = *state;
	struct client c;
	int fail = 0;

	f->opts.accounting = fake_accounting;
	f->opts.accounting_ctx = &fail;
	run(f);
	c = plain_client(f);
	send_str(&c, "accounting\r\n");
	expect(&c, "{\"backend\": \"jsonl\", \"pending\": 0, \"oldest_age_s\": 0, \"last_error\": null}\r\n"
		   "{\"backend\": \"database\", \"pending\": 3, \"oldest_age_s\": 42, "
		   "\"last_error\": \"Can't connect to server on 'db' (111)\"}\r\n\r\n");
	fail = 1;
	send_str(&c, "accounting\r\n");
	expect(&c, "error\r\n");
	assert_true(log_has("accounting status failed"));
	client_close(&c);
}

static void test_max_clients(void **state)
{
	struct fixture *f = *state;
	struct client a, b, c;

	f->opts.max_clients = 2;
	run(f);
	a = plain_client(f);
	b = plain_client(f);
	send_str(&a, "version\r\n");
	send_str(&b, "version\r\n");
	expect(&a, MP_VERSION "\r\n");
	expect(&b, MP_VERSION "\r\n");
	c = plain_client(f);
	expect_closed(&c);
	assert_true(log_has("already 2 clients connected"));
	client_close(&c);
	client_close(&a);
	/* A slot is free again once a client has gone. */
	usleep(50000);
	c = plain_client(f);
	send_str(&c, "version\r\n");
	expect(&c, MP_VERSION "\r\n");
	client_close(&c);
	client_close(&b);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct management *other = NULL;
	struct config_dispatcher busy;

	f->config.management_use_tls = true;
	assert_int_equal(management_open(&other, &f->opts), -EINVAL);
	assert_null(other);
	assert_true(log_has("no TLS context"));
	f->config.management_use_tls = false;
	run(f);
	busy = f->config;
	busy.listen_management.port = f->port;
	f->opts.config = &busy;
	assert_true(management_open(&other, &f->opts) < 0);
	assert_null(other);
	assert_true(log_has("cannot listen on 127.0.0.1"));
	f->opts.config = &f->config;
}

/* --- tests: TLS ------------------------------------------------------------ */

static void test_tls_commands(void **state)
{
	struct fixture *f = *state;
	struct client c;

	use_tls(f, "O:MediaProxy Test, CN:management client");
	run(f);
	c = tls_client(f);
	send_str(&c, "version\r\nsummary\r\n");
	expect(&c, MP_VERSION "\r\n" R1_SUMMARY "\r\n" R2_ERROR "\r\n\r\n");
	send_str(&c, "sessions\r\nbogus\r\nquit\r\n");
	expect(&c, S1 "\r\n" S2 "\r\n\r\nerror\r\n");
	expect_closed(&c);
	client_close(&c);
}

static void test_tls_many_pipelined(void **state)
{
	struct fixture *f = *state;

	use_tls(f, "");
	test_many_pipelined(f, true);
}

static void test_tls_wrong_passport(void **state)
{
	struct fixture *f = *state;
	struct client c;
	bool ok;

	use_tls(f, "CN:nagios*");
	run(f);
	/* TLS 1.3 lets the client finish first; the server then hangs up. */
	c = tls_client_ex(f, "client", &ok);
	if (ok)
		client_try_send(&c, "version\r\n");
	expect_closed(&c);
	client_close(&c);
	assert_true(log_has("refused 127.0.0.1:"));
	assert_true(log_has("does not match passport \"CN:nagios*\""));
}

static void test_tls_no_client_cert(void **state)
{
	struct fixture *f = *state;
	struct client c;
	bool ok;

	use_tls(f, "");
	run(f);
	c = tls_client_ex(f, NULL, &ok);
	if (ok)
		client_try_send(&c, "version\r\n");
	expect_closed(&c);
	client_close(&c);
	assert_true(log_has("TLS handshake failed: "));
	assert_true(log_has("peer did not return a certificate"));
}

static void test_tls_port_plain_client(void **state)
{
	struct fixture *f = *state;
	struct client c;

	use_tls(f, "");
	run(f);
	c = plain_client(f);
	client_try_send(&c, "version\r\n");
	expect_closed(&c);
	client_close(&c);
	assert_true(log_has("TLS handshake failed"));
}

static void test_tls_reload(void **state)
{
	struct fixture *f = *state;
	SSL_CTX *fresh;
	struct client c;

	use_tls(f, "CN:management client");
	run(f);
	c = tls_client(f);
	loop_stop(f);
	/* HUP: the caller builds a new context, hands it over and drops its
	 * own references to both at once. */
	fresh = make_ctx("dispatcher", NULL, true);
	management_set_tls(f->mgmt, fresh);
	SSL_CTX_free(fresh);
	SSL_CTX_free(f->opts.tls);
	f->opts.tls = NULL;
	loop_start(f);
	send_str(&c, "version\r\n"); /* the open connection keeps working */
	expect(&c, MP_VERSION "\r\n");
	client_close(&c);
	c = tls_client(f);
	send_str(&c, "version\r\n");
	expect(&c, MP_VERSION "\r\n");
	client_close(&c);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_version_and_quit),
		T(test_summary_lines),
		T(test_sessions_lines),
		T(test_array_format),
		T(test_no_relays),
		T(test_no_relay_links),
		T(test_synchronous_answers),
		T(test_unknown_and_empty_lines),
		T(test_pipelined_in_order),
		T(test_many_pipelined_plain),
		T(test_overlong_line),
		T(test_disconnect_cancels),
		T(test_close_cancels),
		T(test_input_cap),
		T(test_slow_reader),
		T(test_accounting),
		T(test_max_clients),
		T(test_open_errors),
		T(test_tls_commands),
		T(test_tls_many_pipelined),
		T(test_tls_wrong_passport),
		T(test_tls_no_client_cert),
		T(test_tls_port_plain_client),
		T(test_tls_reload),
	};

	return cmocka_run_group_tests_name("management", tests, group_setup, group_teardown);
}
