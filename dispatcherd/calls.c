/* The call -> relay table (PROTOCOL.md D3): a binary tree (glibc tsearch)
 * for lookups, whose worst case does not depend on Call-IDs chosen by a
 * peer, plus a list for walks; and its state file across restarts (§2.9). */
#include "calls.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "log.h"
#include "net.h"
#include "proxy_request.h"

#define CALLS_STATE_MAGIC "mediaproxy_dispatcher_state"
#define CALLS_STATE_VERSION 1
#define CALLS_STATE_MAX_FILE (256u << 20) /* bytes; far above any real table */

struct calls {
	void *root;    /* tsearch tree of struct call * */
	struct call *head, *tail;
	size_t count;
};

static int call_cmp(const void *a, const void *b)
{
	const struct call *x = a, *y = b;
	int rc = strcmp(x->call_id, y->call_id);

	return rc ? rc : strcmp(x->from_tag, y->from_tag);
}

struct calls *calls_new(void)
{
	return calloc(1, sizeof(struct calls));
}

static void call_free(struct call *call)
{
	free(call->call_id);
	free(call->from_tag);
	free(call->dialog_id);
	free(call);
}

static void tree_node_keep(void *node)
{
	(void)node; /* the list frees the calls */
}

void calls_free(struct calls *calls)
{
	struct call *call, *next;

	if (!calls)
		return;
	tdestroy(calls->root, tree_node_keep);
	for (call = calls->head; call; call = next) {
		next = call->next;
		call_free(call);
	}
	free(calls);
}

size_t calls_count(const struct calls *calls)
{
	return calls->count;
}

struct call *calls_get(struct calls *calls, const char *call_id, const char *from_tag)
{
	/* The casts only feed call_cmp(), which reads. */
	struct call key = { .call_id = (char *)call_id, .from_tag = (char *)from_tag };
	struct call **found;

	if (!call_id || !from_tag)
		return NULL;
	found = tfind(&key, &calls->root, call_cmp);
	return found ? *found : NULL;
}

struct call *calls_find(struct calls *calls, const char *call_id, const char *from_tag,
			const char *to_tag)
{
	struct call *call = calls_get(calls, call_id, from_tag);

	return call ? call : calls_get(calls, call_id, to_tag);
}

static struct call *call_new(const char *call_id, const char *from_tag, const char *relay_ip,
			     const char *dialog_id, time_t now)
{
	struct call *call = calloc(1, sizeof(*call));

	if (!call)
		return NULL;
	call->call_id = strdup(call_id);
	call->from_tag = strdup(from_tag);
	call->dialog_id = dialog_id ? strdup(dialog_id) : NULL;
	if (!call->call_id || !call->from_tag || (dialog_id && !call->dialog_id)) {
		call_free(call);
		return NULL;
	}
	strcpy(call->relay_ip, relay_ip); /* length checked by the caller */
	call->created = now;
	return call;
}

static int calls_insert(struct calls *calls, struct call *call)
{
	struct call **slot = tsearch(call, &calls->root, call_cmp);

	if (!slot)
		return -ENOMEM;
	if (*slot != call)
		return -EEXIST;
	call->prev = calls->tail;
	call->next = NULL;
	if (calls->tail)
		calls->tail->next = call;
	else
		calls->head = call;
	calls->tail = call;
	calls->count++;
	return 0;
}

int calls_add(struct calls *calls, const char *call_id, const char *from_tag,
	      const char *relay_ip, const char *dialog_id, time_t now, struct call **out)
{
	struct call *call;
	int rc;

	if (!call_id || !*call_id || !from_tag || !*from_tag || !relay_ip ||
	    strlen(relay_ip) >= INET6_ADDRSTRLEN)
		return -EINVAL;
	if (calls_get(calls, call_id, from_tag))
		return -EEXIST;
	call = call_new(call_id, from_tag, relay_ip, dialog_id, now);
	if (!call)
		return -ENOMEM;
	rc = calls_insert(calls, call);
	if (rc) {
		call_free(call);
		return rc;
	}
	if (out)
		*out = call;
	return 0;
}

void calls_remove(struct calls *calls, struct call *call)
{
	tdelete(call, &calls->root, call_cmp);
	if (call->prev)
		call->prev->next = call->next;
	else
		calls->head = call->next;
	if (call->next)
		call->next->prev = call->prev;
	else
		calls->tail = call->prev;
	calls->count--;
	call_free(call);
}

struct call *calls_first(struct calls *calls)
{
	return calls->head;
}

struct call *calls_next(struct call *call)
{
	return call->next;
}

void calls_set_expired(struct call *call, time_t now)
{
	call->expire_time = now;
}

size_t calls_relay_lost(struct calls *calls, const char *relay_ip, time_t now)
{
	struct call *call;
	size_t n = 0;

	for (call = calls->head; call; call = call->next)
		if (!call->relay_lost_time && !strcmp(call->relay_ip, relay_ip)) {
			call->relay_lost_time = now;
			n++;
		}
	return n;
}

size_t calls_relay_back(struct calls *calls, const char *relay_ip)
{
	struct call *call;
	size_t n = 0;

	for (call = calls->head; call; call = call->next)
		if (call->relay_lost_time && !strcmp(call->relay_ip, relay_ip)) {
			call->relay_lost_time = 0;
			n++;
		}
	return n;
}

/* How long ago `when` was; a clock that went backwards counts as 0. */
static time_t age(time_t now, time_t when)
{
	return now > when ? now - when : 0;
}

/* NULL, or why the call is due for purging at now. */
static const char *purge_reason(const struct call *call, time_t now, unsigned int expired_after,
				unsigned int dead_after)
{
	if (call->expire_time && age(now, call->expire_time) >= (time_t)expired_after)
		return "expired";
	if (call->relay_lost_time && age(now, call->relay_lost_time) >= (time_t)dead_after)
		return "relay gone";
	return NULL;
}

size_t calls_purge(struct calls *calls, time_t now, unsigned int expired_after,
		   unsigned int dead_after)
{
	struct call *call, *next;
	size_t expired = 0, dead = 0;
	const char *why;

	for (call = calls->head; call; call = next) {
		next = call->next;
		why = purge_reason(call, now, expired_after, dead_after);
		if (!why)
			continue;
		log_debug("call table: dropping call_id %s from_tag %s (relay %s): %s",
			  call->call_id, call->from_tag, call->relay_ip, why);
		if (why[0] == 'e')
			expired++;
		else
			dead++;
		calls_remove(calls, call);
	}
	if (expired || dead)
		log_info("call table: purged %zu expired call(s) and %zu call(s) of relays gone "
			 "too long", expired, dead);
	return expired + dead;
}

/* --- state file ------------------------------------------------------------ */

/* A time as an integer; 0 as null when nullable ("not set"). */
static int add_time(struct json_object *obj, const char *name, time_t t, bool nullable)
{
	struct json_object *v = NULL;

	if (t || !nullable) {
		v = json_object_new_int64(t);
		if (!v)
			return -ENOMEM;
	}
	if (json_object_object_add(obj, name, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static int add_string(struct json_object *obj, const char *name, const char *s)
{
	struct json_object *v = NULL;

	if (s) {
		v = json_object_new_string(s);
		if (!v)
			return -ENOMEM;
	}
	if (json_object_object_add(obj, name, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static struct json_object *call_to_json(const struct call *call)
{
	struct json_object *obj = json_object_new_object();

	if (!obj)
		return NULL;
	if (add_string(obj, "call_id", call->call_id) ||
	    add_string(obj, "from_tag", call->from_tag) ||
	    add_string(obj, "relay_ip", call->relay_ip) ||
	    add_string(obj, "dialog_id", call->dialog_id) ||
	    add_time(obj, "created", call->created, false) ||
	    add_time(obj, "expire_time", call->expire_time, true) ||
	    add_time(obj, "relay_lost_time", call->relay_lost_time, true)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static int write_json_line(FILE *f, struct json_object *obj)
{
	const char *text;

	if (!obj)
		return -ENOMEM;
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text || fprintf(f, "%s\n", text) < 0) {
		json_object_put(obj);
		return text ? -EIO : -ENOMEM;
	}
	json_object_put(obj);
	return 0;
}

static struct json_object *state_header(time_t now)
{
	struct json_object *obj = json_object_new_object();

	if (!obj)
		return NULL;
	if (add_time(obj, CALLS_STATE_MAGIC, CALLS_STATE_VERSION, false) ||
	    add_time(obj, "saved", now, false)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static int write_entries(struct calls *calls, FILE *f, time_t now)
{
	struct call *call;
	int rc = write_json_line(f, state_header(now));

	for (call = calls->head; call && !rc; call = call->next)
		rc = write_json_line(f, call_to_json(call));
	if (!rc && fflush(f))
		rc = -errno;
	if (!rc && fsync(fileno(f)))
		rc = -errno;
	return rc;
}

/* The rename is only durable once the directory itself is synced. */
static void sync_dir_of(const char *path)
{
	char buf[PATH_MAX];
	int fd;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return;
	fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fsync(fd))
		log_warn("call table: fsync of the directory of %s: %s", path, strerror(errno));
	close(fd);
}

int calls_save(struct calls *calls, const char *path, time_t now)
{
	char tmp[PATH_MAX];
	FILE *f;
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return log_errno(-ENAMETOOLONG, "call table: cannot save to %s", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return log_errno(-errno, "call table: cannot create %s", tmp);
	f = fdopen(fd, "w");
	if (!f) {
		rc = -errno;
		close(fd);
		unlink(tmp);
		return log_errno(rc, "call table: cannot write %s", tmp);
	}
	rc = write_entries(calls, f, now);
	if (fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return log_errno(rc, "call table: cannot save %zu call(s) to %s", calls->count,
				 path);
	}
	sync_dir_of(path);
	log_info("call table: saved %zu call(s) to %s", calls->count, path);
	return 0;
}

/* --- loading --------------------------------------------------------------- */

/* A JSON text that must be the whole line; NULL otherwise. */
static struct json_object *parse_line(const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj;

	if (!tok)
		return NULL;
	obj = json_tokener_parse_ex(tok, line, (int)len);
	if (obj && (json_tokener_get_error(tok) != json_tokener_success ||
		    json_tokener_get_parse_end(tok) != len)) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

/* A non-empty string field without control line breaks, or NULL. */
static const char *get_str(struct json_object *obj, const char *name)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	if (!*s || strpbrk(s, "\r\n") || strlen(s) != (size_t)json_object_get_string_len(v))
		return NULL;
	return s;
}

/* An integer time >= 0; absent or null is 0 when allowed. -1 if bad. */
static time_t get_time(struct json_object *obj, const char *name, bool nullable)
{
	struct json_object *v;
	int64_t t;

	if (!json_object_object_get_ex(obj, name, &v) || !v)
		return nullable ? 0 : -1;
	if (!json_object_is_type(v, json_type_int))
		return -1;
	t = json_object_get_int64(v);
	return t < 0 ? -1 : (time_t)t;
}

/* Why an entry line is unusable, or NULL with *call filled. */
static const char *entry_from_json(struct json_object *obj, struct call *call)
{
	struct json_object *dlg;
	struct net_addr addr;
	const char *ip;

	call->call_id = (char *)get_str(obj, "call_id");
	call->from_tag = (char *)get_str(obj, "from_tag");
	ip = get_str(obj, "relay_ip");
	if (!call->call_id || !call->from_tag || !ip)
		return "call_id, from_tag or relay_ip missing or not a string";
	if (strlen(ip) >= sizeof(call->relay_ip) || net_addr_parse(ip, &addr))
		return "relay_ip is not an IP address";
	strcpy(call->relay_ip, ip);
	if (json_object_object_get_ex(obj, "dialog_id", &dlg) && dlg) {
		call->dialog_id = (char *)get_str(obj, "dialog_id");
		if (!call->dialog_id ||
		    proxy_dialog_form_of(call->dialog_id, strlen(call->dialog_id)) <= 0)
			return "dialog_id is not a dialog id";
	}
	call->created = get_time(obj, "created", false);
	call->expire_time = get_time(obj, "expire_time", true);
	call->relay_lost_time = get_time(obj, "relay_lost_time", true);
	if (call->created < 0 || call->expire_time < 0 || call->relay_lost_time < 0)
		return "a time is not a non-negative integer";
	return NULL;
}

struct load_ctx {
	struct calls *calls;
	const char *path;
	time_t now;
	unsigned int expired_after, dead_after;
	unsigned long lineno;
	int loaded, dropped, bad;
};

static bool header_ok(const char *line, size_t len)
{
	struct json_object *obj = parse_line(line, len), *v;
	bool ok;

	ok = obj && json_object_is_type(obj, json_type_object) &&
	     json_object_object_get_ex(obj, CALLS_STATE_MAGIC, &v) &&
	     json_object_is_type(v, json_type_int) &&
	     json_object_get_int(v) == CALLS_STATE_VERSION;
	json_object_put(obj);
	return ok;
}

static void load_entry(struct load_ctx *ctx, const char *line, size_t len)
{
	struct json_object *obj = parse_line(line, len);
	struct call tmp = { 0 }, *call;
	const char *why = "not a JSON object";
	int rc;

	if (obj && json_object_is_type(obj, json_type_object))
		why = entry_from_json(obj, &tmp);
	if (why) {
		log_warn("call table: %s:%lu: skipping a bad entry: %s", ctx->path, ctx->lineno, why);
		ctx->bad++;
		goto out;
	}
	if (purge_reason(&tmp, ctx->now, ctx->expired_after, ctx->dead_after)) {
		ctx->dropped++;
		goto out;
	}
	rc = calls_add(ctx->calls, tmp.call_id, tmp.from_tag, tmp.relay_ip, tmp.dialog_id,
		       tmp.created, &call);
	if (rc) {
		log_warn("call table: %s:%lu: skipping call_id %s: %s", ctx->path, ctx->lineno,
			 tmp.call_id, rc == -EEXIST ? "listed twice" : strerror(-rc));
		ctx->bad++;
		goto out;
	}
	call->expire_time = tmp.expire_time;
	call->relay_lost_time = tmp.relay_lost_time ? tmp.relay_lost_time : ctx->now;
	ctx->loaded++;
out:
	json_object_put(obj);
}

static int load_stream(struct load_ctx *ctx, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, f)) >= 0) {
		ctx->lineno++;
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (ctx->lineno == 1 && !header_ok(line, (size_t)n)) {
			log_error("call table: %s is not a dispatcher state file (bad first line); "
				  "ignoring it", ctx->path);
			break;
		}
		if (ctx->lineno > 1 && n)
			load_entry(ctx, line, (size_t)n);
	}
	free(line);
	if (!ctx->lineno)
		log_error("call table: %s is empty; ignoring it", ctx->path);
	return ferror(f) ? -EIO : 0;
}

int calls_load(struct calls *calls, const char *path, time_t now, unsigned int expired_after,
	       unsigned int dead_after)
{
	struct load_ctx ctx = { calls, path, now, expired_after, dead_after, 0, 0, 0, 0 };
	struct stat st;
	FILE *f;
	int rc;

	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		return log_errno(-errno, "call table: cannot open %s", path);
	}
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || st.st_size > CALLS_STATE_MAX_FILE) {
		fclose(f);
		log_error("call table: %s is not a regular file of at most %u bytes; ignoring it",
			  path, CALLS_STATE_MAX_FILE);
		return 0;
	}
	rc = load_stream(&ctx, f);
	fclose(f);
	if (rc)
		return log_errno(rc, "call table: cannot read %s", path);
	log_info("call table: restored %d call(s) from %s (%d past their cleanup time, %d bad)",
		 ctx.loaded, path, ctx.dropped, ctx.bad);
	return ctx.loaded;
}
