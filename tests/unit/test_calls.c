/* Unit tests for dispatcherd/calls.c: the call table keyed as PROTOCOL.md D3
 * (tag-swapped lookups, forked dialogs sharing a Call-ID), expired calls and
 * calls of vanished relays (§2.4, §2.8), and the state file across a restart
 * (§2.9): round trip, cleanup limits on load, corrupt files. */
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

#include "calls.h"

#define EXPIRED_AFTER 86400
#define DEAD_AFTER 43200

struct fixture {
	char dir[64];
	char path[128];
	struct calls *calls;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mp-test-calls.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/dispatcher_state", f->dir);
	f->calls = calls_new();
	*state = f;
	return f->calls ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char tmp[160];

	calls_free(f->calls);
	unlink(f->path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	unlink(tmp);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_true(fputs(text, fp) >= 0);
	assert_int_equal(fclose(fp), 0);
}

static void test_tag_swapped_lookup(void **state)
{
	struct fixture *f = *state;
	struct call *call, *found;

	assert_int_equal(calls_add(f->calls, "5f1b2c3d@192.0.2.10", "a73kszlfl", "198.51.100.1",
				   "3421:1804289383", 100, &call), 0);
	/* The caller's INVITE and the 200 OK carry From = caller. */
	assert_ptr_equal(calls_find(f->calls, "5f1b2c3d@192.0.2.10", "a73kszlfl", NULL), call);
	assert_ptr_equal(calls_find(f->calls, "5f1b2c3d@192.0.2.10", "a73kszlfl", "1928301774"),
			 call);
	/* A re-INVITE or BYE from the callee: From and To swapped. */
	found = calls_find(f->calls, "5f1b2c3d@192.0.2.10", "1928301774", "a73kszlfl");
	assert_ptr_equal(found, call);
	assert_string_equal(found->relay_ip, "198.51.100.1");
	assert_string_equal(found->dialog_id, "3421:1804289383");
	assert_int_equal(found->created, 100);
	/* Neither tag known, or another Call-ID. */
	assert_null(calls_find(f->calls, "5f1b2c3d@192.0.2.10", "1928301774", "zzz"));
	assert_null(calls_find(f->calls, "5f1b2c3d@192.0.2.10", "1928301774", NULL));
	assert_null(calls_find(f->calls, "other@192.0.2.10", "a73kszlfl", NULL));
	/* The exact-key lookup does not try the to_tag. */
	assert_null(calls_get(f->calls, "5f1b2c3d@192.0.2.10", "1928301774"));
}

static void test_forked_dialogs_share_call_id(void **state)
{
	struct fixture *f = *state;
	struct call *a, *b;

	/* Two dialogs with one Call-ID (a B2BUA reusing it, or a second caller
	 * leg): upstream keyed on Call-ID alone merged them (§8.4). */
	assert_int_equal(calls_add(f->calls, "fork@h", "callerA", "198.51.100.1", NULL, 1, &a), 0);
	assert_int_equal(calls_add(f->calls, "fork@h", "callerB", "198.51.100.2", NULL, 1, &b), 0);
	assert_int_equal(calls_count(f->calls), 2);
	assert_ptr_equal(calls_find(f->calls, "fork@h", "callerA", "calleeX"), a);
	assert_ptr_equal(calls_find(f->calls, "fork@h", "callerB", "calleeY"), b);
	assert_ptr_equal(calls_find(f->calls, "fork@h", "calleeY", "callerB"), b);
	assert_ptr_equal(calls_find(f->calls, "fork@h", "calleeX", "callerA"), a);
	assert_null(a->dialog_id);
	/* The same key twice is refused and changes nothing. */
	assert_int_equal(calls_add(f->calls, "fork@h", "callerA", "198.51.100.9", NULL, 2, NULL),
			 -EEXIST);
	assert_string_equal(calls_get(f->calls, "fork@h", "callerA")->relay_ip, "198.51.100.1");
	calls_remove(f->calls, a);
	assert_null(calls_find(f->calls, "fork@h", "callerA", NULL));
	assert_ptr_equal(calls_find(f->calls, "fork@h", "callerB", NULL), b);
	assert_int_equal(calls_count(f->calls), 1);
}

static void test_bad_adds(void **state)
{
	struct fixture *f = *state;
	char long_ip[80];

	memset(long_ip, '1', sizeof(long_ip) - 1);
	long_ip[sizeof(long_ip) - 1] = '\0';
	assert_int_equal(calls_add(f->calls, "", "f", "192.0.2.1", NULL, 1, NULL), -EINVAL);
	assert_int_equal(calls_add(f->calls, "c", "", "192.0.2.1", NULL, 1, NULL), -EINVAL);
	assert_int_equal(calls_add(f->calls, "c", NULL, "192.0.2.1", NULL, 1, NULL), -EINVAL);
	assert_int_equal(calls_add(f->calls, "c", "f", long_ip, NULL, 1, NULL), -EINVAL);
	assert_int_equal(calls_count(f->calls), 0);
	assert_null(calls_first(f->calls));
}

static void test_walk_and_many(void **state)
{
	struct fixture *f = *state;
	struct call *call, *next;
	char cid[32];
	size_t i, n = 0;

	for (i = 0; i < 5000; i++) {
		snprintf(cid, sizeof(cid), "call-%zu", i);
		assert_int_equal(calls_add(f->calls, cid, "tag", i % 2 ? "192.0.2.1" : "192.0.2.2",
					   NULL, (time_t)i, NULL), 0);
	}
	assert_int_equal(calls_count(f->calls), 5000);
	/* Insertion order; deleting while walking. */
	for (call = calls_first(f->calls), i = 0; call; call = next, i++) {
		next = calls_next(call);
		assert_int_equal(call->created, (time_t)i);
		if (i % 2)
			calls_remove(f->calls, call);
	}
	assert_int_equal(calls_count(f->calls), 2500);
	for (i = 0; i < 5000; i++) {
		snprintf(cid, sizeof(cid), "call-%zu", i);
		call = calls_find(f->calls, cid, "x", "tag");
		if (i % 2)
			assert_null(call);
		else
			n += call && !strcmp(call->relay_ip, "192.0.2.2");
	}
	assert_int_equal(n, 2500);
}

static void test_expired_purge(void **state)
{
	struct fixture *f = *state;
	struct call *a, *b;

	assert_int_equal(calls_add(f->calls, "c1", "f1", "192.0.2.1", "1:2", 100, &a), 0);
	assert_int_equal(calls_add(f->calls, "c2", "f2", "192.0.2.1", NULL, 100, &b), 0);
	calls_set_expired(a, 1000);
	assert_int_equal(calls_purge(f->calls, 1000 + EXPIRED_AFTER - 1, EXPIRED_AFTER,
				     DEAD_AFTER), 0);
	assert_non_null(calls_get(f->calls, "c1", "f1"));
	assert_int_equal(calls_purge(f->calls, 1000 + EXPIRED_AFTER, EXPIRED_AFTER, DEAD_AFTER), 1);
	assert_null(calls_get(f->calls, "c1", "f1"));
	assert_ptr_equal(calls_get(f->calls, "c2", "f2"), b);
	/* A clock that went backwards purges nothing. */
	calls_set_expired(b, 5000);
	assert_int_equal(calls_purge(f->calls, 10, 0 + 1, DEAD_AFTER), 0);
}

static void test_dead_relay(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(calls_add(f->calls, "c1", "f", "192.0.2.1", NULL, 1, NULL), 0);
	assert_int_equal(calls_add(f->calls, "c2", "f", "192.0.2.1", NULL, 1, NULL), 0);
	assert_int_equal(calls_add(f->calls, "c3", "f", "192.0.2.2", NULL, 1, NULL), 0);
	assert_int_equal(calls_relay_lost(f->calls, "192.0.2.1", 2000), 2);
	assert_int_equal(calls_get(f->calls, "c1", "f")->relay_lost_time, 2000);
	assert_int_equal(calls_get(f->calls, "c3", "f")->relay_lost_time, 0);
	/* A second disconnect does not restart the clock. */
	assert_int_equal(calls_relay_lost(f->calls, "192.0.2.1", 3000), 0);
	/* It reconnects: the calls are live again and never purged. */
	assert_int_equal(calls_relay_back(f->calls, "192.0.2.1"), 2);
	assert_int_equal(calls_purge(f->calls, 2000 + DEAD_AFTER, EXPIRED_AFTER, DEAD_AFTER), 0);
	/* Gone for good. */
	calls_relay_lost(f->calls, "192.0.2.1", 4000);
	assert_int_equal(calls_purge(f->calls, 4000 + DEAD_AFTER - 1, EXPIRED_AFTER, DEAD_AFTER), 0);
	assert_int_equal(calls_purge(f->calls, 4000 + DEAD_AFTER, EXPIRED_AFTER, DEAD_AFTER), 2);
	assert_int_equal(calls_count(f->calls), 1);
	assert_non_null(calls_get(f->calls, "c3", "f"));
}

static void test_save_restore(void **state)
{
	struct fixture *f = *state;
	struct calls *back = calls_new();
	struct call *c, *r;
	char tmp[160];
	struct stat st;
	time_t now = 1718000000;

	assert_non_null(back);
	assert_int_equal(calls_add(f->calls, "1-16898@127.0.0.1", "16898SIPpTag001", "127.0.0.2",
				   "3431:9579", now - 60, NULL), 0);
	assert_int_equal(calls_add(f->calls, "1-3883@127.0.0.1", "3883SIPpTag001", "2001:db8::7",
				   "1181799336689", now - 30, NULL), 0);
	/* JSON-unfriendly text survives. */
	assert_int_equal(calls_add(f->calls, "q\"uo/te\\\t\xc3\xa9@h", "t\"ag", "127.0.0.3", NULL,
				   now - 10, &c), 0);
	calls_set_expired(c, now - 5);
	assert_int_equal(calls_add(f->calls, "lost@h", "f", "127.0.0.4", NULL, now - 100, &c), 0);
	calls_relay_lost(f->calls, "127.0.0.4", now - 50);

	assert_int_equal(calls_save(f->calls, f->path, now), 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
	assert_int_not_equal(access(tmp, F_OK), 0);

	assert_int_equal(calls_load(back, f->path, now + 10, EXPIRED_AFTER, DEAD_AFTER), 4);
	assert_int_equal(calls_count(back), 4);
	for (c = calls_first(f->calls); c; c = calls_next(c)) {
		r = calls_get(back, c->call_id, c->from_tag);
		assert_non_null(r);
		assert_string_equal(r->relay_ip, c->relay_ip);
		if (c->dialog_id)
			assert_string_equal(r->dialog_id, c->dialog_id);
		else
			assert_null(r->dialog_id);
		assert_int_equal(r->created, c->created);
		assert_int_equal(r->expire_time, c->expire_time);
		/* No relay is connected at start: the clock starts now unless it
		 * was already running. */
		assert_int_equal(r->relay_lost_time, c->relay_lost_time ? c->relay_lost_time :
									     now + 10);
	}
	/* Saving over an existing file replaces it. */
	calls_remove(f->calls, calls_first(f->calls));
	assert_int_equal(calls_save(f->calls, f->path, now), 0);
	calls_free(back);
	back = calls_new();
	assert_int_equal(calls_load(back, f->path, now, EXPIRED_AFTER, DEAD_AFTER), 3);
	calls_free(back);
}

static void test_load_drops_stale(void **state)
{
	struct fixture *f = *state;
	struct call *c;
	time_t now = 1718000000;

	assert_int_equal(calls_add(f->calls, "old-expired", "f", "127.0.0.2", NULL, 1, &c), 0);
	calls_set_expired(c, now - EXPIRED_AFTER);
	assert_int_equal(calls_add(f->calls, "young-expired", "f", "127.0.0.2", NULL, 1, &c), 0);
	calls_set_expired(c, now - EXPIRED_AFTER + 1);
	assert_int_equal(calls_add(f->calls, "long-dead", "f", "127.0.0.3", NULL, 1, NULL), 0);
	calls_relay_lost(f->calls, "127.0.0.3", now - DEAD_AFTER);
	assert_int_equal(calls_save(f->calls, f->path, now), 0);
	calls_free(f->calls);
	f->calls = calls_new();
	assert_int_equal(calls_load(f->calls, f->path, now, EXPIRED_AFTER, DEAD_AFTER), 1);
	assert_non_null(calls_get(f->calls, "young-expired", "f"));
}

static void test_missing_and_corrupt_files(void **state)
{
	struct fixture *f = *state;

	/* No file: a first start. */
	assert_int_equal(calls_load(f->calls, f->path, 100, EXPIRED_AFTER, DEAD_AFTER), 0);
	/* Empty, binary, a Python pickle, a JSON array: ignored whole. */
	write_file(f->path, "");
	assert_int_equal(calls_load(f->calls, f->path, 100, EXPIRED_AFTER, DEAD_AFTER), 0);
	write_file(f->path, "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.");
	assert_int_equal(calls_load(f->calls, f->path, 100, EXPIRED_AFTER, DEAD_AFTER), 0);
	write_file(f->path, "[{\"call_id\": \"c\", \"from_tag\": \"f\", \"relay_ip\": \"127.0.0.2\"}]\n");
	assert_int_equal(calls_load(f->calls, f->path, 100, EXPIRED_AFTER, DEAD_AFTER), 0);
	write_file(f->path, "{\"mediaproxy_dispatcher_state\": 99}\n"
			    "{\"call_id\": \"c\", \"from_tag\": \"f\", \"relay_ip\": \"127.0.0.2\", "
			    "\"created\": 1}\n");
	assert_int_equal(calls_load(f->calls, f->path, 100, EXPIRED_AFTER, DEAD_AFTER), 0);
	assert_int_equal(calls_count(f->calls), 0);

	/* A good header: each bad line is skipped, the good ones load. */
	write_file(f->path,
		   "{\"mediaproxy_dispatcher_state\": 1, \"saved\": 50}\n"
		   "{\"call_id\": \"good1\", \"from_tag\": \"f\", \"relay_ip\": \"127.0.0.2\", "
		   "\"dialog_id\": \"1:2\", \"created\": 1, \"expire_time\": null}\n"
		   "garbage\n"
		   "{\"call_id\": \"noip\", \"from_tag\": \"f\", \"created\": 1}\n"
		   "{\"call_id\": \"badip\", \"from_tag\": \"f\", \"relay_ip\": \"relay.example\", "
		   "\"created\": 1}\n"
		   "{\"call_id\": \"baddlg\", \"from_tag\": \"f\", \"relay_ip\": \"127.0.0.2\", "
		   "\"dialog_id\": \"x\", \"created\": 1}\n"
		   "{\"call_id\": \"negtime\", \"from_tag\": \"f\", \"relay_ip\": \"127.0.0.2\", "
		   "\"created\": -4}\n"
		   "{\"call_id\": 7, \"from_tag\": \"f\", \"relay_ip\": \"127.0.0.2\", \"created\": 1}\n"
		   "{\"call_id\": \"trail\", \"from_tag\": \"f\", \"relay_ip\": \"127.0.0.2\", "
		   "\"created\": 1} x\n"
		   "{\"call_id\": \"good1\", \"from_tag\": \"f\", \"relay_ip\": \"127.0.0.9\", "
		   "\"created\": 1}\n"
		   "\n"
		   "{\"call_id\": \"good2\", \"from_tag\": \"f\", \"relay_ip\": \"::1\", \"created\": 2}\n"
		   "{\"call_id\": \"trunc");
	assert_int_equal(calls_load(f->calls, f->path, 100, EXPIRED_AFTER, DEAD_AFTER), 2);
	assert_string_equal(calls_get(f->calls, "good1", "f")->relay_ip, "127.0.0.2");
	assert_string_equal(calls_get(f->calls, "good1", "f")->dialog_id, "1:2");
	assert_non_null(calls_get(f->calls, "good2", "f"));

	/* A directory where the file should be. */
	unlink(f->path);
	assert_int_equal(mkdir(f->path, 0700), 0);
	assert_int_equal(calls_load(f->calls, f->path, 100, EXPIRED_AFTER, DEAD_AFTER), 0);
	/* ... and saving there fails cleanly. */
	assert_true(calls_save(f->calls, f->path, 100) < 0);
	assert_int_equal(rmdir(f->path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tag_swapped_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forked_dialogs_share_call_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_adds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_walk_and_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_purge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_relay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_drops_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_corrupt_files, setup, teardown),
	};

	return cmocka_run_group_tests_name("calls", tests, NULL, NULL);
}
