/* The accounting engine (see accounting.h): spool in front, one delivery
 * thread per backend behind it. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounting.h"
#include "backend.h"
#include "log.h"
#include "record.h"
#include "spool.h"

#define BACKOFF_FIRST_S 1
#define BACKOFF_MAX_S 60
#define FULL_LOG_INTERVAL_S 60 /* how often "spool full" is repeated */

struct accounting;

struct worker {
	struct accounting *acct;
	size_t reader; /* spool cursor index = position in acct->workers */
	struct accounting_backend backend;
	pthread_t thread;
	bool running;
	/* under acct->lock */
	bool reopen_pending;
	char last_error[256];
	unsigned int failures; /* consecutive, for the backoff and the logs */
	uint64_t delivered;
};

struct accounting {
	const struct mp_config *config;
	struct spool *spool;
	struct worker workers[3];
	size_t count;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* CLOCK_MONOTONIC */
	uint64_t generation; /* bumped by every append, under lock */
	bool stopping;
	uint64_t not_spooled;
	time_t last_full_log;
};

typedef int (*backend_open_fn)(struct accounting_backend *, const struct mp_config *, char *,
			       size_t);

static const struct {
	unsigned int bit;
	backend_open_fn open;
} backend_kinds[] = {
	{ CONFIG_ACCT_JSONL, accounting_jsonl_open },
	{ CONFIG_ACCT_DATABASE, accounting_database_open },
	{ CONFIG_ACCT_RADIUS, accounting_radius_open },
};

static void deadline_in(struct timespec *ts, unsigned int seconds)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += seconds;
}

static unsigned int backoff_seconds(unsigned int failures)
{
	unsigned int s = BACKOFF_FIRST_S;

	while (failures-- > 1 && s < BACKOFF_MAX_S)
		s *= 2;
	return s < BACKOFF_MAX_S ? s : BACKOFF_MAX_S;
}

/* Waits until woken, stopping, or the deadline (NULL = none). Called and
 * returns with the lock held. */
static void worker_wait(struct worker *w, const struct timespec *until)
{
	struct accounting *acct = w->acct;

	if (until)
		pthread_cond_timedwait(&acct->wake, &acct->lock, until);
	else
		pthread_cond_wait(&acct->wake, &acct->lock);
}

/* One record: 0 = done with it (delivered or given up), -EAGAIN = retry. */
static int worker_deliver(struct worker *w, const struct spool_entry *entry)
{
	struct accounting *acct = w->acct;
	struct accounting_record rec;
	struct json_object *owned;
	char err[256] = "";
	int rc;

	rc = accounting_record_parse(entry->json, entry->len, &rec, &owned);
	if (rc) {
		log_error("accounting %s: spooled record %llu is not a valid record; skipped: %s",
			  w->backend.name, (unsigned long long)entry->seq, entry->json);
		return 0;
	}
	rc = w->backend.deliver(w->backend.state, &rec, err, sizeof(err));
	if (rc == -EAGAIN) {
		pthread_mutex_lock(&acct->lock);
		/* Say it once per outage and again when the reason changes. */
		if (!w->failures || strcmp(w->last_error, err))
			log_warn("accounting %s: call %s not delivered yet, will retry: %s",
				 w->backend.name, rec.call_id, err);
		snprintf(w->last_error, sizeof(w->last_error), "%s", err);
		w->failures++;
		pthread_mutex_unlock(&acct->lock);
	} else if (rc) {
		log_error("accounting %s: call %s can never be delivered (%s); record given up: %s",
			  w->backend.name, rec.call_id, err[0] ? err : strerror(-rc), entry->json);
		rc = 0;
	} else {
		pthread_mutex_lock(&acct->lock);
		if (w->failures)
			log_info("accounting %s: delivering again after %u failed attempt(s)",
				 w->backend.name, w->failures);
		w->failures = 0;
		w->last_error[0] = '\0';
		w->delivered++;
		pthread_mutex_unlock(&acct->lock);
		log_debug("accounting %s: delivered call %s (record %llu)", w->backend.name,
			  rec.call_id, (unsigned long long)entry->seq);
	}
	json_object_put(owned);
	return rc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct accounting *acct = w->acct;

	pthread_mutex_lock(&acct->lock);
	while (!acct->stopping) {
		struct spool_entry entry;
		uint64_t seen = acct->generation;
		int rc;

		if (w->reopen_pending) {
			w->reopen_pending = false;
			pthread_mutex_unlock(&acct->lock);
			if (w->backend.reopen)
				w->backend.reopen(w->backend.state);
			pthread_mutex_lock(&acct->lock);
			continue;
		}
		pthread_mutex_unlock(&acct->lock);

		rc = spool_next(acct->spool, w->reader, &entry);
		if (!rc) {
			rc = worker_deliver(w, &entry);
			if (!rc && spool_advance(acct->spool, w->reader))
				rc = -EAGAIN; /* logged by the spool; same record again */
		} else if (rc != -ENOENT) {
			log_error("accounting %s: cannot read the spool: %s", w->backend.name,
				  strerror(-rc));
			rc = -EAGAIN;
		}

		pthread_mutex_lock(&acct->lock);
		if (rc == -ENOENT) {
			/* Nothing to do: sleep unless a record came in meanwhile. */
			if (!acct->stopping && seen == acct->generation && !w->reopen_pending)
				worker_wait(w, NULL);
		} else if (rc == -EAGAIN) {
			struct timespec until;

			deadline_in(&until, backoff_seconds(w->failures ? w->failures : 1));
			while (!acct->stopping && !w->reopen_pending) {
				struct timespec now;

				worker_wait(w, &until);
				clock_gettime(CLOCK_MONOTONIC, &now);
				if (now.tv_sec > until.tv_sec ||
				    (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
					break;
			}
		}
	}
	pthread_mutex_unlock(&acct->lock);
	return NULL;
}

static int open_backends(struct accounting *acct, const char **names)
{
	char err[512];

	for (size_t i = 0; i < sizeof(backend_kinds) / sizeof(backend_kinds[0]); i++) {
		struct worker *w = &acct->workers[acct->count];

		if (!(acct->config->dispatcher.accounting & backend_kinds[i].bit))
			continue;
		if (backend_kinds[i].open(&w->backend, acct->config, err, sizeof(err))) {
			log_error("accounting: %s", err);
			return -1;
		}
		w->acct = acct;
		w->reader = acct->count;
		names[acct->count++] = w->backend.name;
	}
	return 0;
}

static int start_workers(struct accounting *acct)
{
	for (size_t i = 0; i < acct->count; i++) {
		struct worker *w = &acct->workers[i];
		int rc = pthread_create(&w->thread, NULL, worker_main, w);

		if (rc) {
			log_error("accounting: cannot start the %s thread: %s", w->backend.name,
				  strerror(rc));
			return -1;
		}
		w->running = true;
	}
	return 0;
}

int accounting_open(struct accounting **out, const struct mp_config *cfg)
{
	const struct config_dispatcher *d = &cfg->dispatcher;
	const char *names[3];
	struct accounting *acct;
	pthread_condattr_t attr;

	*out = NULL;
	if (!d->accounting)
		return 0;
	acct = calloc(1, sizeof(*acct));
	if (!acct) {
		log_error("accounting: out of memory");
		return -1;
	}
	acct->config = cfg;
	pthread_mutex_init(&acct->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&acct->wake, &attr);
	pthread_condattr_destroy(&attr);

	if (open_backends(acct, names))
		goto fail;
	struct spool_options so = {
		.dir = d->accounting_spool,
		.max_bytes = (uint64_t)d->accounting_spool_size << 20,
		.readers = names, .reader_count = acct->count,
	};
	if (spool_open(&acct->spool, &so))
		goto fail; /* logged with the path */
	if (start_workers(acct))
		goto fail;
	for (size_t i = 0; i < acct->count; i++) {
		struct spool_backlog b;

		spool_backlog(acct->spool, i, time(NULL), &b);
		log_info("accounting: %s backend ready, %llu record(s) to deliver from %s",
			 acct->workers[i].backend.name, (unsigned long long)b.pending,
			 d->accounting_spool);
	}
	*out = acct;
	return 0;
fail:
	accounting_close(acct);
	return -1;
}

static const char *string_field(struct json_object *obj, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
		return "(none)";
	return json_object_get_string(v);
}

int accounting_submit(struct accounting *acct, struct json_object *record)
{
	size_t len;
	const char *json = json_object_to_json_string_length(record, JSON_C_TO_STRING_PLAIN,
							     &len);
	int rc;

	if (!json) {
		log_error("accounting: out of memory writing the record of call %s",
			  string_field(record, "call_id"));
		return -ENOMEM;
	}
	rc = spool_append(acct->spool, json, len);
	pthread_mutex_lock(&acct->lock);
	if (!rc) {
		acct->generation++;
		pthread_cond_broadcast(&acct->wake);
	} else {
		time_t now = time(NULL);

		acct->not_spooled++;
		if (rc == -ENOSPC && now - acct->last_full_log >= FULL_LOG_INTERVAL_S) {
			acct->last_full_log = now;
			log_error("accounting: the spool %s is FULL (accounting_spool_size = %u MiB): "
				  "backends are not keeping up; records are written to this log "
				  "until it drains", acct->config->dispatcher.accounting_spool,
				  acct->config->dispatcher.accounting_spool_size);
		}
	}
	pthread_mutex_unlock(&acct->lock);
	if (rc)
		log_error("accounting: record of call %s NOT spooled (%s); the record: %s",
			  string_field(record, "call_id"), strerror(-rc), json);
	return rc;
}

int accounting_status(void *ctx, struct json_object *backends)
{
	struct accounting *acct = ctx;
	time_t now = time(NULL);

	if (!acct)
		return 0;
	for (size_t i = 0; i < acct->count; i++) {
		struct worker *w = &acct->workers[i];
		struct json_object *o = json_object_new_object();
		struct spool_backlog b;

		if (!o)
			return -ENOMEM;
		spool_backlog(acct->spool, w->reader, now, &b);
		pthread_mutex_lock(&acct->lock);
		json_object_object_add(o, "backend", json_object_new_string(w->backend.name));
		json_object_object_add(o, "pending", json_object_new_uint64(b.pending));
		json_object_object_add(o, "oldest_age_s", json_object_new_double(b.oldest_age_s));
		json_object_object_add(o, "last_error", w->last_error[0] ?
				       json_object_new_string(w->last_error) : NULL);
		json_object_object_add(o, "delivered", json_object_new_uint64(w->delivered));
		json_object_object_add(o, "not_spooled", json_object_new_uint64(acct->not_spooled));
		pthread_mutex_unlock(&acct->lock);
		if (json_object_array_add(backends, o)) {
			json_object_put(o);
			return -ENOMEM;
		}
	}
	return 0;
}

void accounting_reopen(struct accounting *acct)
{
	if (!acct)
		return;
	pthread_mutex_lock(&acct->lock);
	for (size_t i = 0; i < acct->count; i++)
		acct->workers[i].reopen_pending = true;
	pthread_cond_broadcast(&acct->wake);
	pthread_mutex_unlock(&acct->lock);
}

void accounting_close(struct accounting *acct)
{
	if (!acct)
		return;
	pthread_mutex_lock(&acct->lock);
	acct->stopping = true;
	pthread_cond_broadcast(&acct->wake);
	pthread_mutex_unlock(&acct->lock);
	for (size_t i = 0; i < acct->count; i++) {
		struct worker *w = &acct->workers[i];

		if (w->running)
			pthread_join(w->thread, NULL);
		if (w->backend.close)
			w->backend.close(w->backend.state);
	}
	if (acct->spool)
		spool_close(acct->spool);
	pthread_cond_destroy(&acct->wake);
	pthread_mutex_destroy(&acct->lock);
	free(acct);
}
