/* Unit tests for the durable accounting spool (accounting/spool.c) and its
 * on-disk text (accounting/spool_frame.c): frames, cursors and segment names
 * round-tripped and damaged ones refused; records handed to several readers
 * in order through their own cursors, across a close and a SIGKILL; a torn
 * tail cut off and a corrupt frame skipped with one log line; segments
 * rolled and deleted once passed; the size bound; backlog numbers; one
 * appender racing two reader threads. Every spool lives in a temp dir. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "spool.h"
#include "spool_frame.h"

#define MiB (1u << 20)

static const char *const one[] = { "jsonl" };
static const char *const two[] = { "jsonl", "radius" };

struct fixture {
	char dir[64];
	char path[256]; /* scratch for file names */
	struct spool *sp;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mp-test-spool.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	spool_close(f->sp);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static struct spool *sp_open(const char *dir, uint64_t max, const char *const *names, size_t n)
{
	struct spool_options o = { .dir = dir, .max_bytes = max, .readers = names,
				   .reader_count = n };
	struct spool *sp = NULL;

	assert_int_equal(spool_open(&sp, &o), 0);
	assert_non_null(sp);
	return sp;
}

static void shut(struct fixture *f)
{
	spool_close(f->sp);
	f->sp = NULL;
}

static void reopen(struct fixture *f, uint64_t max, const char *const *names, size_t n)
{
	spool_close(f->sp);
	f->sp = sp_open(f->dir, max, names, n);
}

/* A record like the dispatcher's, about 100 bytes (per thread). */
static const char *rec(unsigned i)
{
	static _Thread_local char buf[128];

	snprintf(buf, sizeof(buf), "{\"call_id\":\"call-%u@example.org\",\"from_tag\":\"ft%u\","
		 "\"to_tag\":null,\"duration\":%u}", i, i, i * 7);
	return buf;
}

static void append(struct spool *sp, unsigned i)
{
	const char *j = rec(i);

	assert_int_equal(spool_append(sp, j, strlen(j)), 0);
}

/* Reader r's next record is seq with the json of rec(i); advance past it. */
static void take(struct spool *sp, size_t r, uint64_t seq, unsigned i)
{
	struct spool_entry e;

	assert_int_equal(spool_next(sp, r, &e), 0);
	assert_int_equal(e.seq, seq);
	assert_string_equal(e.json, rec(i));
	assert_int_equal(e.len, strlen(rec(i)));
	assert_int_equal(spool_advance(sp, r), 0);
}

static void at_end(struct spool *sp, size_t r)
{
	struct spool_entry e;

	assert_int_equal(spool_next(sp, r, &e), -ENOENT);
}

static const char *seg_path(struct fixture *f, uint64_t num)
{
	char name[SPOOL_SEGMENT_NAME_LEN + 1];

	spool_segment_name(name, num);
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
	return f->path;
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static int count_segments(struct fixture *f, uint64_t *bytes)
{
	struct dirent **list;
	int n = scandir(f->dir, &list, NULL, alphasort), segs = 0;
	char path[320];

	assert_true(n >= 0);
	*bytes = 0;
	for (int i = 0; i < n; i++) {
		uint64_t num;

		if (spool_segment_parse(list[i]->d_name, &num) == 0) {
			segs++;
			snprintf(path, sizeof(path), "%s/%s", f->dir, list[i]->d_name);
			*bytes += (uint64_t)file_size(path);
		}
		free(list[i]);
	}
	free(list);
	return segs;
}

static void write_at(const char *path, off_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, len, off), (ssize_t)len);
	close(fd);
}

static char *read_file(const char *path)
{
	static char buf[256];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* stderr (where log.h writes) into a temp file between cap_start/cap_end. */
static struct { int saved, fd; char path[64]; } cap;

static void cap_start(void)
{
	strcpy(cap.path, "/tmp/mp-test-spool-log.XXXXXX");
	cap.fd = mkstemp(cap.path);
	cap.saved = dup(STDERR_FILENO);
	assert_true(cap.fd >= 0 && cap.saved >= 0);
	fflush(stderr);
	dup2(cap.fd, STDERR_FILENO);
}

static char *cap_end(void)
{
	static char out[8192];
	ssize_t n;

	fflush(stderr);
	dup2(cap.saved, STDERR_FILENO);
	close(cap.saved);
	n = pread(cap.fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(cap.fd);
	unlink(cap.path);
	fputs(out, stderr); /* keep it visible in the test log */
	return out;
}

static int count_substr(const char *s, const char *sub)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
		n++;
	return n;
}

/* ---- the on-disk text (pure) -------------------------------------------------- */

static void test_frame_round_trip(void **state)
{
	static const char json[] = "{\"call_id\":\"a b\",\"x\":[1,2]}";
	char buf[256];
	struct spool_frame fr;
	int n;

	(void)state;
	n = spool_frame_format(buf, sizeof(buf), 0x2a, 1700000000, json, strlen(json));
	assert_true(n > 0);
	assert_int_equal(buf[n - 1], '\n');
	assert_memory_equal(buf, "000000000000002a 1700000000 ", 28);
	assert_int_equal(spool_frame_parse(buf, (size_t)n - 1, &fr), 0);
	assert_int_equal(fr.seq, 0x2a);
	assert_int_equal(fr.spooled_at, 1700000000);
	assert_int_equal(fr.len, strlen(json));
	assert_memory_equal(fr.json, json, fr.len);
	assert_int_equal(spool_frame_format(buf, (size_t)n - 1, 0x2a, 1700000000, json,
					    strlen(json)), -ENOBUFS);
	assert_int_equal(spool_frame_format(buf, sizeof(buf), 0, 1, json, strlen(json)), -EINVAL);
	assert_int_equal(spool_frame_format(buf, sizeof(buf), 1, -1, json, strlen(json)),
			 -EINVAL);
	assert_int_equal(spool_frame_format(buf, sizeof(buf), 1, 1, "a\nb", 3), -EINVAL);
}

/* Each line is a frame written by spool_frame_format() for seq 1, time 5,
 * json {"a":1} ("0000000000000001 5 <crc> {"a":1}"), then damaged. */
static void test_frame_parse_refusals(void **state)
{
	char good[64], line[64];
	struct spool_frame fr;
	int n = spool_frame_format(good, sizeof(good), 1, 5, "{\"a\":1}", 7);
	static const struct {
		const char *name;
		size_t at;  /* byte to replace, or SIZE_MAX */
		char with;  /* '?': another hex digit than the one there */
		size_t cut; /* bytes cut off the end */
	} cases[] = {
		{ "undamaged frame", SIZE_MAX, 0, 0 },
		{ "json byte flipped", 33, '2', 0 },
		{ "seq digit flipped (crc covers the header)", 15, '3', 0 },
		{ "time digit flipped", 17, '6', 0 },
		{ "crc digit flipped", 19, '?', 0 },
		{ "upper-case hex in the seq", 15, 'A', 0 },
		{ "sign in front of the time", 17, '-', 0 },
		{ "tab instead of a space", 16, '\t', 0 },
		{ "NUL inside the json", 30, '\0', 0 },
		{ "json cut short", SIZE_MAX, 0, 3 },
		{ "json missing", SIZE_MAX, 0, 7 },
		{ "header only half there", SIZE_MAX, 0, 20 },
	};

	(void)state;
	assert_int_equal(n, 36);
	assert_memory_equal(good + 16, " 5 ", 3);
	assert_memory_equal(good + 27, " {\"a\":1}\n", 9);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = (size_t)n - 1 - cases[i].cut, at = cases[i].at;
		int rc;

		memcpy(line, good, (size_t)n);
		if (at != SIZE_MAX)
			line[at] = cases[i].with == '?' ? (good[at] == '0' ? '1' : '0') :
							  cases[i].with;
		if (at != SIZE_MAX && line[at] == good[at])
			fail_msg("case \"%s\" does not change the frame", cases[i].name);
		rc = spool_frame_parse(line, len, &fr);
		if (rc != (i == 0 ? 0 : -EBADMSG))
			fail_msg("case \"%s\": %d", cases[i].name, rc);
	}
	/* a time with a leading zero is not what we write */
	assert_int_equal(spool_frame_parse("0000000000000001 05 00000000 {}", 31, &fr), -EBADMSG);
	/* seq 0 is never written */
	n = spool_frame_format(good, sizeof(good), 1, 5, "{}", 2);
	memcpy(good + 15, "0", 1);
	assert_int_equal(spool_frame_parse(good, (size_t)n - 1, &fr), -EBADMSG);
}

static void test_names_and_cursors(void **state)
{
	static const struct {
		const char *name;
		const char *text;
		int want;
		struct spool_cursor c;
	} cursors[] = {
		{ "fresh", "0000000000000001 0 0\n", 0, { 1, 0, 0 } },
		{ "mid-way", "00000000000000ff 4194000 12345\n", 0, { 0xff, 4194000, 12345 } },
		{ "largest numbers", "ffffffffffffffff 18446744073709551615 18446744073709551615\n",
		  0, { UINT64_MAX, UINT64_MAX, UINT64_MAX } },
		{ "overflowing offset", "0000000000000001 18446744073709551616 0\n", -EBADMSG, { 0 } },
		{ "no LF (torn)", "0000000000000001 0 0", -EBADMSG, { 0 } },
		{ "segment 0", "0000000000000000 0 0\n", -EBADMSG, { 0 } },
		{ "leading zero", "0000000000000001 00 0\n", -EBADMSG, { 0 } },
		{ "trailing junk", "0000000000000001 0 0\nx", -EBADMSG, { 0 } },
		{ "empty file", "", -EBADMSG, { 0 } },
	};
	char buf[SPOOL_CURSOR_MAX + 1], name[SPOOL_SEGMENT_NAME_LEN + 1];
	struct spool_cursor c;
	uint64_t num;

	(void)state;
	for (size_t i = 0; i < sizeof(cursors) / sizeof(cursors[0]); i++) {
		int rc = spool_cursor_parse(cursors[i].text, strlen(cursors[i].text), &c);

		if (rc != cursors[i].want)
			fail_msg("cursor \"%s\": %d, want %d", cursors[i].name, rc, cursors[i].want);
		if (rc)
			continue;
		assert_memory_equal(&c, &cursors[i].c, sizeof(c));
		assert_int_equal(spool_cursor_format(buf, sizeof(buf), &c),
				 (int)strlen(cursors[i].text));
		assert_string_equal(buf, cursors[i].text);
	}
	spool_segment_name(name, 0x1234);
	assert_string_equal(name, "seg-0000000000001234.log");
	assert_int_equal(spool_segment_parse(name, &num), 0);
	assert_int_equal(num, 0x1234);
	assert_int_equal(spool_segment_parse("seg-0000000000000000.log", &num), -EINVAL);
	assert_int_equal(spool_segment_parse("seg-000000000000000A.log", &num), -EINVAL);
	assert_int_equal(spool_segment_parse("seg-0000000000000001.log.tmp", &num), -EINVAL);
	assert_int_equal(spool_segment_parse("cursor-jsonl", &num), -EINVAL);
	assert_int_equal(spool_reader_name_check("jsonl"), 0);
	assert_int_equal(spool_reader_name_check("a/b"), -EINVAL);
	assert_int_equal(spool_reader_name_check("x.tmp"), -EINVAL);
	assert_int_equal(spool_reader_name_check(""), -EINVAL);
}

/* ---- the spool ---------------------------------------------------------------- */

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct spool_entry e, again;
	char nested[96], want[64];
	struct stat st;

	snprintf(nested, sizeof(nested), "%s/var/spool/acct", f->dir);
	umask(022);
	f->sp = sp_open(nested, MiB, one, 1);
	assert_int_equal(stat(nested, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	at_end(f->sp, 0);
	assert_int_equal(spool_advance(f->sp, 0), -EINVAL); /* nothing handed out */
	for (unsigned i = 1; i <= 3; i++)
		append(f->sp, i);
	/* spool_next() hands out the same record until the reader advances */
	assert_int_equal(spool_next(f->sp, 0, &e), 0);
	assert_int_equal(spool_next(f->sp, 0, &again), 0);
	assert_int_equal(e.seq, 1);
	assert_ptr_equal(e.json, again.json);
	assert_true(labs((long)(time(NULL) - e.spooled_at)) <= 2);
	assert_int_equal(spool_advance(f->sp, 0), 0);
	take(f->sp, 0, 2, 2);
	take(f->sp, 0, 3, 3);
	at_end(f->sp, 0);
	assert_int_equal(spool_next(f->sp, 1, &e), -EINVAL);

	/* on disk: the cursor after the third frame, at the segment's end */
	snprintf(f->path, sizeof(f->path), "%s/seg-0000000000000001.log", nested);
	snprintf(want, sizeof(want), "0000000000000001 %lld 3\n", (long long)file_size(f->path));
	assert_int_equal(spool_bytes(f->sp), file_size(f->path));
	snprintf(f->path, sizeof(f->path), "%s/cursor-jsonl", nested);
	assert_string_equal(read_file(f->path), want);
}

static void test_readers_are_independent(void **state)
{
	struct fixture *f = *state;

	f->sp = sp_open(f->dir, MiB, two, 2);
	for (unsigned i = 1; i <= 4; i++)
		append(f->sp, i);
	for (unsigned i = 1; i <= 4; i++)
		take(f->sp, 0, i, i);
	at_end(f->sp, 0);
	take(f->sp, 1, 1, 1);
	append(f->sp, 5);
	take(f->sp, 0, 5, 5);
	for (unsigned i = 2; i <= 5; i++)
		take(f->sp, 1, i, i);
	at_end(f->sp, 1);
}

static void test_reopen_keeps_positions(void **state)
{
	struct fixture *f = *state;

	f->sp = sp_open(f->dir, MiB, two, 2);
	for (unsigned i = 1; i <= 5; i++)
		append(f->sp, i);
	take(f->sp, 0, 1, 1);
	take(f->sp, 0, 2, 2);
	for (unsigned i = 1; i <= 4; i++)
		take(f->sp, 1, i, i);
	reopen(f, MiB, two, 2);
	take(f->sp, 0, 3, 3);
	take(f->sp, 1, 5, 5);
	at_end(f->sp, 1);
	append(f->sp, 6); /* seq goes on where it stopped */
	take(f->sp, 1, 6, 6);
	/* a reader added later starts at the oldest record still there */
	reopen(f, MiB, (const char *const[]){ "jsonl", "radius", "database" }, 3);
	take(f->sp, 2, 1, 1);
	take(f->sp, 0, 4, 4);
}

/* The process dies (SIGKILL) after handing out records 1 and 2 and after
 * advancing past 1 only: record 2 comes again, then 3, then new ones. */
static void test_sigkill_redelivers(void **state)
{
	struct fixture *f = *state;
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct spool_options o = { f->dir, MiB, one, 1 };
		struct spool_entry e;
		struct spool *sp;

		if (spool_open(&sp, &o) || spool_append(sp, rec(1), strlen(rec(1))) ||
		    spool_append(sp, rec(2), strlen(rec(2))) ||
		    spool_append(sp, rec(3), strlen(rec(3))) || spool_next(sp, 0, &e) ||
		    spool_advance(sp, 0) || spool_next(sp, 0, &e))
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	f->sp = sp_open(f->dir, MiB, one, 1);
	take(f->sp, 0, 2, 2);
	take(f->sp, 0, 3, 3);
	at_end(f->sp, 0);
	append(f->sp, 4);
	take(f->sp, 0, 4, 4);
}

/* A crash mid-append leaves the start of a frame, or garbage, at the end
 * of the newest segment: it is cut off with a log line and the records
 * before it are delivered. */
static void test_torn_tail_cut_off(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *name;
		const char *tail;
		size_t len;
	} cases[] = {
		{ "half a frame", "0000000000000004 1700000000 1a2b", 32 },
		{ "a complete line of garbage", "not a frame at all\n", 19 },
		{ "zeros the file system left", "\0\0\0\0\0\0\0\0\0\0\0\0", 12 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[384], *log;
		off_t size;

		f->sp = sp_open(f->dir, MiB, one, 1);
		append(f->sp, 1);
		append(f->sp, 2);
		append(f->sp, 3);
		spool_close(f->sp);
		f->sp = NULL;
		size = file_size(seg_path(f, 1));
		write_at(seg_path(f, 1), size, cases[i].tail, cases[i].len);

		cap_start();
		f->sp = sp_open(f->dir, MiB, one, 1);
		log = cap_end();
		snprintf(want, sizeof(want), "%s: cutting off %zu byte(s) of torn or corrupt tail"
			 " at offset %lld", seg_path(f, 1), cases[i].len, (long long)size);
		if (!strstr(log, want))
			fail_msg("%s: no \"%s\" in the log", cases[i].name, want);
		assert_int_equal(file_size(seg_path(f, 1)), size);
		take(f->sp, 0, 1, 1);
		take(f->sp, 0, 2, 2);
		take(f->sp, 0, 3, 3);
		at_end(f->sp, 0);
		append(f->sp, 4);
		take(f->sp, 0, 4, 4);
		spool_close(f->sp);
		f->sp = NULL;
		unlink(seg_path(f, 1));
		snprintf(f->path, sizeof(f->path), "%s/cursor-jsonl", f->dir);
		unlink(f->path);
	}
}

/* A damaged frame in the middle stays on disk; each reader skips it, the
 * log says so once, and the records after it arrive. */
static void test_corrupt_middle_frame_skipped(void **state)
{
	struct fixture *f = *state;
	size_t len1 = strlen(rec(1)), hdr = 0;
	struct spool_backlog b;
	char want[384], *log;
	off_t size, at2;

	f->sp = sp_open(f->dir, MiB, two, 2);
	append(f->sp, 1);
	at2 = (off_t)spool_bytes(f->sp);
	append(f->sp, 2);
	append(f->sp, 3);
	spool_close(f->sp);
	f->sp = NULL;
	size = file_size(seg_path(f, 1));
	hdr = (size_t)at2 - len1 - 1;           /* every header here is as long */
	write_at(seg_path(f, 1), at2 + (off_t)hdr + 3, "X", 1); /* in record 2's json */

	cap_start();
	f->sp = sp_open(f->dir, MiB, two, 2);
	take(f->sp, 0, 1, 1);
	take(f->sp, 0, 3, 3);
	at_end(f->sp, 0);
	take(f->sp, 1, 1, 1);
	take(f->sp, 1, 3, 3);
	at_end(f->sp, 1);
	log = cap_end();
	snprintf(want, sizeof(want), "%s: skipping %lld byte(s) of corrupt frames at offset %lld",
		 seg_path(f, 1), (long long)(hdr + strlen(rec(2)) + 1), (long long)at2);
	assert_int_equal(count_substr(log, want), 1);
	assert_null(strstr(log, "cutting off"));
	assert_int_equal(file_size(seg_path(f, 1)), size);
	spool_backlog(f->sp, 0, time(NULL), &b);
	assert_int_equal(b.pending, 0);

	/* an unparsable header is skipped the same way */
	append(f->sp, 4);
	append(f->sp, 5);
	write_at(seg_path(f, 1), size, "Z", 1); /* first byte of record 4's seq */
	take(f->sp, 0, 5, 5);
	take(f->sp, 1, 5, 5);

	/* damaged while the spool is open, and the last one: once a reader is
	 * at the end nothing it could read is pending any more */
	size = file_size(seg_path(f, 1));
	append(f->sp, 6);
	write_at(seg_path(f, 1), size + (off_t)hdr + 3, "X", 1);
	at_end(f->sp, 0);
	spool_backlog(f->sp, 0, time(NULL), &b);
	assert_int_equal(b.pending, 0);
	assert_true(b.oldest_age_s == 0);
	spool_backlog(f->sp, 1, time(NULL), &b); /* looks ahead like spool_next() */
	assert_int_equal(b.pending, 0);
	at_end(f->sp, 1);
}

/* Frames out of order (a hand-edited or mixed-up segment) never make a new
 * record reuse a seq a reader has passed: it would be skipped as seen. */
static void test_seq_never_reused(void **state)
{
	struct fixture *f = *state;
	char seg[512];
	int n, m;
	FILE *fp;

	n = spool_frame_format(seg, sizeof(seg), 5, 1700000000, rec(5), strlen(rec(5)));
	m = spool_frame_format(seg + n, sizeof(seg) - (size_t)n, 3, 1700000001, rec(3),
			       strlen(rec(3)));
	fp = fopen(seg_path(f, 1), "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(seg, 1, (size_t)(n + m), fp), (size_t)(n + m));
	fclose(fp);
	f->sp = sp_open(f->dir, MiB, one, 1);
	take(f->sp, 0, 5, 5);
	at_end(f->sp, 0); /* 3 comes after 5: passed already */
	append(f->sp, 6);
	take(f->sp, 0, 6, 6);
}

static void test_rollover_and_deletion(void **state)
{
	struct fixture *f = *state;
	uint64_t bytes;
	int segs;

	/* an 8 KiB bound gives 1 KiB segments: about 7 records each */
	f->sp = sp_open(f->dir, 8192, two, 2);
	for (unsigned i = 1; i <= 40; i++)
		append(f->sp, i);
	segs = count_segments(f, &bytes);
	assert_true(segs >= 5);
	assert_int_equal(bytes, spool_bytes(f->sp));
	for (unsigned i = 1; i <= 40; i++)
		take(f->sp, 0, i, i);
	assert_int_equal(count_segments(f, &bytes), segs); /* reader 1 has not passed */
	for (unsigned i = 1; i <= 20; i++)
		take(f->sp, 1, i, i);
	assert_true(count_segments(f, &bytes) < segs);
	assert_true(count_segments(f, &bytes) > 1);
	assert_int_equal(bytes, spool_bytes(f->sp));
	for (unsigned i = 21; i <= 40; i++)
		take(f->sp, 1, i, i);
	/* only the segment appended to is left */
	assert_int_equal(count_segments(f, &bytes), 1);
	assert_int_equal(bytes, spool_bytes(f->sp));
	reopen(f, 8192, two, 2);
	at_end(f->sp, 0);
	append(f->sp, 41);
	take(f->sp, 0, 41, 41);
	take(f->sp, 1, 41, 41);
}

static void test_bound_and_recovery(void **state)
{
	struct fixture *f = *state;
	unsigned n = 0;
	char *big;
	int rc;

	f->sp = sp_open(f->dir, 8192, one, 1);
	while ((rc = spool_append(f->sp, rec(n + 1), strlen(rec(n + 1)))) == 0)
		n++;
	assert_int_equal(rc, -ENOSPC);
	assert_true(n > 40);
	assert_true(spool_bytes(f->sp) <= 8192);
	/* header: 16 hex, 10 digits, 8 hex, 3 spaces; then LF */
	assert_true(spool_bytes(f->sp) + 38 + strlen(rec(n + 1)) > 8192);
	/* still refused after a reopen: the bound counts what is on disk */
	reopen(f, 8192, one, 1);
	assert_int_equal(spool_append(f->sp, rec(n + 1), strlen(rec(n + 1))), -ENOSPC);
	for (unsigned i = 1; i <= n; i++)
		take(f->sp, 0, i, i);
	append(f->sp, n + 1);
	append(f->sp, n + 2);
	take(f->sp, 0, n + 1, n + 1);
	take(f->sp, 0, n + 2, n + 2);

	big = malloc(SPOOL_MAX_RECORD + 1);
	assert_non_null(big);
	memset(big, 'x', SPOOL_MAX_RECORD + 1);
	assert_int_equal(spool_append(f->sp, big, SPOOL_MAX_RECORD + 1), -EMSGSIZE);
	free(big);
}

/* The largest record goes through, and longer lines are not frames. */
static void test_largest_record(void **state)
{
	struct fixture *f = *state;
	struct spool_entry e;
	char *big = malloc(SPOOL_MAX_RECORD);

	assert_non_null(big);
	memset(big, 'x', SPOOL_MAX_RECORD);
	big[0] = '"';
	big[SPOOL_MAX_RECORD - 1] = '"';
	f->sp = sp_open(f->dir, 64 * MiB, one, 1);
	assert_int_equal(spool_append(f->sp, big, SPOOL_MAX_RECORD), 0);
	append(f->sp, 2);
	reopen(f, 64 * MiB, one, 1);
	assert_int_equal(spool_next(f->sp, 0, &e), 0);
	assert_int_equal(e.seq, 1);
	assert_int_equal(e.len, SPOOL_MAX_RECORD);
	assert_int_equal(strlen(e.json), SPOOL_MAX_RECORD);
	assert_memory_equal(e.json, big, SPOOL_MAX_RECORD);
	assert_int_equal(spool_advance(f->sp, 0), 0);
	take(f->sp, 0, 2, 2);
	spool_close(f->sp);
	f->sp = NULL;

	/* 17 MiB without a LF between two good frames is no frame: skipped */
	shut(f);
	snprintf(f->path, sizeof(f->path), "%s/other", f->dir);
	f->sp = sp_open(f->path, 64 * MiB, one, 1);
	append(f->sp, 1);
	shut(f);
	{
		size_t glen = SPOOL_MAX_RECORD + MiB;
		char path[128], frame[256];
		off_t end;
		int n = spool_frame_format(frame, sizeof(frame), 2, 1700000000, rec(2),
					   strlen(rec(2)));

		snprintf(path, sizeof(path), "%s/other/seg-0000000000000001.log", f->dir);
		end = file_size(path);
		memset(big, 'g', SPOOL_MAX_RECORD);
		for (size_t at = 0, part; at < glen; at += part) {
			part = glen - at < SPOOL_MAX_RECORD ? glen - at : SPOOL_MAX_RECORD;
			write_at(path, end + (off_t)at, big, part);
		}
		write_at(path, end + (off_t)glen, "\n", 1);
		write_at(path, end + (off_t)glen + 1, frame, (size_t)n);
		cap_start();
		f->sp = sp_open(f->path, 64 * MiB, one, 1);
		take(f->sp, 0, 1, 1);
		take(f->sp, 0, 2, 2);
		snprintf(frame, sizeof(frame), "skipping %zu byte(s) of corrupt frames", glen + 1);
		assert_non_null(strstr(cap_end(), frame));
	}
	append(f->sp, 3);
	take(f->sp, 0, 3, 3);
	free(big);
}

static void test_backlog(void **state)
{
	struct fixture *f = *state;
	struct spool_backlog b;
	time_t now = time(NULL);

	f->sp = sp_open(f->dir, MiB, two, 2);
	spool_backlog(f->sp, 0, now, &b);
	assert_int_equal(b.pending, 0);
	assert_true(b.oldest_age_s == 0);
	for (unsigned i = 1; i <= 3; i++)
		append(f->sp, i);
	spool_backlog(f->sp, 0, now + 100, &b);
	assert_int_equal(b.pending, 3);
	assert_true(b.oldest_age_s >= 98 && b.oldest_age_s <= 100);
	take(f->sp, 0, 1, 1);
	spool_backlog(f->sp, 0, now + 100, &b);
	assert_int_equal(b.pending, 2);
	/* a record handed out but not advanced past is still pending */
	{
		struct spool_entry e;

		assert_int_equal(spool_next(f->sp, 0, &e), 0);
		spool_backlog(f->sp, 0, now + 100, &b);
		assert_int_equal(b.pending, 2);
		assert_int_equal(spool_advance(f->sp, 0), 0);
	}
	take(f->sp, 0, 3, 3);
	spool_backlog(f->sp, 0, now + 100, &b);
	assert_int_equal(b.pending, 0);
	assert_true(b.oldest_age_s == 0);
	spool_backlog(f->sp, 1, now + 100, &b);
	assert_int_equal(b.pending, 3);
	/* the counts survive a restart */
	reopen(f, MiB, two, 2);
	spool_backlog(f->sp, 0, now, &b);
	assert_int_equal(b.pending, 0);
	spool_backlog(f->sp, 1, now, &b);
	assert_int_equal(b.pending, 3);
	take(f->sp, 1, 1, 1);
	spool_backlog(f->sp, 1, now, &b);
	assert_int_equal(b.pending, 2);
	spool_backlog(f->sp, 7, now, &b);
	assert_int_equal(b.pending, 0);
}

/* Cursors that cannot be right are put back, logged, and never cause a
 * record to come twice. */
static void test_cursor_clamped(void **state)
{
	struct fixture *f = *state;
	char text[300], *log;
	struct spool_backlog b;
	uint64_t end2;

	f->sp = sp_open(f->dir, MiB, one, 1);
	append(f->sp, 1);
	append(f->sp, 2);
	take(f->sp, 0, 1, 1);
	end2 = spool_bytes(f->sp);
	append(f->sp, 3);
	take(f->sp, 0, 2, 2);
	shut(f);
	snprintf(f->path, sizeof(f->path), "%s/cursor-jsonl", f->dir);

	/* inside a frame */
	snprintf(text, sizeof(text), "0000000000000001 %" PRIu64 " 2\n", end2 - 5);
	write_file(f->path, text);
	cap_start();
	f->sp = sp_open(f->dir, MiB, one, 1);
	log = cap_end();
	assert_non_null(strstr(log, "cursor-jsonl (segment 0000000000000001, offset"));
	assert_non_null(strstr(log, "is not at the start of a frame"));
	take(f->sp, 0, 3, 3);
	shut(f);

	/* past the end */
	write_file(f->path, "0000000000000001 999999 2\n");
	f->sp = sp_open(f->dir, MiB, one, 1);
	take(f->sp, 0, 3, 3);
	shut(f);

	/* beyond the newest segment */
	write_file(f->path, "0000000000000009 0 2\n");
	f->sp = sp_open(f->dir, MiB, one, 1);
	take(f->sp, 0, 3, 3);
	shut(f);

	/* damaged: read again from the oldest record */
	write_file(f->path, "garbage");
	f->sp = sp_open(f->dir, MiB, one, 1);
	take(f->sp, 0, 1, 1);
	shut(f);

	/* a segment that is gone: its records are lost, the rest arrive */
	snprintf(text, sizeof(text), "%s", seg_path(f, 2));
	assert_int_equal(rename(seg_path(f, 1), text), 0);
	snprintf(f->path, sizeof(f->path), "%s/cursor-jsonl", f->dir);
	write_file(f->path, "0000000000000001 0 0\n");
	cap_start();
	f->sp = sp_open(f->dir, MiB, one, 1);
	log = cap_end();
	assert_non_null(strstr(log, "names a deleted segment"));
	spool_backlog(f->sp, 0, time(NULL), &b);
	assert_int_equal(b.pending, 2); /* seq 2 and 3: segment 2 holds from 2 on */
	take(f->sp, 0, 2, 2);
	take(f->sp, 0, 3, 3);
	append(f->sp, 4);
	take(f->sp, 0, 4, 4);
}

/* A write that fails half-way leaves no partial frame and uses up no seq;
 * a cursor that cannot be saved leaves the record to be handed out again. */
static void test_failed_writes(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, lim;
	struct spool_entry e;
	char tmp[300];
	off_t size;

	f->sp = sp_open(f->dir, MiB, one, 1);
	append(f->sp, 1);
	size = (off_t)spool_bytes(f->sp);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	/* The limit is on every file this process writes, a redirected stderr
	 * too: the log lines of the two failures may get lost. */
	lim = old;
	lim.rlim_cur = (rlim_t)size + 20; /* room for 20 bytes of the next frame */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(spool_append(f->sp, rec(2), strlen(rec(2))), -EIO);
	assert_int_equal(file_size(seg_path(f, 1)), size);
	lim.rlim_cur = (rlim_t)size; /* no room at all */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(spool_append(f->sp, rec(2), strlen(rec(2))), -EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(file_size(seg_path(f, 1)), size);
	append(f->sp, 2);
	take(f->sp, 0, 1, 1);
	take(f->sp, 0, 2, 2);

	append(f->sp, 3);
	snprintf(tmp, sizeof(tmp), "%s/cursor-jsonl.tmp", f->dir);
	assert_int_equal(mkdir(tmp, 0700), 0); /* the temp cursor cannot be created */
	assert_int_equal(spool_next(f->sp, 0, &e), 0);
	assert_int_equal(e.seq, 3);
	assert_int_equal(spool_advance(f->sp, 0), -EISDIR);
	assert_int_equal(spool_next(f->sp, 0, &e), 0);
	assert_int_equal(e.seq, 3);
	assert_string_equal(e.json, rec(3));
	assert_int_equal(rmdir(tmp), 0);
	assert_int_equal(spool_advance(f->sp, 0), 0);
	at_end(f->sp, 0);
	reopen(f, MiB, one, 1);
	at_end(f->sp, 0);
}

static void test_refusals(void **state)
{
	struct fixture *f = *state;
	struct spool_options o = { f->dir, MiB, one, 1 };
	struct spool *sp2 = (struct spool *)1;
	static const char nl[] = "{\"a\":\n1}";

	f->sp = sp_open(f->dir, MiB, one, 1);
	assert_int_equal(spool_append(f->sp, nl, strlen(nl)), -EINVAL);
	assert_int_equal(spool_append(f->sp, "{\"a\":\"\0\"}", 9), -EINVAL);
	assert_int_equal(spool_append(f->sp, "", 0), -EINVAL);
	assert_int_equal(spool_bytes(f->sp), 0);
	at_end(f->sp, 0);

	/* one process per spool */
	assert_int_equal(spool_open(&sp2, &o), -EBUSY);
	assert_null(sp2);
	o.reader_count = 0;
	assert_int_equal(spool_open(&sp2, &o), -EINVAL);
	o.readers = (const char *const[]){ "a", "b", "c", "d", "e", "f", "g", "h", "i" };
	o.reader_count = 9;
	assert_int_equal(spool_open(&sp2, &o), -EINVAL);
	o.readers = (const char *const[]){ "jsonl", "jsonl" };
	o.reader_count = 2;
	assert_int_equal(spool_open(&sp2, &o), -EINVAL);
	o.readers = (const char *const[]){ "../x" };
	o.reader_count = 1;
	assert_int_equal(spool_open(&sp2, &o), -EINVAL);
	o.readers = one;
	o.max_bytes = 0;
	assert_int_equal(spool_open(&sp2, &o), -EINVAL);
	snprintf(f->path, sizeof(f->path), "%s/file", f->dir);
	write_file(f->path, "x");
	snprintf(f->path, sizeof(f->path), "%s/file/spool", f->dir);
	o.dir = f->path;
	o.max_bytes = MiB;
	assert_int_equal(spool_open(&sp2, &o), -ENOTDIR);
}

/* ---- one appender, two reader threads -------------------------------------------- */

#define RACE_RECORDS 1000

struct race_reader {
	struct spool *sp;
	size_t r;
	unsigned got;
	char error[160];
};

static void *race_read(void *arg)
{
	struct race_reader *rr = arg;
	time_t deadline = time(NULL) + 60;

	while (rr->got < RACE_RECORDS && time(NULL) < deadline) {
		struct spool_entry e;
		int rc = spool_next(rr->sp, rr->r, &e);

		if (rc == -ENOENT) {
			usleep(100);
			continue;
		}
		if (rc || e.seq != rr->got + 1 || strcmp(e.json, rec(rr->got + 1)) ||
		    e.len != strlen(e.json)) {
			snprintf(rr->error, sizeof(rr->error), "reader %zu after %u: rc %d seq %"
				 PRIu64 " json %.60s", rr->r, rr->got, rc, rc ? 0 : e.seq,
				 rc ? "" : e.json);
			return NULL;
		}
		if ((rc = spool_advance(rr->sp, rr->r))) {
			snprintf(rr->error, sizeof(rr->error), "advance: %d", rc);
			return NULL;
		}
		rr->got++;
	}
	return NULL;
}

static void test_append_races_two_readers(void **state)
{
	struct fixture *f = *state;
	struct race_reader rr[2];
	pthread_t th[2];
	unsigned full = 0;

	/* small enough that the appender meets the bound and waits for the
	 * readers to free segments */
	f->sp = sp_open(f->dir, 32 * 1024, two, 2);
	for (size_t r = 0; r < 2; r++) {
		rr[r] = (struct race_reader){ .sp = f->sp, .r = r };
		assert_int_equal(pthread_create(&th[r], NULL, race_read, &rr[r]), 0);
	}
	for (unsigned i = 1; i <= RACE_RECORDS;) {
		char json[128];
		int rc;

		/* rec() uses one static buffer the readers share: copy first */
		snprintf(json, sizeof(json), "%s", rec(i));
		rc = spool_append(f->sp, json, strlen(json));
		if (rc == -ENOSPC) {
			full++;
			usleep(200);
			continue;
		}
		assert_int_equal(rc, 0);
		i++;
	}
	for (size_t r = 0; r < 2; r++) {
		pthread_join(th[r], NULL);
		if (rr[r].error[0])
			fail_msg("%s", rr[r].error);
		assert_int_equal(rr[r].got, RACE_RECORDS);
	}
	at_end(f->sp, 0);
	at_end(f->sp, 1);
	print_message("appender met the bound %u time(s)\n", full);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_round_trip),
		cmocka_unit_test(test_frame_parse_refusals),
		cmocka_unit_test(test_names_and_cursors),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_are_independent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_positions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigkill_redelivers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_cut_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_middle_frame_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seq_never_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollover_and_deletion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_and_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_largest_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_races_two_readers, setup, teardown),
	};

	log_init("test_spool", LOG_LEVEL_INFO, false);
	return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
