/* Unit tests for accounting/record.c (the record of PROTOCOL.md §2.8, §3.3,
 * §5) and accounting/jsonl.c (one line per record, fsynced; a record
 * handed over again after a crash is not written twice; a torn last line
 * gets its newline; HUP re-opens the file). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "config.h"
#include "record.h"

/* §3.3's example, one stream. */
static const char stats_example[] =
	"{\"call_id\": \"5f1b2c3d@192.0.2.10\", \"from_tag\": \"a73kszlfl\", \"from_uri\": "
	"\"alice@example.com\", \"to_tag\": \"1928301774\", \"to_uri\": \"bob@example.com\", "
	"\"start_time\": 1718000000.52, \"duration\": 63, \"caller_ua\": \"Blink 5.1\", "
	"\"callee_ua\": \"Asterisk PBX 18\", \"username\": null, \"streams\": [{\"media_type\": "
	"\"audio\", \"status\": \"active\", \"timeout_wait\": 0, \"caller_codec\": \"G711u\", "
	"\"callee_codec\": \"G711u\", \"start_time\": 0, \"end_time\": 63, \"post_dial_delay\": "
	"1.73, \"caller_bytes\": 504000, \"callee_bytes\": 503800, \"caller_packets\": 3150, "
	"\"callee_packets\": 3149, \"caller_local\": \"198.51.100.1:40000\", \"callee_local\": "
	"\"198.51.100.1:40002\", \"caller_remote\": \"203.0.113.5:49170\", \"callee_remote\": "
	"\"198.18.7.20:10000\"}]}";

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

static const char *field_text(struct json_object *o, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, name, &v))
		return "(absent)";
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

static void test_remove_record(void **state)
{
	struct json_object *o = parse(stats_example);

	(void)state;
	assert_true(accounting_stats_started(o));
	assert_int_equal(accounting_record_complete(o, "3431:9579", false), 0);
	assert_string_equal(field_text(o, "dialog_id"), "\"3431:9579\"");
	assert_string_equal(field_text(o, "timed_out"), "false");
	assert_string_equal(field_text(o, "all_streams_ice"), "(absent)");
	/* The relay's numbers are written back as the relay wrote them. */
	assert_non_null(strstr(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			       "\"start_time\":1718000000.52,"));
	json_object_put(o);
}

static void test_expired_record(void **state)
{
	struct json_object *o = parse(stats_example);

	(void)state;
	assert_false(accounting_stats_all_ice(o));
	assert_int_equal(accounting_record_complete(o, NULL, true), 0);
	assert_string_equal(field_text(o, "dialog_id"), "null");
	assert_string_equal(field_text(o, "timed_out"), "true");
	assert_string_equal(field_text(o, "all_streams_ice"), "false");
	json_object_put(o);
}

static void test_expired_ice_record(void **state)
{
	struct json_object *o = parse("{\"call_id\": \"c\", \"from_tag\": \"f\", \"to_tag\": null,"
				      " \"start_time\": 1.5, \"streams\": [{\"status\":"
				      " \"unselected ICE candidate\"}, {\"status\":"
				      " \"unselected ICE candidate\"}]}");

	(void)state;
	assert_true(accounting_stats_all_ice(o));
	assert_int_equal(accounting_record_complete(o, "", true), 0);
	assert_string_equal(field_text(o, "dialog_id"), "null");
	assert_string_equal(field_text(o, "timed_out"), "false");
	assert_string_equal(field_text(o, "all_streams_ice"), "true");
	json_object_put(o);
}

static void test_unanswered(void **state)
{
	struct json_object *a = parse("{\"call_id\": \"c\", \"start_time\": null}");
	struct json_object *b = parse("{\"call_id\": \"c\"}");

	(void)state;
	assert_false(accounting_stats_started(a));
	assert_false(accounting_stats_started(b));
	/* No stream at all counts as "all ICE", as upstream. */
	assert_true(accounting_stats_all_ice(a));
	json_object_put(a);
	json_object_put(b);
}

/* A field the relay already sent is replaced, never duplicated. */
static void test_fields_replaced(void **state)
{
	struct json_object *o = parse("{\"call_id\": \"c\", \"from_tag\": \"f\", \"timed_out\": 7,"
				      " \"start_time\": 2}");

	(void)state;
	assert_int_equal(accounting_record_complete(o, "1", false), 0);
	assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			    "{\"call_id\":\"c\",\"from_tag\":\"f\",\"timed_out\":false,"
			    "\"start_time\":2,\"dialog_id\":\"1\"}");
	json_object_put(o);
}

static void test_parse(void **state)
{
	const char *good = "{\"call_id\":\"c1\",\"from_tag\":\"f1\",\"to_tag\":null}";
	const char *tagged = "{\"call_id\":\"c1\",\"from_tag\":\"f1\",\"to_tag\":\"t1\"}";
	const char *bad[] = {
		"", "[]", "{}", "{\"call_id\":\"c\"}", "{\"call_id\":1,\"from_tag\":\"f\"}",
		"{\"call_id\":\"c\",\"from_tag\":\"f\",\"to_tag\":5}",
		"{\"call_id\":\"c\",\"from_tag\":\"f\"} trailing", "{\"call_id\":\"c\",",
	};
	struct accounting_record rec;
	struct json_object *owned;

	(void)state;
	assert_int_equal(accounting_record_parse(good, strlen(good), &rec, &owned), 0);
	assert_string_equal(rec.call_id, "c1");
	assert_string_equal(rec.from_tag, "f1");
	assert_null(rec.to_tag);
	assert_ptr_equal(rec.json, good);
	json_object_put(owned);
	assert_int_equal(accounting_record_parse(tagged, strlen(tagged), &rec, &owned), 0);
	assert_string_equal(rec.to_tag, "t1");
	json_object_put(owned);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(accounting_record_parse(bad[i], strlen(bad[i]), &rec, &owned),
				 -EINVAL);
		assert_null(owned);
	}
}

/* --- jsonl ---------------------------------------------------------------- */

struct jsonl_fixture {
	char dir[64];
	char path[128];
	struct mp_config cfg;
	struct accounting_backend backend;
};

static int jsonl_setup(void **state)
{
	struct jsonl_fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mp-test-jsonl.XXXXXX");
	if (!mkdtemp(f->dir) || config_init_defaults(&f->cfg))
		return -1;
	/* A directory that does not exist yet: the backend creates it. */
	snprintf(f->path, sizeof(f->path), "%s/log/acct.jsonl", f->dir);
	free(f->cfg.dispatcher.accounting_file);
	f->cfg.dispatcher.accounting_file = strdup(f->path);
	if (accounting_jsonl_open(&f->backend, &f->cfg, err, sizeof(err)))
		return -1;
	*state = f;
	return 0;
}

static int jsonl_teardown(void **state)
{
	struct jsonl_fixture *f = *state;
	char cmd[128];

	f->backend.close(f->backend.state);
	config_free(&f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static int deliver(struct jsonl_fixture *f, const char *json)
{
	struct accounting_record rec;
	struct json_object *owned;
	char err[256];
	int rc;

	assert_int_equal(accounting_record_parse(json, strlen(json), &rec, &owned), 0);
	rc = f->backend.deliver(f->backend.state, &rec, err, sizeof(err));
	json_object_put(owned);
	return rc;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static void make_parent(const char *path)
{
	char parent[128];

	snprintf(parent, sizeof(parent), "%s", path);
	*strrchr(parent, '/') = '\0';
	assert_true(mkdir(parent, 0700) == 0 || errno == EEXIST);
}

static void append_raw(const char *path, const char *text)
{
	int fd;

	make_parent(path);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

#define REC1 "{\"call_id\":\"c1\",\"from_tag\":\"f\",\"to_tag\":null}"
#define REC2 "{\"call_id\":\"c2\",\"from_tag\":\"f\",\"to_tag\":\"t\"}"

static void test_jsonl_lines(void **state)
{
	struct jsonl_fixture *f = *state;

	assert_int_equal(deliver(f, REC1), 0);
	assert_int_equal(deliver(f, REC2), 0);
	/* The same record twice in a row while running is written twice:
	 * only the first delivery after a start looks at the tail. */
	assert_int_equal(deliver(f, REC2), 0);
	assert_string_equal(slurp(f->path), REC1 "\n" REC2 "\n" REC2 "\n");
}

/* After a restart the record being delivered at the crash comes again. */
static void test_jsonl_crash_window(void **state)
{
	struct jsonl_fixture *f = *state;

	append_raw(f->path, REC1 "\n" REC2 "\n");
	assert_int_equal(deliver(f, REC2), 0);
	assert_string_equal(slurp(f->path), REC1 "\n" REC2 "\n");
	assert_int_equal(deliver(f, REC1), 0);
	assert_string_equal(slurp(f->path), REC1 "\n" REC2 "\n" REC1 "\n");
}

/* Only a whole last line counts: a line that merely ends with the record
 * is a different record. */
static void test_jsonl_suffix_is_not_a_match(void **state)
{
	struct jsonl_fixture *f = *state;

	append_raw(f->path, "{\"x\":" REC1 "\n");
	assert_int_equal(deliver(f, REC1), 0);
	assert_string_equal(slurp(f->path), "{\"x\":" REC1 "\n" REC1 "\n");
}

static void test_jsonl_torn_line(void **state)
{
	struct jsonl_fixture *f = *state;

	append_raw(f->path, REC1 "\n{\"call_id\":\"c2\",\"fr");
	assert_int_equal(deliver(f, REC2), 0);
	assert_string_equal(slurp(f->path),
			    REC1 "\n{\"call_id\":\"c2\",\"fr\n" REC2 "\n");
}

static void test_jsonl_reopen(void **state)
{
	struct jsonl_fixture *f = *state;
	char rotated[160];

	assert_int_equal(deliver(f, REC1), 0);
	snprintf(rotated, sizeof(rotated), "%s.1", f->path);
	assert_int_equal(rename(f->path, rotated), 0);
	f->backend.reopen(f->backend.state);
	assert_int_equal(deliver(f, REC2), 0);
	assert_string_equal(slurp(rotated), REC1 "\n");
	assert_string_equal(slurp(f->path), REC2 "\n");
}

/* Cannot open (a directory in the way): retry later, with the reason. */
static void test_jsonl_unwritable(void **state)
{
	struct jsonl_fixture *f = *state;
	struct accounting_record rec;
	struct json_object *owned;
	char err[256] = "";

	make_parent(f->path);
	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_int_equal(accounting_record_parse(REC1, strlen(REC1), &rec, &owned), 0);
	assert_int_equal(f->backend.deliver(f->backend.state, &rec, err, sizeof(err)), -EAGAIN);
	assert_non_null(strstr(err, "Is a directory"));
	assert_non_null(strstr(err, f->path));
	json_object_put(owned);
	assert_int_equal(rmdir(f->path), 0);
	assert_int_equal(deliver(f, REC1), 0);
	assert_string_equal(slurp(f->path), REC1 "\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remove_record),
		cmocka_unit_test(test_expired_record),
		cmocka_unit_test(test_expired_ice_record),
		cmocka_unit_test(test_unanswered),
		cmocka_unit_test(test_fields_replaced),
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_jsonl_lines, jsonl_setup, jsonl_teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_crash_window, jsonl_setup, jsonl_teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_suffix_is_not_a_match, jsonl_setup,
						jsonl_teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_torn_line, jsonl_setup, jsonl_teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_reopen, jsonl_setup, jsonl_teardown),
		cmocka_unit_test_setup_teardown(test_jsonl_unwritable, jsonl_setup, jsonl_teardown),
	};

	return cmocka_run_group_tests_name("accounting_record", tests, NULL, NULL);
}
