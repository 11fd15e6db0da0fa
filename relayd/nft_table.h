/* The conntrack backend's own nftables table (`table inet NAME`): NAT base
 * chains, so the kernel applies the NAT bindings of the conntrack entries we
 * create, and a rule on `ct mark`, so conntrack tracks at all (kernels since
 * 4.19 only track in a namespace where some rule needs it). Built through
 * libnftables; the table is ours alone and nothing else goes in it. */
#ifndef MP_NFT_TABLE_H
#define MP_NFT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

#define NFT_TABLE_NAME_MAX 64 /* characters, without the NUL */

/* A name we are willing to paste into nft syntax: a letter or '_' first,
 * then letters, digits, '_' or '-', at most NFT_TABLE_NAME_MAX long. */
bool nft_table_name_valid(const char *name);

/* What the table is for: our mark, and the relay's address and ports. */
struct nft_table_spec {
	const char *name;
	uint32_t ct_mark;
	const struct net_addr *relay_ip;
	uint16_t port_min, port_max; /* inclusive */
};

/* Creates the table, or completes and adopts one a previous relay left, in
 * one atomic transaction: chains are added if missing and the rules (the
 * counting rule on ct mark, and `notrack` for what the relay's own sockets
 * send) are replaced, so packets never see a table without NAT chains.
 * *existed tells whether the table was already there. Returns 0, or -errno
 * with nft's own message in why. */
int nft_table_ensure(const struct nft_table_spec *spec, bool *existed, char *why,
		     size_t whylen);

/* Deletes the table with everything in it. 0 also when it was already gone;
 * -EIO after logging nft's message otherwise. */
int nft_table_delete(const char *name);

#endif
