/* The relay's session table on disk (relayd/session_store*.c, PROTOCOL.md
 * D6): the JSON image written and read back field for field, damaged files
 * refused with a reason, and "restarts" inside one process: the table
 * freed with its flows kept, a new one loaded from the file on the same
 * ports, over the userspace backend (real packets on loopback) and over a
 * recording in-kernel stand-in that reports adopted flows, where the
 * counters must continue without counting the kernel's share twice. */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "session_store.h"
#include "session_store_image.h"
#include "test_session_fixture.h"

/* ---- an in-kernel backend that also reports adopted pairs ------------------ */

#define MAX_ADOPT 4
static struct forward kstub;
static struct forward_pair adopt[MAX_ADOPT];
static int n_adopt;

static int kstub_foreach(struct forward *fw,
			 void (*fn)(void *ctx, const struct forward_pair *pair,
				    const struct forward_counters *forward,
				    const struct forward_counters *backward),
			 void *ctx)
{
	for (int i = 0; i < n_adopt; i++)
		fn(ctx, &adopt[i], &fw->fwd, &fw->bwd);
	return 0;
}

static const struct forward_backend kstub_backend = {
	.name = "kstub",
	.add_pair = stub_add,
	.read_pair = stub_read,
	.remove_pair = stub_remove,
	.foreach_adopted = kstub_foreach,
	.in_kernel = true,
};

/* ---- fixture: a session table, its store, a temp dir ----------------------- */

struct rfix {
	struct sfix s;
	struct session_store *st;
	const struct forward_backend *be;
	char dir[64];
	char path[PATH_MAX];
};

static void table_open(struct rfix *r)
{
	struct sfix *s = &r->s;
	struct session_store_options o = { .base = s->f->base, .path = r->path,
					   .stream_timeout = 90 };
	struct session_table_options so = {
		.streams = s->f->env, .relay_ip = s->f->relay_ip, .bps_relayed = &s->bps,
		.expired = record_expired, .ctx = s, .clock = fake_wall, .clock_ctx = s,
		.changed = session_store_changed,
	};

	assert_int_equal(session_store_new(&r->st, &o), 0);
	so.changed_ctx = r->st;
	assert_int_equal(session_table_new(&s->t, &so), 0);
	assert_int_equal(session_store_load(r->st, s->t, r->be, r->be ? (void *)&kstub : NULL), 0);
}

static int open_with(void **state, const struct forward_backend *be)
{
	struct stream_env_options o = { .backend = be ? be : &forward_user_backend,
					 .fw = be ? &kstub : NULL };
	struct rfix *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	memset(&kstub, 0, sizeof(kstub));
	n_adopt = 0;
	fixture_open(state, AF_INET, &o);
	r->s.f = *state;
	r->s.wall = WALL_START;
	r->be = be;
	net_addr_format(&r->s.f->relay_ip, r->s.relay_ip, sizeof(r->s.relay_ip));
	snprintf(r->dir, sizeof(r->dir), "/tmp/mp-store.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	snprintf(r->path, sizeof(r->path), "%s/relay-%s.sessions.json", r->dir, r->s.relay_ip);
	table_open(r);
	*state = r;
	return 0;
}

static int setup_user(void **state)
{
	return open_with(state, NULL);
}

static int setup_kstub(void **state)
{
	return open_with(state, &kstub_backend);
}

static int teardown_r(void **state)
{
	struct rfix *r = *state;
	char tmp[PATH_MAX + 8];
	struct sfix *s;

	session_store_free(r->st, true);
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->path);
	unlink(tmp);
	rmdir(r->dir);
	s = malloc(sizeof(*s));
	assert_non_null(s);
	*s = r->s;
	*state = s;
	free(r);
	return sfix_teardown(state);
}

/* The relay stops keeping its flows (SIGUSR2 or a crash) and a new one
 * starts on the same data plane. */
static void restart(struct rfix *r)
{
	stream_env_keep_flows(r->s.f->env, true);
	session_table_free(r->s.t);
	session_store_free(r->st, false);
	stream_env_keep_flows(r->s.f->env, false);
	table_open(r);
}

static void write_text(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

static char *read_text(const char *path)
{
	static char buf[1 << 16];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

/* Runs the loop until the file holds `needle` (the debounced write). */
static bool file_gets(struct rfix *r, const char *needle)
{
	for (int i = 0; i < 100; i++) {
		const char *t = read_text(r->path);
		struct timeval tv = { 0, 20000 };

		if (t && strstr(t, needle))
			return true;
		event_base_loopexit(r->s.f->base, &tv);
		event_base_dispatch(r->s.f->base);
	}
	return false;
}

/* ---- calls -------------------------------------------------------------------- */

#define CALL "restart@192.0.2.10"

/* An answered call; both parties latched on RTP with one packet each
 * (caller 172 bytes, callee 100), media 2.25 s after the offer. */
static void answered_call(struct rfix *r)
{
	struct sfix *s = &r->s;
	struct fixture *f = s->f;
	struct upd offer = { "request", CALL, "101", "a73kszlfl", NULL, "Blink 5.1",
			     media_of(&f->caller, "audio", "sendrecv"), NULL };
	struct upd answer = { "reply", CALL, "101", "a73kszlfl", "1928301774",
			      "Asterisk PBX 18", media_of(&f->callee, "audio", "sendrecv"), NULL };
	uint16_t cp = (uint16_t)caller_port(s, 0), ep = (uint16_t)callee_port(s, 0);
	uint8_t a[172], b[100];

	expect_reply(s, upd_text(&offer), ports_reply(s, 1, ep));
	s->wall += 1.5;
	expect_reply(s, upd_text(&answer), ports_reply(s, 1, cp));
	fake_now += 2 * NS + NS / 4;
	make_rtp(a, 0, 1, sizeof(a));
	send_to_relay(f, &f->caller, cp, a, sizeof(a));
	make_rtp(b, 8, 1, sizeof(b));
	send_to_relay(f, &f->callee, ep, b, sizeof(b));
	if (!r->be)
		expect_packet(f, &f->caller, b, sizeof(b), cp);
}

static struct json_object *the_stream(struct rfix *r, struct json_object **all)
{
	*all = sessions_now(&r->s);
	assert_int_equal(json_object_array_length(*all), 1);
	return jstream(json_object_array_get_idx(*all, 0), 0);
}

static uint64_t jget_u64(struct json_object *o, const char *key)
{
	return json_object_get_uint64(jget(o, key));
}

/* ---- the image and its JSON ----------------------------------------------------- */

/* A session touching every field: an alive stream with a data plane
 * (IPv6 latches, hold, ICE, one leg in the kernel, counters past 2^63)
 * and an ended one with its final statistics. */
static void sample_image(struct session_store_image *img)
{
	struct session_store_session *se;
	struct session_store_stream *a, *b;

	memset(img, 0, sizeof(*img));
	img->saved_at = 1718000123.5;
	snprintf(img->relay_ip, sizeof(img->relay_ip), "10.0.0.1");
	img->count = 1;
	img->sessions = calloc(1, sizeof(*se));
	se = &img->sessions[0];
	se->call_id = strdup("abc@host");
	se->from_tag = strdup("ftag");
	se->from_uri = strdup("alice\xff\x01\t@example.com"); /* not UTF-8, control bytes */
	se->to_uri = strdup("bob@example.com");
	se->dispatcher = strdup("dispatcher.example.com:25060");
	se->to_tag = strdup("ttag");
	se->caller_ua = strdup("Blink \"5.1\" \\ é");
	se->has_cseq = true;
	se->cseq[0] = 102;
	se->cseq[1] = 7;
	se->started = true;
	se->start_time = 1718000001.75;
	se->stream_count = 2;
	se->streams = calloc(2, sizeof(*se->streams));
	se->offer_count = 2;
	se->offers = calloc(2, sizeof(*se->offers));
	se->offers[0] = (struct session_store_offer){ { 102, 7 }, 2, { 0, 1 } };
	se->offers[1] = (struct session_store_offer){ { 101, 0 }, 1, { 1 } };

	a = &se->streams[0];
	snprintf(a->media_type, sizeof(a->media_type), "audio");
	a->alive = true;
	a->started = true;
	a->start_time = 1718000002.0;
	a->party[0] = (struct session_party){ .known = true, .port = 7000, .on_hold = true };
	net_addr_parse("10.0.0.2", &a->party[0].ip);
	a->party[1] = (struct session_party){ .known = true, .port = 8000, .ice = true };
	net_addr_parse("2001:db8::2", &a->party[1].ip);
	a->has_dp = true;
	a->created = 1718000000.25;
	a->first_media = 1718000002.5;
	a->dp.dropped_packets = 3;
	a->dp.installed[STREAM_RTP] = true;
	for (int side = 0; side < 2; side++) {
		struct stream_saved_side *sd = &a->dp.side[side];

		sd->rtp_port = (uint16_t)(50000 + 2 * side);
		sd->sdp = side ? a->party[1].ip : a->party[0].ip;
		sd->sdp_port = side ? 8000 : 7000;
		snprintf(sd->codec, sizeof(sd->codec), side ? "Dynamic(96)" : "G711u");
		sd->bytes = side ? UINT64_MAX - 1 : 1000;
		sd->packets = 10 + (uint64_t)side;
		sd->latched[STREAM_RTP].addr = sd->sdp;
		sd->latched[STREAM_RTP].port = sd->sdp_port;
		sd->kernel[STREAM_RTP].bytes = 500 + (uint64_t)side;
		sd->kernel[STREAM_RTP].packets = 5;
	}
	a->dp.side[0].on_hold = true;

	b = &se->streams[1];
	snprintf(b->media_type, sizeof(b->media_type), "video");
	b->end = SESSION_END_NO_TRAFFIC;
	b->timeout_wait = 90;
	b->ended = true;
	b->end_time = 1718000091.0;
	b->party[0] = (struct session_party){ .known = true, .port = 7002 };
	net_addr_parse("10.0.0.2", &b->party[0].ip);
	b->final.created_ns = 1;
	b->final.first_media_ns = 1 + 1730000000ull;
	b->final.dropped_packets = 9;
	for (int side = 0; side < 2; side++) {
		struct stream_side_stats *st = &b->final.side[side];

		snprintf(st->codec, sizeof(st->codec), "Unknown");
		snprintf(st->local, sizeof(st->local), "10.0.0.1:%d", 50004 + 2 * side);
		snprintf(st->remote, sizeof(st->remote), "Unknown");
		st->bytes = 77;
		st->packets = 1;
	}
}

/* (a pointer out, not returned: gcc then sees no dangling local) */
static void sample_text(char **text)
{
	struct session_store_image img;

	sample_image(&img);
	assert_int_equal(session_store_format(&img, text), 0);
	session_store_image_free(&img);
}

static void test_round_trip(void **state)
{
	struct session_store_image img, back;
	char why[200], *text, *again;
	const struct session_store_stream *a, *b;

	(void)state;
	sample_image(&img);
	assert_int_equal(session_store_format(&img, &text), 0);
	assert_int_equal(session_store_parse(text, strlen(text), &back, why, sizeof(why)), 0);
	assert_int_equal(session_store_format(&back, &again), 0);
	assert_string_equal(text, again);

	assert_true(back.saved_at == img.saved_at);
	assert_string_equal(back.relay_ip, "10.0.0.1");
	assert_int_equal(back.count, 1);
	assert_string_equal(back.sessions[0].caller_ua, img.sessions[0].caller_ua);
	assert_string_equal(back.sessions[0].from_uri, img.sessions[0].from_uri);
	assert_null(back.sessions[0].callee_ua);
	assert_null(back.sessions[0].username);
	assert_string_equal(back.sessions[0].dispatcher, "dispatcher.example.com:25060");
	assert_int_equal(back.sessions[0].cseq[0], 102);
	assert_int_equal(back.sessions[0].cseq[1], 7);
	assert_int_equal(back.sessions[0].offer_count, 2);
	assert_int_equal(back.sessions[0].offers[1].count, 1);
	assert_int_equal(back.sessions[0].offers[1].streams[0], 1);
	a = &back.sessions[0].streams[0];
	b = &back.sessions[0].streams[1];
	assert_true(a->alive && a->has_dp && a->started && !a->ended);
	assert_true(a->party[0].on_hold && !a->party[0].ice && a->party[1].ice);
	assert_true(net_addr_equal(&a->party[1].ip, &img.sessions[0].streams[0].party[1].ip));
	assert_int_equal(a->dp.side[1].bytes, UINT64_MAX - 1);
	assert_int_equal(a->dp.side[0].kernel[STREAM_RTP].bytes, 500);
	assert_int_equal(a->dp.side[1].latched[STREAM_RTP].port, 8000);
	assert_int_equal(a->dp.side[1].latched[STREAM_RTCP].port, 0);
	assert_true(a->dp.installed[STREAM_RTP] && !a->dp.installed[STREAM_RTCP]);
	assert_true(a->first_media == 1718000002.5);
	assert_true(!b->alive && !b->has_dp && b->end == SESSION_END_NO_TRAFFIC);
	assert_int_equal(b->timeout_wait, 90);
	assert_int_equal(b->final.first_media_ns - b->final.created_ns, 1730000000ull);
	assert_string_equal(b->final.side[1].local, "10.0.0.1:50006");
	free(text);
	free(again);
	session_store_image_free(&img);
	session_store_image_free(&back);
}

/* Damage to a good file, as a replacement of one piece of its text. */
static const struct {
	const char *name, *find, *replace, *want;
} damage[] = {
	{ "another program's JSON file", "\"media-relay sessions\"", "\"something else\"",
	  "format" },
	{ "written by a newer relay", "\"version\":1", "\"version\":2", "version 2" },
	{ "saved_at is not a number", "\"saved_at\":1718000123.5", "\"saved_at\":\"yesterday\"",
	  "saved_at" },
	{ "a session without call_id", "\"call_id\":\"abc@host\",", "", "session 0: no \"call_id\"" },
	{ "call_id is a number", "\"call_id\":\"abc@host\"", "\"call_id\":17", "call_id" },
	{ "NUL inside a call_id", "\"call_id\":\"abc@host\"", "\"call_id\":\"abc\\u0000host\"",
	  "NUL" },
	{ "cseq with three numbers", "\"cseq\":[102,7]", "\"cseq\":[102,7,1]", "cseq" },
	{ "negative byte counter", "\"bytes\":1000", "\"bytes\":-1000", "bytes" },
	{ "odd relay port", "\"port\":50000", "\"port\":50001", "not an even relay port" },
	{ "relay port past 65535", "\"port\":50000", "\"port\":70000", "port" },
	{ "offer naming a stream that is not there", "\"streams\":[0,1]", "\"streams\":[0,5]",
	  "offer 0" },
	{ "unknown stream status", "\"status\":\"no-traffic timeout\"", "\"status\":\"exploded\"",
	  "exploded" },
	{ "ended stream with relay ports", "\"status\":\"on hold\"", "\"status\":\"closed\"",
	  "ended stream has relay ports" },
	{ "media type too long", "\"media_type\":\"audio\"",
	  "\"media_type\":\"audioaudioaudioaudioaudioaudioaudio\"", "media_type" },
	{ "codec name too long", "\"codec\":\"G711u\"", "\"codec\":\"G711u-with-a-long-name\"",
	  "codec" },
	{ "latched address that is not an IP", "\"latched_ip\":\"10.0.0.2\"",
	  "\"latched_ip\":\"not-an-ip\"", "latched_ip" },
	{ "latched IP without a port", "\"latched_ip\":\"10.0.0.2\",\"latched_port\":7000",
	  "\"latched_ip\":\"10.0.0.2\",\"latched_port\":0", "both an IP and a port" },
	{ "a party object replaced by a string", "\"caller\":{\"ip\"", "\"caller\":\"x\",\"y\":{\"ip\"",
	  "caller" },
	{ "a session without streams", "\"streams\":[{\"media_type\":\"audio\"",
	  "\"streams\":[],\"x\":[{\"media_type\":\"audio\"", "without offers or streams" },
	{ "trailing garbage", "\"Unknown\"}}}]}]}", "\"Unknown\"}}}]}]} x", "not JSON" },
};

static void test_damaged_files(void **state)
{
	char *good, why[200];
	struct session_store_image img;

	(void)state;
	sample_text(&good);
	assert_int_equal(session_store_parse(good, strlen(good), &img, why, sizeof(why)), 0);
	session_store_image_free(&img);
	for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
		const char *at = strstr(good, damage[i].find);
		char bad[8192];
		int n;

		if (!at)
			fail_msg("%s: \"%s\" is not in %s", damage[i].name, damage[i].find, good);
		n = snprintf(bad, sizeof(bad), "%.*s%s%s", (int)(at - good), good, damage[i].replace,
			     at + strlen(damage[i].find));
		assert_true(n > 0 && n < (int)sizeof(bad));
		memset(&img, 0xa5, sizeof(img));
		if (session_store_parse(bad, (size_t)n, &img, why, sizeof(why)) != -EINVAL)
			fail_msg("%s: accepted", damage[i].name);
		if (!strstr(why, damage[i].want))
			fail_msg("%s: reason \"%s\" does not say \"%s\"", damage[i].name, why,
				 damage[i].want);
		assert_int_equal(img.count, 0);
		assert_null(img.sessions);
	}
	free(good);
}

/* Whole files that are not a session table at all. */
static void test_not_a_table(void **state)
{
	static const struct {
		const char *name, *text;
		size_t len;
		const char *want;
	} cases[] = {
		{ "empty file (crash before the first write)", "", 0, "not JSON" },
		{ "a JSON array", "[]", 2, "not a JSON object" },
		{ "a number", "42\n", 3, "not a JSON object" },
		{ "binary junk with a NUL", "{\"a\0\":1}", 8, "NUL" },
		{ "an empty object", "{}", 2, "no \"format\"" },
	};
	char *good, why[200];
	struct session_store_image img;

	(void)state;
	sample_text(&good);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(session_store_parse(cases[i].text, cases[i].len, &img, why,
						     sizeof(why)), -EINVAL);
		if (!strstr(why, cases[i].want))
			fail_msg("%s: reason \"%s\"", cases[i].name, why);
	}
	/* cut short anywhere (a torn write, were it not for the rename) */
	for (size_t cut = 0; cut < strlen(good); cut += 7)
		assert_int_equal(session_store_parse(good, cut, &img, why, sizeof(why)), -EINVAL);
	free(good);
}

/* ---- restarts over the userspace backend ---------------------------------------- */

static void test_restart_keeps_the_call(void **state)
{
	struct rfix *r = *state;
	struct sfix *s = &r->s;
	struct fixture *f = s->f;
	uint16_t cp = (uint16_t)caller_port(s, 0), ep = (uint16_t)callee_port(s, 0);
	struct json_object *before, *after, *st;
	char *was, *now;
	uint8_t a[172];

	answered_call(r);
	/* stream statistics as the dispatcher would see them */
	before = sessions_now(s);
	was = strdup(json_object_to_json_string(before));
	assert_int_equal(session_store_flush(r->st), 0);
	restart(r);
	after = sessions_now(s);
	now = strdup(json_object_to_json_string(after));
	assert_string_equal(was, now);
	json_object_put(after);
	st = the_stream(r, &after);
	jstr(st, "status", "active");
	jstr(st, "caller_codec", "G711u");
	jstr(st, "callee_codec", "G711a");
	jdouble(st, "post_dial_delay", 2.25);
	jint(st, "caller_bytes", 172);
	jint(st, "callee_bytes", 100);
	json_object_put(after);

	/* the same ports and the latched addresses: media goes on at once,
	 * and only from the latched source */
	make_rtp(a, 0, 2, sizeof(a));
	send_to_relay(f, &f->caller, cp, a, sizeof(a));
	expect_packet(f, &f->callee, a, sizeof(a), ep);
	send_to_relay(f, &f->stranger, cp, a, sizeof(a));
	expect_nothing(f, &f->callee);
	st = the_stream(r, &after);
	jint(st, "caller_bytes", 2 * 172);
	jint(st, "caller_packets", 2);
	jint(st, "dropped_packets", 1);
	json_object_put(after);

	/* the dispatcher's remove gets the final counters */
	free(run(s, "remove\r\ncall_id: " CALL "\r\nfrom_tag: a73kszlfl\r\n\r\n"));
	assert_int_equal(session_table_count(s->t), 0);
	json_object_put(before);
	free(was);
	free(now);
}

/* A restored stream must not time out at once: its latches count as
 * fresh activity, and the no-traffic timer of an unlatched side restarts. */
static void test_restored_stream_is_not_idle(void **state)
{
	struct rfix *r = *state;
	struct sfix *s = &r->s;

	answered_call(r);
	assert_int_equal(session_store_flush(r->st), 0);
	fake_now += 80 * NS;
	restart(r);
	stream_env_check_timeouts(s->f->env, 90, 7200);
	assert_int_equal(session_table_count(s->t), 1);
	fake_now += 91 * NS;
	stream_env_check_timeouts(s->f->env, 90, 7200);
	assert_int_equal(session_table_count(s->t), 0);
	assert_int_equal(s->n_expired, 1);
	assert_non_null(strstr(s->expired[0].json, "conntrack timeout"));
}

/* Changes reach the file by themselves, debounced, from the event loop:
 * a new session, a party latching, a removal. */
static void test_changes_are_written(void **state)
{
	struct rfix *r = *state;
	struct sfix *s = &r->s;
	struct fixture *f = s->f;
	struct upd offer = { "request", CALL, "101", "a73kszlfl", NULL, "Blink 5.1",
			     media_of(&f->caller, "audio", "sendrecv"), NULL };
	char want[128], tmp[PATH_MAX + 8];
	uint8_t a[60];

	expect_reply(s, upd_text(&offer), ports_reply(s, 1, callee_port(s, 0)));
	assert_true(file_gets(r, "\"call_id\":\"" CALL "\""));
	make_rtp(a, 0, 1, sizeof(a));
	send_to_relay(f, &f->caller, (uint16_t)caller_port(s, 0), a, sizeof(a));
	snprintf(want, sizeof(want), "\"latched_port\":%u", f->caller.port);
	assert_true(file_gets(r, want));
	free(run(s, "remove\r\ncall_id: " CALL "\r\nfrom_tag: a73kszlfl\r\n\r\n"));
	assert_true(file_gets(r, "\"sessions\":[]"));
	snprintf(tmp, sizeof(tmp), "%s.tmp", r->path);
	assert_int_equal(access(tmp, F_OK), -1); /* renamed, never left behind */
	/* a clean exit leaves no file */
	session_store_free(r->st, true);
	r->st = NULL;
	assert_int_equal(access(r->path, F_OK), -1);
}

static void test_stale_file_is_discarded(void **state)
{
	struct rfix *r = *state;
	struct sfix *s = &r->s;
	struct ports_usage u;

	answered_call(r);
	assert_int_equal(session_store_flush(r->st), 0);
	s->wall += 2 * 90 + 1;
	restart(r);
	assert_int_equal(session_table_count(s->t), 0);
	ports_get_usage(s->f->pool, &u);
	assert_int_equal(u.taken, 0);
}

static void test_corrupt_file_starts_empty(void **state)
{
	struct rfix *r = *state;
	struct sfix *s = &r->s;
	const char *text;

	answered_call(r);
	assert_int_equal(session_store_flush(r->st), 0);
	text = read_text(r->path);
	assert_non_null(text);
	write_text(r->path, text, strlen(text) / 2);
	restart(r);
	assert_int_equal(session_table_count(s->t), 0);
	/* and the next write replaces the bad file */
	assert_int_equal(session_store_flush(r->st), 0);
	assert_non_null(strstr(read_text(r->path), "\"sessions\":[]"));
}

/* Two calls saved; one of them now on ports outside port_range: only
 * that one is skipped. */
static void test_ports_outside_range_are_skipped(void **state)
{
	struct rfix *r = *state;
	struct sfix *s = &r->s;
	struct fixture *f = s->f;
	struct upd offer2 = { "request", "second@192.0.2.10", "1", "tag2", NULL, "UA",
			      media_of(&f->caller, "audio", "sendrecv"), NULL };
	struct session_store_image img;
	char why[200], *text;
	const char *saved;

	answered_call(r);
	expect_reply(s, upd_text(&offer2), ports_reply(s, 1, callee_port(s, 1)));
	assert_int_equal(session_store_flush(r->st), 0);
	saved = read_text(r->path);
	assert_int_equal(session_store_parse(saved, strlen(saved), &img, why, sizeof(why)), 0);
	assert_int_equal(img.count, 2);
	img.sessions[0].streams[0].dp.side[STREAM_CALLER].rtp_port = 2;
	assert_int_equal(session_store_format(&img, &text), 0);
	write_text(r->path, text, strlen(text));
	free(text);
	session_store_image_free(&img);
	restart(r);
	assert_int_equal(session_table_count(s->t), 1);
	expect_reply(s, "remove\r\ncall_id: " CALL "\r\nfrom_tag: a73kszlfl\r\n\r\n", "error");
	free(run(s, "remove\r\ncall_id: second@192.0.2.10\r\nfrom_tag: tag2\r\n\r\n"));
}

/* ---- restarts over an in-kernel backend ------------------------------------------ */

/* The kernel forwarded 200/100 bytes before the save and goes on to 500/250
 * while no relay runs; the restarted relay adopts the pair, so its counts
 * continue from the kernel's: user space + kernel, never kernel twice. */
static void test_adopted_pair_counts_once(void **state)
{
	struct rfix *r = *state;
	struct sfix *s = &r->s;
	struct json_object *all, *st;
	char *reply;

	answered_call(r);
	assert_int_equal(kstub.adds, 1);
	kstub.fwd = (struct forward_counters){ 200, 2, fake_now };
	kstub.bwd = (struct forward_counters){ 100, 1, fake_now };
	st = the_stream(r, &all);
	jint(st, "caller_bytes", 172 + 200);
	json_object_put(all);
	assert_int_equal(session_store_flush(r->st), 0);

	kstub.fwd = (struct forward_counters){ 500, 5, fake_now };
	kstub.bwd = (struct forward_counters){ 250, 3, fake_now };
	adopt[0] = kstub.last_added;
	n_adopt = 1;
	restart(r);
	assert_int_equal(kstub.adds, 1);    /* taken over, not installed again */
	assert_int_equal(kstub.removes, 0);
	st = the_stream(r, &all);
	jint(st, "caller_bytes", 172 + 500);
	jint(st, "caller_packets", 1 + 5);
	jint(st, "callee_bytes", 100 + 250);
	jint(st, "callee_packets", 1 + 3);
	json_object_put(all);

	/* saved again and restarted again: still no double count */
	assert_int_equal(session_store_flush(r->st), 0);
	kstub.fwd.bytes = 900;
	restart(r);
	st = the_stream(r, &all);
	assert_int_equal(jget_u64(st, "caller_bytes"), 172 + 900);
	json_object_put(all);

	/* remove: the final counters are the kernel's last plus user space */
	kstub.fwd.bytes = 1000;
	reply = run(s, "remove\r\ncall_id: " CALL "\r\nfrom_tag: a73kszlfl\r\n\r\n");
	all = jparse(reply);
	st = jstream(all, 0);
	jint(st, "caller_bytes", 172 + 1000);
	json_object_put(all);
	free(reply);
	assert_int_equal(kstub.removes, 1);
}

/* The pair a pinned-map reader found lists the higher relay port first
 * (xdp: `forward` is the lower port, whichever side that is): matching is
 * by ports, and the direction still comes out right. */
static void test_adopted_pair_in_either_order(void **state)
{
	struct rfix *r = *state;
	struct json_object *all, *st;

	answered_call(r);
	assert_int_equal(session_store_flush(r->st), 0);
	adopt[0].forward = kstub.last_added.backward;
	adopt[0].backward = kstub.last_added.forward;
	n_adopt = 1;
	kstub.fwd = (struct forward_counters){ 300, 3, fake_now };
	kstub.bwd = (struct forward_counters){ 40, 1, fake_now };
	restart(r);
	assert_int_equal(kstub.adds, 1);
	assert_int_equal(kstub.removes, 0);
	st = the_stream(r, &all);
	jint(st, "caller_bytes", 172 + 300);
	jint(st, "callee_bytes", 100 + 40);
	jstr(st, "caller_remote", addr_port(&r->s.f->caller.addr, r->s.f->caller.port));
	json_object_put(all);
}

/* The kernel lost the flow (a conntrack entry expired, the map was
 * replaced): what it had counted comes from the file, and the leg is
 * installed again. */
static void test_lost_pair_is_reinstalled(void **state)
{
	struct rfix *r = *state;
	struct json_object *all, *st;

	answered_call(r);
	kstub.fwd = (struct forward_counters){ 200, 2, fake_now };
	st = the_stream(r, &all);
	json_object_put(all);
	assert_int_equal(session_store_flush(r->st), 0);
	memset(&kstub.fwd, 0, sizeof(kstub.fwd));
	restart(r);
	assert_int_equal(kstub.adds, 2);
	assert_true(net_addr_equal(&kstub.last_added.forward.source.addr, &r->s.f->caller.addr));
	st = the_stream(r, &all);
	jint(st, "caller_bytes", 172 + 200);
	json_object_put(all);
}

/* Flows no saved session claims are removed; so are those of a file
 * that is discarded. */
static void test_unclaimed_pairs_are_removed(void **state)
{
	struct rfix *r = *state;
	struct sfix *s = &r->s;
	struct forward_pair stray;

	answered_call(r);
	assert_int_equal(session_store_flush(r->st), 0);
	stray = kstub.last_added;
	stray.forward.local.port = 2000;
	stray.backward.local.port = 2002;
	adopt[0] = stray;
	adopt[1] = kstub.last_added;
	n_adopt = 2;
	restart(r);
	assert_int_equal(kstub.removes, 1);
	assert_int_equal(kstub.last_removed.forward.local.port, 2000);
	assert_int_equal(session_table_count(s->t), 1);

	/* stale file: nothing is claimed, everything goes */
	assert_int_equal(session_store_flush(r->st), 0);
	s->wall += 1000;
	n_adopt = 1;
	adopt[0] = kstub.last_added;
	restart(r);
	assert_int_equal(session_table_count(s->t), 0);
	assert_int_equal(kstub.removes, 2);
}

int main(void)
{
#define T(fn, setup) cmocka_unit_test_setup_teardown(fn, setup, teardown_r)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_damaged_files),
		cmocka_unit_test(test_not_a_table),
		T(test_restart_keeps_the_call, setup_user),
		T(test_restored_stream_is_not_idle, setup_user),
		T(test_changes_are_written, setup_user),
		T(test_stale_file_is_discarded, setup_user),
		T(test_corrupt_file_starts_empty, setup_user),
		T(test_ports_outside_range_are_skipped, setup_user),
		T(test_adopted_pair_counts_once, setup_kstub),
		T(test_adopted_pair_in_either_order, setup_kstub),
		T(test_lost_pair_is_reinstalled, setup_kstub),
		T(test_unclaimed_pairs_are_removed, setup_kstub),
	};

	return cmocka_run_group_tests_name("session_store", tests, NULL, NULL);
}
