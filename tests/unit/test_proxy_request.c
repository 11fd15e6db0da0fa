/* Unit tests for dispatcherd/proxy_request.c: the module's update/remove
 * requests as Kamailio 5.6.3 and OpenSIPS 3.4.18 send them (PROTOCOL.md
 * Appendix A), each way they can be wrong, the header block forwarded to the
 * relay (§2.2) and the check of a relay's update reply (§1.6). Each input
 * goes through the framer first, as on the socket. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lineproto.h"
#include "proxy_request.h"
#include "appendix_a.h"

/* --- derived from Appendix A (appendix_a.h) -------------------------------- */
#define KAM_OFFER_BLOCK                                                             \
	"type: request\r\ndialog_id: 3431:9579\r\ncall_id: 1-16898@127.0.0.1\r\n"           \
	"cseq: 1\r\nfrom_uri: uac@127.0.0.1:54784\r\nto_uri: uas@127.0.0.1:32968\r\n"       \
	"from_tag: 16898SIPpTag001\r\nuser_agent: e2e-uac\r\n"                              \
	"signaling_ip: 127.0.0.1\r\nmedia: audio:127.0.0.1:23604:sendrecv:ice=no\r\n"

/* A minimal valid update around one changed line. */
#define UPD(extra) "update\r\ntype: request\r\ncall_id: c1\r\nfrom_tag: f1\r\n" extra "\r\n"

#define IN(s) .input = (s), .len = sizeof(s) - 1

struct req_case {
	const char *name;
	const char *input;
	size_t len;
	int want_frame;          /* lineproto_parse() result */
	int want_rc;             /* proxy_request_parse() result when framed */
	const char *want_fault;  /* substring of the fault */
	enum proxy_command command;
	enum proxy_type type;
	const char *call_id, *from_tag, *to_tag, *dialog_id, *media_relay;
	enum proxy_dialog_form form;
	bool has_cseq;
	uint64_t cseq;
	unsigned int streams;
	const char *block;       /* expected header block, when set */
};

static const struct req_case cases[] = {
	{ "Kamailio 5.6.3 offer (engage_media_proxy)", IN(KAM_OFFER),
	  .command = PROXY_CMD_UPDATE, .type = PROXY_TYPE_REQUEST,
	  .call_id = "1-16898@127.0.0.1", .from_tag = "16898SIPpTag001",
	  .dialog_id = "3431:9579", .form = PROXY_DIALOG_PAIR, .has_cseq = true, .cseq = 1,
	  .streams = 1, .block = KAM_OFFER_BLOCK },
	{ "Kamailio 5.6.3 200 OK answer with to_tag", IN(KAM_ANSWER),
	  .command = PROXY_CMD_UPDATE, .type = PROXY_TYPE_REPLY,
	  .call_id = "1-16898@127.0.0.1", .from_tag = "16898SIPpTag001",
	  .to_tag = "16885SIPpTag011", .dialog_id = "3431:9579", .form = PROXY_DIALOG_PAIR,
	  .has_cseq = true, .cseq = 1, .streams = 1 },
	{ "Kamailio 5.6.3 remove at dialog end", IN(KAM_REMOVE),
	  .command = PROXY_CMD_REMOVE, .type = PROXY_TYPE_NONE,
	  .call_id = "1-16898@127.0.0.1", .from_tag = "16898SIPpTag001",
	  .to_tag = "16885SIPpTag011",
	  .block = "call_id: 1-16898@127.0.0.1\r\nfrom_tag: 16898SIPpTag001\r\n"
		   "to_tag: 16885SIPpTag011\r\n" },
	{ "OpenSIPS 3.4.18 offer with a 64-bit decimal dialog_id", IN(OSIPS_OFFER),
	  .command = PROXY_CMD_UPDATE, .type = PROXY_TYPE_REQUEST,
	  .call_id = "1-3883@127.0.0.1", .from_tag = "3883SIPpTag001",
	  .dialog_id = "1181799336689", .form = PROXY_DIALOG_DECIMAL, .has_cseq = true,
	  .cseq = 1, .streams = 1 },
	{ "OpenSIPS 3.4.18 remove", IN(OSIPS_REMOVE), .command = PROXY_CMD_REMOVE,
	  .call_id = "1-3883@127.0.0.1", .from_tag = "3883SIPpTag001",
	  .to_tag = "3880SIPpTag011" },
	{ "use_media_proxy(): empty dialog_id dropped", IN(UPD("dialog_id: \r\n")),
	  .command = PROXY_CMD_UPDATE, .type = PROXY_TYPE_REQUEST, .call_id = "c1",
	  .from_tag = "f1", .form = PROXY_DIALOG_NONE,
	  .block = "type: request\r\ncall_id: c1\r\nfrom_tag: f1\r\n" },
	{ "media_relay names the preferred relay", IN(UPD("media_relay: 198.51.100.7\r\n")),
	  .type = PROXY_TYPE_REQUEST, .call_id = "c1", .from_tag = "f1",
	  .media_relay = "198.51.100.7" },
	{ "audio + video: two streams",
	  IN(UPD("media: audio:192.0.2.10:49170:sendrecv:ice=no,"
		 "video:192.0.2.10:51372:sendrecv:ice=no\r\n")),
	  .type = PROXY_TYPE_REQUEST, .call_id = "c1", .from_tag = "f1", .streams = 2 },
	{ "largest 64-bit dialog_id", IN(UPD("dialog_id: 18446744073709551615\r\n")),
	  .type = PROXY_TYPE_REQUEST, .call_id = "c1", .from_tag = "f1",
	  .dialog_id = "18446744073709551615", .form = PROXY_DIALOG_DECIMAL },
	{ "Kamailio h_id over INT_MAX printed by %d", IN(UPD("dialog_id: 12:-2147483648\r\n")),
	  .type = PROXY_TYPE_REQUEST, .call_id = "c1", .from_tag = "f1",
	  .dialog_id = "12:-2147483648", .form = PROXY_DIALOG_PAIR },
	{ "duplicate call_id: the last one wins, both forwarded",
	  IN("update\r\ntype: reply\r\ncall_id: old\r\nfrom_tag: f\r\ncall_id: new\r\n\r\n"),
	  .type = PROXY_TYPE_REPLY, .call_id = "new", .from_tag = "f",
	  .block = "type: reply\r\ncall_id: old\r\nfrom_tag: f\r\ncall_id: new\r\n" },
	{ "bare LF line ends (hand-typed)", IN("remove\ncall_id: c\nfrom_tag: f\n\n"),
	  .command = PROXY_CMD_REMOVE, .call_id = "c", .from_tag = "f",
	  .block = "call_id: c\r\nfrom_tag: f\r\n" },

	/* --- rejected ------------------------------------------------------------ */
	{ "update without call_id", IN("update\r\ntype: request\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EBADMSG, .want_fault = "missing call_id" },
	{ "remove with an empty call_id (dropped, so missing)",
	  IN("remove\r\ncall_id: \r\nfrom_tag: f\r\n\r\n"), .want_rc = -EBADMSG,
	  .want_fault = "missing call_id" },
	{ "remove without from_tag", IN("remove\r\ncall_id: c\r\nto_tag: t\r\n\r\n"),
	  .want_rc = -EBADMSG, .want_fault = "missing from_tag" },
	{ "update without type", IN("update\r\ncall_id: c\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EBADMSG, .want_fault = "missing type" },
	{ "type is a SIP method", IN("update\r\ntype: INVITE\r\ncall_id: c\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EBADMSG, .want_fault = "type" },
	{ "type in upper case", IN("update\r\ntype: Request\r\ncall_id: c\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EBADMSG, .want_fault = "type" },
	{ "remove with a bad type", IN("remove\r\ntype: x\r\ncall_id: c\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EBADMSG, .want_fault = "type" },
	{ "cseq with the method", IN(UPD("cseq: 101 INVITE\r\n")), .want_rc = -EBADMSG,
	  .want_fault = "cseq" },
	{ "negative cseq", IN(UPD("cseq: -1\r\n")), .want_rc = -EBADMSG, .want_fault = "cseq" },
	{ "cseq over 64 bits", IN(UPD("cseq: 18446744073709551616\r\n")), .want_rc = -EBADMSG,
	  .want_fault = "cseq" },
	{ "dialog_id not a number", IN(UPD("dialog_id: abc\r\n")), .want_rc = -EBADMSG,
	  .want_fault = "dialog_id" },
	{ "dialog_id with three parts", IN(UPD("dialog_id: 1:2:3\r\n")), .want_rc = -EBADMSG,
	  .want_fault = "dialog_id" },
	{ "dialog_id pair half over 32 bits", IN(UPD("dialog_id: 4294967296:1\r\n")),
	  .want_rc = -EBADMSG, .want_fault = "dialog_id" },
	{ "dialog_id pair with an empty half", IN(UPD("dialog_id: 5:\r\n")),
	  .want_rc = -EBADMSG, .want_fault = "dialog_id" },
	{ "dialog_id decimal over 64 bits", IN(UPD("dialog_id: 18446744073709551616\r\n")),
	  .want_rc = -EBADMSG, .want_fault = "dialog_id" },
	{ "dialog_id in OpenSIPS 3.x reverse hex", IN(UPD("dialog_id: 0fa.e1566887\r\n")),
	  .want_rc = -EBADMSG, .want_fault = "dialog_id" },
	{ "unknown command", IN("offer\r\ncall_id: c\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EOPNOTSUPP, .want_fault = "unknown command" },
	{ "command in upper case", IN("UPDATE\r\ntype: request\r\ncall_id: c\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EOPNOTSUPP, .want_fault = "unknown command" },
	{ "relay-link style command with a seq",
	  IN("update 17\r\ntype: request\r\ncall_id: c\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EBADMSG, .want_fault = "after the command" },
	{ "CR inside a value", IN("remove\r\ncall_id: a\rb\r\nfrom_tag: f\r\n\r\n"),
	  .want_rc = -EBADMSG, .want_fault = "CR" },

	/* --- rejected by the framer (the socket answers error, then resyncs) ---- */
	{ "header line without ': '", IN("remove\r\ncall_id:c\r\nfrom_tag: f\r\n\r\n"),
	  .want_frame = LINEPROTO_ERR_NO_SEPARATOR },
	{ "NUL inside call_id", IN("remove\r\ncall_id: a\0b\r\nfrom_tag: f\r\n\r\n"),
	  .want_frame = LINEPROTO_ERR_NUL_BYTE },
};

static void check_case(const struct req_case *c)
{
	struct lineproto_msg msg;
	struct proxy_request req;
	const char *fault = "untouched";
	size_t used;
	int rc;

	rc = lineproto_parse(c->input, c->len, NULL, &msg, &used);
	if (rc != c->want_frame)
		fail_msg("%s: framing gave %d, want %d", c->name, rc, c->want_frame);
	if (rc)
		return;
	assert_int_equal(used, c->len);
	rc = proxy_request_parse(&msg, &req, &fault);
	if (rc != c->want_rc)
		fail_msg("%s: rc %d (%s), want %d", c->name, rc, fault ? fault : "-", c->want_rc);
	if (rc) {
		assert_non_null(fault);
		if (!strstr(fault, c->want_fault))
			fail_msg("%s: fault '%s' does not name '%s'", c->name, fault, c->want_fault);
		assert_null(req.storage);
		return;
	}
	assert_null(fault);
	assert_int_equal(req.command, c->command);
	assert_int_equal(req.type, c->type);
	assert_string_equal(req.call_id, c->call_id);
	assert_string_equal(req.from_tag, c->from_tag);
	if (c->to_tag)
		assert_string_equal(req.to_tag, c->to_tag);
	else
		assert_null(req.to_tag);
	if (c->dialog_id)
		assert_string_equal(req.dialog_id, c->dialog_id);
	else
		assert_null(req.dialog_id);
	assert_int_equal(req.dialog_form, c->form);
	if (c->media_relay)
		assert_string_equal(req.media_relay, c->media_relay);
	else
		assert_null(req.media_relay);
	assert_int_equal(req.has_cseq, c->has_cseq);
	assert_int_equal(req.cseq, c->cseq);
	assert_int_equal(req.stream_count, c->streams);
	assert_int_equal(strlen(req.headers), req.headers_len);
	if (c->block)
		assert_string_equal(req.headers, c->block);
	proxy_request_free(&req);
	assert_null(req.storage);
}

static void test_requests(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("# %s\n", cases[i].name);
		check_case(&cases[i]);
	}
}

/* What the relay receives (§2.2 example) frames back to the module's
 * headers minus the empty ones, in order. */
static void test_block_reaches_relay_intact(void **state)
{
	struct lineproto_msg in, relay;
	struct proxy_request req;
	char wire[1024];
	size_t used, i, j;
	int n;

	(void)state;
	assert_int_equal(lineproto_parse(KAM_ANSWER, sizeof(KAM_ANSWER) - 1, NULL, &in, &used), 0);
	assert_int_equal(proxy_request_parse(&in, &req, NULL), 0);
	n = snprintf(wire, sizeof(wire), "update 17\r\n%s\r\n", req.headers);
	assert_true(n > 0 && (size_t)n < sizeof(wire));
	assert_int_equal(lineproto_parse(wire, (size_t)n, NULL, &relay, &used), 0);
	assert_int_equal(used, (size_t)n);
	assert_true(lineproto_str_eq(relay.args, "17"));
	assert_int_equal(relay.n_headers, in.n_headers);
	assert_int_equal(in.n_headers, 11); /* 13 lines, media_relay and nothing else empty */
	for (i = 0; i < in.n_headers; i++) {
		assert_int_equal(relay.headers[i].name.len, in.headers[i].name.len);
		assert_int_equal(relay.headers[i].value.len, in.headers[i].value.len);
		for (j = 0; j < in.headers[i].value.len; j++)
			assert_int_equal(relay.headers[i].value.ptr[j], in.headers[i].value.ptr[j]);
	}
	proxy_request_free(&req);
}

/* Over-limit input never reaches the checker: the framer stops it. */
static void test_oversize(void **state)
{
	static char buf[LINEPROTO_MAX_LINE + 4096];
	size_t big = LINEPROTO_MAX_LINE + 100, used, n, i;
	struct lineproto_msg msg;

	(void)state;
	n = (size_t)sprintf(buf, "update\r\ntype: request\r\ncall_id: ");
	memset(buf + n, 'x', big);
	n += big;
	n += (size_t)sprintf(buf + n, "\r\nfrom_tag: f\r\n\r\n");
	assert_int_equal(lineproto_parse(buf, n, NULL, &msg, &used),
			 LINEPROTO_ERR_LINE_TOO_LONG);

	/* 40 headers: more than LINEPROTO_MAX_HEADERS. */
	n = (size_t)sprintf(buf, "update\r\ntype: request\r\ncall_id: c\r\nfrom_tag: f\r\n");
	for (i = 0; i < 40; i++)
		n += (size_t)sprintf(buf + n, "x%zu: y\r\n", i);
	n += (size_t)sprintf(buf + n, "\r\n");
	assert_int_equal(lineproto_parse(buf, n, NULL, &msg, &used),
			 LINEPROTO_ERR_TOO_MANY_HEADERS);
}

static void test_dialog_forms(void **state)
{
	static const struct {
		const char *s;
		enum proxy_dialog_form want;
	} t[] = {
		{ "", PROXY_DIALOG_NONE },
		{ "3431:9579", PROXY_DIALOG_PAIR },
		{ "0:0", PROXY_DIALOG_PAIR },
		{ "4294967295:4294967295", PROXY_DIALOG_PAIR },
		{ "-2147483648:1", PROXY_DIALOG_PAIR },
		{ "-2147483649:1", PROXY_DIALOG_INVALID },
		{ "1181799336689", PROXY_DIALOG_DECIMAL },
		{ "0", PROXY_DIALOG_DECIMAL },
		{ "-5", PROXY_DIALOG_INVALID },
		{ ":", PROXY_DIALOG_INVALID },
		{ "1:", PROXY_DIALOG_INVALID },
		{ "-:1", PROXY_DIALOG_INVALID },
		{ "12 34", PROXY_DIALOG_INVALID },
		{ "00000000001:1", PROXY_DIALOG_INVALID },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (proxy_dialog_form_of(t[i].s, strlen(t[i].s)) != t[i].want)
			fail_msg("dialog_id '%s': form %d, want %d", t[i].s,
				 proxy_dialog_form_of(t[i].s, strlen(t[i].s)), t[i].want);
	}
}

static void test_update_replies(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} t[] = {
		{ "None", true },
		{ "198.51.100.1 40002", true },
		{ "198.51.100.1 40000 0 40004", true },
		{ "2001:db8::1 40000", true },
		{ "198.51.100.1", true },
		{ "198.51.100.1 65535", true },
		{ "error", false },
		{ "halting", false },
		{ "none", false },
		{ "", false },
		{ "198.51.100.1 65536", false },
		{ "198.51.100.1  40000", false },
		{ "198.51.100.1 40000 ", false },
		{ " 198.51.100.1 40000", false },
		{ "198.51.100 40000", false },
		{ "198.51.100.1 -1", false },
		{ "198.51.100.1 +5", false },
		{ "198.51.100.1 4x", false },
		{ "{\"call_id\": \"x\"}", false },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (proxy_update_reply_valid(t[i].s, strlen(t[i].s)) != t[i].ok)
			fail_msg("reply '%s': want %s", t[i].s, t[i].ok ? "valid" : "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_block_reaches_relay_intact),
		cmocka_unit_test(test_oversize),
		cmocka_unit_test(test_dialog_forms),
		cmocka_unit_test(test_update_replies),
	};

	return cmocka_run_group_tests_name("proxy_request", tests, NULL, NULL);
}
