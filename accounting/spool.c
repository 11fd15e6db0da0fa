/* The durable accounting spool (spool.h): append-only segments of framed
 * records (spool_frame.h), one cursor file per reader, torn-tail repair on
 * open. One mutex guards everything, reads included: a delivery thread
 * holds it for one pread of a record at most, about as long as the
 * appender holds it for its fdatasync, and the event loop appends only a
 * few records a second.
 *
 * Sequence numbers are contiguous from 1 and a segment is named after the
 * seq of its first record, so a reader's backlog is plain arithmetic
 * (last seq appended - last seq passed) and needs no scan on open, and an
 * empty newest segment still tells the next seq after a restart. */
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

#include "log.h"
#include "spool_frame.h"
#include "spool_internal.h"

/* Index of the first segment numbered num or above (nsegs if none). */
size_t spool_seg_find(const struct spool *sp, uint64_t num)
{
	size_t lo = 0, hi = sp->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sp->segs[mid].num < num)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct spool_segment *spool_seg_last(struct spool *sp)
{
	return &sp->segs[sp->nsegs - 1];
}

int spool_seg_reserve(struct spool *sp)
{
	struct spool_segment *segs;
	size_t cap;

	if (sp->nsegs < sp->segs_cap)
		return 0;
	cap = sp->segs_cap ? 2 * sp->segs_cap : 16;
	segs = realloc(sp->segs, cap * sizeof(*segs));
	if (!segs)
		return log_errno(-ENOMEM, "spool: %s: segment table", sp->dir);
	sp->segs = segs;
	sp->segs_cap = cap;
	return 0;
}

static int dir_sync(struct spool *sp)
{
	if (fsync(sp->dirfd) < 0)
		return log_errno(-errno, "spool: fsync of directory %s", sp->dir);
	return 0;
}

/* ---- reading lines out of a segment --------------------------------------- */

void spool_lbuf_detach(struct spool_lbuf *lb)
{
	if (lb->fd >= 0)
		close(lb->fd);
	lb->fd = -1;
	lb->seg = 0;
	lb->off = 0;
	lb->len = 0;
}

int spool_lbuf_attach(struct spool *sp, struct spool_lbuf *lb, uint64_t seg)
{
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	int fd;

	if (lb->fd >= 0 && lb->seg == seg)
		return 0;
	spool_segment_name(name, seg);
	fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "spool: cannot open %s/%s", sp->dir, name);
	spool_lbuf_detach(lb);
	lb->fd = fd;
	lb->seg = seg;
	return 0;
}

/* Appends the next bytes of the segment, up to bound, to the window. */
static int lbuf_fill(struct spool *sp, struct spool_lbuf *lb, uint64_t bound)
{
	uint64_t end = lb->off + lb->len;
	size_t want;
	ssize_t n;

	if (lb->cap - lb->len < SPOOL_CHUNK && lb->cap < SPOOL_WINDOW_MAX) {
		size_t cap = lb->cap ? 2 * lb->cap : 2 * SPOOL_CHUNK;
		char *buf;

		if (cap > SPOOL_WINDOW_MAX)
			cap = SPOOL_WINDOW_MAX;
		buf = realloc(lb->buf, cap);
		if (!buf)
			return log_errno(-ENOMEM, "spool: %s: read buffer of %zu bytes", sp->dir,
					 cap);
		lb->buf = buf;
		lb->cap = cap;
	}
	want = lb->cap - lb->len;
	if (want > bound - end)
		want = (size_t)(bound - end);
	n = pread(lb->fd, lb->buf + lb->len, want, (off_t)end);
	if (n < 0)
		return log_errno(-errno, "spool: read of %s/seg-%016" PRIx64 ".log at %" PRIu64,
				 sp->dir, lb->seg, end);
	if (n == 0) {
		log_error("spool: %s/seg-%016" PRIx64 ".log ends at %" PRIu64 ", before %" PRIu64
			  " where it ended when written", sp->dir, lb->seg, end, bound);
		return -EIO;
	}
	lb->len += (size_t)n;
	return 0;
}

/* The line at pos is longer than any frame: finds its end without keeping
 * it in memory. */
static int lbuf_skip_long(struct spool *sp, struct spool_lbuf *lb,
			  const struct spool_segment *sg, uint64_t pos, struct spool_line *ln)
{
	int err;

	ln->p = NULL;
	for (;;) {
		char *nl;

		lb->off += lb->len;
		lb->len = 0;
		if (lb->off >= sg->size) {
			ln->next = sg->size;
			break;
		}
		if ((err = lbuf_fill(sp, lb, sg->size)) < 0)
			return err;
		nl = memchr(lb->buf, '\n', lb->len);
		if (nl) {
			ln->next = lb->off + (uint64_t)(nl - lb->buf) + 1;
			break;
		}
	}
	ln->len = (size_t)(ln->next - pos);
	return 0;
}

/* Finds the line that starts at pos in segment sg, reading through the
 * window. Returns 0 and fills ln, or -errno of a failed read. */
int spool_lbuf_line(struct spool *sp, struct spool_lbuf *lb, const struct spool_segment *sg,
		    uint64_t pos, struct spool_line *ln)
{
	size_t start, searched;
	int err;

	if ((err = spool_lbuf_attach(sp, lb, sg->num)) < 0)
		return err;
	if (pos < lb->off || pos > lb->off + lb->len) {
		lb->off = pos;
		lb->len = 0;
	}
	start = searched = (size_t)(pos - lb->off);
	for (;;) {
		char *nl = lb->len > searched ?
			memchr(lb->buf + searched, '\n', lb->len - searched) : NULL;

		if (nl) {
			ln->p = lb->buf + start;
			ln->len = (size_t)(nl - ln->p);
			ln->next = pos + ln->len + 1;
			if (ln->len >= SPOOL_FRAME_MAX)
				ln->p = NULL;
			return 0;
		}
		searched = lb->len;
		if (lb->off + lb->len >= sg->size) {
			ln->p = NULL; /* no LF before the end: not a frame */
			ln->len = (size_t)(sg->size - pos);
			ln->next = sg->size;
			return 0;
		}
		if (lb->len - start >= SPOOL_FRAME_MAX)
			return lbuf_skip_long(sp, lb, sg, pos, ln);
		if (start && lb->cap - lb->len < SPOOL_CHUNK) {
			memmove(lb->buf, lb->buf + start, lb->len - start);
			lb->off += start;
			lb->len -= start;
			searched -= start;
			start = 0;
		}
		if ((err = lbuf_fill(sp, lb, sg->size)) < 0)
			return err;
	}
}

/* ---- files: cursors, segments --------------------------------------------- */

static int cursor_write(struct spool *sp, const struct spool_reader *rd,
			const struct spool_cursor *c)
{
	char name[sizeof("cursor-") + SPOOL_READER_NAME_MAX], tmp[sizeof(name) + 4];
	char text[SPOOL_CURSOR_MAX + 1];
	int n = spool_cursor_format(text, sizeof(text), c), fd, err = 0;

	snprintf(name, sizeof(name), "cursor-%s", rd->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return log_errno(-errno, "spool: cannot create %s/%s", sp->dir, tmp);
	errno = 0;
	if (write(fd, text, (size_t)n) != n)
		err = log_errno(errno ? -errno : -EIO, "spool: cannot write %s/%s", sp->dir, tmp);
	else if (fsync(fd) < 0)
		err = log_errno(-errno, "spool: fsync of %s/%s", sp->dir, tmp);
	if (close(fd) < 0 && !err)
		err = log_errno(-errno, "spool: close of %s/%s", sp->dir, tmp);
	if (!err && renameat(sp->dirfd, tmp, sp->dirfd, name) < 0)
		err = log_errno(-errno, "spool: cannot rename %s/%s to %s", sp->dir, tmp, name);
	if (err) {
		unlinkat(sp->dirfd, tmp, 0);
		return err;
	}
	return dir_sync(sp);
}

/* *have is false when the reader has no usable cursor file yet. */
int spool_cursor_read(struct spool *sp, const char *reader, struct spool_cursor *c, bool *have)
{
	char name[sizeof("cursor-") + SPOOL_READER_NAME_MAX], text[SPOOL_CURSOR_MAX + 2];
	ssize_t n;
	int fd;

	*have = false;
	snprintf(name, sizeof(name), "cursor-%s", reader);
	fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return log_errno(-errno, "spool: cannot open %s/%s", sp->dir, name);
	n = read(fd, text, sizeof(text));
	if (n < 0) {
		int err = log_errno(-errno, "spool: cannot read %s/%s", sp->dir, name);

		close(fd);
		return err;
	}
	close(fd);
	if (spool_cursor_parse(text, (size_t)n, c) < 0) {
		/* Re-delivering beats losing records. */
		log_warn("spool: %s/%s is damaged; reader %s starts again at the oldest record",
			 sp->dir, name, reader);
		return 0;
	}
	*have = true;
	return 0;
}

/* Creates segment num (empty) and makes it the one appended to. */
int spool_segment_create(struct spool *sp, uint64_t num)
{
	char name[SPOOL_SEGMENT_NAME_LEN + 1];
	int fd, err;

	if ((err = spool_seg_reserve(sp)) < 0)
		return err;
	spool_segment_name(name, num);
	fd = openat(sp->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return log_errno(-errno, "spool: cannot create %s/%s", sp->dir, name);
	if ((err = dir_sync(sp)) < 0) {
		close(fd);
		unlinkat(sp->dirfd, name, 0);
		return err;
	}
	if (sp->fd >= 0)
		close(sp->fd);
	sp->fd = fd;
	sp->segs[sp->nsegs++] = (struct spool_segment){ .num = num };
	return 0;
}

/* Deletes the segments every reader's cursor has left, never the newest. */
void spool_segments_drop_passed(struct spool *sp)
{
	uint64_t low = UINT64_MAX;
	size_t n = 0;

	for (size_t i = 0; i < sp->nreaders; i++)
		if (sp->readers[i].cur.seg < low)
			low = sp->readers[i].cur.seg;
	while (n + 1 < sp->nsegs && sp->segs[n].num < low) {
		char name[SPOOL_SEGMENT_NAME_LEN + 1];

		spool_segment_name(name, sp->segs[n].num);
		if (unlinkat(sp->dirfd, name, 0) < 0 && errno != ENOENT) {
			log_errno(-errno, "spool: cannot delete %s/%s", sp->dir, name);
			break;
		}
		log_debug("spool: deleted %s/%s, passed by every reader", sp->dir, name);
		sp->total -= sp->segs[n].size;
		free(sp->segs[n].bad);
		n++;
	}
	if (!n)
		return;
	for (size_t i = 0; i < sp->nreaders; i++)
		if (sp->readers[i].lb.seg && sp->readers[i].lb.seg < sp->segs[n].num)
			spool_lbuf_detach(&sp->readers[i].lb);
	sp->nsegs -= n;
	memmove(sp->segs, sp->segs + n, sp->nsegs * sizeof(*sp->segs));
}

/* ---- reading records ------------------------------------------------------ */

static void bad_run_log(struct spool *sp, struct spool_bad_run *run)
{
	size_t i = spool_seg_find(sp, run->seg);
	struct spool_segment *sg;

	if (!run->lines)
		return;
	run->lines = 0;
	if (i == sp->nsegs || sp->segs[i].num != run->seg)
		return;
	sg = &sp->segs[i];
	for (size_t k = 0; k < sg->nbad; k++)
		if (sg->bad[k] == run->start)
			return; /* another reader passed it first */
	if (!sg->bad)
		sg->bad = calloc(SPOOL_BAD_RUNS_KEPT, sizeof(*sg->bad));
	if (sg->bad && sg->nbad < SPOOL_BAD_RUNS_KEPT)
		sg->bad[sg->nbad++] = run->start;
	log_warn("spool: %s/seg-%016" PRIx64 ".log: skipping %" PRIu64
		 " byte(s) of corrupt frames at offset %" PRIu64, sp->dir, sg->num,
		 run->end - run->start, run->start);
}

static void bad_run_add(struct spool *sp, struct spool_bad_run *run, uint64_t seg,
			uint64_t start, uint64_t end)
{
	if (run->lines && run->seg != seg)
		bad_run_log(sp, run);
	if (!run->lines++) {
		run->seg = seg;
		run->start = start;
	}
	run->end = end;
}

/* The reader's next record, kept until it advances past it. Returns 0,
 * -ENOENT at the end, or -errno of a failed read. */
static int reader_peek(struct spool *sp, struct spool_reader *rd)
{
	struct spool_bad_run run = { 0 };
	int err = 0;

	while (!rd->peeked) {
		size_t i = spool_seg_find(sp, rd->scan.seg);
		struct spool_segment *sg;
		struct spool_frame fr;
		struct spool_line ln;

		if (i == sp->nsegs) { /* beyond the newest: cannot happen */
			rd->scan = (struct spool_pos){ spool_seg_last(sp)->num, spool_seg_last(sp)->size };
			continue;
		}
		sg = &sp->segs[i];
		if (sg->num != rd->scan.seg)
			rd->scan = (struct spool_pos){ sg->num, 0 };
		if (rd->scan.off >= sg->size) {
			if (i + 1 == sp->nsegs) {
				err = -ENOENT;
				break;
			}
			rd->scan = (struct spool_pos){ sp->segs[i + 1].num, 0 };
			continue;
		}
		if ((err = spool_lbuf_line(sp, &rd->lb, sg, rd->scan.off, &ln)) < 0)
			break;
		if (!ln.p || spool_frame_parse(ln.p, ln.len, &fr) < 0) {
			bad_run_add(sp, &run, sg->num, rd->scan.off, ln.next);
			rd->scan.off = ln.next;
			continue;
		}
		bad_run_log(sp, &run);
		if (fr.seq <= rd->seen_seq) { /* a cursor put back: passed already */
			log_debug("spool: reader %s: record %" PRIu64 " already passed", rd->name,
				  fr.seq);
			rd->scan.off = ln.next;
			continue;
		}
		ln.p[ln.len] = '\0'; /* was the LF */
		rd->entry = (struct spool_entry){ .seq = fr.seq, .spooled_at = (time_t)fr.spooled_at,
						  .json = fr.json, .len = fr.len };
		rd->entry_end = (struct spool_pos){ sg->num, ln.next };
		rd->peeked = true;
	}
	bad_run_log(sp, &run);
	/* At the end every record appended so far is delivered or unreadable. */
	if (err == -ENOENT)
		rd->seen_seq = max_u64(rd->seen_seq, sp->next_seq - 1);
	return err;
}

int spool_next(struct spool *sp, size_t reader, struct spool_entry *entry)
{
	int err;

	if (!sp || reader >= sp->nreaders)
		return -EINVAL;
	pthread_mutex_lock(&sp->lock);
	err = reader_peek(sp, &sp->readers[reader]);
	if (!err)
		*entry = sp->readers[reader].entry;
	pthread_mutex_unlock(&sp->lock);
	return err;
}

/* The end of a sealed segment is the start of the next one. */
static struct spool_pos pos_normalize(const struct spool *sp, struct spool_pos p)
{
	size_t i = spool_seg_find(sp, p.seg);

	while (i + 1 < sp->nsegs && sp->segs[i].num == p.seg && p.off >= sp->segs[i].size) {
		p = (struct spool_pos){ sp->segs[i + 1].num, 0 };
		i++;
	}
	return p;
}

int spool_advance(struct spool *sp, size_t reader)
{
	struct spool_reader *rd;
	struct spool_pos pos;
	int err;

	if (!sp || reader >= sp->nreaders)
		return -EINVAL;
	pthread_mutex_lock(&sp->lock);
	rd = &sp->readers[reader];
	if (!rd->peeked) {
		err = -EINVAL;
		goto out;
	}
	pos = pos_normalize(sp, rd->entry_end);
	err = cursor_write(sp, rd, &(struct spool_cursor){ pos.seg, pos.off, rd->entry.seq });
	if (err)
		goto out;
	rd->cur = rd->scan = pos;
	rd->seen_seq = max_u64(rd->seen_seq, rd->entry.seq);
	rd->peeked = false;
	if (rd->lb.cap > SPOOL_WINDOW_KEEP) { /* after a huge record */
		free(rd->lb.buf);
		rd->lb.buf = NULL;
		rd->lb.cap = rd->lb.len = 0;
	}
	spool_segments_drop_passed(sp);
out:
	pthread_mutex_unlock(&sp->lock);
	return err;
}

void spool_backlog(struct spool *sp, size_t reader, time_t now, struct spool_backlog *out)
{
	struct spool_reader *rd;

	out->pending = 0;
	out->oldest_age_s = 0;
	if (!sp || reader >= sp->nreaders)
		return;
	pthread_mutex_lock(&sp->lock);
	rd = &sp->readers[reader];
	/* Peeking here is what spool_next() would do next anyway. */
	if (sp->next_seq - 1 > rd->seen_seq && reader_peek(sp, rd) == 0 &&
	    now > rd->entry.spooled_at)
		out->oldest_age_s = difftime(now, rd->entry.spooled_at);
	if (sp->next_seq - 1 > rd->seen_seq)
		out->pending = sp->next_seq - 1 - rd->seen_seq;
	pthread_mutex_unlock(&sp->lock);
}

/* ---- appending ------------------------------------------------------------ */

/* One pwritev of the whole frame at the segment's end, then fdatasync; on
 * any failure the segment is cut back so no partial frame stays behind. */
static int frame_write(struct spool *sp, struct spool_segment *sg, char *hdr, size_t hlen,
		       const char *json, size_t len)
{
	struct iovec iov[3] = {
		{ hdr, hlen }, { (void *)json, len }, { "\n", 1 },
	};
	size_t flen = hlen + len + 1;
	ssize_t n = pwritev(sp->fd, iov, 3, (off_t)sg->size);
	int err;

	if (n == (ssize_t)flen) {
		if (fdatasync(sp->fd) == 0)
			return 0;
		err = log_errno(-errno, "spool: fdatasync of %s/seg-%016" PRIx64 ".log", sp->dir,
				sg->num);
	} else if (n < 0) {
		err = log_errno(-errno, "spool: cannot append to %s/seg-%016" PRIx64 ".log",
				sp->dir, sg->num);
	} else {
		log_error("spool: short write to %s/seg-%016" PRIx64 ".log: %zd of %zu bytes",
			  sp->dir, sg->num, n, flen);
		err = -EIO;
	}
	if (ftruncate(sp->fd, (off_t)sg->size) < 0)
		log_errno(-errno, "spool: cannot cut %s/seg-%016" PRIx64 ".log back to %" PRIu64
			  " bytes", sp->dir, sg->num, sg->size);
	return err;
}

int spool_append(struct spool *sp, const char *json, size_t len)
{
	char hdr[SPOOL_FRAME_HEADER_MAX];
	struct spool_segment *sg;
	uint64_t flen;
	int err = spool_json_check(json, len), n;

	if (err)
		return err;
	pthread_mutex_lock(&sp->lock);
	n = spool_frame_header(hdr, sp->next_seq, (int64_t)time(NULL), json, len);
	if (n < 0) {
		err = n;
		goto out;
	}
	flen = (uint64_t)n + len + 1;
	if (sp->total + flen > sp->max_bytes) {
		err = -ENOSPC;
		goto out;
	}
	sg = spool_seg_last(sp);
	if (sg->size && sg->size + flen > sp->roll_bytes) {
		if ((err = spool_segment_create(sp, sp->next_seq)) < 0)
			goto out;
		sg = spool_seg_last(sp);
	}
	if ((err = frame_write(sp, sg, hdr, (size_t)n, json, len)) < 0)
		goto out;
	sg->size += flen;
	sp->total += flen;
	sp->next_seq++;
out:
	pthread_mutex_unlock(&sp->lock);
	return err;
}

uint64_t spool_bytes(struct spool *sp)
{
	uint64_t n;

	pthread_mutex_lock(&sp->lock);
	n = sp->total;
	pthread_mutex_unlock(&sp->lock);
	return n;
}

/* ---- opening -------------------------------------------------------------- */
