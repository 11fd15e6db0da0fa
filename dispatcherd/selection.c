/* Routes each module request to a relay (PROTOCOL.md §2.4-2.5, D1-D3):
 * one `job` per request, alive from selection_handle() until its reply.
 * A job for a new call walks a snapshot of candidate relay addresses (not
 * relay pointers: a relay may disconnect between attempts); requests for a
 * call whose creation is still in flight wait behind it, so two SIP workers
 * cannot place one call on two relays. */
#include "selection.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "net.h"

typedef char relay_ip_text[INET6_ADDRSTRLEN];

struct relay_load {
	relay_ip_text ip;
	uint64_t sessions, streams;
	double bps;
};

enum job_kind {
	JOB_WAITING, /* queued behind a JOB_NEW for the same call */
	JOB_NEW,     /* update for an unknown (or expired) call */
	JOB_KNOWN,   /* update for a call on a relay */
	JOB_REMOVE,
};

struct job {
	struct selection *sel;
	const struct proxy_request *req;
	proxy_done_fn done;
	void *done_ctx;
	enum job_kind kind;
	double start;              /* CLOCK_MONOTONIC s: the budget runs from here */
	struct relay_request *rr;  /* the attempt in flight */
	relay_ip_text relay_ip;    /* its relay */
	relay_ip_text *cand;       /* JOB_NEW: relays to try, in order */
	size_t n_cand, next_cand;
	char *dialog_id;           /* JOB_REMOVE: the call's, for accounting */
	struct job *prev, *next;   /* in flight */
	struct job *waiters, *next_waiter;
	/* A reply delivered from inside relay_request_send() is kept here and
	 * handled once that call has returned. */
	bool sending, sync_replied;
	int sync_status;
	char *sync_payload;
};

struct selection {
	struct selection_options opts;
	struct relay_load *loads;
	size_t n_loads;
	struct job *jobs;
	uint64_t rng;
	bool closing;
};

static void job_start(struct job *job);
static void job_try_next(struct job *job);

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: the order only has to differ from call to call. */
static uint64_t rng_next(struct selection *sel)
{
	sel->rng ^= sel->rng >> 12;
	sel->rng ^= sel->rng << 25;
	sel->rng ^= sel->rng >> 27;
	return sel->rng * 0x2545F4914F6CDD1DULL;
}

int selection_new(struct selection **out, const struct selection_options *opts)
{
	struct selection *sel = calloc(1, sizeof(*sel));

	*out = NULL;
	if (!sel)
		return -ENOMEM;
	sel->opts = *opts;
	if (getrandom(&sel->rng, sizeof(sel->rng), GRND_NONBLOCK) != sizeof(sel->rng))
		sel->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (!sel->rng)
		sel->rng = 0x9E3779B97F4A7C15ULL;
	*out = sel;
	return 0;
}

/* --- relay load (least_loaded) ------------------------------------------------ */

static struct relay_load *load_of(struct selection *sel, const char *ip, bool create)
{
	struct relay_load *loads;
	size_t i;

	for (i = 0; i < sel->n_loads; i++)
		if (!strcmp(sel->loads[i].ip, ip))
			return &sel->loads[i];
	if (!create || strlen(ip) >= sizeof(relay_ip_text))
		return NULL;
	loads = realloc(sel->loads, (sel->n_loads + 1) * sizeof(*loads));
	if (!loads)
		return NULL;
	sel->loads = loads;
	loads = &sel->loads[sel->n_loads++];
	memset(loads, 0, sizeof(*loads));
	strcpy(loads->ip, ip);
	return loads;
}

int selection_note_summary(struct selection *sel, const char *relay_ip, uint64_t session_count,
			   uint64_t stream_count, double bps_relayed)
{
	struct relay_load *load = load_of(sel, relay_ip, true);

	if (!load)
		return -ENOMEM;
	load->sessions = session_count;
	load->streams = stream_count;
	load->bps = bps_relayed;
	return 0;
}

static bool json_count(struct json_object *obj, const char *name, uint64_t *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return false;
	*out = (uint64_t)json_object_get_int64(v);
	return true;
}

int selection_note_summary_json(struct selection *sel, const char *relay_ip, const char *json,
				size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj = NULL, *bps;
	uint64_t sessions, streams;
	int rc = -EINVAL;

	if (!tok)
		return -ENOMEM;
	obj = json_tokener_parse_ex(tok, json, (int)len);
	if (obj && json_object_is_type(obj, json_type_object) &&
	    json_count(obj, "session_count", &sessions) &&
	    json_count(obj, "stream_count", &streams) &&
	    json_object_object_get_ex(obj, "bps_relayed", &bps) &&
	    (json_object_is_type(bps, json_type_double) || json_object_is_type(bps, json_type_int)))
		rc = selection_note_summary(sel, relay_ip, sessions, streams,
					    json_object_get_double(bps));
	json_object_put(obj);
	json_tokener_free(tok);
	return rc;
}

static int load_cmp(const struct relay_load *a, const struct relay_load *b)
{
	if (a->streams != b->streams)
		return a->streams < b->streams ? -1 : 1;
	if (a->bps != b->bps)
		return a->bps < b->bps ? -1 : 1;
	return 0;
}

/* --- candidates ---------------------------------------------------------------- */

static bool is_active(struct relay *relay)
{
	return relay && relay_get_state(relay) == RELAY_ACTIVE;
}

static void shuffle(struct selection *sel, relay_ip_text *c, size_t n)
{
	relay_ip_text tmp;
	size_t i, j;

	for (i = n; i > 1; i--) {
		j = (size_t)(rng_next(sel) % i);
		memcpy(tmp, c[i - 1], sizeof(tmp));
		memcpy(c[i - 1], c[j], sizeof(tmp));
		memcpy(c[j], tmp, sizeof(tmp));
	}
}

/* Stable insertion sort by load, so equal loads keep the random order. The
 * list is the connected relays: a handful. */
static void sort_by_load(struct selection *sel, relay_ip_text *c, size_t n)
{
	static const struct relay_load empty;
	const struct relay_load *la, *lb;
	relay_ip_text tmp;
	size_t i, j;

	for (i = 1; i < n; i++) {
		memcpy(tmp, c[i], sizeof(tmp));
		la = load_of(sel, tmp, false);
		for (j = i; j > 0; j--) {
			lb = load_of(sel, c[j - 1], false);
			if (load_cmp(la ? la : &empty, lb ? lb : &empty) >= 0)
				break;
			memcpy(c[j], c[j - 1], sizeof(tmp));
		}
		memcpy(c[j], tmp, sizeof(tmp));
	}
}

static bool same_addr(const char *a, const char *b)
{
	struct net_addr x, y;

	if (!strcmp(a, b))
		return true;
	return !net_addr_parse(a, &x) && !net_addr_parse(b, &y) && net_addr_equal(&x, &y);
}

/* Moves the module's media_relay to the front if it is a candidate. */
static void prefer(struct job *job)
{
	const char *want = job->req->media_relay;
	relay_ip_text tmp;
	size_t i;

	if (!want)
		return;
	for (i = 0; i < job->n_cand; i++)
		if (same_addr(job->cand[i], want))
			break;
	if (i == job->n_cand) {
		log_warn("call_id %s: media_relay %s is not a connected active relay; choosing "
			 "another", job->req->call_id, want);
		return;
	}
	memcpy(tmp, job->cand[i], sizeof(tmp));
	memmove(job->cand[1], job->cand[0], i * sizeof(tmp));
	memcpy(job->cand[0], tmp, sizeof(tmp));
}

static int build_candidates(struct job *job)
{
	struct selection *sel = job->sel;
	struct relay *relay;
	size_t n = 0;

	for (relay = relay_links_first(sel->opts.links); relay; relay = relay_links_next(relay))
		n += is_active(relay);
	job->cand = calloc(n ? n : 1, sizeof(*job->cand));
	if (!job->cand)
		return -ENOMEM;
	for (relay = relay_links_first(sel->opts.links); relay && job->n_cand < n;
	     relay = relay_links_next(relay))
		if (is_active(relay) && strlen(relay_ip(relay)) < sizeof(relay_ip_text))
			strcpy(job->cand[job->n_cand++], relay_ip(relay));
	shuffle(sel, job->cand, job->n_cand);
	if (sel->opts.config->selection == CONFIG_SELECT_LEAST_LOADED)
		sort_by_load(sel, job->cand, job->n_cand);
	prefer(job);
	return 0;
}

/* --- jobs ------------------------------------------------------------------------ */

static void job_free(struct job *job)
{
	free(job->cand);
	free(job->dialog_id);
	free(job->sync_payload);
	free(job);
}

static void job_unlink(struct job *job)
{
	struct selection *sel = job->sel;

	if (job->prev)
		job->prev->next = job->next;
	else if (sel->jobs == job)
		sel->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	job->prev = job->next = NULL;
}

/* Answers the module and releases the job; the requests that waited for it
 * start now (or fail, when the selection is closing). */
static void job_finish(struct job *job, const char *reply)
{
	struct job *w = job->waiters, *next;

	job_unlink(job);
	job->done(job->done_ctx, reply);
	job_free(job);
	for (; w; w = next) {
		next = w->next_waiter;
		w->next_waiter = NULL;
		if (w->sel->closing)
			job_finish(w, "error");
		else
			job_start(w);
	}
}

static double budget_left(const struct job *job)
{
	return SELECTION_BUDGET - (now_mono() - job->start);
}

static void job_on_result(struct job *job, int status, const char *payload, size_t len);

static void on_reply(void *ctx, int status, const char *payload, size_t len)
{
	struct job *job = ctx;

	if (job->sending) {
		job->sync_replied = true;
		job->sync_status = status;
		job->sync_payload = status ? NULL : strndup(payload, len);
		if (!status && !job->sync_payload)
			job->sync_status = -ENOMEM;
		return;
	}
	job->rr = NULL;
	job_on_result(job, status, payload, len);
}

/* Sends the job's request to relay. 0: the reply drives the job from now on
 * (it may already have, and the job may be gone); -errno: nothing sent. */
static int job_send(struct job *job, struct relay *relay)
{
	const struct proxy_request *req = job->req;
	double left = budget_left(job), timeout = job->sel->opts.config->relay_request_timeout;
	const char *cmd = req->command == PROXY_CMD_REMOVE ? "remove" : "update";

	if (left < SELECTION_MIN_ATTEMPT)
		return -ETIME;
	if (timeout > left)
		timeout = left;
	snprintf(job->relay_ip, sizeof(job->relay_ip), "%s", relay_ip(relay));
	job->sending = true;
	job->rr = relay_request_send(relay, cmd, req->headers, req->headers_len, timeout,
				     on_reply, job);
	job->sending = false;
	if (!job->rr) {
		int err = errno ? -errno : -EIO;

		log_warn("call_id %s: cannot send %s to relay %s: %s", req->call_id, cmd,
			 job->relay_ip, strerror(-err));
		free(job->sync_payload);
		job->sync_payload = NULL;
		job->sync_replied = false;
		return err;
	}
	if (job->sync_replied) {
		char *payload = job->sync_payload;

		job->rr = NULL;
		job->sync_payload = NULL;
		job->sync_replied = false;
		job_on_result(job, job->sync_status, payload ? payload : "",
			      payload ? strlen(payload) : 0);
		free(payload);
	}
	return 0;
}

static const char *status_text(int status)
{
	return status == -ETIMEDOUT    ? "no answer in time" :
	       status == -ECONNRESET   ? "connection lost" :
					 strerror(-status);
}

static bool payload_is(const char *payload, size_t len, const char *word)
{
	return len == strlen(word) && !memcmp(payload, word, len);
}

/* The relay accepted a new call: remember where it is. */
static void record_call(struct job *job)
{
	const struct proxy_request *req = job->req;
	struct calls *calls = job->sel->opts.calls;
	struct call *old = calls_find(calls, req->call_id, req->from_tag, req->to_tag);
	struct relay_load *load;
	int rc;

	if (old && old->expire_time)
		calls_remove(calls, old); /* an update revives an expired call elsewhere */
	rc = calls_add(calls, req->call_id, req->from_tag, job->relay_ip, req->dialog_id,
		       time(NULL), NULL);
	if (rc)
		log_error("call_id %s from_tag %s: placed on relay %s but not recorded: %s",
			  req->call_id, req->from_tag, job->relay_ip, strerror(-rc));
	else
		log_info("call_id %s from_tag %s: placed on relay %s", req->call_id,
			 req->from_tag, job->relay_ip);
	load = load_of(job->sel, job->relay_ip, true);
	if (load) {
		load->sessions++;
		load->streams += req->stream_count;
	}
}

static void new_call_result(struct job *job, int status, const char *payload, size_t len)
{
	const char *id = job->req->call_id;
	struct relay *relay;

	if (status) {
		log_warn("call_id %s: relay %s: %s; trying the next relay", id, job->relay_ip,
			 status_text(status));
	} else if (payload_is(payload, len, "halting")) {
		relay = relay_links_find(job->sel->opts.links, job->relay_ip);
		if (relay)
			relay_set_state(relay, RELAY_HALTING);
		log_info("call_id %s: relay %s is halting; trying the next relay", id,
			 job->relay_ip);
	} else if (payload_is(payload, len, "error")) {
		log_warn("call_id %s: relay %s refused the call; trying the next relay", id,
			 job->relay_ip);
	} else if (!proxy_update_reply_valid(payload, len)) {
		log_warn("call_id %s: relay %s answered an unusable '%.*s'; trying the next relay",
			 id, job->relay_ip, (int)(len > 80 ? 80 : len), payload);
	} else {
		record_call(job);
		job_finish(job, payload);
		return;
	}
	job_try_next(job);
}

static void known_call_result(struct job *job, int status, const char *payload, size_t len)
{
	const char *id = job->req->call_id;
	struct relay *relay;

	if (status) {
		log_warn("call_id %s: relay %s: %s", id, job->relay_ip, status_text(status));
	} else if (payload_is(payload, len, "error") || payload_is(payload, len, "halting")) {
		log_warn("call_id %s: relay %s answered %.*s", id, job->relay_ip, (int)len, payload);
		relay = relay_links_find(job->sel->opts.links, job->relay_ip);
		if (relay && payload[0] == 'h')
			relay_set_state(relay, RELAY_HALTING);
	} else if (!proxy_update_reply_valid(payload, len)) {
		log_warn("call_id %s: relay %s answered an unusable '%.*s'", id, job->relay_ip,
			 (int)(len > 80 ? 80 : len), payload);
	} else {
		job_finish(job, payload);
		return;
	}
	job_finish(job, "error");
}

/* The call's entry, if it still points at the relay the job asked. */
static struct call *job_call(struct job *job)
{
	const struct proxy_request *req = job->req;
	struct call *call = calls_find(job->sel->opts.calls, req->call_id, req->from_tag,
				       req->to_tag);

	return call && !strcmp(call->relay_ip, job->relay_ip) ? call : NULL;
}

static void remove_result(struct job *job, int status, const char *payload, size_t len)
{
	const struct selection_options *o = &job->sel->opts;
	const char *id = job->req->call_id;
	struct relay_load *load;
	struct call *call;

	if (status) {
		/* The relay may still hold the call: keep the entry for the
		 * resync or its `expired` to settle. */
		log_warn("call_id %s: remove on relay %s: %s", id, job->relay_ip,
			 status_text(status));
		job_finish(job, "error");
		return;
	}
	if (payload_is(payload, len, "error")) {
		/* The relay does not know the call: the entry is of no use. */
		log_warn("call_id %s: relay %s does not know the call; forgetting it", id,
			 job->relay_ip);
		call = job_call(job);
		if (call)
			calls_remove(o->calls, call);
		job_finish(job, "error");
		return;
	}
	log_info("call_id %s: removed from relay %s", id, job->relay_ip);
	if (o->session_ended)
		o->session_ended(o->ctx, job->relay_ip, job->dialog_id, payload);
	load = load_of(job->sel, job->relay_ip, false);
	if (load && load->sessions)
		load->sessions--;
	call = job_call(job);
	if (call)
		calls_remove(o->calls, call);
	job_finish(job, "removed");
}

static void job_on_result(struct job *job, int status, const char *payload, size_t len)
{
	switch (job->kind) {
	case JOB_NEW:
		new_call_result(job, status, payload, len);
		break;
	case JOB_KNOWN:
		known_call_result(job, status, payload, len);
		break;
	default:
		remove_result(job, status, payload, len);
		break;
	}
}

static void job_try_next(struct job *job)
{
	struct relay *relay;
	const char *ip;

	while (job->next_cand < job->n_cand) {
		if (budget_left(job) < SELECTION_MIN_ATTEMPT) {
			log_error("call_id %s: no suitable relay found within %.0f ms",
				  job->req->call_id, SELECTION_BUDGET * 1000);
			job_finish(job, "error");
			return;
		}
		ip = job->cand[job->next_cand++];
		relay = relay_links_find(job->sel->opts.links, ip);
		if (!is_active(relay))
			continue; /* gone or marked since the list was made */
		if (!job_send(job, relay))
			return;
	}
	log_error("call_id %s: no suitable relay found (%zu active relay(s) tried)",
		  job->req->call_id, job->n_cand);
	job_finish(job, "error");
}

/* A known call (or a remove): one attempt on the call's relay. */
static void job_to_relay(struct job *job, const struct call *call)
{
	struct relay *relay = relay_links_find(job->sel->opts.links, call->relay_ip);
	int rc;

	if (!relay) {
		log_warn("call_id %s: relay %s no longer connected", job->req->call_id,
			 call->relay_ip);
		job_finish(job, "error");
		return;
	}
	rc = job_send(job, relay);
	if (rc) {
		if (rc == -ETIME)
			log_error("call_id %s: no time left to ask relay %s", job->req->call_id,
				  call->relay_ip);
		job_finish(job, "error");
	}
}

static void job_remove(struct job *job, struct call *call)
{
	struct calls *calls = job->sel->opts.calls;

	if (!call) {
		log_warn("call_id %s from_tag %s: remove for an unknown call", job->req->call_id,
			 job->req->from_tag);
		job_finish(job, "error");
		return;
	}
	if (call->expire_time) {
		/* §2.5: the relay already ended it and reported it `expired`. */
		log_info("call_id %s: remove of an expired call answered locally",
			 job->req->call_id);
		calls_remove(calls, call);
		job_finish(job, "removed");
		return;
	}
	if (call->dialog_id) {
		job->dialog_id = strdup(call->dialog_id);
		if (!job->dialog_id) {
			job_finish(job, "error");
			return;
		}
	}
	job->kind = JOB_REMOVE;
	job_to_relay(job, call);
}

static void job_new_call(struct job *job)
{
	job->kind = JOB_NEW;
	if (build_candidates(job)) {
		log_error("call_id %s: out of memory", job->req->call_id);
		job_finish(job, "error");
		return;
	}
	job_try_next(job);
}

/* A new call of this request already being placed, if any. */
static struct job *placing(struct selection *sel, const struct proxy_request *req)
{
	const struct proxy_request *r;
	struct job *job;

	for (job = sel->jobs; job; job = job->next) {
		if (job->kind != JOB_NEW)
			continue;
		r = job->req;
		if (!strcmp(r->call_id, req->call_id) &&
		    (!strcmp(r->from_tag, req->from_tag) ||
		     (req->to_tag && !strcmp(r->from_tag, req->to_tag))))
			return job;
	}
	return NULL;
}

static void job_start(struct job *job)
{
	struct selection *sel = job->sel;
	const struct proxy_request *req = job->req;
	struct job *owner = placing(sel, req);
	struct call *call;

	if (owner) {
		job->kind = JOB_WAITING;
		job->next_waiter = owner->waiters;
		owner->waiters = job;
		return;
	}
	job->next = sel->jobs;
	if (sel->jobs)
		sel->jobs->prev = job;
	sel->jobs = job;
	call = calls_find(sel->opts.calls, req->call_id, req->from_tag, req->to_tag);
	if (req->command == PROXY_CMD_REMOVE) {
		job_remove(job, call);
	} else if (call && !call->expire_time) {
		job->kind = JOB_KNOWN;
		job_to_relay(job, call);
	} else {
		job_new_call(job);
	}
}

void selection_handle(void *ctx, const struct proxy_request *req, proxy_done_fn done,
		      void *done_ctx)
{
	struct selection *sel = ctx;
	struct job *job = calloc(1, sizeof(*job));

	if (!job || sel->closing) {
		log_error("call_id %s: %s", req->call_id, job ? "shutting down" : "out of memory");
		free(job);
		done(done_ctx, "error");
		return;
	}
	job->sel = sel;
	job->req = req;
	job->done = done;
	job->done_ctx = done_ctx;
	job->start = req->received > 0 ? req->received : now_mono();
	job_start(job);
}

void selection_free(struct selection *sel)
{
	struct job *job;

	if (!sel)
		return;
	sel->closing = true;
	while ((job = sel->jobs)) {
		if (job->rr)
			relay_request_cancel(job->rr);
		job->rr = NULL;
		job_finish(job, "error");
	}
	free(sel->loads);
	free(sel);
}
