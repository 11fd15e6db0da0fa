/* The module-facing UNIX socket (PROTOCOL.md §1.1): the socket file, the
 * accept loop, and per connection the read -> frame -> check -> handler ->
 * reply cycle, one request at a time. */
#include "proxy_socket.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "config.h"
#include "log.h"
#include "net.h"

/* Enough for the largest message lineproto accepts plus the line after it,
 * so a limit is always detected before read-ahead stops. */
#define PROXY_READ_AHEAD (LINEPROTO_MAX_MESSAGE + LINEPROTO_MAX_LINE + 4)
#define PROXY_BACKLOG 128
#define PROXY_ACCEPT_BATCH 16 /* accepts per wake-up, so a flood cannot starve the loop */
#define PROXY_EXCERPT 80      /* bytes of a bad line quoted in the log */

struct proxy_conn;

struct proxy_socket {
	struct event_base *base;
	int fd;
	struct event *accept_ev;
	struct event *pause_ev; /* re-enables accept after running out of fds */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	proxy_handler_fn handler;
	void *ctx;
	struct proxy_conn *conns;
	size_t n_conns;
	unsigned long next_id;
};

/* A request with the handler. conn is NULL once the connection is gone. */
struct proxy_pending {
	struct proxy_conn *conn;
	struct proxy_request req;
};

struct proxy_conn {
	struct proxy_socket *ps;
	struct bufferevent *bev;
	unsigned long id;      /* for log lines */
	long pid;              /* the worker's, from SO_PEERCRED; 0 if unknown */
	struct proxy_pending *pending;
	bool skipping;         /* resyncing after a bad request */
	bool closing;          /* close once the replies are out */
	bool eof;              /* peer sent EOF: finish what is buffered, then close */
	bool in_loop;          /* conn_process() is on the stack */
	struct proxy_conn *prev, *next;
};

static void conn_process(struct proxy_conn *conn);

/* --- log helpers ------------------------------------------------------------- */

/* Quotes at most PROXY_EXCERPT bytes of s with non-printables escaped. */
static const char *excerpt(struct lineproto_str s, char *buf, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < s.len && i < PROXY_EXCERPT && o + 5 < size; i++) {
		unsigned char c = (unsigned char)s.ptr[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
	}
	if (i < s.len && o + 4 < size)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o] = '\0';
	return buf;
}

/* Best effort for a log line: the call_id of a request that could not be
 * framed, if its call_id line came before the fault. */
static struct lineproto_str find_call_id(const char *data, size_t len)
{
	static const char key[] = "\ncall_id: ";
	const char *p = memmem(data, len, key, sizeof(key) - 1), *end;

	if (!p)
		return (struct lineproto_str){ "?", 1 };
	p += sizeof(key) - 1;
	end = p;
	while (end < data + len && *end != '\r' && *end != '\n')
		end++;
	return (struct lineproto_str){ p, (size_t)(end - p) };
}

/* --- replies -------------------------------------------------------------- */

static bool reply_ok(const char *reply)
{
	size_t len = strlen(reply);

	return len && len <= PROXY_REPLY_MAX && !strpbrk(reply, "\r\n");
}

static void conn_reply(struct proxy_conn *conn, const char *reply)
{
	struct evbuffer *out = bufferevent_get_output(conn->bev);

	if (!reply_ok(reply)) {
		log_error("proxy connection %lu: the reply is not one line of at most %d bytes; "
			  "sending error instead", conn->id, PROXY_REPLY_MAX);
		reply = "error";
	}
	if (evbuffer_add_printf(out, "%s\r\n", reply) < 0)
		log_error("proxy connection %lu: out of memory for a reply", conn->id);
}

/* The handler's completion (proxy_done_fn). */
static void pending_done(void *ctx, const char *reply)
{
	struct proxy_pending *p = ctx;
	struct proxy_conn *conn = p->conn;

	proxy_request_free(&p->req);
	free(p);
	if (!conn)
		return; /* the module hung up meanwhile */
	conn->pending = NULL;
	conn_reply(conn, reply);
	conn_process(conn);
}

/* --- one connection ---------------------------------------------------------- */

static void conn_free(struct proxy_conn *conn)
{
	struct proxy_socket *ps = conn->ps;

	if (conn->prev)
		conn->prev->next = conn->next;
	else
		ps->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	ps->n_conns--;
	if (conn->pending)
		conn->pending->conn = NULL;
	bufferevent_free(conn->bev);
	log_debug("proxy connection %lu closed", conn->id);
	free(conn);
}

/* Frees conn when it is finished and its replies are written. */
static void conn_maybe_close(struct proxy_conn *conn)
{
	if ((conn->closing || conn->eof) && !conn->pending &&
	    !evbuffer_get_length(bufferevent_get_output(conn->bev)))
		conn_free(conn);
}

static void conn_line_too_long(struct proxy_conn *conn, struct lineproto_str line)
{
	char buf[PROXY_EXCERPT * 4 + 8];

	log_warn("proxy connection %lu: a line is over %d bytes ('%s'); answering error and "
		 "closing the connection", conn->id, LINEPROTO_MAX_LINE,
		 excerpt(line, buf, sizeof(buf)));
	conn_reply(conn, "error");
	conn->closing = true;
	bufferevent_disable(conn->bev, EV_READ);
}

/* A message that could not be framed: answer, then skip to its end. */
static void conn_bad_frame(struct proxy_conn *conn, int rc, const struct lineproto_msg *msg,
			   const char *data, size_t len)
{
	const char *end = msg->bad_line.ptr ? msg->bad_line.ptr + msg->bad_line.len : data + len;
	struct lineproto_str cid = find_call_id(data, (size_t)(end - data));
	char buf[PROXY_EXCERPT * 4 + 8], cbuf[PROXY_EXCERPT * 4 + 8];

	if (rc == LINEPROTO_ERR_LINE_TOO_LONG) {
		conn_line_too_long(conn, msg->bad_line);
		return;
	}
	log_warn("proxy connection %lu: bad request (%s) at '%s', call_id %s; answering error",
		 conn->id, lineproto_strerror(rc), excerpt(msg->bad_line, buf, sizeof(buf)),
		 excerpt(cid, cbuf, sizeof(cbuf)));
	conn_reply(conn, "error");
	conn->skipping = true;
}

/* A framed message: check it and hand it over. Returns after the handler
 * was called (it may have answered already). */
static void conn_request(struct proxy_conn *conn, const struct lineproto_msg *msg,
			 struct evbuffer *in, size_t used)
{
	const struct lineproto_str *cid = lineproto_header_get(msg, "call_id");
	char buf[PROXY_EXCERPT * 4 + 8], cbuf[PROXY_EXCERPT * 4 + 8];
	struct proxy_pending *p = calloc(1, sizeof(*p));
	struct timespec ts;
	const char *fault = "out of memory";
	int rc = -ENOMEM;

	if (p)
		rc = proxy_request_parse(msg, &p->req, &fault);
	if (rc) {
		log_warn("proxy connection %lu: %s request rejected: %s (call_id %s); answering "
			 "error", conn->id, excerpt(msg->command, buf, sizeof(buf)), fault,
			 cid ? excerpt(*cid, cbuf, sizeof(cbuf)) : "?");
		free(p);
		evbuffer_drain(in, used);
		conn_reply(conn, "error");
		return;
	}
	/* The request owns copies of everything: the bytes can go now. */
	evbuffer_drain(in, used);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	p->req.received = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	p->conn = conn;
	conn->pending = p;
	log_debug("proxy connection %lu: %s call_id %s", conn->id,
		  p->req.command == PROXY_CMD_UPDATE ? "update" : "remove", p->req.call_id);
	conn->ps->handler(conn->ps->ctx, &p->req, pending_done, p);
}

/* Handles what is buffered as far as possible. Returns false when nothing
 * more can be done until more input arrives. */
static bool conn_step(struct proxy_conn *conn)
{
	struct evbuffer *in = bufferevent_get_input(conn->bev);
	size_t len = evbuffer_get_length(in), used;
	struct lineproto_msg msg;
	const char *data;
	int rc;

	if (!len)
		return false;
	data = (const char *)evbuffer_pullup(in, -1);
	if (!data)
		return false;
	if (conn->skipping) {
		rc = lineproto_skip_message(data, len, NULL, &used);
		if (rc == LINEPROTO_ERR_LINE_TOO_LONG)
			conn_line_too_long(conn, (struct lineproto_str){ data + used, len - used });
		evbuffer_drain(in, used);
		conn->skipping = rc != LINEPROTO_OK;
		return rc == LINEPROTO_OK;
	}
	rc = lineproto_parse(data, len, NULL, &msg, &used);
	if (rc == LINEPROTO_NEED_MORE) {
		evbuffer_drain(in, used);
		return false;
	}
	if (rc < 0) {
		conn_bad_frame(conn, rc, &msg, data, len);
		evbuffer_drain(in, used);
		return !conn->closing;
	}
	conn_request(conn, &msg, in, used);
	return true;
}

static void conn_process(struct proxy_conn *conn)
{
	struct evbuffer *out = bufferevent_get_output(conn->bev);

	if (conn->in_loop)
		return; /* the handler answered from inside conn_step() */
	conn->in_loop = true;
	while (!conn->pending && !conn->closing && evbuffer_get_length(out) < PROXY_MAX_OUTPUT &&
	       conn_step(conn))
		;
	conn->in_loop = false;
	conn_maybe_close(conn);
}

static void conn_on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

/* Output drained: finish a closing connection or resume a throttled one. */
static void conn_on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct proxy_conn *conn = arg;

	(void)bev;
	if (what & BEV_EVENT_ERROR) {
		log_debug("proxy connection %lu: %s", conn->id, strerror(errno));
		conn_free(conn);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		conn->eof = true;
		conn_process(conn);
	}
}

static long peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return 0;
	return (long)cred.pid;
}

static void conn_new(struct proxy_socket *ps, int fd)
{
	struct proxy_conn *conn = calloc(1, sizeof(*conn));

	if (conn)
		conn->bev = bufferevent_socket_new(ps->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!conn || !conn->bev) {
		log_error("proxy socket: out of memory for a new connection");
		free(conn);
		close(fd);
		return;
	}
	conn->ps = ps;
	conn->id = ++ps->next_id;
	conn->pid = peer_pid(fd);
	conn->next = ps->conns;
	if (ps->conns)
		ps->conns->prev = conn;
	ps->conns = conn;
	ps->n_conns++;
	bufferevent_setcb(conn->bev, conn_on_read, conn_on_write, conn_on_event, conn);
	bufferevent_setwatermark(conn->bev, EV_READ, 0, PROXY_READ_AHEAD);
	bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
	log_debug("proxy connection %lu from pid %ld", conn->id, conn->pid);
}

/* --- listening socket -------------------------------------------------------- */

static void on_accept_pause_end(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_socket *ps = arg;

	(void)fd;
	(void)what;
	event_add(ps->accept_ev, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	static const struct timeval pause = { 1, 0 };
	struct proxy_socket *ps = arg;
	int i, fd;

	(void)what;
	for (i = 0; i < PROXY_ACCEPT_BATCH; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_warn("proxy socket: cannot accept: %s; pausing for 1 s",
					 strerror(errno));
				event_del(ps->accept_ev);
				evtimer_add(ps->pause_ev, &pause);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
				   errno != ECONNABORTED) {
				log_error("proxy socket: accept: %s", strerror(errno));
			}
			return;
		}
		if (ps->n_conns >= PROXY_MAX_CONNECTIONS) {
			log_warn("proxy socket: %d connections open; refusing another",
				 PROXY_MAX_CONNECTIONS);
			close(fd);
			continue;
		}
		conn_new(ps, fd);
	}
}

/* Makes path free for bind(): absent, or a socket nobody listens on. */
static int claim_path(const char *path, const struct sockaddr_un *sun)
{
	struct stat st;
	int fd, rc, err;

	if (lstat(path, &st))
		return errno == ENOENT ? 0 : log_errno(-errno, "proxy socket: cannot check %s", path);
	if (!S_ISSOCK(st.st_mode)) {
		log_error("proxy socket: %s exists and is not a socket; not replacing it", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_errno(-errno, "proxy socket: socket");
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	err = errno;
	close(fd);
	if (!rc || err == EAGAIN || err == EINPROGRESS) {
		log_error("proxy socket: another process is listening on %s", path);
		return -EADDRINUSE;
	}
	if (err != ECONNREFUSED && err != ENOENT)
		return log_errno(-err, "proxy socket: cannot tell whether %s is in use", path);
	if (unlink(path) && errno != ENOENT)
		return log_errno(-errno, "proxy socket: cannot remove the stale %s", path);
	log_info("proxy socket: removed the stale socket file %s", path);
	return 0;
}

/* socket + bind (never group/world accessible before the chmod) + listen. */
static int bind_listen(struct proxy_socket *ps, const struct sockaddr_un *sun, mode_t mode)
{
	struct stat st;
	mode_t old;
	int rc;

	ps->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ps->fd < 0)
		return log_errno(-errno, "proxy socket: socket");
	old = umask(0177);
	rc = bind(ps->fd, (const struct sockaddr *)sun, sizeof(*sun));
	umask(old);
	if (rc)
		return log_errno(-errno, "proxy socket: cannot bind %s", ps->path);
	if (lstat(ps->path, &st) || chmod(ps->path, mode)) {
		rc = log_errno(-errno, "proxy socket: cannot set mode %04o on %s", (unsigned)mode,
			       ps->path);
		unlink(ps->path);
		return rc;
	}
	ps->dev = st.st_dev;
	ps->ino = st.st_ino;
	if (listen(ps->fd, PROXY_BACKLOG)) {
		rc = log_errno(-errno, "proxy socket: cannot listen on %s", ps->path);
		unlink(ps->path);
		ps->ino = 0;
		return rc;
	}
	return 0;
}

int proxy_socket_open(struct proxy_socket **out, const struct proxy_socket_options *opts)
{
	struct proxy_socket *ps = calloc(1, sizeof(*ps));
	struct sockaddr_un sun;
	int rc;

	*out = NULL;
	if (!ps)
		return log_errno(-ENOMEM, "proxy socket");
	ps->fd = -1;
	ps->base = opts->base;
	ps->handler = opts->handler;
	ps->ctx = opts->ctx;
	rc = config_runtime_path(opts->runtime_dir, opts->path, ps->path, sizeof(ps->path));
	if (rc) {
		log_error("proxy socket: path %s (runtime dir %s) is empty or longer than %zu bytes",
			  opts->path ? opts->path : "", opts->runtime_dir ? opts->runtime_dir : "",
			  sizeof(ps->path) - 1);
		goto fail;
	}
	rc = net_unix_sockaddr(&sun, ps->path);
	if (!rc)
		rc = claim_path(ps->path, &sun);
	if (!rc)
		rc = bind_listen(ps, &sun, opts->mode ? opts->mode : PROXY_SOCKET_MODE);
	if (rc)
		goto fail;
	ps->accept_ev = event_new(ps->base, ps->fd, EV_READ | EV_PERSIST, on_accept, ps);
	ps->pause_ev = evtimer_new(ps->base, on_accept_pause_end, ps);
	if (!ps->accept_ev || !ps->pause_ev || event_add(ps->accept_ev, NULL)) {
		rc = log_errno(-ENOMEM, "proxy socket: event setup");
		goto fail;
	}
	log_info("proxy socket: listening on %s (mode %04o)", ps->path,
		 (unsigned)(opts->mode ? opts->mode : PROXY_SOCKET_MODE));
	*out = ps;
	return 0;
fail:
	proxy_socket_close(ps);
	return rc;
}

/* Removes the socket file unless someone else's file took its place. */
static void remove_file(struct proxy_socket *ps)
{
	struct stat st;

	if (!ps->ino || lstat(ps->path, &st) || st.st_dev != ps->dev || st.st_ino != ps->ino)
		return;
	if (unlink(ps->path))
		log_warn("proxy socket: cannot remove %s: %s", ps->path, strerror(errno));
}

void proxy_socket_close(struct proxy_socket *ps)
{
	if (!ps)
		return;
	while (ps->conns)
		conn_free(ps->conns);
	if (ps->accept_ev)
		event_free(ps->accept_ev);
	if (ps->pause_ev)
		event_free(ps->pause_ev);
	if (ps->fd >= 0)
		close(ps->fd);
	remove_file(ps);
	free(ps);
}

const char *proxy_socket_path(const struct proxy_socket *ps)
{
	return ps->path;
}

size_t proxy_socket_connections(const struct proxy_socket *ps)
{
	return ps->n_conns;
}
