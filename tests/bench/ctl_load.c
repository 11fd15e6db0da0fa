/*
 * tests/bench/ctl_load.c: a load client for media-dispatcher's module
 * socket (PROTOCOL.md §1), speaking like the SIP proxy's mediaproxy module:
 * several connections, one request in flight on each, requests as
 * Kamailio sends them (update request = offer, update reply = answer,
 * remove). One thread, epoll; the dispatcher and relays are the system
 * under test, so the client stays cheap.
 *
 *   ctl_load --socket PATH MODE [options]
 *     cycle    every connection repeats offer, answer, remove on a new
 *              call until --seconds have passed (a call whose offer
 *              failed is not continued; cycles counts calls whose three
 *              requests all succeeded)
 *     setup    offer + answer for --calls calls, which stay up
 *     remove   remove --calls calls set up before (same --prefix/--start)
 *     probe    one offer; prints its reply (exit 0 whatever it is)
 *   options: --conns N (8)  --seconds S (5)  --calls N  --prefix P (call)
 *            --start I (0)  --until-error (setup: stop at the first
 *            refused offer)  --retry N (an offer or answer answered
 *            "error" is sent again after --retry-ms (100), up to N
 *            times: for filling a relay, not for measuring)
 *            --timeout-ms T (10000: a reply later than this ends the run)
 *
 * Call i is call_id "P-i", from_tag "f-i", to_tag "t-i", one audio stream
 * each way. An offer or answer succeeds when its reply is "<ip> <port>"
 * with a port > 0, a remove when it is "removed"; anything else counts as
 * an error (the first one is quoted).
 *
 * Prints one JSON object (numbers as numbers): counts, wall time, rates
 * (setups_per_s = offer+answer pairs per second, cycles_per_s, ...), and
 * latency percentiles in ms of the successful requests, all and per kind
 * (failed requests are counted in "errors"). Exit 0 when
 * every request succeeded (with --until-error, offers refused with
 * "error" are counted as refusals, not errors), 3 when the run completed
 * but some requests failed, 1 when it could not run (connection lost, a
 * reply overdue), 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LOAD_MAX_CONNS	256
#define LOAD_REQ_MAX	1024
#define LOAD_REPLY_MAX	512

enum load_mode { MODE_CYCLE, MODE_SETUP, MODE_REMOVE, MODE_PROBE };
enum req_kind { REQ_OFFER, REQ_ANSWER, REQ_REMOVE, REQ_KINDS };

static const char *const kind_name[REQ_KINDS] = { "offer", "answer", "remove" };

struct load_opts {
	const char *socket_path;
	enum load_mode mode;
	int conns;
	double seconds;
	long calls;
	const char *prefix;
	long start;
	bool until_error;
	int retry;
	int retry_ms;
	int timeout_ms;
};

/* Latencies in ns, one growable array per request kind. */
struct lat_set {
	uint64_t *v;
	size_t n, cap;
};

struct conn {
	int fd;
	bool busy;			/* a request is in flight */
	enum req_kind kind;
	long call;			/* index of the call it works on */
	bool call_ok;			/* every request of that call succeeded */
	uint64_t sent_ns;
	uint64_t retry_at;		/* --retry: send the request again then (0: no) */
	int tries;			/* retries of the current request */
	char out[LOAD_REQ_MAX];
	size_t out_len, out_off;
	char in[LOAD_REPLY_MAX];
	size_t in_len;
};

struct load {
	struct load_opts o;
	int ep;
	struct conn conns[LOAD_MAX_CONNS];
	int idle_conns;			/* connections with nothing more to do */
	long next_call;			/* next call index to hand out */
	long end_call;			/* setup/remove: one past the last */
	uint64_t t0, t_end;		/* cycle: stop handing out calls at t_end */
	bool stop;			/* no new calls from now on */
	struct lat_set lat[REQ_KINDS];
	long ok[REQ_KINDS], errors;
	long refusals;			/* --until-error: offers answered "error" */
	long retries;
	long setups, cycles;		/* completed offer+answer pairs, full cycles */
	long refused_call;		/* setup --until-error: the call refused, or -1 */
	char first_error[240];
	char probe_reply[LOAD_REPLY_MAX];
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int lat_add(struct lat_set *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v (n > 0), in ms. */
static double pct_ms(const uint64_t *v, size_t n, double p)
{
	size_t rank;

	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1e6;
}

/* ---- requests ------------------------------------------------------------- */

/* PROTOCOL.md §1.3 and §1.5: Kamailio's headers in Kamailio's order,
 * including the empty-valued lines the dispatcher drops. */
static size_t build_request(char *buf, size_t len, const char *prefix, long i,
			    enum req_kind kind)
{
	unsigned int port = 10000 + 2 * (unsigned int)(i % 20000);
	int n;

	if (kind == REQ_REMOVE)
		n = snprintf(buf, len,
			     "remove\r\ncall_id: %s-%ld\r\nfrom_tag: f-%ld\r\nto_tag: t-%ld\r\n\r\n",
			     prefix, i, i, i);
	else if (kind == REQ_OFFER)
		n = snprintf(buf, len,
			     "update\r\ntype: request\r\ndialog_id: %ld:%ld\r\n"
			     "call_id: %s-%ld\r\ncseq: 1\r\nfrom_uri: alice@example.com\r\n"
			     "to_uri: bob@example.com\r\nfrom_tag: f-%ld\r\nto_tag: \r\n"
			     "user_agent: ctl_load caller\r\nsignaling_ip: 198.18.0.10\r\n"
			     "media_relay: \r\nmedia: audio:198.18.1.10:%u:sendrecv:ice=no\r\n\r\n",
			     i / 65536, i % 65536, prefix, i, i, port);
	else
		n = snprintf(buf, len,
			     "update\r\ntype: reply\r\ndialog_id: %ld:%ld\r\n"
			     "call_id: %s-%ld\r\ncseq: 1\r\nfrom_uri: alice@example.com\r\n"
			     "to_uri: bob@example.com\r\nfrom_tag: f-%ld\r\nto_tag: t-%ld\r\n"
			     "user_agent: ctl_load callee\r\nsignaling_ip: 198.18.0.10\r\n"
			     "media_relay: \r\nmedia: audio:198.18.2.20:%u:sendrecv:ice=no\r\n\r\n",
			     i / 65536, i % 65536, prefix, i, i, i, port);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* An update reply with media: "<ip> <port>", port 1..65535. */
static bool update_reply_ok(const char *r)
{
	const char *sp = strchr(r, ' ');
	char *end;
	long port;

	if (!sp || sp == r)
		return false;
	port = strtol(sp + 1, &end, 10);
	return *end == '\0' && port > 0 && port < 65536;
}

static int conn_flush(struct load *ld, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };

			return epoll_ctl(ld->ep, EPOLL_CTL_MOD, c->fd, &ev) ? -errno : 0;
		}
		if (n < 0)
			return -errno;
		c->out_off += (size_t)n;
	}
	return 0;
}

static int conn_send(struct load *ld, struct conn *c, enum req_kind kind, long call)
{
	if (kind != c->kind || call != c->call || !c->retry_at)
		c->tries = 0;
	c->retry_at = 0;
	c->kind = kind;
	c->call = call;
	c->out_len = build_request(c->out, sizeof(c->out), ld->o.prefix, call, kind);
	c->out_off = 0;
	c->in_len = 0;
	if (!c->out_len)
		return -EMSGSIZE;
	c->busy = true;
	c->sent_ns = now_ns();
	return conn_flush(ld, c);
}

/* ---- what a connection does next -------------------------------------------- */

/* The next call index for a connection, or -1 when there is none. */
static long take_call(struct load *ld)
{
	if (ld->stop)
		return -1;
	if (ld->o.mode == MODE_CYCLE) {
		if (now_ns() >= ld->t_end)
			return -1;
		return ld->next_call++;
	}
	if (ld->next_call >= ld->end_call)
		return -1;
	return ld->next_call++;
}

/* Starts the connection's next request; an idle connection stays idle. */
static int conn_next(struct load *ld, struct conn *c, bool last_ok)
{
	enum req_kind first = ld->o.mode == MODE_REMOVE ? REQ_REMOVE : REQ_OFFER;
	long call;

	if (c->busy) {
		c->busy = false;
		c->call_ok &= last_ok;
		if (last_ok && c->kind == REQ_OFFER && ld->o.mode != MODE_PROBE)
			return conn_send(ld, c, REQ_ANSWER, c->call);
		/* a call whose offer got ports ends with a remove, as a
		 * dialog does, even when its answer failed */
		if (c->kind == REQ_ANSWER && ld->o.mode == MODE_CYCLE)
			return conn_send(ld, c, REQ_REMOVE, c->call);
	}
	call = ld->o.mode == MODE_PROBE ? -1 : take_call(ld);
	if (call < 0) {
		ld->idle_conns++;
		return 0;
	}
	c->call_ok = true;
	return conn_send(ld, c, first, call);
}

static void note_error(struct load *ld, const struct conn *c, const char *what)
{
	ld->errors++;
	if (!ld->first_error[0])
		snprintf(ld->first_error, sizeof(ld->first_error), "%s %s-%ld: %.80s",
			 kind_name[c->kind], ld->o.prefix, c->call, what);
}

/* A whole reply line arrived for c's request. */
static int on_reply(struct load *ld, struct conn *c, const char *line)
{
	uint64_t took = now_ns() - c->sent_ns;
	bool ok;

	if (ld->o.mode == MODE_PROBE) {
		snprintf(ld->probe_reply, sizeof(ld->probe_reply), "%s", line);
		c->busy = false;
		ld->idle_conns++;
		return 0;
	}
	ok = c->kind == REQ_REMOVE ? !strcmp(line, "removed") : update_reply_ok(line);
	if (ok) {
		/* latency of answered requests; failures are counted apart */
		if (lat_add(&ld->lat[c->kind], took))
			return -ENOMEM;
		ld->ok[c->kind]++;
		if (c->kind == REQ_ANSWER)
			ld->setups++;
		if (c->kind == REQ_REMOVE && ld->o.mode == MODE_CYCLE && c->call_ok)
			ld->cycles++;	/* all three requests succeeded */
	} else if (c->kind != REQ_REMOVE && c->tries < ld->o.retry && !strcmp(line, "error")) {
		/* the relay may be back in a moment (filling only) */
		c->tries++;
		ld->retries++;
		c->busy = false;
		c->retry_at = now_ns() + (uint64_t)ld->o.retry_ms * 1000000u;
		return 0;
	} else if (ld->o.until_error && c->kind == REQ_OFFER && !strcmp(line, "error")) {
		/* the ceiling: no new calls from now on */
		if (ld->refused_call < 0 || c->call < ld->refused_call)
			ld->refused_call = c->call;
		ld->stop = true;
		ld->refusals++;
	} else {
		note_error(ld, c, line[0] ? line : "(empty reply)");
	}
	return conn_next(ld, c, ok);
}

static int conn_readable(struct load *ld, struct conn *c)
{
	char *crlf;
	ssize_t n;

	for (;;) {
		n = read(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		crlf = strstr(c->in, "\r\n");
		if (crlf) {
			if (!c->busy || crlf + 2 != c->in + c->in_len)
				return -EPROTO;	/* a reply nobody asked for */
			*crlf = '\0';
			return on_reply(ld, c, c->in);
		}
		if (c->in_len == sizeof(c->in) - 1)
			return -EMSGSIZE;
	}
}

/* ---- the run --------------------------------------------------------------------- */

static int conn_open(struct load *ld, struct conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	if (strlen(ld->o.socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, ld->o.socket_path);
	/* blocking connect (local, immediate), then non-blocking I/O */
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    fcntl(c->fd, F_SETFL, O_NONBLOCK) ||
	    epoll_ctl(ld->ep, EPOLL_CTL_ADD, c->fd, &ev))
		return -errno;
	return 0;
}

static int run(struct load *ld)
{
	struct epoll_event evs[LOAD_MAX_CONNS];
	uint64_t last_progress;
	int err;

	ld->ep = epoll_create1(EPOLL_CLOEXEC);
	if (ld->ep < 0)
		return -errno;
	for (int i = 0; i < ld->o.conns; i++) {
		ld->conns[i].fd = -1;
		err = conn_open(ld, &ld->conns[i]);
		if (err) {
			fprintf(stderr, "ctl_load: connect %s: %s\n", ld->o.socket_path,
				strerror(-err));
			return err;
		}
	}
	ld->t0 = now_ns();
	ld->t_end = ld->t0 + (uint64_t)(ld->o.seconds * 1e9);
	if (ld->o.mode == MODE_PROBE) {
		err = conn_send(ld, &ld->conns[0], REQ_OFFER, ld->o.start);
		if (err)
			return err;
	} else {
		for (int i = 0; i < ld->o.conns; i++) {
			err = conn_next(ld, &ld->conns[i], false);
			if (err)
				return err;
		}
	}
	last_progress = now_ns();
	while (ld->idle_conns < ld->o.conns) {
		int n = epoll_wait(ld->ep, evs, LOAD_MAX_CONNS, ld->retries ? 10 : 100);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (evs[i].events & EPOLLOUT) {
				struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

				if (epoll_ctl(ld->ep, EPOLL_CTL_MOD, c->fd, &ev))
					return -errno;
				err = conn_flush(ld, c);
				if (err)
					return err;
			}
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
				err = conn_readable(ld, c);
				if (err) {
					fprintf(stderr, "ctl_load: connection %d: %s\n",
						(int)(c - ld->conns), strerror(-err));
					return err;
				}
			}
		}
		for (int i = 0; i < ld->o.conns; i++) {
			struct conn *c = &ld->conns[i];

			if (c->retry_at && now_ns() >= c->retry_at) {
				err = conn_send(ld, c, c->kind, c->call);
				if (err)
					return err;
			}
		}
		if (n > 0) {
			last_progress = now_ns();
			continue;
		}
		for (int i = 0; i < ld->o.conns; i++) {
			struct conn *c = &ld->conns[i];

			if (c->busy && now_ns() - c->sent_ns > (uint64_t)ld->o.timeout_ms * 1000000u) {
				note_error(ld, c, "no reply in time");
				return -ETIMEDOUT;
			}
		}
		if (now_ns() - last_progress > 30000000000ull)
			return -ETIMEDOUT;
	}
	return 0;
}

/* ---- output ----------------------------------------------------------------------- */

/* null when nothing succeeded: there is no latency to speak of */
static void print_pcts(const char *prefix, struct lat_set *s)
{
	if (!s->n) {
		printf(", \"%sp50_ms\": null, \"%sp99_ms\": null, \"%sp999_ms\": null, "
		       "\"%smax_ms\": null", prefix, prefix, prefix, prefix);
		return;
	}
	qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	printf(", \"%sp50_ms\": %.4f, \"%sp99_ms\": %.4f, \"%sp999_ms\": %.4f, "
	       "\"%smax_ms\": %.4f", prefix, pct_ms(s->v, s->n, 50), prefix,
	       pct_ms(s->v, s->n, 99), prefix, pct_ms(s->v, s->n, 99.9), prefix,
	       (double)s->v[s->n - 1] / 1e6);
}

static void print_json_string(const char *name, const char *s)
{
	printf(", \"%s\": \"", name);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void report(struct load *ld, int err)
{
	static const char *const mode_name[] = { "cycle", "setup", "remove", "probe" };
	double wall = (double)(now_ns() - ld->t0) / 1e9;
	struct lat_set all = { 0 };
	long requests = 0;

	if (ld->o.mode == MODE_PROBE) {
		printf("{\"mode\": \"probe\"");
		print_json_string("reply", ld->probe_reply);
		printf(", \"refused\": %s}\n", !strcmp(ld->probe_reply, "error") ? "true" : "false");
		return;
	}
	for (int k = 0; k < REQ_KINDS; k++) {
		requests += ld->ok[k];
		for (size_t i = 0; i < ld->lat[k].n; i++)
			if (lat_add(&all, ld->lat[k].v[i]))
				break;
	}
	printf("{\"mode\": \"%s\", \"conns\": %d, \"seconds\": %.3f, \"requests_ok\": %ld, "
	       "\"errors\": %ld, \"setups\": %ld, \"cycles\": %ld, \"removes\": %ld, "
	       "\"requests_per_s\": %.1f, \"setups_per_s\": %.1f, \"cycles_per_s\": %.1f, "
	       "\"removes_per_s\": %.1f, \"next_call\": %ld, \"refused_call\": %ld, "
	       "\"refusals\": %ld, \"retries\": %ld, \"failed\": %s",
	       mode_name[ld->o.mode], ld->o.conns, wall, requests, ld->errors, ld->setups,
	       ld->cycles, ld->ok[REQ_REMOVE], requests / wall, ld->setups / wall,
	       ld->cycles / wall, ld->ok[REQ_REMOVE] / wall, ld->next_call, ld->refused_call,
	       ld->refusals, ld->retries, err ? "true" : "false");
	print_pcts("", &all);
	for (int k = 0; k < REQ_KINDS; k++) {
		char prefix[16];

		if (!ld->lat[k].n)
			continue;
		snprintf(prefix, sizeof(prefix), "%s_", kind_name[k]);
		print_pcts(prefix, &ld->lat[k]);
	}
	if (ld->first_error[0])
		print_json_string("first_error", ld->first_error);
	printf("}\n");
	free(all.v);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: ctl_load --socket PATH cycle|setup|remove|probe [--conns N] "
		"[--seconds S]\n       [--calls N] [--prefix P] [--start I] [--until-error] "
		"[--retry N] [--retry-ms T] [--timeout-ms T]\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct load_opts *o)
{
	static const char *const modes[] = { "cycle", "setup", "remove", "probe" };
	bool have_mode = false;

	*o = (struct load_opts){ .conns = 8, .seconds = 5, .calls = -1, .prefix = "call",
				 .retry_ms = 100, .timeout_ms = 10000 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool takes = true;

		if (!strcmp(a, "--socket") && v)
			o->socket_path = v;
		else if (!strcmp(a, "--conns") && v)
			o->conns = atoi(v);
		else if (!strcmp(a, "--seconds") && v)
			o->seconds = atof(v);
		else if (!strcmp(a, "--calls") && v)
			o->calls = atol(v);
		else if (!strcmp(a, "--prefix") && v)
			o->prefix = v;
		else if (!strcmp(a, "--start") && v)
			o->start = atol(v);
		else if (!strcmp(a, "--retry") && v)
			o->retry = atoi(v);
		else if (!strcmp(a, "--retry-ms") && v)
			o->retry_ms = atoi(v);
		else if (!strcmp(a, "--timeout-ms") && v)
			o->timeout_ms = atoi(v);
		else
			takes = false;
		if (takes) {
			i++;
			continue;
		}
		if (!strcmp(a, "--until-error")) {
			o->until_error = true;
			continue;
		}
		for (int m = 0; m < 4 && !have_mode; m++)
			if (!strcmp(a, modes[m])) {
				o->mode = (enum load_mode)m;
				have_mode = true;
				takes = true;
			}
		if (!takes)
			usage();
	}
	if (!have_mode || !o->socket_path || o->conns < 1 || o->conns > LOAD_MAX_CONNS ||
	    o->timeout_ms < 1 || o->retry_ms < 1 || strlen(o->prefix) > 64 ||
	    ((o->mode == MODE_SETUP || o->mode == MODE_REMOVE) && o->calls < 0))
		usage();
}

int main(int argc, char **argv)
{
	static struct load ld;
	int err;

	parse_args(argc, argv, &ld.o);
	ld.next_call = ld.o.start;
	ld.end_call = ld.o.start + (ld.o.calls > 0 ? ld.o.calls : 0);
	ld.refused_call = -1;
	if ((ld.o.mode == MODE_SETUP || ld.o.mode == MODE_REMOVE) && ld.o.conns > ld.o.calls)
		ld.o.conns = ld.o.calls > 0 ? (int)ld.o.calls : 1;
	if (ld.o.mode == MODE_PROBE)
		ld.o.conns = 1;
	err = run(&ld);
	report(&ld, err);
	return err ? 1 : ld.errors ? 3 : 0;
}
