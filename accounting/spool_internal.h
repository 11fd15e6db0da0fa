/* What spool.c (reading and appending) and spool_open.c (opening,
 * repairing, closing) share: the in-memory layout of a spool and the few
 * helpers both halves use. Private to accounting/spool*.c. */
#ifndef MP_ACCOUNTING_SPOOL_INTERNAL_H
#define MP_ACCOUNTING_SPOOL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h"
#include "spool_frame.h"

#define SPOOL_SEGMENT_BYTES (4u << 20) /* roll size, unless the bound is small */
#define SPOOL_MAX_READERS 8
#define SPOOL_CHUNK (64u << 10)       /* bytes a reader asks pread() for */
#define SPOOL_WINDOW_MAX (SPOOL_FRAME_MAX + SPOOL_CHUNK)
#define SPOOL_WINDOW_KEEP (1u << 20)  /* a window grown past this is freed after use */
#define SPOOL_BAD_RUNS_KEPT 64        /* per segment, to log each run once */

struct spool_segment {
	uint64_t num;  /* seq of its first record; names the file */
	uint64_t size; /* bytes of complete frames: nobody reads past it */
	uint64_t *bad; /* starts of logged corrupt runs; NULL until one */
	size_t nbad;
};

/* A reader's window onto one segment: bytes [off, off + len) of it. */
struct spool_lbuf {
	char *buf;
	size_t cap, len;
	uint64_t off;
	uint64_t seg; /* segment of buf and fd; 0 for none */
	int fd;
};

struct spool_line {
	char *p;       /* in the window, LF excluded; NULL when no frame (too long, no LF) */
	size_t len;
	uint64_t next; /* offset after the LF, or the segment's end when there is none */
};

struct spool_pos {
	uint64_t seg, off;
};

struct spool_reader {
	char name[SPOOL_READER_NAME_MAX + 1];
	struct spool_pos cur;  /* what the cursor file says */
	struct spool_pos scan; /* where spool_next() reads on (>= cur) */
	uint64_t seen_seq;     /* every record up to this seq is passed */
	bool peeked;           /* entry was handed out, not yet advanced past */
	struct spool_entry entry;
	struct spool_pos entry_end;
	struct spool_lbuf lb;
};

struct spool {
	pthread_mutex_t lock;
	char *dir;
	int dirfd; /* holds the flock that keeps a second process out */
	int fd;    /* the newest segment, the only one appended to */
	uint64_t max_bytes, roll_bytes, total, next_seq;
	struct spool_segment *segs; /* ascending; at least one once open */
	size_t nsegs, segs_cap;
	struct spool_reader readers[SPOOL_MAX_READERS];
	size_t nreaders;
};

/* A corrupt run being skipped: lines [start, end) of one segment. */
struct spool_bad_run {
	uint64_t seg, start, end, lines;
};

size_t spool_seg_find(const struct spool *sp, uint64_t num);
struct spool_segment *spool_seg_last(struct spool *sp);
int spool_seg_reserve(struct spool *sp);
void spool_lbuf_detach(struct spool_lbuf *lb);
int spool_lbuf_attach(struct spool *sp, struct spool_lbuf *lb, uint64_t seg);
int spool_lbuf_line(struct spool *sp, struct spool_lbuf *lb, const struct spool_segment *sg,
		    uint64_t pos, struct spool_line *ln);
int spool_cursor_read(struct spool *sp, const char *reader, struct spool_cursor *c, bool *have);
int spool_segment_create(struct spool *sp, uint64_t num);
void spool_segments_drop_passed(struct spool *sp);

static inline uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

#endif
