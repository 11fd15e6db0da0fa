/* The `radius` accounting backend (PROTOCOL.md §5.2, D14): one
 * Accounting-Request per record through radcli, built from the attribute
 * list of radius_attrs.c, sent to the acctservers of the radcli config
 * ([Radius] config_file) with its radius_timeout and radius_retries.
 *
 * What radcli 1.2.11 adds to a request by itself (lib/buildreq.c
 * rc_aaa_ctx_server, lib/sendserver.c rc_send_server_ctx) and what we do:
 *  - NAS-Port = the client port, when add_nas_port is set (rc_acct() sets
 *    it, sending NAS-Port = 0): we call with add_nas_port = 0, so none.
 *  - Acct-Delay-Time, on every Accounting-Request. With none in the list it
 *    appends its own (0 plus the seconds spent in the call so far); with one
 *    in the list it keeps that pair and, before each server, rewrites it to
 *    our value plus the seconds elapsed since the call began. Ours is in
 *    the list, so exactly one is sent (D14); when no stream has a
 *    post_dial_delay radcli's own is the only one, with value 0.
 *  - NAS-IP-Address (or NAS-IPv6-Address) of the socket it sends from, only
 *    when the list has neither; replaced by the config's nas-ip if set.
 *  - NAS-Identifier, only when the config sets nas-identifier.
 * So with an ordinary client.conf the packet holds exactly the §5.2 list.
 *
 * Failover: rc_aaa() walks the acctservers itself, but moves on only after
 * a timeout and adds the time spent on dead servers to Acct-Delay-Time,
 * which here carries the post-dial delay, not a delay. So we walk the same
 * list, one rc_aaa_ctx_server() call per server, resetting our
 * Acct-Delay-Time before each: every server gets the record's own value,
 * and a server whose name does not resolve or that answers badly is
 * skipped too. Each server costs at most radius_timeout * (radius_retries +
 * 1) seconds.
 *
 * radcli reports its own problems (a bad config line, a dictionary it
 * cannot parse, a server that does not answer) with syslog(3) only. We do
 * not touch the process's syslog settings: under the daemon they go to the
 * same syslog as our log; our own messages carry enough to act on. radcli
 * debugging stays off unless the radcli config sets clientdebug. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <radcli/radcli.h>

#include "backend.h"
#include "log.h"
#include "radius_attrs.h"

struct radius_backend {
	rc_handle *rh;
	int attr[RADIUS_ATTR_COUNT]; /* dictionary value: vendor << 16 | number */
	const char *server_option;   /* "acctserver", or "authserver" over (D)TLS */
	rc_type server_type;
};

__attribute__((format(printf, 3, 4)))
static int set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* radcli only says "NULL"/-1 (and tells syslog why), so open the file
 * first to name the usual reason: missing or unreadable. */
static int readable(const char *path)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	fclose(f);
	return 0;
}

static int load_config(struct radius_backend *rb, const struct mp_config *cfg,
		       char *err, size_t errlen)
{
	const char *file = cfg->radius.config_file;
	int rc = readable(file);

	if (rc)
		return set_err(err, errlen, "[Radius] config_file %s: %s", file, strerror(-rc));
	rb->rh = rc_read_config(file);
	if (!rb->rh)
		return set_err(err, errlen,
			       "[Radius] config_file %s: radcli rejected it or the dictionary it "
			       "names (it needs authserver, dictionary, radius_timeout > 0, "
			       "radius_retries > 0 and only radcli's keywords; radcli logged "
			       "the line to syslog)", file);
	return 0;
}

/* Upstream carries on without a missing additional dictionary, so do we:
 * the attribute check then says what is missing. */
static int load_additional_dictionary(struct radius_backend *rb, const struct mp_config *cfg,
				      char *err, size_t errlen)
{
	const char *file = cfg->radius.additional_dictionary;
	int rc;

	if (!file || !*file)
		return 0;
	rc = readable(file);
	if (rc == -ENOENT) {
		log_warn("radius: [Radius] additional_dictionary %s does not exist; using "
			 "only the dictionary of %s", file, cfg->radius.config_file);
		return 0;
	}
	if (rc)
		return set_err(err, errlen, "[Radius] additional_dictionary %s: %s", file,
			       strerror(-rc));
	if (rc_read_dictionary(rb->rh, file) != 0)
		return set_err(err, errlen,
			       "[Radius] additional_dictionary %s: radcli could not parse it "
			       "(radcli logged the line to syslog)", file);
	return 0;
}

static int dict_type(enum radius_attr_type t)
{
	switch (t) {
	case RADIUS_TYPE_INTEGER:
		return PW_TYPE_INTEGER;
	case RADIUS_TYPE_IPV4:
		return PW_TYPE_IPADDR;
	case RADIUS_TYPE_IPV6:
		return PW_TYPE_IPV6ADDR;
	case RADIUS_TYPE_STRING:
		break;
	}
	return PW_TYPE_STRING;
}

/* Every attribute must resolve by name, and the entry radcli will encode
 * its number with (the last dictionary to define that number wins) must
 * have the type we send. */
static int resolve_attributes(struct radius_backend *rb, const struct mp_config *cfg,
			      char *err, size_t errlen)
{
	for (int id = 0; id < RADIUS_ATTR_COUNT; id++) {
		const char *name = radius_attr_name(id);
		DICT_ATTR *by_name = rc_dict_findattr(rb->rh, name), *by_number;

		if (!by_name)
			return set_err(err, errlen,
				       "radius: attribute %s is in no dictionary (%s's dictionary "
				       "and [Radius] additional_dictionary %s); MediaProxy's "
				       "radius/dictionary defines it", name,
				       cfg->radius.config_file, cfg->radius.additional_dictionary);
		by_number = rc_dict_getattr(rb->rh, by_name->value);
		if (!by_number || (int)by_number->type != dict_type(radius_attr_type(id)))
			return set_err(err, errlen,
				       "radius: attribute %s (number %d) has the wrong type in the "
				       "dictionaries of %s", name, ATTRID(by_name->value),
				       cfg->radius.config_file);
		rb->attr[id] = by_name->value;
	}
	return 0;
}

/* Which server list rc_aaa() would use: (D)TLS sends everything to the
 * authservers. */
static int pick_servers(struct radius_backend *rb, const struct mp_config *cfg,
			char *err, size_t errlen)
{
	rc_socket_type so = rc_get_socket_type(rb->rh);
	SERVER *srv;

	rb->server_option = "acctserver";
	rb->server_type = ACCT;
	if (so == RC_SOCKET_TLS || so == RC_SOCKET_DTLS) {
		rb->server_option = "authserver";
		rb->server_type = AUTH;
	}
	srv = rc_conf_srv(rb->rh, rb->server_option);
	if (!srv || srv->max <= 0)
		return set_err(err, errlen, "[Radius] config_file %s: no %s", cfg->radius.config_file,
			       rb->server_option);
	return 0;
}

/* The record's attributes as radcli pairs; *delay is our Acct-Delay-Time
 * pair (NULL without one) and *delay_value its value. */
static int build_pairs(struct radius_backend *rb, const struct radius_attr_list *list,
		       VALUE_PAIR **send, VALUE_PAIR **delay, uint32_t *delay_value)
{
	*send = NULL;
	*delay = NULL;
	for (size_t i = 0; i < list->count; i++) {
		const struct radius_attr *a = &list->attr[i];
		int v = rb->attr[a->id];
		const void *val = &a->u32;
		int len = 0;
		VALUE_PAIR *vp;

		if (radius_attr_type(a->id) == RADIUS_TYPE_STRING) {
			val = a->str;
			len = (int)a->len;
		} else if (radius_attr_type(a->id) == RADIUS_TYPE_IPV6) {
			val = a->ip6;
			len = 16;
		}
		vp = rc_avpair_add(rb->rh, send, ATTRID(v), val, len, VENDOR(v));
		if (!vp) {
			rc_avpair_free(*send);
			*send = NULL;
			return -ENOMEM; /* every check that could fail ran at open */
		}
		if (a->id == RADIUS_ATTR_ACCT_DELAY_TIME) {
			*delay = vp;
			*delay_value = a->u32;
		}
	}
	return 0;
}

static const char *result_name(int rc)
{
	switch (rc) {
	case TIMEOUT_RC:
		return "no answer";
	case REJECT_RC:
		return "rejected";
	case BADRESP_RC:
		return "bad answer (wrong secret?)";
	case BADRESPID_RC:
		return "answer with a wrong id";
	case CHALLENGE_RC:
		return "challenged";
	}
	return "error (unknown host or socket failure; radcli logged it to syslog)";
}

/* Appends "host:port reason" to err, "; "-separated. */
static void note_failure(char *err, size_t errlen, const char *host, unsigned int port,
			 const char *why)
{
	size_t used = strnlen(err, errlen);

	if (used + 1 >= errlen)
		return;
	snprintf(err + used, errlen - used, "%s%s:%u %s", used ? "; " : "", host, port, why);
}

static int send_pairs(struct radius_backend *rb, VALUE_PAIR *send, VALUE_PAIR *delay,
		      uint32_t delay_value, char *err, size_t errlen)
{
	SERVER *all = rc_conf_srv(rb->rh, rb->server_option);
	char why[256] = "";

	for (int i = 0; all && i < all->max; i++) {
		SERVER one = { .max = 1 };
		int rc;

		one.name[0] = all->name[i];
		one.port[0] = all->port[i];
		one.secret[0] = all->secret[i];
		if (delay)
			rc_avpair_assign(delay, &delay_value, 0);
		rc = rc_aaa_ctx_server(rb->rh, NULL, &one, rb->server_type, 0, send, NULL, NULL, 0,
				       PW_ACCOUNTING_REQUEST);
		if (rc == OK_RC)
			return 0;
		if (rc == REJECT_RC || rc == BADRESP_RC)
			log_warn("radius: server %s:%u: %s", one.name[0], one.port[0],
				 result_name(rc));
		note_failure(why, sizeof(why), one.name[0], one.port[0], result_name(rc));
	}
	snprintf(err, errlen, "radius: not delivered: %s", why[0] ? why : "no server");
	return -EAGAIN;
}

static int radius_deliver(void *state, const struct accounting_record *rec, char *err,
			  size_t errlen)
{
	struct radius_backend *rb = state;
	struct radius_attr_list *list = malloc(sizeof(*list));
	VALUE_PAIR *send, *delay;
	uint32_t delay_value = 0;
	int rc;

	if (!list) {
		snprintf(err, errlen, "radius: out of memory");
		return -EAGAIN;
	}
	rc = radius_attrs_from_record(rec->obj, list);
	if (rc) {
		snprintf(err, errlen, "radius: record of call %s unusable: %s", rec->call_id,
			 list->error);
		goto out;
	}
	if (build_pairs(rb, list, &send, &delay, &delay_value)) {
		snprintf(err, errlen, "radius: cannot build the request for call %s",
			 rec->call_id);
		rc = -EAGAIN;
		goto out;
	}
	rc = send_pairs(rb, send, delay, delay_value, err, errlen);
	rc_avpair_free(send);
out:
	free(list);
	return rc;
}

static void radius_close(void *state)
{
	struct radius_backend *rb = state;

	if (!rb)
		return;
	if (rb->rh)
		rc_destroy(rb->rh);
	free(rb);
}

int accounting_radius_open(struct accounting_backend *b, const struct mp_config *cfg,
			   char *err, size_t errlen)
{
	struct radius_backend *rb = calloc(1, sizeof(*rb));

	if (!rb)
		return set_err(err, errlen, "radius: out of memory");
	if (load_config(rb, cfg, err, errlen) ||
	    load_additional_dictionary(rb, cfg, err, errlen) ||
	    resolve_attributes(rb, cfg, err, errlen) ||
	    pick_servers(rb, cfg, err, errlen)) {
		radius_close(rb);
		return -1;
	}
	memset(b, 0, sizeof(*b));
	b->name = "radius";
	b->state = rb;
	b->deliver = radius_deliver;
	b->reopen = NULL;
	b->close = radius_close;
	return 0;
}
