/* Tests for dispatcherd/proxy_socket.c over a real UNIX socket in a temp
 * dir, with a stub handler in place of the relay selection: Appendix A
 * requests answered, pipelined requests answered in order one at a time,
 * concurrent connections independent of each other, a malformed request
 * answered `error` with the connection going on, an over-long line closing
 * only its connection, the socket file (stale file replaced, a live one not
 * stolen, a non-socket refused, mode, removal) and a module hanging up while
 * its request is still with the handler. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "proxy_socket.h"

#define KAM_OFFER                                                                   \
	"update\r\ntype: request\r\ndialog_id: 3431:9579\r\ncall_id: 1-16898@127.0.0.1\r\n" \
	"cseq: 1\r\nfrom_uri: uac@127.0.0.1:54784\r\nto_uri: uas@127.0.0.1:32968\r\n"       \
	"from_tag: 16898SIPpTag001\r\nto_tag: \r\nuser_agent: e2e-uac\r\n"                  \
	"signaling_ip: 127.0.0.1\r\nmedia_relay: \r\n"                                      \
	"media: audio:127.0.0.1:23604:sendrecv:ice=no\r\n\r\n"
#define OSIPS_REMOVE                                                                \
	"remove\r\ncall_id: 1-3883@127.0.0.1\r\nfrom_tag: 3883SIPpTag001\r\n"               \
	"to_tag: 3880SIPpTag011\r\n\r\n"
#define REQ(cid) "remove\r\ncall_id: " cid "\r\nfrom_tag: f\r\n\r\n"

#define MAX_HELD 64

struct held {
	proxy_done_fn done;
	void *done_ctx;
	char call_id[64];
};

struct fixture {
	char dir[64];
	char path[128];
	struct event_base *base;
	struct proxy_socket *ps;
	bool hold;                /* keep requests instead of answering */
	struct held held[MAX_HELD];
	size_t n_held;
	size_t handled;
	const char *reply_override;
};

/* The stub handler: "ok <call_id>" at once, or held for the test. */
static void stub_handler(void *ctx, const struct proxy_request *req, proxy_done_fn done,
			 void *done_ctx)
{
	struct fixture *f = ctx;
	char reply[128];

	f->handled++;
	assert_true(req->received > 0);
	if (f->hold) {
		assert_true(f->n_held < MAX_HELD);
		f->held[f->n_held].done = done;
		f->held[f->n_held].done_ctx = done_ctx;
		snprintf(f->held[f->n_held].call_id, sizeof(f->held[0].call_id), "%s", req->call_id);
		f->n_held++;
		return;
	}
	snprintf(reply, sizeof(reply), "ok %s", req->call_id);
	done(done_ctx, f->reply_override ? f->reply_override : reply);
}

static void release(struct fixture *f, size_t i)
{
	char reply[128];

	assert_true(i < f->n_held && f->held[i].done);
	snprintf(reply, sizeof(reply), "ok %s", f->held[i].call_id);
	f->held[i].done(f->held[i].done_ctx, reply);
	f->held[i].done = NULL;
}

static int open_ps(struct fixture *f, const char *runtime_dir, const char *path, mode_t mode,
		   struct proxy_socket **out)
{
	struct proxy_socket_options o = {
		.base = f->base, .runtime_dir = runtime_dir, .path = path, .mode = mode,
		.handler = stub_handler, .ctx = f,
	};

	return proxy_socket_open(out, &o);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mp-test-psock.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/dispatcher.sock", f->dir);
	f->base = event_base_new();
	if (!f->base || open_ps(f, f->dir, "dispatcher.sock", 0, &f->ps))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	size_t i;

	proxy_socket_close(f->ps);
	/* Requests still held are answered after the close: dropped quietly. */
	for (i = 0; i < f->n_held; i++)
		if (f->held[i].done)
			release(f, i);
	event_base_free(f->base);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* --- the module side --------------------------------------------------------- */

static int client(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		close(fd);
		return -errno;
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	while (len) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN) {
			poll(&p, 1, 10);
			continue;
		}
		assert_true(n > 0);
		buf += n;
		len -= (size_t)n;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

static void pump(struct fixture *f)
{
	event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* Runs the loop until fd has `lines` CRLF lines (or EOF, or 2 s); returns
 * what arrived in buf. *eof tells whether the server closed. */
static size_t read_lines(struct fixture *f, int fd, int lines, char *buf, size_t size,
			 bool *eof)
{
	struct timespec start, now;
	size_t len = 0;
	int seen = 0;
	ssize_t n;

	*eof = false;
	clock_gettime(CLOCK_MONOTONIC, &start);
	buf[0] = '\0';
	for (;;) {
		pump(f);
		n = recv(fd, buf + len, size - 1 - len, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET)) {
			*eof = true;
			break;
		}
		if (n > 0) {
			len += (size_t)n;
			buf[len] = '\0';
			seen = 0;
			for (char *p = buf; (p = strstr(p, "\r\n")); p += 2)
				seen++;
			if (seen >= lines)
				break;
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
		    2000)
			break;
		usleep(1000);
	}
	return len;
}

static void expect(struct fixture *f, int fd, const char *want)
{
	char buf[8192];
	int lines = 0;
	bool eof;

	for (const char *p = want; (p = strstr(p, "\r\n")); p += 2)
		lines++;
	read_lines(f, fd, lines, buf, sizeof(buf), &eof);
	assert_string_equal(buf, want);
}

/* Nothing more arrives within a short wait. */
static void expect_quiet(struct fixture *f, int fd)
{
	char buf[256];
	int i;

	for (i = 0; i < 20; i++) {
		pump(f);
		usleep(1000);
	}
	assert_true(recv(fd, buf, sizeof(buf), 0) < 0 && errno == EAGAIN);
}

static void pump_until_connections(struct fixture *f, size_t n)
{
	int i;

	for (i = 0; i < 2000 && proxy_socket_connections(f->ps) != n; i++) {
		pump(f);
		usleep(1000);
	}
	assert_int_equal(proxy_socket_connections(f->ps), n);
}

/* --- tests ------------------------------------------------------------------------ */

static void test_appendix_a_requests(void **state)
{
	struct fixture *f = *state;
	int fd = client(f->path);

	send_str(fd, KAM_OFFER);
	expect(f, fd, "ok 1-16898@127.0.0.1\r\n");
	send_str(fd, OSIPS_REMOVE);
	expect(f, fd, "ok 1-3883@127.0.0.1\r\n");
	/* Blank lines between requests and bare LF are fine (§1.2). */
	send_str(fd, "\r\n\n" "remove\ncall_id: lf\nfrom_tag: f\n\n");
	expect(f, fd, "ok lf\r\n");
	assert_int_equal(f->handled, 3);
	close(fd);
}

static void test_pipelined_in_order(void **state)
{
	struct fixture *f = *state;
	int fd = client(f->path);
	char want[4096] = "", line[64], many[8192] = "";
	int i;

	/* Held: the second request is read only after the first is answered. */
	f->hold = true;
	send_str(fd, REQ("p1") REQ("p2") REQ("p3"));
	for (i = 0; i < 50; i++)
		pump(f);
	assert_int_equal(f->n_held, 1);
	expect_quiet(f, fd);
	release(f, 0);
	expect(f, fd, "ok p1\r\n");
	assert_int_equal(f->n_held, 2);
	assert_string_equal(f->held[1].call_id, "p2");
	release(f, 1);
	expect(f, fd, "ok p2\r\n");
	release(f, 2);
	expect(f, fd, "ok p3\r\n");

	/* Answered at once: 60 requests in one write, 60 replies in order. */
	f->hold = false;
	for (i = 0; i < 60; i++) {
		snprintf(line, sizeof(line), "remove\r\ncall_id: m%d\r\nfrom_tag: f\r\n\r\n", i);
		strcat(many, line);
		snprintf(line, sizeof(line), "ok m%d\r\n", i);
		strcat(want, line);
	}
	send_str(fd, many);
	expect(f, fd, want);
	close(fd);
}

static void test_concurrent_connections(void **state)
{
	struct fixture *f = *state;
	int fds[3], i;
	char req[128];

	f->hold = true;
	for (i = 0; i < 3; i++) {
		fds[i] = client(f->path);
		assert_true(fds[i] >= 0);
		snprintf(req, sizeof(req), "remove\r\ncall_id: w%d\r\nfrom_tag: f\r\n\r\n", i);
		send_str(fds[i], req);
	}
	for (i = 0; i < 200 && f->n_held < 3; i++) {
		pump(f);
		usleep(1000);
	}
	/* All three are with the handler at once. */
	assert_int_equal(f->n_held, 3);
	assert_int_equal(proxy_socket_connections(f->ps), 3);
	/* Answer in reverse arrival order: each worker gets its own reply. */
	for (i = 2; i >= 0; i--) {
		size_t k;

		for (k = 0; k < 3; k++)
			if (f->held[k].done && f->held[k].call_id[1] - '0' == i)
				release(f, k);
	}
	for (i = 0; i < 3; i++) {
		snprintf(req, sizeof(req), "ok w%d\r\n", i);
		expect(f, fds[i], req);
		close(fds[i]);
	}
}

static void test_malformed_then_next_works(void **state)
{
	static const char nul_req[] = "remove\r\ncall_id: \0\r\nfrom_tag: f\r\n\r\n" REQ("a5");
	struct fixture *f = *state;
	int fd = client(f->path);

	/* Framing fault in the middle of a message: skipped to its end. */
	send_str(fd, "update\r\ntype: request\r\nbroken header\r\ncall_id: x\r\nfrom_tag: f\r\n\r\n"
		     REQ("after-frame"));
	expect(f, fd, "error\r\nok after-frame\r\n");
	/* Checks: no call_id, unknown command, bad cseq, bad dialog_id. */
	send_str(fd, "remove\r\nfrom_tag: f\r\n\r\n" REQ("a1"));
	expect(f, fd, "error\r\nok a1\r\n");
	send_str(fd, "offer\r\ncall_id: c\r\nfrom_tag: f\r\n\r\n" REQ("a2"));
	expect(f, fd, "error\r\nok a2\r\n");
	send_str(fd, "update\r\ntype: request\r\ncall_id: c\r\nfrom_tag: f\r\ncseq: x\r\n\r\n"
		     REQ("a3"));
	expect(f, fd, "error\r\nok a3\r\n");
	/* A command line starting with a space, a NUL byte. */
	send_str(fd, " update\r\ncall_id: c\r\n\r\n" REQ("a4"));
	expect(f, fd, "error\r\nok a4\r\n");
	send_all(fd, nul_req, sizeof(nul_req) - 1);
	expect(f, fd, "error\r\nok a5\r\n");
	/* A bad message split across writes still resyncs. */
	send_str(fd, "update\r\nno separator here\r\n");
	expect(f, fd, "error\r\n");
	send_str(fd, "call_id: x\r\n");
	expect_quiet(f, fd);
	send_str(fd, "\r\n" REQ("a6"));
	expect(f, fd, "ok a6\r\n");
	assert_int_equal(f->handled, 7);
	close(fd);
}

static void test_reply_sanitised(void **state)
{
	struct fixture *f = *state;
	int fd = client(f->path);

	f->reply_override = "1.2.3.4 5\r\nremoved";
	send_str(fd, REQ("inject"));
	expect(f, fd, "error\r\n");
	f->reply_override = "";
	send_str(fd, REQ("empty"));
	expect(f, fd, "error\r\n");
	close(fd);
}

static void test_long_line_closes_only_that_connection(void **state)
{
	struct fixture *f = *state;
	int bad = client(f->path), good = client(f->path);
	size_t big = LINEPROTO_MAX_LINE + 1000;
	char *junk = malloc(big), buf[256];
	bool eof;

	assert_non_null(junk);
	send_str(good, REQ("g1"));
	expect(f, good, "ok g1\r\n");
	memset(junk, 'x', big);
	memcpy(junk, "update\r\ncall_id: ", 17);
	send_all(bad, junk, big);
	read_lines(f, bad, 1, buf, sizeof(buf), &eof);
	assert_string_equal(buf, "error\r\n");
	read_lines(f, bad, 2, buf, sizeof(buf), &eof);
	assert_true(eof);
	pump_until_connections(f, 1);
	send_str(good, REQ("g2"));
	expect(f, good, "ok g2\r\n");
	free(junk);
	close(bad);
	close(good);
}

static void test_half_close_still_answered(void **state)
{
	struct fixture *f = *state;
	int fd = client(f->path);
	char buf[256];
	bool eof;

	send_str(fd, REQ("h1") REQ("h2") "remove\r\ncall_id: partial");
	shutdown(fd, SHUT_WR);
	read_lines(f, fd, 3, buf, sizeof(buf), &eof);
	assert_string_equal(buf, "ok h1\r\nok h2\r\n");
	assert_true(eof);
	pump_until_connections(f, 0);
	close(fd);
}

static void test_hangup_with_request_held(void **state)
{
	struct fixture *f = *state;
	int fd = client(f->path);

	f->hold = true;
	send_str(fd, REQ("gone"));
	while (!f->n_held)
		pump(f);
	close(fd);
	/* EOF may be a half-close of a module still waiting for its reply, so
	 * the connection stays until the handler answers... */
	for (int i = 0; i < 50; i++)
		pump(f);
	assert_int_equal(proxy_socket_connections(f->ps), 1);
	/* ... then the reply goes nowhere and the connection is freed. */
	release(f, 0);
	pump_until_connections(f, 0);
	/* One more held over proxy_socket_close(): answered in teardown,
	 * after its connection is gone (ASan checks). */
	fd = client(f->path);
	send_str(fd, REQ("at-close"));
	while (f->n_held < 2)
		pump(f);
	close(fd);
}

static void test_socket_file(void **state)
{
	struct fixture *f = *state;
	struct proxy_socket *other = NULL;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char path[160];
	struct stat st;
	int fd, s;

	/* Mode 0660 by default. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, PROXY_SOCKET_MODE);

	/* A live socket is not stolen, and keeps working. */
	assert_int_equal(open_ps(f, f->dir, "dispatcher.sock", 0, &other), -EADDRINUSE);
	assert_null(other);
	fd = client(f->path);
	assert_true(fd >= 0);
	send_str(fd, REQ("still-mine"));
	expect(f, fd, "ok still-mine\r\n");
	close(fd);

	/* A stale socket file (its process died) is replaced. */
	snprintf(path, sizeof(path), "%s/stale.sock", f->dir);
	assert_true(strlen(path) < sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(s);
	assert_int_equal(client(path), -ECONNREFUSED);
	assert_int_equal(open_ps(f, f->dir, path, 0600, &other), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	fd = client(path);
	assert_true(fd >= 0);
	close(fd);
	proxy_socket_close(other);
	/* Closing removed the file. */
	assert_int_not_equal(access(path, F_OK), 0);

	/* A regular file in the way is left alone. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(open_ps(f, NULL, path, 0, &other), -EEXIST);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);

	/* Too long for sun_path. */
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(open_ps(f, NULL, path, 0, &other), -ENAMETOOLONG);
	assert_int_equal(open_ps(f, f->dir, "", 0, &other), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_appendix_a_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_then_next_works, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_sanitised, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_closes_only_that_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_half_close_still_answered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup_with_request_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_file, setup, teardown),
	};

	/* As in the daemon (daemon_watch_signals): a module that hung up shows
	 * up as a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("proxy_socket", tests, NULL, NULL);
}
