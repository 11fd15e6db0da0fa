/* The jsonl accounting backend (our addition, D11): one record per line in
 * [Dispatcher] accounting_file, fsynced before the spool cursor moves on.
 * HUP/USR1 re-open the file so logrotate can move it (D17).
 *
 * Exactly once across a crash: the engine hands the record that was being
 * delivered when the process died over again. If that record is already
 * the file's last line, we do not write it a second time. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backend.h"
#include "fs.h"
#include "log.h"

struct jsonl {
	char *path;
	int fd;
	bool tail_checked; /* the first delivery after start compared the tail */
};

/* mkdir -p for the file's directory (/var/log/mediaproxy by default). */
static int make_parent_dirs(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];

	if (!slash || slash == path)
		return 0;
	if ((size_t)(slash - path) >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	return fs_mkdir_parents(dir, 0750);
}

static int jsonl_open_file(struct jsonl *j, char *err, size_t errlen)
{
	int rc = make_parent_dirs(j->path);

	if (rc) {
		snprintf(err, errlen, "cannot create the directory of %s: %s", j->path,
			 strerror(-rc));
		return -EAGAIN;
	}
	j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (j->fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", j->path, strerror(errno));
		return -EAGAIN;
	}
	return 0;
}

/* The file's last line, if it is exactly json: the record was written just
 * before a crash. A last line without its newline (torn by a crash while
 * writing) gets one, so the next record starts on a line of its own. */
static int jsonl_check_tail(struct jsonl *j, const struct accounting_record *rec,
			    bool *already)
{
	struct stat st;
	size_t want = rec->len + 2; /* "\n" + record + "\n" */
	char *buf;
	off_t from;
	ssize_t n;

	*already = false;
	if (fstat(j->fd, &st))
		return -errno;
	if (st.st_size == 0)
		return 0;
	from = st.st_size > (off_t)want ? st.st_size - (off_t)want : 0;
	buf = malloc(want);
	if (!buf)
		return -ENOMEM;
	n = pread(j->fd, buf, want, from);
	if (n < 0) {
		/* O_APPEND descriptors opened write-only cannot be read:
		 * look through a second, read-only one. */
		int rfd = open(j->path, O_RDONLY | O_CLOEXEC);

		n = rfd < 0 ? -1 : pread(rfd, buf, want, from);
		if (rfd >= 0)
			close(rfd);
	}
	if (n <= 0) {
		free(buf);
		return n < 0 ? -errno : 0;
	}
	if (buf[n - 1] != '\n') {
		log_warn("accounting: %s ends in a partial line; starting a new line", j->path);
		if (write(j->fd, "\n", 1) != 1) {
			free(buf);
			return -EIO;
		}
	} else if ((size_t)n >= rec->len + 1 &&
		   !memcmp(buf + n - 1 - rec->len, rec->json, rec->len) &&
		   ((size_t)n == rec->len + 1 || buf[n - 2 - rec->len] == '\n') &&
		   (from == 0 || (size_t)n == want)) {
		*already = true;
	}
	free(buf);
	return 0;
}

static int jsonl_deliver(void *state, const struct accounting_record *rec, char *err,
			 size_t errlen)
{
	struct jsonl *j = state;
	struct iovec iov[2] = {
		{ (void *)rec->json, rec->len }, { "\n", 1 },
	};
	size_t total = rec->len + 1, done = 0;
	struct stat st;
	int rc;

	if (j->fd < 0 && (rc = jsonl_open_file(j, err, errlen)))
		return rc;
	if (!j->tail_checked) {
		bool already;

		rc = jsonl_check_tail(j, rec, &already);
		if (rc) {
			snprintf(err, errlen, "cannot read the end of %s: %s", j->path,
				 strerror(-rc));
			return -EAGAIN;
		}
		j->tail_checked = true;
		if (already) {
			log_info("accounting: the record of call %s is already the last line of %s "
				 "(written before a restart); not writing it twice",
				 rec->call_id, j->path);
			return 0;
		}
	}
	if (fstat(j->fd, &st)) {
		snprintf(err, errlen, "cannot stat %s: %s", j->path, strerror(errno));
		return -EAGAIN;
	}
	while (done < total) {
		ssize_t n = writev(j->fd, iov, 2);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot write to %s: %s", j->path,
				 n < 0 ? strerror(errno) : "no progress");
			/* Leave no half record behind for the retry to glue onto. */
			if (ftruncate(j->fd, st.st_size))
				log_warn("accounting: cannot cut the partial record off %s: %s",
					 j->path, strerror(errno));
			return -EAGAIN;
		}
		done += (size_t)n;
		for (int i = 0; i < 2 && n > 0; i++) {
			size_t take = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;

			iov[i].iov_base = (char *)iov[i].iov_base + take;
			iov[i].iov_len -= take;
			n -= (ssize_t)take;
		}
	}
	if (fdatasync(j->fd)) {
		snprintf(err, errlen, "cannot sync %s: %s", j->path, strerror(errno));
		return -EAGAIN;
	}
	return 0;
}

static void jsonl_reopen(void *state)
{
	struct jsonl *j = state;

	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1; /* opened again, under the same name, by the next record */
	log_info("accounting: re-opening %s", j->path);
}

static void jsonl_close(void *state)
{
	struct jsonl *j = state;

	if (j->fd >= 0)
		close(j->fd);
	free(j->path);
	free(j);
}

int accounting_jsonl_open(struct accounting_backend *b, const struct mp_config *cfg,
			  char *err, size_t errlen)
{
	struct jsonl *j = calloc(1, sizeof(*j));

	if (!j || !(j->path = strdup(cfg->dispatcher.accounting_file))) {
		free(j);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	j->fd = -1;
	*b = (struct accounting_backend){
		.name = "jsonl", .state = j, .deliver = jsonl_deliver,
		.reopen = jsonl_reopen, .close = jsonl_close,
	};
	return 0;
}
