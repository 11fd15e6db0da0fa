/* dispatcherd/mi_dialect.c: dialog ids as the proxy modules send them, the
 * reverse-hex DID of OpenSIPS >= 3.1, the end-dialog request of each dialect
 * byte for byte, and the reading of replies captured from the real proxies
 * (PROTOCOL.md §5.3, §5.4, D13, Appendix A). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mi_dialect.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) (lit), sizeof(lit) - 1 /* a literal with its length, NULs kept */

/* --- replies captured from the real proxies ----------------------------------
 *
 * PROTOCOL.md Appendix A gives Kamailio's success compact and OpenSIPS 3.4's
 * 404 and "OK". The rest was captured for this file on 2026-11-26 by sending
 * the request datagram from a bound UNIX datagram socket (python3
 * socket.AF_UNIX/SOCK_DGRAM, recv(65536), bytes printed with repr()) to:
 *   - Debian's Kamailio 5.6.3, started in a temp dir with tm, sl, rr, pv,
 *     siputils, textops, dialog and jsonrpcs (transport 4, dgram_socket in
 *     the temp dir, fifo_name "", pretty_format left at its default), as
 *     tests/e2e/kamailio.cfg loads them; a real dialog made by sipp's
 *     built-in uac/uas scenarios through dlg_manage(), its h_entry:h_id
 *     read back with dlg.list;
 *   - OpenSIPS 3.4.18 (scripts/build-opensips.sh) with proto_udp, sl, tm,
 *     rr, sipmsgops, dialog and mi_datagram (socket_name in the temp dir),
 *     a real dialog made the same way through create_dialog(), its ID and
 *     db_id read back with dlg_list.
 * Kamailio's default pretty_format puts new lines and tabs in its replies. */

/* Kamailio, dlg.end_dlg [119, 5456] on the live dialog. */
#define KAM_OK "{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"result\":\t{\n\t},\n\t\"id\":\t1\n}"
/* Kamailio, the same request again (the dialog is gone). */
#define KAM_404                                                                     \
	"{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"error\":\t{\n\t\t\"code\":\t404,\n\t\t"   \
	"\"message\":\t\"Dialog not found\"\n\t},\n\t\"id\":\t2\n}"
/* Kamailio, dlg.end_dlg [3989] with id 7: one parameter is not enough. */
#define KAM_500                                                                     \
	"{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"error\":\t{\n\t\t\"code\":\t500,\n\t\t"   \
	"\"message\":\t\"Invalid parameters\"\n\t},\n\t\"id\":\t7\n}"
/* Kamailio echoes an id of 4294967295 (dlg.end_dlg [0, 0]). */
#define KAM_404_BIG_ID                                                              \
	"{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"error\":\t{\n\t\t\"code\":\t404,\n\t\t"   \
	"\"message\":\t\"Dialog not found\"\n\t},\n\t\"id\":\t4294967295\n}"
/* Appendix A's Kamailio success, compact. */
#define KAM_OK_COMPACT "{\"jsonrpc\":\"2.0\",\"result\":{},\"id\":1}"
/* OpenSIPS 3.4, dialog db_id 9647119444827 (ID "6c8.b5ba0252"): the decimal
 * (id 1), the DID (id 2), the DID again (id 3). Appendix A has the same for
 * db_id 12027930502430 / "0fa.e1566887". */
#define OSIPS_404_DECIMAL \
	"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":404,\"message\":\"Requested Dialog not found\"},\"id\":1}"
#define OSIPS_OK "{\"jsonrpc\":\"2.0\",\"result\":\"OK\",\"id\":2}"
/* OpenSIPS 3.4 answers an id of 4294967295 with 2147483647 (a C int). */
#define OSIPS_404_CLAMPED_ID \
	"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":404,\"message\":\"Requested Dialog not found\"},\"id\":2147483647}"
/* OpenSIPS 3.4, method dlg_end_dlgx. */
#define OSIPS_NO_METHOD \
	"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32601,\"message\":\"Method not found\"},\"id\":3}"
/* OpenSIPS 3.4 to the legacy text request, and to "garbage": no new line. */
#define OSIPS_PARSE_ERROR "400 Parse_error"

/* --- dialog ids ------------------------------------------------------------------ */

static void test_dialog_id_parse(void **state)
{
	static const struct {
		const char *name, *in;
		int rc;
		bool pair;
		uint32_t h_entry, h_id;
		uint64_t decimal;
	} cases[] = {
		{ "Kamailio, Appendix A", "3431:9579", 0, true, 3431, 9579, 3431ull << 32 | 9579 },
		{ "Kamailio, the §5.4 example", "3421:1804289383", 0, true, 3421, 1804289383,
		  3421ull << 32 | 1804289383 },
		{ "pair of zeros", "0:0", 0, true, 0, 0, 0 },
		{ "pair at the 32-bit limits", "4294967295:4294967295", 0, true, UINT32_MAX,
		  UINT32_MAX, UINT64_MAX },
		{ "leading zeros", "007:08", 0, true, 7, 8, 7ull << 32 | 8 },
		{ "OpenSIPS, Appendix A offer", "1181799336689", 0, false, 275, 683330289,
		  1181799336689ull },
		{ "OpenSIPS, Appendix A MI", "12027930502430", 0, false, 2800, 2022073630,
		  12027930502430ull },
		{ "zero", "0", 0, false, 0, 0, 0 },
		{ "64-bit limit", "18446744073709551615", 0, false, UINT32_MAX, UINT32_MAX,
		  UINT64_MAX },
		{ "64-bit overflow", "18446744073709551616", -EINVAL, false, 0, 0, 0 },
		{ "h_entry overflow", "4294967296:1", -EINVAL, false, 0, 0, 0 },
		{ "h_id overflow", "1:4294967296", -EINVAL, false, 0, 0, 0 },
		{ "empty (use_media_proxy sends none)", "", -EINVAL, false, 0, 0, 0 },
		{ "empty h_entry", ":1", -EINVAL, false, 0, 0, 0 },
		{ "empty h_id", "1:", -EINVAL, false, 0, 0, 0 },
		{ "colon alone", ":", -EINVAL, false, 0, 0, 0 },
		{ "two colons", "1:2:3", -EINVAL, false, 0, 0, 0 },
		{ "minus sign", "-1", -EINVAL, false, 0, 0, 0 },
		{ "plus sign", "+1", -EINVAL, false, 0, 0, 0 },
		{ "leading space", " 1", -EINVAL, false, 0, 0, 0 },
		{ "trailing space", "1 ", -EINVAL, false, 0, 0, 0 },
		{ "space in a pair", "1: 2", -EINVAL, false, 0, 0, 0 },
		{ "hex", "0x10", -EINVAL, false, 0, 0, 0 },
		{ "the reverse-hex DID itself", "0fa.e1566887", -EINVAL, false, 0, 0, 0 },
		{ "a Call-ID", "1-3883@127.0.0.1", -EINVAL, false, 0, 0, 0 },
	};
	struct mi_dialog_id id;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc = mi_dialog_id_parse(cases[i].in, &id);

		print_message("# %s\n", cases[i].name);
		assert_int_equal(rc, cases[i].rc);
		if (rc)
			continue;
		assert_int_equal(id.pair, cases[i].pair);
		assert_int_equal(id.h_entry, cases[i].h_entry);
		assert_int_equal(id.h_id, cases[i].h_id);
		assert_true(id.decimal == cases[i].decimal);
	}
	assert_int_equal(mi_dialog_id_parse(NULL, &id), -EINVAL);
}

static void test_dialect_for(void **state)
{
	struct mi_dialog_id pair, dec;

	(void)state;
	assert_int_equal(mi_dialog_id_parse("3989:4493", &pair), 0);
	assert_int_equal(mi_dialog_id_parse("12027930502430", &dec), 0);
	/* D13 */
	assert_int_equal(mi_dialect_for(CONFIG_MI_AUTO, &pair), MI_KAMAILIO_JSONRPC);
	assert_int_equal(mi_dialect_for(CONFIG_MI_AUTO, &dec), MI_OPENSIPS_JSON);
	/* an explicit setting wins over the id's form */
	assert_int_equal(mi_dialect_for(CONFIG_MI_OPENSIPS_TEXT, &pair), MI_OPENSIPS_TEXT);
	assert_int_equal(mi_dialect_for(CONFIG_MI_OPENSIPS_JSON, &pair), MI_OPENSIPS_JSON);
	assert_int_equal(mi_dialect_for(CONFIG_MI_KAMAILIO_JSONRPC, &dec), MI_KAMAILIO_JSONRPC);
	assert_string_equal(mi_dialect_name(MI_OPENSIPS_TEXT), "opensips-text");
	assert_string_equal(mi_dialect_name(MI_OPENSIPS_JSON), "opensips-json");
	assert_string_equal(mi_dialect_name(MI_KAMAILIO_JSONRPC), "kamailio-jsonrpc");
}

/* --- requests ------------------------------------------------------------------- */

static void check_request(enum mi_dialect dialect, const char *dialog, enum mi_id_form form,
			  unsigned int request_id, int want_rc, const char *want)
{
	struct mi_dialog_id id;
	char buf[MI_REQUEST_MAX];
	int rc;

	print_message("# %s %s form %d id %u\n", mi_dialect_name(dialect), dialog, form,
		      request_id);
	assert_int_equal(mi_dialog_id_parse(dialog, &id), 0);
	memset(buf, 'x', sizeof(buf));
	rc = mi_encode_end_dialog(dialect, &id, form, request_id, buf, sizeof(buf));
	assert_int_equal(rc, want_rc);
	if (rc < 0)
		return;
	assert_string_equal(buf, want);
	assert_int_equal((size_t)rc, strlen(want));
}

#define OSIPS_REQ(did, id)                                                              \
	"{\"jsonrpc\": \"2.0\", \"method\": \"dlg_end_dlg\", \"params\": {\"dialog_id\": \"" \
	did "\"}, \"id\": " id "}"

/* OpenSIPS' int2reverse_hex, as seen through the DID of the request. */
static void test_reverse_hex(void **state)
{
	static const struct {
		const char *dialog, *did;
	} cases[] = {
		{ "12027930502430", "0fa.e1566887" },  /* Appendix A */
		{ "9647119444827", "6c8.b5ba0252" },   /* the dialog captured above */
		{ "0", "0.0" },                        /* "0" for zero, both halves */
		{ "1", "0.1" },
		{ "15", "0.f" },                       /* lower case */
		{ "16", "0.01" },                      /* least significant nibble first */
		{ "4294967296", "1.0" },               /* 1 << 32 */
		{ "18446744073709551615", "ffffffff.ffffffff" },
		{ "2800:2022073630", "0fa.e1566887" }, /* the pair form of Appendix A's id */
		{ "305419896:256", "87654321.001" },   /* 0x12345678: no padding, no trimming */
	};
	char want[128];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(want, sizeof(want), OSIPS_REQ("%s", "5"), cases[i].did);
		check_request(MI_OPENSIPS_JSON, cases[i].dialog, MI_ID_REVERSE_HEX, 5,
			      (int)strlen(want), want);
	}
}

static void test_requests(void **state)
{
	(void)state;
	/* Appendix A, OpenSIPS 3.4: DID, then the decimal. */
	check_request(MI_OPENSIPS_JSON, "12027930502430", MI_ID_REVERSE_HEX, 1,
		      (int)strlen(OSIPS_REQ("0fa.e1566887", "1")), OSIPS_REQ("0fa.e1566887", "1"));
	check_request(MI_OPENSIPS_JSON, "12027930502430", MI_ID_DECIMAL, 2,
		      (int)strlen(OSIPS_REQ("12027930502430", "2")),
		      OSIPS_REQ("12027930502430", "2"));
	/* A pair id forced through OpenSIPS JSON: the DID of its halves, or
	 * the 64-bit number they make. */
	check_request(MI_OPENSIPS_JSON, "3421:1804289383", MI_ID_DECIMAL, 3,
		      (int)strlen(OSIPS_REQ("14694887408999", "3")),
		      OSIPS_REQ("14694887408999", "3"));
	check_request(MI_OPENSIPS_JSON, "1:2", MI_ID_PAIR, 1, -EINVAL, NULL);
	/* Appendix A, Kamailio. */
	check_request(MI_KAMAILIO_JSONRPC, "3989:4493", MI_ID_PAIR, 1,
		      (int)strlen("{\"jsonrpc\": \"2.0\", \"method\": \"dlg.end_dlg\", "
				  "\"params\": [3989, 4493], \"id\": 1}"),
		      "{\"jsonrpc\": \"2.0\", \"method\": \"dlg.end_dlg\", \"params\": [3989, 4493], "
		      "\"id\": 1}");
	/* A 64-bit id sent to Kamailio: split (§5.3). */
	check_request(MI_KAMAILIO_JSONRPC, "12027930502430", MI_ID_PAIR, 2147483647,
		      (int)strlen("{\"jsonrpc\": \"2.0\", \"method\": \"dlg.end_dlg\", "
				  "\"params\": [2800, 2022073630], \"id\": 2147483647}"),
		      "{\"jsonrpc\": \"2.0\", \"method\": \"dlg.end_dlg\", \"params\": [2800, "
		      "2022073630], \"id\": 2147483647}");
	check_request(MI_KAMAILIO_JSONRPC, "1:2", MI_ID_DECIMAL, 1, -EINVAL, NULL);
	check_request(MI_KAMAILIO_JSONRPC, "1:2", MI_ID_REVERSE_HEX, 1, -EINVAL, NULL);
	/* §5.4 legacy text MI: the pair on two lines, the decimal alone. */
	check_request(MI_OPENSIPS_TEXT, "3421:1804289383", MI_ID_PAIR, 9,
		      (int)strlen(":dlg_end_dlg:\n3421\n1804289383\n\n"),
		      ":dlg_end_dlg:\n3421\n1804289383\n\n");
	check_request(MI_OPENSIPS_TEXT, "12027930502430", MI_ID_DECIMAL, 9,
		      (int)strlen(":dlg_end_dlg:\n12027930502430\n\n"),
		      ":dlg_end_dlg:\n12027930502430\n\n");
	check_request(MI_OPENSIPS_TEXT, "12027930502430", MI_ID_REVERSE_HEX, 9, -EINVAL, NULL);
}

static void test_request_buffer(void **state)
{
	static const char want[] = OSIPS_REQ("ffffffff.ffffffff", "2147483647");
	struct mi_dialog_id id;
	char buf[sizeof(want)];

	(void)state;
	assert_int_equal(mi_dialog_id_parse("18446744073709551615", &id), 0);
	/* exactly enough, one byte short, none */
	assert_int_equal(mi_encode_end_dialog(MI_OPENSIPS_JSON, &id, MI_ID_REVERSE_HEX,
					      2147483647, buf, sizeof(buf)),
			 (int)sizeof(want) - 1);
	assert_string_equal(buf, want);
	assert_int_equal(mi_encode_end_dialog(MI_OPENSIPS_JSON, &id, MI_ID_REVERSE_HEX,
					      2147483647, buf, sizeof(buf) - 1),
			 -ENOSPC);
	assert_int_equal(mi_encode_end_dialog(MI_OPENSIPS_TEXT, &id, MI_ID_DECIMAL, 1, buf, 0),
			 -ENOSPC);
	/* the longest request of all fits MI_REQUEST_MAX */
	assert_true(sizeof(want) <= MI_REQUEST_MAX);
}

/* --- replies --------------------------------------------------------------------- */

static void test_replies(void **state)
{
	static const struct {
		const char *name;
		enum mi_dialect dialect;
		const char *in;
		size_t len;
		unsigned int request_id;
		int rc;
		bool ok, json;
		int code;
		const char *message;
	} cases[] = {
		/* captured */
		{ "Kamailio success", MI_KAMAILIO_JSONRPC, S(KAM_OK), 1, 0, true, true, 200, "" },
		{ "Kamailio success, Appendix A", MI_KAMAILIO_JSONRPC, S(KAM_OK_COMPACT), 1, 0, true,
		  true, 200, "" },
		{ "Kamailio unknown dialog", MI_KAMAILIO_JSONRPC, S(KAM_404), 2, 0, false, true, 404,
		  "Dialog not found" },
		{ "Kamailio one parameter", MI_KAMAILIO_JSONRPC, S(KAM_500), 7, 0, false, true, 500,
		  "Invalid parameters" },
		{ "Kamailio echoes a big id", MI_KAMAILIO_JSONRPC, S(KAM_404_BIG_ID), 4294967295u, 0,
		  false, true, 404, "Dialog not found" },
		{ "OpenSIPS decimal refused, Appendix A", MI_OPENSIPS_JSON, S(OSIPS_404_DECIMAL), 1, 0,
		  false, true, 404, "Requested Dialog not found" },
		{ "OpenSIPS DID accepted, Appendix A", MI_OPENSIPS_JSON, S(OSIPS_OK), 2, 0, true, true,
		  200, "OK" },
		{ "OpenSIPS clamps the id", MI_OPENSIPS_JSON, S(OSIPS_404_CLAMPED_ID), 4294967295u,
		  -ESTALE, false, true, 0, "JSON-RPC reply to another request id" },
		{ "OpenSIPS unknown method", MI_OPENSIPS_JSON, S(OSIPS_NO_METHOD), 3, 0, false, true,
		  -32601, "Method not found" },
		{ "OpenSIPS 3.4 answers JSON-less text", MI_OPENSIPS_JSON, S(OSIPS_PARSE_ERROR), 1, 0,
		  false, false, 400, "Parse_error" },
		{ "OpenSIPS 3.4 refusing text MI", MI_OPENSIPS_TEXT, S(OSIPS_PARSE_ERROR), 0, 0, false,
		  false, 400, "Parse_error" },
		/* legacy text MI (§5.4) */
		{ "text success", MI_OPENSIPS_TEXT, S("200 OK\n"), 0, 0, true, false, 200, "OK" },
		{ "text success, CRLF and a body", MI_OPENSIPS_TEXT, S("200 OK\r\nx:: y\n\n"), 0, 0,
		  true, false, 200, "OK" },
		{ "text not found", MI_OPENSIPS_TEXT, S("404 Dialog not found\n"), 0, 0, false, false,
		  404, "Dialog not found" },
		{ "text code alone", MI_OPENSIPS_TEXT, S("500\n"), 0, 0, false, false, 500, "" },
		{ "text after a JSON request", MI_KAMAILIO_JSONRPC, S("200 OK\n"), 1, 0, true, false,
		  200, "OK" },
		/* ids */
		{ "id mismatch", MI_KAMAILIO_JSONRPC, S(KAM_OK), 2, -ESTALE, false, true, 0,
		  "JSON-RPC reply to another request id" },
		{ "id null (request not readable)", MI_OPENSIPS_JSON,
		  S("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,\"message\":\"Parse error\"},"
		    "\"id\":null}"),
		  9, 0, false, true, -32700, "Parse error" },
		{ "id absent", MI_OPENSIPS_JSON, S("{\"result\":\"OK\"}"), 9, 0, true, true, 200,
		  "OK" },
		{ "id as a string", MI_OPENSIPS_JSON, S("{\"result\":\"OK\",\"id\":\"9\"}"), 9, 0, true,
		  true, 200, "OK" },
		{ "id as another string", MI_OPENSIPS_JSON, S("{\"result\":\"OK\",\"id\":\"09\"}"), 9,
		  -ESTALE, false, true, 0, "JSON-RPC reply to another request id" },
		{ "id as an object", MI_OPENSIPS_JSON, S("{\"result\":\"OK\",\"id\":{}}"), 9, -ESTALE,
		  false, true, 0, "JSON-RPC reply to another request id" },
		/* JSON that is not a JSON-RPC answer */
		{ "JSON to a text request", MI_OPENSIPS_TEXT, S(OSIPS_OK), 2, -EINVAL, false, true, 0,
		  "JSON reply to a text MI request" },
		{ "neither result nor error", MI_OPENSIPS_JSON, S("{\"id\":1}"), 1, -EINVAL, false,
		  true, 0, "JSON-RPC reply without result or error" },
		{ "both result and error", MI_OPENSIPS_JSON,
		  S("{\"result\":1,\"error\":{\"code\":1},\"id\":1}"), 1, -EINVAL, false, true, 0,
		  "JSON-RPC reply with both result and error" },
		{ "error not an object", MI_OPENSIPS_JSON, S("{\"error\":\"x\",\"id\":1}"), 1, -EINVAL,
		  false, true, 0, "JSON-RPC error is not an object" },
		{ "error code not a number", MI_OPENSIPS_JSON,
		  S("{\"error\":{\"code\":\"404\"},\"id\":1}"), 1, -EINVAL, false, true, 0,
		  "JSON-RPC error code is not an integer" },
		{ "error without code or message", MI_OPENSIPS_JSON, S("{\"error\":{},\"id\":1}"), 1, 0,
		  false, true, 0, "" },
		{ "result null is still a result", MI_KAMAILIO_JSONRPC, S("{\"result\":null,\"id\":1}"),
		  1, 0, true, true, 200, "" },
		{ "message with control bytes", MI_OPENSIPS_JSON,
		  S("{\"error\":{\"code\":500,\"message\":\"a\\nb\\u0001\"},\"id\":1}"), 1, 0, false,
		  true, 500, "a?b?" },
		{ "white space around JSON", MI_OPENSIPS_JSON, S("\r\n " OSIPS_OK "\n"), 2, 0, true,
		  true, 200, "OK" },
		/* garbage */
		{ "empty", MI_OPENSIPS_JSON, "", 0, 1, -EINVAL, false, false, 0, "empty reply" },
		{ "garbage", MI_OPENSIPS_JSON, S("garbage"), 1, -EINVAL, false, false, 0,
		  "neither JSON-RPC nor a '<code> <text>' line" },
		{ "white space only", MI_KAMAILIO_JSONRPC, S(" \n"), 1, -EINVAL, false, false, 0,
		  "neither JSON-RPC nor a '<code> <text>' line" },
		{ "truncated JSON", MI_OPENSIPS_JSON, S("{\"jsonrpc\":\"2.0\",\"result\":\"OK\""), 1,
		  -EINVAL, false, false, 0, "malformed JSON" },
		{ "two JSON objects", MI_OPENSIPS_JSON, S(OSIPS_OK OSIPS_OK), 2, -EINVAL, false, false,
		  0, "bytes after the JSON reply" },
		{ "JSON array", MI_OPENSIPS_JSON, S("[" OSIPS_OK "]"), 2, -EINVAL, false, false, 0,
		  "neither JSON-RPC nor a '<code> <text>' line" },
		{ "NUL inside", MI_OPENSIPS_TEXT, S("200 OK\0"), 0, -EINVAL, false, false, 0,
		  "reply contains a NUL byte" },
		{ "two-digit code", MI_OPENSIPS_TEXT, S("20 OK\n"), 0, -EINVAL, false, false, 0,
		  "neither JSON-RPC nor a '<code> <text>' line" },
		{ "four-digit code", MI_OPENSIPS_TEXT, S("2000 OK\n"), 0, -EINVAL, false, false, 0,
		  "neither JSON-RPC nor a '<code> <text>' line" },
		{ "code starting with 0", MI_OPENSIPS_TEXT, S("099 x\n"), 0, -EINVAL, false, false, 0,
		  "neither JSON-RPC nor a '<code> <text>' line" },
		{ "a request, not a reply", MI_OPENSIPS_TEXT, S(":dlg_end_dlg:\n1\n\n"), 0, -EINVAL,
		  false, false, 0, "neither JSON-RPC nor a '<code> <text>' line" },
	};
	struct mi_reply rep;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int rc;

		print_message("# %s\n", cases[i].name);
		memset(&rep, 0x55, sizeof(rep));
		rc = mi_parse_reply(cases[i].dialect, cases[i].in, cases[i].len,
				    cases[i].request_id, &rep);
		assert_int_equal(rc, cases[i].rc);
		assert_int_equal(rep.ok, cases[i].ok);
		assert_int_equal(rep.json, cases[i].json);
		assert_int_equal(rep.code, cases[i].code);
		assert_string_equal(rep.message, cases[i].message);
	}
}

static void test_reply_limits(void **state)
{
	static char big[MI_REPLY_MAX + 2];
	struct mi_reply rep;
	size_t n;

	(void)state;
	/* A long message is cut to fit, still terminated. */
	memset(big, 0, sizeof(big));
	n = (size_t)snprintf(big, sizeof(big), "404 ");
	memset(big + n, 'm', 1000);
	assert_int_equal(mi_parse_reply(MI_OPENSIPS_TEXT, big, n + 1000, 0, &rep), 0);
	assert_int_equal(rep.code, 404);
	assert_int_equal(strlen(rep.message), sizeof(rep.message) - 1);
	/* Over MI_REPLY_MAX: refused, whatever it says. */
	memset(big, ' ', sizeof(big));
	memcpy(big, "200 OK\n", 7);
	assert_int_equal(mi_parse_reply(MI_OPENSIPS_TEXT, big, MI_REPLY_MAX, 0, &rep), 0);
	assert_int_equal(mi_parse_reply(MI_OPENSIPS_TEXT, big, MI_REPLY_MAX + 1, 0, &rep),
			 -EINVAL);
	assert_string_equal(rep.message, "reply too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialog_id_parse),
		cmocka_unit_test(test_dialect_for),
		cmocka_unit_test(test_reverse_hex),
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_request_buffer),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_reply_limits),
	};

	return cmocka_run_group_tests_name("mi_dialect", tests, NULL, NULL);
}
