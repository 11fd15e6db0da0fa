/* Shared by session_store.c (writing) and session_store_load.c (reading
 * back at start). Nothing else includes this. */
#ifndef MP_SESSION_STORE_INTERNAL_H
#define MP_SESSION_STORE_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>

#include "session_store.h"
#include "session_store_image.h"

struct session_store {
	char path[PATH_MAX];
	unsigned int stream_timeout;   /* s */
	unsigned int refresh_s;
	struct session_table *table;   /* set once loaded: from then on we write */
	struct event *debounce, *refresh;
	struct event_base *base;
	uint64_t last_write_ms;        /* CLOCK_MONOTONIC */
	bool dirty, loading, failing;
	/* The writer child (see store_save_async): its pid, a pidfd that
	 * becomes readable when it exits, and whether a change came in while
	 * it ran (its snapshot is then already old). */
	pid_t writer;
	struct event *writer_done;
	bool again;
};

/* Both clocks read at one moment, to convert the data plane's monotonic
 * times to wall clock (and back) for the file. */
struct session_store_clocks {
	double wall;                   /* s, the table's clock */
	uint64_t mono;                 /* ns, the streams' clock */
};

void session_store_clocks_now(struct session_table *t, struct session_store_clocks *c);
double session_store_mono_to_wall(const struct session_store_clocks *c, uint64_t ns);
/* The table as the file's text, malloc'd. 0 or -ENOMEM. */
int session_store_snapshot(struct session_table *t, char **text);
/* Marks the store loaded: writes the table soon, and then on changes. */
void session_store_start(struct session_store *st, struct session_table *t);

#endif
