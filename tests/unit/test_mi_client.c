/* dispatcherd/mi_client.c on a real event loop against a fake proxy: a UNIX
 * datagram socket in a temp dir, served by the same loop, that records each
 * request and answers from a script (with the real proxies' replies, see
 * test_mi_dialect.c), late, out of order or never. Covers the OpenSIPS
 * reverse-hex DID and its decimal retry on 404, the timeout, D13's text
 * fallback, Kamailio's pair, a proxy that is not running, the queue limit,
 * the in-flight limits (JSON by id, text one at a time) and the socket file.
 * Log lines are checked where the brief asks for them (stderr is captured
 * while the loop runs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "mi_client.h"

#define WAIT_S 5.0        /* longest any step may take */
#define MAX_SEEN 64       /* requests the fake records */
#define MAX_DONE 1100     /* outcomes recorded (the queue test has 1024) */
#define NO_REPLY NULL     /* a script entry: stay silent */

/* The replies, with %u for the id of the request answered. */
#define OSIPS_OK "{\"jsonrpc\":\"2.0\",\"result\":\"OK\",\"id\":%u}"
#define OSIPS_404 \
	"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":404,\"message\":\"Requested Dialog not found\"},\"id\":%u}"
#define KAM_OK "{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"result\":\t{\n\t},\n\t\"id\":\t%u\n}"
#define KAM_404                                                                     \
	"{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"error\":\t{\n\t\t\"code\":\t404,\n\t\t"   \
	"\"message\":\t\"Dialog not found\"\n\t},\n\t\"id\":\t%u\n}"
/* What OpenSIPS 3.4's mi_datagram answers to a datagram it cannot read;
 * stands for a proxy with no JSON MI. */
#define NOT_JSON "400 Parse_error"
#define TEXT_OK "200 OK\n"

#define OSIPS_REQ(did, id)                                                              \
	"{\"jsonrpc\": \"2.0\", \"method\": \"dlg_end_dlg\", \"params\": {\"dialog_id\": \"" \
	did "\"}, \"id\": " id "}"

struct seen {
	char req[512];
	unsigned int id;     /* the JSON-RPC id in it; 0 for text */
	size_t pending;      /* requests the fake had unanswered when it came, itself included */
	double at;
};

struct done {
	char call_id[32];
	bool ok;
	char detail[128];
	double at;
};

struct held {
	struct fixture *f;
	bool sent;
	struct sockaddr_un to;
	socklen_t to_len;
	char reply[512];
	size_t len;
	struct event *timer;
};

struct fixture {
	char dir[64];
	char proxy_path[128];
	char our_path[128];
	struct event_base *base;
	struct config_opensips config;
	struct mi_client *mi;
	/* the fake proxy */
	int proxy_fd;
	struct event *proxy_ev;
	const char *script[16]; /* reply formats in order; past the end: silence */
	size_t n_script;
	int delay_ms;           /* answer that much later (0: at once) */
	size_t hold;            /* >0: keep answers until this many wait, then send them newest first */
	bool deaf;              /* never reads: its queue fills up */
	struct held *all[MAX_SEEN]; /* every answer, sent or not, freed at teardown */
	size_t n_all;
	struct held *held[MAX_SEEN]; /* kept for hold */
	size_t n_held;
	size_t pending, max_pending;
	struct seen seen[MAX_SEEN];
	size_t n_seen;
	/* the client's outcomes */
	struct done done[MAX_DONE];
	size_t n_done, want_done;
	/* stderr while the loop ran */
	char log_path[128];
	int saved_stderr;
	int capturing; /* capture_begin() depth */
	char *log;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --- the fake proxy --------------------------------------------------------------- */

static void held_send(struct held *h)
{
	struct fixture *f = h->f;

	if (sendto(f->proxy_fd, h->reply, h->len, 0, (struct sockaddr *)&h->to, h->to_len) < 0)
		fprintf(stdout, "# fake proxy: sendto: %s\n", strerror(errno));
	f->pending--;
	h->sent = true;
}

static void held_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	held_send(arg);
}

static unsigned int request_id(const char *req)
{
	const char *p = strstr(req, "\"id\": ");

	return p ? (unsigned int)strtoul(p + 6, NULL, 10) : 0;
}

static void answer(struct fixture *f, const char *fmt, const struct seen *s,
		   const struct sockaddr_un *to, socklen_t to_len)
{
	struct held *h = calloc(1, sizeof(*h));
	struct timeval tv = { 0, f->delay_ms * 1000 };

	assert_non_null(h);
	f->all[f->n_all++] = h;
	h->f = f;
	h->to = *to;
	h->to_len = to_len;
	h->len = (size_t)snprintf(h->reply, sizeof(h->reply), fmt, s->id);
	if (f->hold) {
		f->held[f->n_held++] = h;
		if (f->n_held == f->hold) {
			while (f->n_held)
				held_send(f->held[--f->n_held]);
		}
		return;
	}
	if (!f->delay_ms) {
		held_send(h);
		return;
	}
	h->timer = evtimer_new(f->base, held_timer_cb, h);
	assert_non_null(h->timer);
	evtimer_add(h->timer, &tv);
}

static void proxy_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fixture *f = arg;
	struct sockaddr_un from;
	socklen_t from_len = sizeof(from);
	char buf[512];
	ssize_t n;
	struct seen *s;

	(void)what;
	n = recvfrom(fd, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&from, &from_len);
	if (n < 0 || f->n_seen >= MAX_SEEN)
		return;
	buf[n] = '\0';
	s = &f->seen[f->n_seen];
	memcpy(s->req, buf, (size_t)n + 1);
	s->id = request_id(buf);
	s->at = now();
	f->pending++;
	if (f->pending > f->max_pending)
		f->max_pending = f->pending;
	s->pending = f->pending;
	if (f->n_seen < f->n_script && f->script[f->n_seen]) {
		f->n_seen++;
		answer(f, f->script[f->n_seen - 1], s, &from, from_len);
		return;
	}
	f->n_seen++; /* silence: it stays pending */
}

static void proxy_start(struct fixture *f)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	strcpy(sun.sun_path, f->proxy_path);
	f->proxy_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(f->proxy_fd >= 0);
	assert_int_equal(bind(f->proxy_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	if (f->deaf)
		return;
	f->proxy_ev = event_new(f->base, f->proxy_fd, EV_READ | EV_PERSIST, proxy_read_cb, f);
	assert_non_null(f->proxy_ev);
	assert_int_equal(event_add(f->proxy_ev, NULL), 0);
}

/* --- the client and the loop ------------------------------------------------------ */

static void capture_begin(struct fixture *f);
static void capture_end(struct fixture *f);

static void on_done(void *ctx, const char *call_id, bool ok, const char *detail)
{
	struct fixture *f = ctx;
	struct done *d;

	if (f->n_done >= MAX_DONE)
		return;
	d = &f->done[f->n_done++];
	snprintf(d->call_id, sizeof(d->call_id), "%s", call_id);
	snprintf(d->detail, sizeof(d->detail), "%s", detail);
	d->ok = ok;
	d->at = now();
	if (f->want_done && f->n_done >= f->want_done)
		event_base_loopbreak(f->base);
}

static int client_open(struct fixture *f, enum config_mi_protocol proto, unsigned int max,
		       double timeout_s)
{
	struct mi_client_options o = {
		.base = f->base, .runtime_dir = f->dir, .config = &f->config,
		.timeout_s = timeout_s, .done = on_done, .ctx = f,
	};

	int rc;

	f->config.mi_protocol = proto;
	f->config.max_connections = max;
	capture_begin(f);
	rc = mi_client_open(&f->mi, &o);
	capture_end(f);
	return rc;
}

static void capture_begin(struct fixture *f)
{
	int fd;

	if (f->capturing++)
		return;
	fd = open(f->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	f->saved_stderr = dup(STDERR_FILENO);
	assert_true(f->saved_stderr >= 0);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

static void capture_end(struct fixture *f)
{
	FILE *fp;
	long n;

	if (--f->capturing)
		return;
	fflush(stderr);
	dup2(f->saved_stderr, STDERR_FILENO);
	close(f->saved_stderr);
	f->saved_stderr = -1;
	free(f->log);
	f->log = NULL;
	fp = fopen(f->log_path, "r");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	f->log = calloc(1, (size_t)n + 1);
	assert_non_null(f->log);
	assert_int_equal(fread(f->log, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
}

/* Runs the loop until `want` outcomes in all, or for `seconds` when want is
 * 0. Log lines written meanwhile end up in f->log (all of the test's). */
static void run(struct fixture *f, size_t want, double seconds)
{
	struct timeval tv = { (time_t)seconds, (suseconds_t)((seconds - (int)seconds) * 1e6) };

	f->want_done = want;
	capture_begin(f);
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
	capture_end(f);
	if (want && f->n_done < want)
		print_message("# log so far:\n%s", f->log);
	if (want)
		assert_int_equal(f->n_done, want);
}

static void assert_logged(struct fixture *f, const char *text)
{
	if (!strstr(f->log, text)) {
		print_message("# log:\n%s", f->log);
		fail_msg("not logged: %s", text);
	}
}

static void assert_done(struct fixture *f, size_t i, const char *call_id, bool ok,
			const char *detail)
{
	assert_true(i < f->n_done);
	assert_string_equal(f->done[i].call_id, call_id);
	assert_string_equal(f->done[i].detail, detail);
	assert_int_equal(f->done[i].ok, ok);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mp-test-mi.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->proxy_path, sizeof(f->proxy_path), "%s/proxy.sock", f->dir);
	snprintf(f->our_path, sizeof(f->our_path), "%s/%s", f->dir, MI_CLIENT_SOCKET);
	snprintf(f->log_path, sizeof(f->log_path), "%s/log", f->dir);
	f->config.socket_path = "proxy.sock"; /* relative: in the runtime dir (D7) */
	f->proxy_fd = -1;
	f->saved_stderr = -1;
	f->base = event_base_new();
	if (!f->base)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->saved_stderr >= 0) { /* a test failed while the log was captured */
		f->capturing = 1;
		capture_end(f);
		print_message("# log:\n%s", f->log);
	}
	mi_client_close(f->mi);
	while (f->n_all) {
		struct held *h = f->all[--f->n_all];

		if (h->timer)
			event_free(h->timer);
		free(h);
	}
	if (f->proxy_ev)
		event_free(f->proxy_ev);
	if (f->proxy_fd >= 0)
		close(f->proxy_fd);
	event_base_free(f->base);
	unlink(f->proxy_path);
	unlink(f->our_path);
	unlink(f->log_path);
	rmdir(f->dir);
	free(f->log);
	free(f);
	return 0;
}

/* --- OpenSIPS JSON ------------------------------------------------------------------ */

static void test_opensips_did(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	f->script[0] = OSIPS_OK;
	f->n_script = 1;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), 0);
	assert_int_equal(lstat(f->our_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(mi_client_end_dialog(f->mi, "c1", "12027930502430"), 0);
	assert_int_equal(f->n_seen, 0); /* sent from the loop, not from the call */
	run(f, 1, WAIT_S);
	assert_int_equal(f->n_seen, 1);
	assert_string_equal(f->seen[0].req, OSIPS_REQ("0fa.e1566887", "1"));
	assert_done(f, 0, "c1", true, "opensips-json reverse-hex");
	assert_logged(f, "call c1: dialog 12027930502430 ended through opensips-json, "
			 "reverse-hex id");
}

static void test_opensips_404_then_decimal(void **state)
{
	struct fixture *f = *state;

	f->script[0] = OSIPS_404;
	f->script[1] = OSIPS_OK;
	f->n_script = 2;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_OPENSIPS_JSON, 10, 0), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "c2", "12027930502430"), 0);
	run(f, 1, WAIT_S);
	assert_int_equal(f->n_seen, 2);
	assert_string_equal(f->seen[0].req, OSIPS_REQ("0fa.e1566887", "1"));
	assert_string_equal(f->seen[1].req, OSIPS_REQ("12027930502430", "2"));
	assert_done(f, 0, "c2", true, "opensips-json decimal");
	assert_logged(f, "call c2: dialog 12027930502430 ended through opensips-json, decimal id; "
			 "the reverse-hex DID got 404 Requested Dialog not found first");
}

static void test_opensips_404_twice(void **state)
{
	struct fixture *f = *state;

	f->script[0] = OSIPS_404;
	f->script[1] = OSIPS_404;
	f->script[2] = OSIPS_404;
	f->n_script = 3;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "c3", "1181799336689"), 0);
	run(f, 1, WAIT_S);
	assert_int_equal(f->n_seen, 2); /* the decimal once, no more */
	assert_done(f, 0, "c3", false, "404 Requested Dialog not found");
	assert_logged(f, "WARNING]: call c3: cannot end dialog 1181799336689 through "
			 "opensips-json: 404 Requested Dialog not found; the reverse-hex DID got "
			 "404 Requested Dialog not found first");
}

/* The proxy never answers: one timeout, nothing else (no fallback, no
 * retry), and its late answer is ignored. */
static void test_timeout(void **state)
{
	struct fixture *f = *state;
	double start;

	f->script[0] = OSIPS_OK;
	f->n_script = 1;
	f->delay_ms = 400;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0.2), 0);
	start = now();
	assert_int_equal(mi_client_end_dialog(f->mi, "c4", "12027930502430"), 0);
	run(f, 1, WAIT_S);
	assert_done(f, 0, "c4", false, "timeout");
	assert_true(f->done[0].at - start >= 0.19);
	assert_true(f->done[0].at - start < 1.5);
	assert_logged(f, "call c4: cannot end dialog 12027930502430 through opensips-json: no "
			 "reply from ");
	assert_logged(f, "/proxy.sock within 0.2 s");
	/* the late reply comes and goes */
	run(f, 0, 0.5);
	assert_int_equal(f->n_seen, 1);
	assert_int_equal(f->n_done, 1);
	assert_int_equal(f->pending, 0);
}

/* D13: auto with a decimal id, a proxy that does not answer in JSON. */
static void test_text_fallback(void **state)
{
	struct fixture *f = *state;

	f->script[0] = NOT_JSON;
	f->script[1] = TEXT_OK;
	f->n_script = 2;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "c5", "12027930502430"), 0);
	run(f, 1, WAIT_S);
	assert_int_equal(f->n_seen, 2);
	assert_string_equal(f->seen[0].req, OSIPS_REQ("0fa.e1566887", "1"));
	assert_string_equal(f->seen[1].req, ":dlg_end_dlg:\n12027930502430\n\n");
	assert_done(f, 0, "c5", true, "opensips-text decimal");
	assert_logged(f, "call c5: dialog 12027930502430 ended through opensips-text, decimal id; "
			 "JSON-RPC got the non-JSON reply '400 Parse_error' first");
}

/* mi_protocol = opensips-json is taken at its word: no fallback. */
static void test_no_fallback_when_explicit(void **state)
{
	struct fixture *f = *state;

	f->script[0] = NOT_JSON;
	f->script[1] = TEXT_OK;
	f->n_script = 2;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_OPENSIPS_JSON, 10, 0), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "c6", "12027930502430"), 0);
	run(f, 1, WAIT_S);
	assert_int_equal(f->n_seen, 1);
	assert_done(f, 0, "c6", false, "400 Parse_error");
}

/* --- Kamailio -------------------------------------------------------------------------- */

static void test_kamailio_pair(void **state)
{
	struct fixture *f = *state;

	f->script[0] = KAM_OK;
	f->script[1] = KAM_404;
	f->n_script = 2;
	f->delay_ms = 50; /* both are out before the first answer */
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "k1", "3989:4493"), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "k2", "1:2"), 0);
	run(f, 2, WAIT_S);
	assert_int_equal(f->n_seen, 2);
	assert_string_equal(f->seen[0].req, "{\"jsonrpc\": \"2.0\", \"method\": \"dlg.end_dlg\", "
					    "\"params\": [3989, 4493], \"id\": 1}");
	assert_string_equal(f->seen[1].req, "{\"jsonrpc\": \"2.0\", \"method\": \"dlg.end_dlg\", "
					    "\"params\": [1, 2], \"id\": 2}");
	assert_int_equal(f->seen[1].pending, 2);
	assert_done(f, 0, "k1", true, "kamailio-jsonrpc pair");
	assert_done(f, 1, "k2", false, "404 Dialog not found");
	assert_logged(f, "call k1: dialog 3989:4493 ended through kamailio-jsonrpc");
	assert_logged(f, "call k2: cannot end dialog 1:2 through kamailio-jsonrpc: 404 Dialog "
			 "not found");
}

/* mi_protocol = kamailio-jsonrpc with OpenSIPS' 64-bit id: split. */
static void test_kamailio_split(void **state)
{
	struct fixture *f = *state;

	f->script[0] = KAM_OK;
	f->n_script = 1;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_KAMAILIO_JSONRPC, 10, 0), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "k3", "12027930502430"), 0);
	run(f, 1, WAIT_S);
	assert_string_equal(f->seen[0].req, "{\"jsonrpc\": \"2.0\", \"method\": \"dlg.end_dlg\", "
					    "\"params\": [2800, 2022073630], \"id\": 1}");
	assert_done(f, 0, "k3", true, "kamailio-jsonrpc pair");
}

/* --- in flight ------------------------------------------------------------------------- */

/* Replies come newest first, after a stray one: each goes to its request. */
static void test_matched_by_id(void **state)
{
	struct fixture *f = *state;
	const char *want[3] = { "kamailio-jsonrpc pair", "404 Dialog not found",
				"kamailio-jsonrpc pair" };
	char cid[8];
	size_t i, j;

	f->script[0] = KAM_OK;
	f->script[1] = KAM_404;
	f->script[2] = KAM_OK;
	f->n_script = 3;
	f->hold = 3;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_KAMAILIO_JSONRPC, 3, 0), 0);
	for (i = 0; i < 3; i++) {
		snprintf(cid, sizeof(cid), "m%zu", i);
		assert_int_equal(mi_client_end_dialog(f->mi, cid, i == 1 ? "7:7" : "8:8"), 0);
	}
	/* a reply nobody asked for, before the real ones */
	{
		struct sockaddr_un to = { .sun_family = AF_UNIX };
		static const char stray[] = "{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":999}";

		strcpy(to.sun_path, f->our_path);
		assert_int_equal(sendto(f->proxy_fd, stray, sizeof(stray) - 1, 0,
					(struct sockaddr *)&to, sizeof(to)),
				 (ssize_t)sizeof(stray) - 1);
	}
	run(f, 3, WAIT_S);
	assert_int_equal(f->max_pending, 3);
	/* newest first */
	assert_string_equal(f->done[0].call_id, "m2");
	assert_string_equal(f->done[2].call_id, "m0");
	for (i = 0; i < 3; i++) {
		j = (size_t)(f->done[i].call_id[1] - '0');
		assert_string_equal(f->done[i].detail, want[j]);
	}
}

static void test_max_in_flight(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < 6; i++)
		f->script[i] = KAM_OK;
	f->n_script = 6;
	f->delay_ms = 30;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 3, 0), 0);
	for (i = 0; i < 6; i++)
		assert_int_equal(mi_client_end_dialog(f->mi, "n", "1:1"), 0);
	run(f, 6, WAIT_S);
	assert_int_equal(f->n_seen, 6);
	assert_int_equal(f->max_pending, 3);
	for (i = 0; i < 6; i++)
		assert_true(f->done[i].ok);
}

/* Text MI replies carry no id: one request at a time. */
static void test_text_one_at_a_time(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < 3; i++)
		f->script[i] = TEXT_OK;
	f->n_script = 3;
	f->delay_ms = 30;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_OPENSIPS_TEXT, 10, 0), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "t1", "3421:1804289383"), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "t2", "12027930502430"), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "t3", "5"), 0);
	run(f, 3, WAIT_S);
	assert_int_equal(f->max_pending, 1);
	assert_string_equal(f->seen[0].req, ":dlg_end_dlg:\n3421\n1804289383\n\n");
	assert_string_equal(f->seen[1].req, ":dlg_end_dlg:\n12027930502430\n\n");
	assert_string_equal(f->seen[2].req, ":dlg_end_dlg:\n5\n\n");
	assert_done(f, 0, "t1", true, "opensips-text pair");
	assert_done(f, 1, "t2", true, "opensips-text decimal");
	assert_done(f, 2, "t3", true, "opensips-text decimal");
}

/* auto: until the proxy has answered in JSON, a reply might come without
 * an id, so the first request goes alone; then up to max_connections. */
static void test_auto_probes_first(void **state)
{
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < 4; i++)
		f->script[i] = OSIPS_OK;
	f->n_script = 4;
	f->delay_ms = 30;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 3, 0), 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(mi_client_end_dialog(f->mi, "p", "12027930502430"), 0);
	run(f, 4, WAIT_S);
	assert_int_equal(f->seen[0].pending, 1);
	assert_true(f->seen[1].at >= f->done[0].at); /* after the first answer */
	assert_int_equal(f->max_pending, 3);
}

/* --- faults ---------------------------------------------------------------------------- */

static void test_proxy_not_running(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	double start = now();
	int fd;

	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), 0);
	assert_int_equal(mi_client_end_dialog(f->mi, "x1", "12027930502430"), 0);
	run(f, 1, WAIT_S);
	assert_done(f, 0, "x1", false, "send: No such file or directory");
	assert_true(f->done[0].at - start < 1.0); /* at once, not after a timeout */
	assert_logged(f, "call x1: cannot end dialog 12027930502430 through opensips-json: "
			 "cannot send to ");
	assert_logged(f, "proxy.sock: No such file or directory (is the proxy running?)");
	/* a socket file left by a proxy that died */
	strcpy(sun.sun_path, f->proxy_path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	assert_int_equal(mi_client_end_dialog(f->mi, "x2", "3989:4493"), 0);
	run(f, 2, WAIT_S);
	assert_done(f, 1, "x2", false, "send: Connection refused");
	assert_logged(f, "Connection refused (is the proxy running?)");
}

/* A proxy that stopped reading: once its socket queue is full, sends wait
 * (EAGAIN), under the same deadline; the loop keeps running. */
static void test_proxy_not_reading(void **state)
{
	struct fixture *f = *state;
	char buf[512];
	size_t i, queued = 0;

	f->deaf = true;
	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_KAMAILIO_JSONRPC, 20, 0.3), 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(mi_client_end_dialog(f->mi, "d", "1:2"), 0);
	run(f, 20, WAIT_S);
	for (i = 0; i < 20; i++)
		assert_done(f, i, "d", false, "timeout");
	assert_logged(f, "no reply from ");
	assert_logged(f, "within 0.3 s (its queue is full)");
	while (recv(f->proxy_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		queued++;
	/* net.unix.max_dgram_qlen (10 by default) and one more got through */
	print_message("# %zu requests reached the proxy's queue\n", queued);
	assert_true(queued >= 1 && queued < 20);
}

static void test_bad_dialog_id(void **state)
{
	struct fixture *f = *state;

	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), 0);
	capture_begin(f);
	assert_int_equal(mi_client_end_dialog(f->mi, "b1", "0fa.e1566887"), -EINVAL);
	assert_int_equal(mi_client_end_dialog(f->mi, "b2", ""), -EINVAL);
	assert_int_equal(mi_client_end_dialog(f->mi, "b3", NULL), -EINVAL);
	capture_end(f);
	assert_logged(f, "WARNING]: call b1: dialog_id '0fa.e1566887' is neither h_entry:h_id "
			 "nor a 64-bit decimal");
	/* no dialog (use_media_proxy) is no fault */
	assert_logged(f, "DEBUG]: call b2: no dialog_id");
	assert_null(strstr(f->log, "WARNING]: call b2"));
	run(f, 0, 0.1);
	assert_int_equal(f->n_seen, 0);
	assert_int_equal(f->n_done, 0);
}

/* A proxy that never answers: MI_CLIENT_MAX_QUEUE accepted, then -ENOBUFS;
 * only max_connections of them sent; close cancels every one. */
static void test_queue_limit(void **state)
{
	struct fixture *f = *state;
	size_t i;

	proxy_start(f);
	assert_int_equal(client_open(f, CONFIG_MI_KAMAILIO_JSONRPC, 4, 10), 0);
	for (i = 0; i < MI_CLIENT_MAX_QUEUE; i++)
		assert_int_equal(mi_client_end_dialog(f->mi, "q", "1:2"), 0);
	capture_begin(f);
	assert_int_equal(mi_client_end_dialog(f->mi, "over", "1:2"), -ENOBUFS);
	capture_end(f);
	assert_logged(f, "call over: 1024 MI requests are already waiting; not ending dialog 1:2");
	run(f, 0, 0.2);
	assert_int_equal(f->n_seen, 4);
	assert_int_equal(f->n_done, 0);
	capture_begin(f);
	mi_client_close(f->mi);
	f->mi = NULL;
	capture_end(f);
	assert_int_equal(f->n_done, MI_CLIENT_MAX_QUEUE);
	for (i = 0; i < f->n_done; i++)
		assert_done(f, i, "q", false, "cancelled");
	assert_logged(f, "call q: dialog 1:2 not ended: the dispatcher is shutting down (the "
			 "proxy has not answered yet)");
	assert_logged(f, "call q: dialog 1:2 not ended: the dispatcher is shutting down\n");
	assert_int_equal(access(f->our_path, F_OK), -1); /* removed */
}

static void test_socket_file(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	/* a stale socket file from an earlier run is replaced */
	strcpy(sun.sun_path, f->our_path);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	capture_begin(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), 0);
	capture_end(f);
	assert_logged(f, "removed the stale socket file");
	mi_client_close(f->mi);
	f->mi = NULL;
	assert_int_equal(access(f->our_path, F_OK), -1);
	/* anything else is not ours to delete */
	fd = open(f->our_path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	capture_begin(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), -EEXIST);
	assert_null(f->mi);
	capture_end(f);
	assert_int_equal(access(f->our_path, F_OK), 0);
	unlink(f->our_path);
	/* the proxy's path must not be our own */
	f->config.socket_path = MI_CLIENT_SOCKET;
	capture_begin(f);
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), -EINVAL);
	f->config.socket_path = "/x/../very/long/path/that/is/too/long/for/a/unix/socket/address/"
				"in/sockaddr_un/sun_path/which/has/108/bytes/only/so/this/fails";
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), -ENAMETOOLONG);
	f->config.socket_path = "";
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, 0), -EINVAL);
	f->config.socket_path = "proxy.sock";
	assert_int_equal(client_open(f, CONFIG_MI_AUTO, 10, -1), -EINVAL);
	capture_end(f);
	assert_null(f->mi);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_opensips_did, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opensips_404_then_decimal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opensips_404_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_fallback_when_explicit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kamailio_pair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kamailio_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_matched_by_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_text_one_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_probes_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_not_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy_not_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_dialog_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_file, setup, teardown),
	};

	log_init("test_mi_client", LOG_LEVEL_DEBUG, false);
	return cmocka_run_group_tests_name("mi_client", tests, NULL, NULL);
}
