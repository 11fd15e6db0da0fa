/* The durable accounting spool (issue 6): every record is appended and
 * fsynced here before the dispatcher forgets the session, and each backend
 * reads it in order through its own persistent cursor, so a record survives
 * a SIGKILL, a backend outage or a restart, and is handed to each backend
 * exactly once unless the process dies between a delivery and the cursor
 * update (then that one record is handed over again; backends make that a
 * no-op where they can).
 *
 * On disk, in the spool directory (formats in spool_frame.h):
 *   seg-<16 hex digits>.log  append-only segments of framed records, one
 *                            line each, named after the seq of their first
 *                            record; a new one is started at 4 MiB (or at
 *                            max_bytes / 8 when that is less)
 *   cursor-<name>            one per reader: where it stands, written
 *                            atomically (temp file, fsync, rename, fsync
 *                            of the directory)
 * A segment every reader has passed is deleted (never the newest). A
 * corrupt frame is skipped with a log line; a torn tail (the process died
 * mid-append) is cut off with a log line when the spool is opened. A
 * cursor that cannot be right (into a deleted segment, past the end, inside
 * a frame) is put back to the start of a segment with a log line; the seq
 * it holds keeps the records it passed from coming again.
 *
 * All functions are thread-safe (one mutex): the event loop appends while
 * delivery threads read and advance. A directory is used by one spool at a
 * time (flock). */
#ifndef MP_ACCOUNTING_SPOOL_H
#define MP_ACCOUNTING_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SPOOL_MAX_RECORD (16u << 20) /* bytes of one record's JSON */

struct spool;

struct spool_options {
	const char *dir;            /* created (mode 0750, parents too) if missing */
	uint64_t max_bytes;         /* bound on the segments' total size */
	const char *const *readers; /* cursor names, e.g. {"jsonl", "radius"} */
	size_t reader_count;        /* 1..8 */
};

/* One record handed to a reader; valid until the next spool_next() or
 * spool_advance() by the same reader. */
struct spool_entry {
	uint64_t seq;     /* 1, 2, ... in append order, never reused */
	time_t spooled_at;
	const char *json; /* NUL-terminated, no newline */
	size_t len;
};

struct spool_backlog {
	uint64_t pending;    /* records appended but not yet passed by the reader */
	double oldest_age_s; /* age of the oldest of them; 0 when none */
};

/* Opens or creates the spool, repairs a torn tail, loads the cursors (a
 * reader with no cursor file starts at the oldest record present). Returns
 * 0 or -errno after logging the path and the reason: -EINVAL for bad
 * options (reader names are 1..32 of [A-Za-z0-9_-], all different;
 * max_bytes > 0), -EBUSY when another spool has the directory open. */
int spool_open(struct spool **out, const struct spool_options *opts);

/* Appends one record (json of len bytes, no newline in it) and fsyncs it.
 * Returns 0, -ENOSPC when max_bytes would be exceeded (logged by the
 * caller), -EMSGSIZE above SPOOL_MAX_RECORD, -EINVAL for an empty json or
 * one with a newline or a NUL in it, or -errno of a failed write (logged;
 * the partial frame is cut off again and the seq is not used up). */
int spool_append(struct spool *spool, const char *json, size_t len);

/* The next record for reader (index into opts->readers). Returns 0 and
 * fills entry; -ENOENT when the reader is at the end; -EINVAL for a bad
 * reader; -errno on a read failure. Until spool_advance() succeeds, every
 * call returns the same record. Corrupt frames on the way are skipped (and
 * logged once each), and the skip is made durable by the next
 * spool_advance(). */
int spool_next(struct spool *spool, size_t reader, struct spool_entry *entry);

/* Moves reader past the entry spool_next() returned and persists the
 * cursor. Returns 0, -EINVAL when spool_next() handed out no record, or
 * -errno (logged; the reader then sees the record again). */
int spool_advance(struct spool *spool, size_t reader);

/* For the `accounting` command (D12). now is the caller's clock. To find
 * the age it looks at the reader's next record the way spool_next() does
 * (so it may log a corrupt frame); pending includes a record handed out
 * but not advanced past. */
void spool_backlog(struct spool *spool, size_t reader, time_t now,
		   struct spool_backlog *out);

/* Bytes the segments use now. */
uint64_t spool_bytes(struct spool *spool);

void spool_close(struct spool *spool);

#endif
