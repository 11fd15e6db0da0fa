/* The session table on disk (session_store.h): when to write, writing
 * atomically, and the image of the live table that gets written. Reading
 * it back at start, with the backend's adopted flows, is in
 * session_store_load.c. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "session_store_internal.h"

/* ---- the image of the live table ------------------------------------------ */

double session_store_mono_to_wall(const struct session_store_clocks *c, uint64_t ns)
{
	if (!ns || ns >= c->mono)
		return c->wall;
	return c->wall - (double)(c->mono - ns) / 1e9;
}

void session_store_clocks_now(struct session_table *t, struct session_store_clocks *c)
{
	c->wall = session_now(t);
	c->mono = stream_env_now(t->opts.streams);
}

static void image_stream(const struct session_store_clocks *c, struct session_stream *s,
			 struct session_store_stream *o)
{
	memcpy(o->media_type, s->media_type, sizeof(o->media_type));
	memcpy(o->party, s->party, sizeof(o->party));
	o->alive = s->alive;
	o->end = s->end;
	o->timeout_wait = s->timeout_wait;
	o->started = s->started;
	o->ended = s->ended;
	o->start_time = s->start_time;
	o->end_time = s->end_time;
	if (s->dp && s->alive) {
		o->has_dp = true;
		stream_save(s->dp, &o->dp);
		o->created = session_store_mono_to_wall(c, o->dp.created_ns);
		o->first_media = o->dp.first_media_ns
					 ? session_store_mono_to_wall(c, o->dp.first_media_ns) : 0;
	} else {
		session_stream_stats(s, &o->final);
	}
}

static size_t stream_index(struct session_stream *const *all, size_t n,
			   const struct session_stream *s)
{
	for (size_t i = 0; i < n; i++)
		if (all[i] == s)
			return i;
	return 0; /* cannot happen: an offer's streams are the session's */
}

/* Strings are borrowed from the session: image_release() frees the rest. */
static int image_session(const struct session_store_clocks *c, struct session *se,
			 struct session_store_session *o)
{
	struct session_stream **all;
	struct session_offer *of;
	size_t n = 0;

	o->call_id = se->call_id;
	o->from_tag = se->from_tag;
	o->from_uri = se->from_uri;
	o->to_uri = se->to_uri;
	o->dispatcher = se->dispatcher;
	o->to_tag = se->to_tag;
	o->caller_ua = se->caller_ua;
	o->callee_ua = se->callee_ua;
	o->username = se->username;
	o->has_cseq = se->has_cseq;
	o->cseq[0] = se->cseq[0];
	o->cseq[1] = se->cseq[1];
	o->started = se->started;
	o->start_time = se->start_time;
	o->streams = calloc(se->stream_count + 1, sizeof(*o->streams));
	o->offers = calloc(se->offer_count + 1, sizeof(*o->offers));
	all = calloc(se->stream_count + 1, sizeof(*all));
	if (!o->streams || !o->offers || !all) {
		free(all);
		return -ENOMEM;
	}
	for (struct session_stream *s = se->streams; s; s = s->next) {
		all[n] = s;
		image_stream(c, s, &o->streams[n++]);
	}
	o->stream_count = n;
	for (of = se->offers; of; of = of->next) {
		struct session_store_offer *io = &o->offers[o->offer_count++];

		io->cseq[0] = of->cseq[0];
		io->cseq[1] = of->cseq[1];
		io->count = of->count;
		for (size_t k = 0; k < of->count; k++)
			io->streams[k] = stream_index(all, n, of->streams[k]);
	}
	free(all);
	return 0;
}

static void image_release(struct session_store_image *img)
{
	for (size_t i = 0; img->sessions && i < img->count; i++) {
		free(img->sessions[i].streams);
		free(img->sessions[i].offers);
	}
	free(img->sessions);
	memset(img, 0, sizeof(*img));
}

int session_store_snapshot(struct session_table *t, char **text)
{
	struct session_store_image img = { 0 };
	struct session_store_clocks c;
	int rc = 0;

	*text = NULL;
	session_store_clocks_now(t, &c);
	img.saved_at = c.wall;
	net_addr_format(&t->opts.relay_ip, img.relay_ip, sizeof(img.relay_ip));
	img.sessions = calloc(t->count + 1, sizeof(*img.sessions));
	if (!img.sessions)
		return -ENOMEM;
	for (struct session *se = t->head; se && !rc; se = se->next)
		rc = image_session(&c, se, &img.sessions[img.count++]);
	if (!rc)
		rc = session_store_format(&img, text);
	image_release(&img);
	return rc;
}

/* ---- writing the file ------------------------------------------------------ */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The directory's entry must reach the disk too, or a crash right after
 * the rename can bring back the old file. */
static void fsync_dir(const char *path)
{
	char copy[PATH_MAX];
	int fd;

	snprintf(copy, sizeof(copy), "%s", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	fsync(fd);
	close(fd);
}

/* path.tmp, fsync, rename over path: a reader (a relay starting after a
 * crash) sees the old table or the new one, never half of one. */
static int write_atomically(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, text, strlen(text));
	if (!rc)
		rc = write_all(fd, "\n", 1);
	if (!rc && fsync(fd))
		rc = -errno;
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	fsync_dir(path);
	return 0;
}

/* ---- when to write ---------------------------------------------------------- */

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A write's outcome, logged once per outage; the refresh timer retries. */
static void store_saved(struct session_store *st, int rc)
{
	if (rc) {
		if (!st->failing)
			log_errno(rc, "session table: cannot write %s; retrying every %u s",
				  st->path, st->refresh_s);
		st->failing = true;
		st->dirty = true;
		return;
	}
	if (st->failing)
		log_info("session table: %s written again", st->path);
	st->failing = false;
}

/* Builds the image of the table and writes it; 0 or -errno. */
static int write_table(struct session_store *st)
{
	char *text = NULL;
	int rc = session_store_snapshot(st->table, &text);

	if (!rc)
		rc = write_atomically(st->path, text);
	free(text);
	return rc;
}

/* Writes the table in this process. */
static int store_save(struct session_store *st)
{
	int rc = write_table(st);

	st->last_write_ms = monotonic_ms();
	st->dirty = false;
	store_saved(st, rc);
	return rc;
}

/* Waits for the writer child, if any, and takes its result. */
static void writer_reap(struct session_store *st, bool block)
{
	int status, rc;
	pid_t got;

	if (st->writer <= 0)
		return;
	do
		got = waitpid(st->writer, &status, block ? 0 : WNOHANG);
	while (got < 0 && errno == EINTR);
	if (got == 0)
		return; /* still running */
	if (got < 0)
		rc = -errno;
	else if (WIFEXITED(status))
		rc = -WEXITSTATUS(status);
	else
		rc = -EINTR; /* killed: its tmp file never replaced the table */
	if (st->writer_done) {
		int pidfd = event_get_fd(st->writer_done);

		event_free(st->writer_done);
		st->writer_done = NULL;
		close(pidfd);
	}
	st->writer = 0;
	store_saved(st, rc);
}

static void on_writer_done(evutil_socket_t fd, short what, void *arg)
{
	struct session_store *st = arg;

	(void)fd;
	(void)what;
	writer_reap(st, true);
	if (st->again) {
		st->again = false;
		session_store_changed(st);
	}
}

/* Writes the table without stalling the event loop: building the image of
 * thousands of sessions and formatting it takes tens of milliseconds, long
 * enough to miss the dispatcher's per-request deadline (D2). A forked child
 * gets a copy-on-write snapshot of the table for free, writes the file
 * atomically and exits with 0 or the errno; the loop only forks. The relay
 * is single-threaded, so the child may use malloc and friends. Falls back
 * to writing in this process when it cannot fork. */
static void store_save_async(struct session_store *st)
{
	int pidfd, rc;
	pid_t pid;

	if (st->writer > 0) {
		st->again = true; /* its snapshot predates this change */
		return;
	}
	pid = fork();
	if (pid == 0) {
		rc = write_table(st);
		_exit(rc < 0 && -rc < 256 ? -rc : (rc ? EIO : 0));
	}
	if (pid < 0) {
		store_save(st);
		return;
	}
	st->writer = pid;
	st->last_write_ms = monotonic_ms();
	st->dirty = false;
	pidfd = pidfd_open(pid, 0);
	st->writer_done = pidfd < 0 ? NULL :
			  event_new(st->base, pidfd, EV_READ, on_writer_done, st);
	if (!st->writer_done || event_add(st->writer_done, NULL)) {
		/* No way to hear about it: wait here instead. */
		if (st->writer_done)
			event_free(st->writer_done);
		st->writer_done = NULL;
		writer_reap(st, true);
		if (pidfd >= 0)
			close(pidfd);
	}
}

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	store_save_async(arg);
}

static void on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct session_store *st = arg;

	(void)fd;
	(void)what;
	if (st->dirty || session_table_count(st->table))
		store_save_async(st);
}

void session_store_changed(void *store)
{
	struct session_store *st = store;
	uint64_t now, due;
	struct timeval tv = { 0, 0 };

	st->dirty = true;
	if (!st->table || st->loading || evtimer_pending(st->debounce, NULL))
		return;
	now = monotonic_ms();
	due = st->last_write_ms + SESSION_STORE_DEBOUNCE_MS;
	if (due > now) {
		tv.tv_sec = (time_t)((due - now) / 1000);
		tv.tv_usec = (suseconds_t)((due - now) % 1000 * 1000);
	}
	evtimer_add(st->debounce, &tv);
}

int session_store_path(const char *runtime_dir, const struct net_addr *relay_ip, char *out,
		       size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (net_addr_format(relay_ip, ip, sizeof(ip)))
		return -EINVAL;
	if (snprintf(out, len, "%s/relay-%s.sessions.json", runtime_dir, ip) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int session_store_new(struct session_store **out, const struct session_store_options *opts)
{
	struct session_store *st;
	unsigned int half = opts->stream_timeout / 2;

	*out = NULL;
	if (!opts->base || !opts->path || strlen(opts->path) >= PATH_MAX - 8)
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	snprintf(st->path, sizeof(st->path), "%s", opts->path);
	st->base = opts->base;
	st->stream_timeout = opts->stream_timeout;
	st->refresh_s = half && half < SESSION_STORE_REFRESH_S ? half : SESSION_STORE_REFRESH_S;
	st->debounce = evtimer_new(opts->base, on_debounce, st);
	st->refresh = event_new(opts->base, -1, EV_PERSIST, on_refresh, st);
	if (!st->debounce || !st->refresh) {
		session_store_free(st, false);
		return -ENOMEM;
	}
	*out = st;
	return 0;
}

/* From now on changes are written; the restored state first of all. */
void session_store_start(struct session_store *st, struct session_table *t)
{
	struct timeval tv = { (time_t)st->refresh_s, 0 };

	st->table = t;
	st->loading = false;
	evtimer_add(st->refresh, &tv);
	session_store_changed(st);
}

int session_store_flush(struct session_store *st)
{
	if (!st || !st->table)
		return 0;
	if (evtimer_pending(st->debounce, NULL))
		evtimer_del(st->debounce);
	/* A child still writing an older snapshot must not rename it over
	 * this one afterwards. */
	writer_reap(st, true);
	return store_save(st);
}

void session_store_free(struct session_store *st, bool remove_file)
{
	char tmp[PATH_MAX];

	if (!st)
		return;
	if (st->writer > 0 && remove_file)
		kill(st->writer, SIGKILL); /* its table is about to be deleted */
	writer_reap(st, true);
	if (st->debounce)
		event_free(st->debounce);
	if (st->refresh)
		event_free(st->refresh);
	if (remove_file) {
		if (unlink(st->path) && errno != ENOENT)
			log_warn("session table: cannot remove %s: %s", st->path, strerror(errno));
		if (snprintf(tmp, sizeof(tmp), "%s.tmp", st->path) < (int)sizeof(tmp))
			unlink(tmp);
	}
	free(st);
}
