/* Accounting (PROTOCOL.md §5, D11, D12, D15, issue 6): the durable spool
 * and the configured backends, each fed by its own delivery thread.
 *
 * The dispatcher's event loop calls accounting_submit() with each final
 * record; it returns once the record is fsynced in the spool, so the call
 * can be forgotten. Delivery happens later, in order, per backend, with
 * capped exponential backoff while a backend fails, and resumes after a
 * restart from each backend's cursor. */
#ifndef MP_ACCOUNTING_H
#define MP_ACCOUNTING_H

#include <json-c/json.h>

#include "config.h"

struct accounting;

/* Opens the spool ([Dispatcher] accounting_spool, accounting_spool_size)
 * and the backends named by [Dispatcher] accounting, and starts their
 * threads. *out is NULL when accounting is empty (no accounting, D11).
 * Returns 0, or -1 after logging what is wrong (the dispatcher then does
 * not start). cfg must outlive the accounting. */
int accounting_open(struct accounting **out, const struct mp_config *cfg);

/* Spools one completed record (record.h). 0 once it is durable; -errno
 * (spool full, disk error) after logging the record in full at error
 * level, so an operator can still recover it from the log. */
int accounting_submit(struct accounting *acct, struct json_object *record);

/* The `accounting` management command (D12), management_accounting_fn:
 * appends one object per backend, {"backend", "pending", "oldest_age_s",
 * "last_error"}. */
int accounting_status(void *acct, struct json_object *backends);

/* SIGHUP/SIGUSR1: each backend re-opens its files (D17) before its next
 * record. */
void accounting_reopen(struct accounting *acct);

/* Stops the threads (a delivery in progress finishes or times out first),
 * closes the backends and the spool. What is undelivered stays spooled for
 * the next start. NULL is a no-op. */
void accounting_close(struct accounting *acct);

#endif
