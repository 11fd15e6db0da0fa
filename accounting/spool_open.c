/* Opening a spool (spool.h): the directory and its lock, the segments,
 * torn-tail repair, the readers' cursors; and closing it. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "spool_frame.h"
#include "spool_internal.h"


static int options_check(const struct spool_options *o)
{
	if (!o || !o->dir || !o->dir[0]) {
		log_error("spool: no directory given");
		return -EINVAL;
	}
	if (!o->max_bytes) {
		log_error("spool: %s: the size bound is 0", o->dir);
		return -EINVAL;
	}
	if (!o->readers || !o->reader_count || o->reader_count > SPOOL_MAX_READERS) {
		log_error("spool: %s: %zu readers (1..%d)", o->dir, o->reader_count,
			  SPOOL_MAX_READERS);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->reader_count; i++) {
		if (spool_reader_name_check(o->readers[i]) < 0) {
			log_error("spool: %s: reader name \"%s\" is not 1..%d of [A-Za-z0-9_-]",
				  o->dir, o->readers[i] ? o->readers[i] : "(null)",
				  SPOOL_READER_NAME_MAX);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++)
			if (!strcmp(o->readers[i], o->readers[k])) {
				log_error("spool: %s: reader %s named twice", o->dir, o->readers[i]);
				return -EINVAL;
			}
	}
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	const struct spool_segment *x = a, *y = b;

	return x->num < y->num ? -1 : x->num > y->num;
}

/* Finds the segments and their sizes. */
static int segments_load(struct spool *sp)
{
	int fd = fcntl(sp->dirfd, F_DUPFD_CLOEXEC, 0), err = 0;
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		err = log_errno(-errno, "spool: cannot list %s", sp->dir);
		if (fd >= 0)
			close(fd);
		return err;
	}
	rewinddir(d);
	while ((errno = 0, de = readdir(d))) {
		struct stat st;
		uint64_t num;

		if (spool_segment_parse(de->d_name, &num) < 0)
			continue;
		if (fstatat(sp->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			err = log_errno(-errno, "spool: cannot stat %s/%s", sp->dir, de->d_name);
			break;
		}
		if (!S_ISREG(st.st_mode)) {
			log_warn("spool: %s/%s is not a regular file; ignored", sp->dir,
				 de->d_name);
			continue;
		}
		if ((err = spool_seg_reserve(sp)) < 0)
			break;
		sp->segs[sp->nsegs++] = (struct spool_segment){ .num = num,
								.size = (uint64_t)st.st_size };
		sp->total += (uint64_t)st.st_size;
	}
	if (!err && errno)
		err = log_errno(-errno, "spool: cannot list %s", sp->dir);
	closedir(d);
	if (sp->nsegs)
		qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), seg_cmp);
	return err;
}

/* Walks the newest segment from its start, cuts off whatever follows its
 * last valid frame (the append the process died in, or garbage), keeps it
 * open for appending and returns the highest seq in it (0: none). */
static int tail_repair(struct spool *sp, uint64_t *max_seq)
{
	struct spool_segment *sg = spool_seg_last(sp);
	struct spool_lbuf lb = { .fd = -1 };
	uint64_t pos = 0, good = 0;
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	int err = 0;

	*max_seq = 0;
	spool_segment_name(name, sg->num);
	lb.fd = openat(sp->dirfd, name, O_RDWR | O_CLOEXEC);
	if (lb.fd < 0)
		return log_errno(-errno, "spool: cannot open %s/%s", sp->dir, name);
	lb.seg = sg->num;
	while (pos < sg->size) {
		struct spool_frame fr;
		struct spool_line ln;

		if ((err = spool_lbuf_line(sp, &lb, sg, pos, &ln)) < 0)
			break;
		if (ln.p && spool_frame_parse(ln.p, ln.len, &fr) == 0) {
			good = ln.next;
			*max_seq = max_u64(*max_seq, fr.seq);
		}
		pos = ln.next;
	}
	if (!err && good < sg->size) {
		log_warn("spool: %s/%s: cutting off %" PRIu64 " byte(s) of torn or corrupt tail at"
			 " offset %" PRIu64, sp->dir, name, sg->size - good, good);
		if (ftruncate(lb.fd, (off_t)good) < 0 || fdatasync(lb.fd) < 0)
			err = log_errno(-errno, "spool: cannot truncate %s/%s to %" PRIu64, sp->dir,
					name, good);
		else {
			sp->total -= sg->size - good;
			sg->size = good;
		}
	}
	free(lb.buf);
	if (err) {
		close(lb.fd);
		return err;
	}
	sp->fd = lb.fd;
	return 0;
}

/* Where a reader with cursor c (have: a cursor file exists) stands now.
 * Anything doubtful puts it back to the start of a segment: the seq in
 * the cursor skips what it passed, so doubt costs a re-read, not a
 * duplicate or a loss. */
static int reader_place(struct spool *sp, struct spool_reader *rd, const struct spool_cursor *c,
			bool have)
{
	size_t i = spool_seg_find(sp, have ? c->seg : 0);
	struct spool_segment *sg;
	const char *why = NULL;
	char before;

	if (i == sp->nsegs) {
		i = sp->nsegs - 1;
		why = "is beyond the newest segment";
	}
	sg = &sp->segs[i];
	rd->seen_seq = have ? c->seq : 0;
	rd->cur = (struct spool_pos){ sg->num, 0 };
	if (!have || why) {
		rd->seen_seq = max_u64(rd->seen_seq, sg->num - 1);
	} else if (sg->num != c->seg) {
		why = "names a deleted segment (its records are lost)";
		rd->seen_seq = max_u64(rd->seen_seq, sg->num - 1);
	} else if (c->off > sg->size) {
		why = "is past the segment's end";
	} else if (c->off > 0) {
		int err = spool_lbuf_attach(sp, &rd->lb, sg->num);
		ssize_t n = err ? -1 : pread(rd->lb.fd, &before, 1, (off_t)(c->off - 1));

		if (err)
			return err;
		if (n < 0)
			return log_errno(-errno, "spool: cannot read %s/seg-%016" PRIx64 ".log",
					 sp->dir, sg->num);
		if (n != 1 || before != '\n')
			why = "is not at the start of a frame";
	}
	if (have && !why)
		rd->cur.off = c->off;
	if (!have)
		log_info("spool: %s: reader %s has no cursor yet; it starts at the oldest record",
			 sp->dir, rd->name);
	if (why)
		log_warn("spool: %s/cursor-%s (segment %016" PRIx64 ", offset %" PRIu64 ") %s;"
			 " reading on from the start of segment %016" PRIx64, sp->dir, rd->name,
			 c->seg, c->off, why, sg->num);
	rd->scan = rd->cur;
	return 0;
}

static int readers_load(struct spool *sp, const struct spool_options *o, uint64_t max_seq)
{
	struct spool_cursor c[SPOOL_MAX_READERS] = { 0 };
	bool have[SPOOL_MAX_READERS];
	uint64_t next = max_u64(max_seq + 1, 1);
	int err;

	for (size_t i = 0; i < o->reader_count; i++) {
		struct spool_reader *rd = &sp->readers[i];

		snprintf(rd->name, sizeof(rd->name), "%s", o->readers[i]);
		rd->lb.fd = -1;
		sp->nreaders++;
		if ((err = spool_cursor_read(sp, rd->name, &c[i], &have[i])) < 0)
			return err;
		if (have[i])
			next = max_u64(next, c[i].seq + 1);
	}
	/* A seq is never reused, even when every record was deleted. */
	if (sp->nsegs)
		next = max_u64(next, spool_seg_last(sp)->num + (spool_seg_last(sp)->size ? 1 : 0));
	sp->next_seq = next;
	if (!sp->nsegs && (err = spool_segment_create(sp, next)) < 0)
		return err;
	for (size_t i = 0; i < sp->nreaders; i++)
		if ((err = reader_place(sp, &sp->readers[i], &c[i], have[i])) < 0)
			return err;
	return 0;
}

static int spool_load(struct spool *sp, const struct spool_options *o)
{
	uint64_t max_seq = 0;
	int err;

	if ((err = fs_mkdir_parents(o->dir, 0750)) < 0)
		return log_errno(err, "spool: cannot create directory %s", o->dir);
	sp->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0)
		return log_errno(-errno, "spool: cannot open directory %s", o->dir);
	if (flock(sp->dirfd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			log_error("spool: %s is in use by another spool", o->dir);
			return -EBUSY;
		}
		return log_errno(-errno, "spool: cannot lock %s", o->dir);
	}
	if ((err = segments_load(sp)) < 0)
		return err;
	if (sp->nsegs && (err = tail_repair(sp, &max_seq)) < 0)
		return err;
	if ((err = readers_load(sp, o, max_seq)) < 0)
		return err;
	spool_segments_drop_passed(sp);
	if (sp->total > sp->max_bytes)
		log_warn("spool: %s holds %" PRIu64 " bytes, above its bound of %" PRIu64
			 "; appends fail until the readers catch up", sp->dir, sp->total,
			 sp->max_bytes);
	log_info("spool: %s: %zu segment(s), %" PRIu64 " bytes, next record %" PRIu64, sp->dir,
		 sp->nsegs, sp->total, sp->next_seq);
	return 0;
}

int spool_open(struct spool **out, const struct spool_options *opts)
{
	struct spool *sp;
	int err;

	*out = NULL;
	if ((err = options_check(opts)) < 0)
		return err;
	sp = calloc(1, sizeof(*sp));
	if (!sp || !(sp->dir = strdup(opts->dir))) {
		free(sp);
		return log_errno(-ENOMEM, "spool: %s", opts->dir);
	}
	sp->dirfd = sp->fd = -1;
	sp->max_bytes = opts->max_bytes;
	/* A segment is the unit of reclaim, so a small bound needs small ones. */
	sp->roll_bytes = opts->max_bytes / 8 < SPOOL_SEGMENT_BYTES ? opts->max_bytes / 8 :
								     SPOOL_SEGMENT_BYTES;
	if ((err = -pthread_mutex_init(&sp->lock, NULL)) < 0) {
		free(sp->dir);
		free(sp);
		return log_errno(err, "spool: %s: mutex", opts->dir);
	}
	if ((err = spool_load(sp, opts)) < 0) {
		spool_close(sp);
		return err;
	}
	*out = sp;
	return 0;
}

void spool_close(struct spool *sp)
{
	if (!sp)
		return;
	for (size_t i = 0; i < sp->nreaders; i++) {
		spool_lbuf_detach(&sp->readers[i].lb);
		free(sp->readers[i].lb.buf);
	}
	if (sp->fd >= 0)
		close(sp->fd);
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	pthread_mutex_destroy(&sp->lock);
	for (size_t i = 0; i < sp->nsegs; i++)
		free(sp->segs[i].bad);
	free(sp->segs);
	free(sp->dir);
	free(sp);
}
