/* libFuzzer target for the accounting spool's on-disk text and its repair
 * on open (accounting/spool_frame.c, accounting/spool.c). The input is read
 * three ways: as one frame line, as a cursor file and a segment name (each
 * accepted one must be exactly what the matching formatter writes), and as
 * the newest segment of a spool directory: opening must cut off any torn
 * tail, the records read back must come in increasing seq order with
 * NUL-terminated JSON free of LF, and a record appended afterwards must come
 * out next, also after a reopen. The directory is made once, on tmpfs when
 * there is one, so an iteration costs microseconds. Seeds: corpus/spool/. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"
#include "spool_frame.h"

#define MAX_RECORDS 256 /* checked per input; more only slows the run down */

#define check(cond) check_at((cond), __LINE__)

static void check_at(int cond, int line)
{
	if (!cond) {
		fprintf(stderr, "fuzz_spool.c:%d: invariant broken\n", line);
		abort();
	}
}

static char dir[64];

static void empty_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	check(d != NULL);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

static void remove_dir(void)
{
	empty_dir();
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	strcpy(dir, access("/dev/shm", W_OK) == 0 ? "/dev/shm/fuzz-spool.XXXXXX" :
						       "/tmp/fuzz-spool.XXXXXX");
	check(mkdtemp(dir) != NULL);
	atexit(remove_dir);
	log_init("fuzz_spool", LOG_LEVEL_CRITICAL, false); /* damage is logged */
	return 0;
}

static void frame_line(const char *data, size_t size)
{
	struct spool_frame fr;
	char *out;

	if (spool_frame_parse(data, size, &fr) < 0)
		return;
	check(fr.seq && fr.spooled_at >= 0 && fr.len && fr.len <= SPOOL_MAX_RECORD);
	check(fr.json > data && fr.json + fr.len == data + size);
	check(!memchr(fr.json, '\n', fr.len) && !memchr(fr.json, '\0', fr.len));
	out = malloc(size + 1);
	check(out != NULL);
	check(spool_frame_format(out, size + 1, fr.seq, fr.spooled_at, fr.json, fr.len) ==
	      (int)size + 1);
	check(!memcmp(out, data, size) && out[size] == '\n');
	free(out);
}

static void cursor_and_name(const char *data, size_t size)
{
	char buf[SPOOL_CURSOR_MAX + 1], name[SPOOL_SEGMENT_NAME_LEN + 1], copy[64];
	struct spool_cursor c;
	uint64_t num;

	if (spool_cursor_parse(data, size, &c) == 0) {
		check(spool_cursor_format(buf, sizeof(buf), &c) == (int)size);
		check(!memcmp(buf, data, size));
	}
	if (size < sizeof(copy)) {
		memcpy(copy, data, size);
		copy[size] = '\0';
		if (spool_segment_parse(copy, &num) == 0) {
			spool_segment_name(name, num);
			check(!strcmp(name, copy));
		}
	}
}

static struct spool *open_spool(void)
{
	static const char *const readers[] = { "fuzz" };
	struct spool_options o = { .dir = dir, .max_bytes = 64u << 20, .readers = readers,
				   .reader_count = 1 };
	struct spool *sp;

	check(spool_open(&sp, &o) == 0);
	return sp;
}

/* Drains the reader; returns the highest seq seen (0: none) and whether
 * it reached the end. */
static uint64_t drain(struct spool *sp, int *at_end)
{
	uint64_t last = 0;

	*at_end = 0;
	for (int n = 0; n < MAX_RECORDS; n++) {
		struct spool_entry e;
		int rc = spool_next(sp, 0, &e);

		check(rc == 0 || rc == -ENOENT);
		if (rc) {
			*at_end = 1;
			break;
		}
		check(e.seq > last);
		check(e.json && strlen(e.json) == e.len && spool_json_check(e.json, e.len) == 0);
		last = e.seq;
		check(spool_advance(sp, 0) == 0);
	}
	return last;
}

/* After the repair the segment ends with a whole, valid frame. */
static void check_tail(const char *path, uint64_t bytes)
{
	char *buf = malloc(bytes + 1), *line;
	int fd = open(path, O_RDONLY);
	struct spool_frame fr;

	check(buf != NULL && fd >= 0);
	check(read(fd, buf, bytes + 1) == (ssize_t)bytes);
	close(fd);
	if (bytes) {
		check(buf[bytes - 1] == '\n');
		buf[bytes - 1] = '\0';
		line = memrchr(buf, '\n', bytes - 1);
		line = line ? line + 1 : buf;
		check(spool_frame_parse(line, (size_t)(buf + bytes - 1 - line), &fr) == 0);
	}
	free(buf);
}

static void as_segment(const char *data, size_t size)
{
	char path[128];
	struct spool_entry e;
	struct spool *sp;
	uint64_t last;
	int fd, end;

	empty_dir();
	snprintf(path, sizeof(path), "%s/seg-0000000000000001.log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	check(fd >= 0 && write(fd, data, size) == (ssize_t)size);
	close(fd);

	sp = open_spool();
	check(spool_bytes(sp) <= size);
	check_tail(path, spool_bytes(sp));
	last = drain(sp, &end);
	check(spool_append(sp, "{}", 2) == 0);
	if (end) {
		check(spool_next(sp, 0, &e) == 0);
		check(e.seq > last && e.len == 2 && !strcmp(e.json, "{}"));
		check(spool_advance(sp, 0) == 0);
		check(spool_next(sp, 0, &e) == -ENOENT);
		spool_close(sp);
		sp = open_spool();
		check(spool_next(sp, 0, &e) == -ENOENT);
	}
	spool_close(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	frame_line((const char *)data, size);
	cursor_and_name((const char *)data, size);
	as_segment((const char *)data, size);
	return 0;
}
