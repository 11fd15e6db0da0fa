/* Command line, detaching, pid file and runtime directory for both daemons. */
#include "daemon.h"
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int ready_fd = -1;
static int pidfile_fd = -1;

static void print_usage(FILE *out, const char *prog, const char *summary)
{
	fprintf(out,
		"Usage: %s [options]\n"
		"%s\n\n"
		"  --config-file FILE  read FILE (default %s)\n"
		"  --config-dir DIR    read DIR/config.ini\n"
		"  --runtime-dir DIR   sockets, pid and state files (default %s)\n"
		"  --pid FILE          pid file (default <runtime-dir>/<name>.pid)\n"
		"  --no-fork           stay in the foreground and log to stderr\n"
		"  --help              show this help\n"
		"  --version           show the version\n",
		prog, summary, DAEMON_DEFAULT_CONFIG, DAEMON_DEFAULT_RUNTIME_DIR);
}

static int join_path(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int daemon_parse_args(struct daemon_options *opts, int argc, char **argv,
		      const char *prog, const char *pid_name, const char *summary)
{
	enum { OPT_CONFIG_FILE = 256, OPT_CONFIG_DIR, OPT_RUNTIME_DIR, OPT_PID,
	       OPT_NO_FORK, OPT_HELP, OPT_VERSION };
	static const struct option longopts[] = {
		{ "config-file", required_argument, NULL, OPT_CONFIG_FILE },
		{ "config-dir", required_argument, NULL, OPT_CONFIG_DIR },
		{ "runtime-dir", required_argument, NULL, OPT_RUNTIME_DIR },
		{ "pid", required_argument, NULL, OPT_PID },
		{ "no-fork", no_argument, NULL, OPT_NO_FORK },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	char pid_file_name[64];
	int opt;

	memset(opts, 0, sizeof(*opts));
	opts->runtime_dir = DAEMON_DEFAULT_RUNTIME_DIR;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_CONFIG_FILE: opts->config_file = optarg; break;
		case OPT_CONFIG_DIR: opts->config_dir = optarg; break;
		case OPT_RUNTIME_DIR: opts->runtime_dir = optarg; break;
		case OPT_PID: opts->pid_file = optarg; break;
		case OPT_NO_FORK: opts->no_fork = true; break;
		case OPT_HELP:
			print_usage(stdout, prog, summary);
			return 1;
		case OPT_VERSION:
			printf("%s %s\n", prog, MP_VERSION);
			return 1;
		default:
			fprintf(stderr, "%s: unknown or incomplete option '%s' (try --help)\n",
				prog, argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
		return -1;
	}
	if (opts->config_file && opts->config_dir) {
		fprintf(stderr, "%s: --config-file and --config-dir exclude each other\n", prog);
		return -1;
	}

	opts->config_explicit = opts->config_file || opts->config_dir;
	if (opts->config_file)
		snprintf(opts->config_path, sizeof(opts->config_path), "%s", opts->config_file);
	else if (opts->config_dir && join_path(opts->config_path, sizeof(opts->config_path),
					       opts->config_dir, "config.ini")) {
		fprintf(stderr, "%s: --config-dir path too long\n", prog);
		return -1;
	} else if (!opts->config_dir)
		snprintf(opts->config_path, sizeof(opts->config_path), "%s", DAEMON_DEFAULT_CONFIG);

	snprintf(pid_file_name, sizeof(pid_file_name), "%s.pid", pid_name);
	if (opts->pid_file)
		snprintf(opts->pid_path, sizeof(opts->pid_path), "%s", opts->pid_file);
	else if (join_path(opts->pid_path, sizeof(opts->pid_path), opts->runtime_dir,
			   pid_file_name)) {
		fprintf(stderr, "%s: --runtime-dir path too long\n", prog);
		return -1;
	}
	return 0;
}

int daemon_make_runtime_dir(const char *path)
{
	return fs_mkdir_parents(path, 0755);
}

int daemon_detach(void)
{
	int pipefd[2];
	pid_t pid;
	char byte;

	if (pipe(pipefd))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		/* Original process: wait for the daemon to report readiness. */
		close(pipefd[1]);
		while (read(pipefd[0], &byte, 1) < 0 && errno == EINTR)
			;
		_exit(byte == 'R' ? 0 : 1);
	}
	close(pipefd[0]);
	if (setsid() < 0)
		return -errno;
	/* Second fork: the daemon is not a session leader and can never
	 * acquire a controlling terminal again. */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	ready_fd = pipefd[1];
	umask(022);
	if (chdir("/"))
		return -errno;
	return 0;
}

void daemon_ready(void)
{
	int null_fd;

	if (ready_fd < 0)
		return;
	null_fd = open("/dev/null", O_RDWR);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(null_fd, STDERR_FILENO);
		if (null_fd > STDERR_FILENO)
			close(null_fd);
	}
	if (write(ready_fd, "R", 1) != 1) {
		/* The parent is gone; nothing left to tell. */
	}
	close(ready_fd);
	ready_fd = -1;
}

int daemon_pidfile_create(const char *path, long *other_pid)
{
	char buf[32];
	ssize_t n;
	int fd, len;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	/* The lock, not the file's existence, says an instance is running, so
	 * a pid file left by a crash never blocks a restart. */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno == EWOULDBLOCK ? -EEXIST : -errno;

		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		if (other_pid)
			*other_pid = strtol(buf, NULL, 10);
		close(fd);
		return err;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, buf, len, 0) != len) {
		int err = -errno;

		close(fd);
		return err;
	}
	pidfile_fd = fd;
	return 0;
}

void daemon_pidfile_remove(const char *path)
{
	if (pidfile_fd < 0)
		return;
	unlink(path);
	close(pidfile_fd);
	pidfile_fd = -1;
}
