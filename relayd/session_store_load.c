/* Reading the session table back at start (session_store.h, PROTOCOL.md
 * D6): the file checked (fresh, ours, well formed), the flows the backend
 * kept matched to the saved streams by their ports, flows nobody claims
 * removed first (so that no re-installed flow meets a stale entry), then
 * each session re-created on its old ports. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "session_store_internal.h"

struct adopted {
	struct forward_pair pair;
	bool claimed;
};

struct load {
	struct session_store *st;
	struct session_table *t;
	const struct forward_backend *be;
	struct forward *fw;
	struct session_store_clocks clocks;
	struct adopted *adopted;
	size_t n_adopted, cap;
	int nomem;
	unsigned int restored, streams, taken_over;
};

/* ---- the flows a previous relay left -------------------------------------- */

static void collect_one(void *ctx, const struct forward_pair *pair,
			const struct forward_counters *forward,
			const struct forward_counters *backward)
{
	struct load *ld = ctx;

	(void)forward; /* read again, live, when the stream takes the pair over */
	(void)backward;
	if (ld->n_adopted == ld->cap) {
		size_t cap = ld->cap ? ld->cap * 2 : 64;
		struct adopted *a = realloc(ld->adopted, cap * sizeof(*a));

		if (!a) {
			ld->nomem = 1;
			return;
		}
		ld->adopted = a;
		ld->cap = cap;
	}
	ld->adopted[ld->n_adopted++] = (struct adopted){ .pair = *pair };
}

static void collect_adopted(struct load *ld)
{
	if (!ld->be || !ld->fw || !ld->be->foreach_adopted)
		return;
	ld->be->foreach_adopted(ld->fw, collect_one, ld);
	if (ld->nomem)
		log_error("session table: out of memory listing the %s flows left running; "
			  "some are not taken over", ld->be->name);
}

static bool pair_on_ports(const struct forward_pair *p, uint16_t a, uint16_t b)
{
	uint16_t x = p->forward.local.port, y = p->backward.local.port;

	return (x == a && y == b) || (x == b && y == a);
}

/* The adopted pair of one leg of a saved stream, claimed; -1 if none. */
static int claim(struct load *ld, const struct stream_saved *sv, int leg)
{
	uint16_t caller = (uint16_t)(sv->side[STREAM_CALLER].rtp_port + leg);
	uint16_t callee = (uint16_t)(sv->side[STREAM_CALLEE].rtp_port + leg);

	for (size_t i = 0; i < ld->n_adopted; i++) {
		if (!ld->adopted[i].claimed && pair_on_ports(&ld->adopted[i].pair, caller, callee)) {
			ld->adopted[i].claimed = true;
			return (int)i;
		}
	}
	return -1;
}

static void remove_pair(struct load *ld, const struct forward_pair *p, const char *why)
{
	int rc = ld->be->remove_pair(ld->fw, p, NULL, NULL);

	if (rc && rc != -ENOENT)
		log_warn("session table: cannot remove the %s flow on ports %u/%u: %s",
			 ld->be->name, p->forward.local.port, p->backward.local.port, strerror(-rc));
	else if (!rc)
		log_info("session table: %s flow on ports %u/%u removed: %s", ld->be->name,
			 p->forward.local.port, p->backward.local.port, why);
}

static void remove_unclaimed(struct load *ld)
{
	for (size_t i = 0; i < ld->n_adopted; i++)
		if (!ld->adopted[i].claimed)
			remove_pair(ld, &ld->adopted[i].pair, "no saved session has it");
}

/* The kernel's pair is what really forwards: its endpoints are the latched
 * addresses (they may be newer than the last write). */
static void take_over(const struct session *se, const struct adopted *a,
		      struct stream_saved *sv, int leg)
{
	uint16_t caller = (uint16_t)(sv->side[STREAM_CALLER].rtp_port + leg);
	const struct forward_flow *f = a->pair.forward.local.port == caller ? &a->pair.forward
									   : &a->pair.backward;
	struct forward_endpoint *c = &sv->side[STREAM_CALLER].latched[leg];
	struct forward_endpoint *e = &sv->side[STREAM_CALLEE].latched[leg];

	if (c->port != f->source.port || !net_addr_equal(&c->addr, &f->source.addr) ||
	    e->port != f->destination.port || !net_addr_equal(&e->addr, &f->destination.addr))
		log_info("session %s: ports %u/%u: the kernel forwards between other addresses "
			 "than saved; taking the kernel's", se->call_id, caller,
			 sv->side[STREAM_CALLEE].rtp_port + leg);
	*c = f->source;
	*e = f->destination;
}

/* ---- re-creating the sessions ----------------------------------------------- */

static uint64_t wall_to_mono(const struct session_store_clocks *c, double wall)
{
	double back;

	if (wall <= 0)
		return 0;
	if (wall >= c->wall)
		return c->mono;
	back = (c->wall - wall) * 1e9;
	return back >= (double)c->mono ? 1 : c->mono - (uint64_t)back;
}

static const char *port_fault(int rc)
{
	switch (rc) {
	case -EINVAL:
		return "outside port_range";
	case -EBUSY:
		return "taken by another saved stream";
	default:
		return strerror(-rc);
	}
}

static struct stream *restore_dp(struct load *ld, const struct session *se,
				 const struct session_store_stream *is, const int claims[2],
				 int *err)
{
	struct stream_saved sv = is->dp;
	bool adopted[2] = { false, false };
	struct stream *dp = NULL;

	*err = stream_new_on_ports(ld->t->opts.streams, sv.side[STREAM_CALLER].rtp_port,
				   sv.side[STREAM_CALLEE].rtp_port, &dp);
	if (*err) {
		log_warn("session %s: %s stream on ports %u/%u: %s; the session is not restored",
			 se->call_id, is->media_type, sv.side[STREAM_CALLER].rtp_port,
			 sv.side[STREAM_CALLEE].rtp_port, port_fault(*err));
		return NULL;
	}
	for (int leg = 0; leg < 2; leg++) {
		if (claims[leg] < 0)
			continue;
		take_over(se, &ld->adopted[claims[leg]], &sv, leg);
		adopted[leg] = true;
		ld->taken_over++;
	}
	sv.created_ns = wall_to_mono(&ld->clocks, is->created);
	sv.first_media_ns = wall_to_mono(&ld->clocks, is->first_media);
	*err = stream_restore(dp, &sv, adopted);
	if (*err) {
		log_warn("session %s: %s stream on ports %u/%u: a latched address is not "
			 "IPv4/IPv6; the session is not restored", se->call_id, is->media_type,
			 sv.side[STREAM_CALLER].rtp_port, sv.side[STREAM_CALLEE].rtp_port);
		stream_free(dp);
		return NULL;
	}
	return dp;
}

static int restore_stream(struct load *ld, struct session *se,
			  const struct session_store_stream *is, const int claims[2],
			  struct session_stream **out)
{
	struct stream *dp = NULL;
	struct session_stream *s;
	int err;

	if (is->has_dp && !(dp = restore_dp(ld, se, is, claims, &err)))
		return err;
	s = session_stream_restored(se, dp);
	if (!s) {
		stream_free(dp);
		return -ENOMEM;
	}
	memcpy(s->media_type, is->media_type, sizeof(s->media_type));
	memcpy(s->party, is->party, sizeof(s->party));
	s->end = is->end;
	s->timeout_wait = is->timeout_wait;
	s->started = is->started;
	s->ended = is->ended;
	s->start_time = is->start_time;
	s->end_time = is->end_time;
	if (!dp)
		s->final = is->final;
	*se->streams_tail = s;
	se->streams_tail = &s->next;
	se->stream_count++;
	*out = s;
	return 0;
}

static int restore_offers(struct session *se, const struct session_store_session *is,
			  struct session_stream *const *made)
{
	struct session_offer **tail = &se->offers;

	for (size_t i = 0; i < is->offer_count; i++) {
		const struct session_store_offer *io = &is->offers[i];
		struct session_offer *o = calloc(1, sizeof(*o) + io->count * sizeof(o->streams[0]));

		if (!o)
			return -ENOMEM;
		o->cseq[0] = io->cseq[0];
		o->cseq[1] = io->cseq[1];
		o->count = io->count;
		for (size_t k = 0; k < io->count; k++)
			o->streams[k] = made[io->streams[k]];
		*tail = o;
		tail = &o->next;
		se->offer_count++;
	}
	return 0;
}

/* The session's strings move from the image to the session. */
static struct session *session_from(struct session_table *t, struct session_store_session *is)
{
	struct session *se = calloc(1, sizeof(*se));

	if (!se)
		return NULL;
	se->table = t;
	se->streams_tail = &se->streams;
#define MOVE(f) (se->f = is->f, is->f = NULL)
	MOVE(call_id), MOVE(from_tag), MOVE(to_tag), MOVE(from_uri), MOVE(to_uri);
	MOVE(caller_ua), MOVE(callee_ua), MOVE(username), MOVE(dispatcher);
#undef MOVE
	se->has_cseq = is->has_cseq;
	se->cseq[0] = is->cseq[0];
	se->cseq[1] = is->cseq[1];
	se->started = is->started;
	se->start_time = is->start_time;
	return se;
}

/* A session that cannot come back entirely does not come back at all:
 * what it took is released, and so are the flows it had claimed. */
static void restore_session(struct load *ld, struct session_store_session *is, const int *claims)
{
	struct session_stream **made = calloc(is->stream_count, sizeof(*made));
	struct session *se;
	int rc = -ENOMEM;

	if (session_find(ld->t, lineproto_str_from(is->call_id), lineproto_str_from(is->from_tag))) {
		log_warn("session %s: saved twice; the second one is skipped", is->call_id);
		rc = -EEXIST;
		goto fail;
	}
	se = made ? session_from(ld->t, is) : NULL;
	if (!se)
		goto fail;
	rc = 0;
	for (size_t j = 0; j < is->stream_count && !rc; j++)
		rc = restore_stream(ld, se, &is->streams[j], claims + 2 * j, &made[j]);
	if (!rc)
		rc = restore_offers(se, is, made);
	if (rc) {
		session_free(se);
		goto fail;
	}
	session_insert(ld->t, se);
	ld->restored++;
	for (struct session_stream *s = se->streams; s; s = s->next)
		ld->streams += s->alive;
	free(made);
	return;

fail:
	if (rc == -ENOMEM)
		log_error("session %s: out of memory; the session is not restored", is->call_id);
	for (size_t j = 0; j < 2 * is->stream_count; j++)
		if (claims[j] >= 0)
			remove_pair(ld, &ld->adopted[claims[j]].pair, "its session was not restored");
	free(made);
}

/* ---- the file --------------------------------------------------------------- */

static int read_file(const char *path, char **text, size_t *len)
{
	struct stat sb;
	ssize_t n;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	*text = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		rc = -errno;
	} else if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > SESSION_STORE_MAX_BYTES) {
		rc = -EFBIG;
	} else if (!(*text = malloc((size_t)sb.st_size + 1))) {
		rc = -ENOMEM;
	}
	while (!rc && got < (size_t)sb.st_size) {
		n = read(fd, *text + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (rc) {
		free(*text);
		*text = NULL;
		return rc;
	}
	(*text)[got] = '\0';
	*len = got;
	return 0;
}

/* The saved image, if there is a usable one: 0, or -errno after logging
 * why the relay starts empty. */
static int load_image(struct load *ld, struct session_store_image *img)
{
	const char *path = ld->st->path;
	char why[256], relay_ip[INET6_ADDRSTRLEN];
	double age;
	char *text;
	size_t len = 0;
	int rc = read_file(path, &text, &len);

	if (rc == -ENOENT) {
		log_info("session table: no %s; starting with no sessions", path);
		return rc;
	}
	if (rc)
		return log_errno(rc, "session table: cannot read %s; starting with no sessions",
				 path);
	rc = session_store_parse(text, len, img, why, sizeof(why));
	free(text);
	if (rc) {
		log_error("session table: %s is unusable (%s); starting with no sessions", path,
			  rc == -ENOMEM ? "out of memory" : why);
		return rc;
	}
	net_addr_format(&ld->t->opts.relay_ip, relay_ip, sizeof(relay_ip));
	age = ld->clocks.wall - img->saved_at;
	if (strcmp(img->relay_ip, relay_ip)) {
		log_warn("session table: %s belongs to relay_ip %s, not %s; discarded", path,
			 img->relay_ip, relay_ip);
		rc = -EINVAL;
	} else if (age > 2.0 * ld->st->stream_timeout) {
		log_warn("session table: %s was saved %.0f s ago, more than twice stream_timeout "
			 "(%u s); discarded with its %zu sessions", path, age,
			 ld->st->stream_timeout, img->count);
		rc = -ESTALE;
	}
	if (rc)
		session_store_image_free(img);
	return rc;
}

static int *claim_all(struct load *ld, const struct session_store_image *img)
{
	size_t total = 0, k = 0;
	int *claims;

	for (size_t i = 0; i < img->count; i++)
		total += 2 * img->sessions[i].stream_count;
	claims = malloc((total + 1) * sizeof(*claims));
	if (!claims)
		return NULL;
	for (size_t i = 0; i < img->count; i++) {
		const struct session_store_session *is = &img->sessions[i];

		for (size_t j = 0; j < is->stream_count; j++, k += 2) {
			const struct session_store_stream *st = &is->streams[j];

			claims[k] = st->has_dp ? claim(ld, &st->dp, STREAM_RTP) : -1;
			claims[k + 1] = st->has_dp ? claim(ld, &st->dp, STREAM_RTCP) : -1;
		}
	}
	return claims;
}

int session_store_load(struct session_store *st, struct session_table *t,
		       const struct forward_backend *be, struct forward *fw)
{
	struct load ld = { .st = st, .t = t, .be = be, .fw = fw };
	struct session_store_image img = { 0 };
	int *claims = NULL;
	int rc = 0;

	st->loading = true;
	if ((!be || !be->in_kernel) && st->refresh_s > SESSION_STORE_REFRESH_USER_S)
		st->refresh_s = SESSION_STORE_REFRESH_USER_S; /* counts live here only */
	session_store_clocks_now(t, &ld.clocks);
	collect_adopted(&ld);
	if (!load_image(&ld, &img) && !(claims = claim_all(&ld, &img))) {
		log_error("session table: out of memory; starting with no sessions");
		session_store_image_free(&img);
		rc = -ENOMEM;
	}
	if (ld.n_adopted)
		remove_unclaimed(&ld);
	for (size_t i = 0, k = 0; claims && i < img.count; k += 2 * img.sessions[i].stream_count, i++)
		restore_session(&ld, &img.sessions[i], claims + k);
	if (claims)
		log_info("session table: restored %u of %zu sessions (%u streams, %u of %zu %s "
			 "flows taken over) from %s, saved %.1f s ago", ld.restored, img.count,
			 ld.streams, ld.taken_over, ld.n_adopted, be ? be->name : "backend",
			 st->path, ld.clocks.wall - img.saved_at);
	free(claims);
	free(ld.adopted);
	session_store_image_free(&img);
	session_store_start(st, t);
	return rc;
}
