/* Part of test_relay_link.c: hostile input on both ends of the link.
 * A hand-made relay (a TLS client with the relay's certificate) throws bad
 * and random lines at the real dispatcher end; a hand-made dispatcher
 * throws bad and random commands at the real relay end. Neither may crash
 * or stop serving; each bad input is logged with the peer's name. */
#ifndef TEST_LINK_GARBAGE_H
#define TEST_LINK_GARBAGE_H

/* One random line, CRLF-terminated, into buf (>= 160 bytes): random bytes
 * (NUL, CR, 0xff included), sometimes behind a plausible prefix. */
static size_t random_line(unsigned int *seed, char *buf)
{
	static const char alphabet[] = "0123456789 :{}\"abcxyz\r\t\xff\x01\0";
	static const char *const prefixes[] = { "", "", "", "7 ", "123456 ", "expired ",
						"ping", "update 3", "99999999999999999999 " };
	const char *pre = prefixes[rand_r(seed) % (sizeof(prefixes) / sizeof(prefixes[0]))];
	size_t n = strlen(pre), len = (size_t)rand_r(seed) % 120;

	memcpy(buf, pre, n);
	for (size_t i = 0; i < len; i++)
		buf[n++] = alphabet[rand_r(seed) % (sizeof(alphabet) - 1)];
	buf[n++] = '\r';
	buf[n++] = '\n';
	return n;
}

static void send_random_lines(struct bufferevent *bev, unsigned int seed, int count)
{
	char buf[160];

	for (int i = 0; i < count; i++) {
		size_t n = random_line(&seed, buf);

		bufferevent_write(bev, buf, n);
	}
}

static void send_str(struct peer *p, const char *s)
{
	bufferevent_write(p->bev, s, strlen(s));
}

static void test_garbage_to_dispatcher(void **state)
{
	uint16_t port = free_port();
	SSL_CTX *rctx;
	struct disp d;
	struct peer p;
	char *big;

	(void)state;
	loop_setup();
	disp_init(&d, "127.0.0.1", port);
	rctx = ctx_from(dir_a, "relay", dir_a, false);
	peer_connect(&p, "127.0.0.3", port, rctx);
	WAIT(p.up && d.connected == 1, 3);
	assert_string_equal(relay_ip(d.last), "127.0.0.3");

	send_str(&p, "ping\r\n");
	WAIT(peer_got(&p, "pong"), 2);
	send_str(&p, "5 1.2.3.4 5000\r\n");
	WAIT(log_has("relay 127.0.0.3: unexpected reply for seq 5"), 2);
	send_str(&p, "expired\r\n");
	WAIT(log_has("relay 127.0.0.3: expired without a body"), 2);
	bufferevent_write(p.bev, "12 a\0b\r\n", 8);
	WAIT(log_has("relay 127.0.0.3: NUL byte in a line, ignored: \"12 a\\x00b\\x0d\\x0a\""), 2);
	send_str(&p, "pong\r\n18446744073709551616 x\r\n\r\n\n");
	WAIT(log_count("relay 127.0.0.3: malformed line, ignored") == 2, 2);
	send_str(&p, "expired {\"call_id\": \"x\"}\r\n");
	WAIT(d.expired == 1, 2);
	assert_string_equal(d.expired_json, "{\"call_id\": \"x\"}");
	assert_int_equal(d.disconnected, 0);

	/* random lines: the dispatcher gives up on this relay after 100 bad ones */
	send_random_lines(p.bev, 1234, 3000);
	WAIT(p.closed && d.disconnected == 1, 5);
	expect_log("relay 127.0.0.3: 100 malformed lines, closing connection");
	peer_free(&p);

	/* a line that never ends */
	peer_connect(&p, "127.0.0.3", port, rctx);
	WAIT(p.up && d.connected == 2, 3);
	big = malloc(LINEPROTO_RELAY_MAX_LINE + 1000);
	assert_non_null(big);
	memset(big, 'x', LINEPROTO_RELAY_MAX_LINE + 1000);
	bufferevent_write(p.bev, big, LINEPROTO_RELAY_MAX_LINE + 1000);
	free(big);
	WAIT(p.closed && d.disconnected == 2, 5);
	expect_log("relay 127.0.0.3: line over 4194304 bytes, closing connection");
	peer_free(&p);

	/* still serving */
	peer_connect(&p, "127.0.0.3", port, rctx);
	WAIT(p.up && d.connected == 3, 3);
	send_str(&p, "ping\r\n");
	WAIT(peer_got(&p, "pong"), 2);
	peer_free(&p);
	WAIT(d.disconnected == 3, 2);
	SSL_CTX_free(rctx);
	disp_close(&d);
	loop_teardown();
}

static void test_garbage_to_relay(void **state)
{
	uint16_t port = free_port();
	struct fake_server fake;
	struct rel r;
	SSL_CTX *dctx;
	char *big;
	int i;

	(void)state;
	loop_setup();
	dctx = ctx_from(dir_a, "dispatcher", dir_a, true);
	fake_server_open(&fake, port, dctx);
	fake.answer_pings = true;
	rel_init(&r, "127.0.0.1", port);
	rel_open(&r);
	WAIT(fake.accepted == 1 && fake.peer.up && rel_link(&r), 3);
	struct peer *p = &fake.peer;

	/* a header without ": " with a readable seq: answered `error` */
	send_str(p, "pong\r\nupdate 5\r\ncall_id: x\r\nno separator\r\nfrom_tag: y\r\n\r\n");
	WAIT(peer_got(p, "5 error"), 2);
	expect_log("malformed command (header line without ': ' separator), answering error: "
		   "\"no separator\"");
	/* too many headers */
	send_str(p, "update 6\r\n");
	for (i = 0; i < 40; i++)
		send_str(p, "h: v\r\n");
	send_str(p, "\r\n");
	WAIT(peer_got(p, "6 error"), 2);
	/* no usable seq: logged only */
	send_str(p, "update abc\r\ncall_id: x\r\n\r\n");
	WAIT(log_has("command update without a valid seq (\"abc\"), ignored"), 2);
	bufferevent_write(p->bev, "summary 7\r\nx: \0\r\n\r\n", 19);
	WAIT(peer_got(p, "7 error"), 2);
	send_str(p, " update 8\r\n\r\n");
	WAIT(log_has("command line starting with a space"), 2);
	/* still in sync */
	send_str(p, "summary 9\r\n\r\n");
	WAIT(peer_got(p, "9 summary"), 2);

	/* random commands, then a blank line to end whatever was open */
	send_random_lines(p->bev, 99, 2000);
	send_str(p, "\r\n\r\nsummary 77777\r\n\r\n");
	WAIT(peer_got(p, "77777 summary"), 5);
	assert_int_equal(fake.accepted, 1);

	/* a line that never ends: answered if it could be, then reconnect */
	big = malloc(70000);
	assert_non_null(big);
	memset(big, 'h', 70000);
	send_str(p, "update 10\r\n");
	bufferevent_write(p->bev, big, 70000);
	free(big);
	WAIT(fake.accepted == 2, 4);
	expect_log("malformed command (line over the length limit), answering error");
	rel_close(&r);
	fake_server_close(&fake);
	SSL_CTX_free(dctx);
	loop_teardown();
}

#endif
