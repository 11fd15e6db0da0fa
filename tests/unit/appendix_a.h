/* Requests captured from real proxies (PROTOCOL.md Appendix A), byte for
 * byte: Kamailio 5.6.3 and OpenSIPS 3.4.18 with their stock mediaproxy
 * modules. Shared by every test that parses or answers them. */
#ifndef MP_TEST_APPENDIX_A_H
#define MP_TEST_APPENDIX_A_H

#define KAM_OFFER                                                                   \
	"update\r\ntype: request\r\ndialog_id: 3431:9579\r\ncall_id: 1-16898@127.0.0.1\r\n" \
	"cseq: 1\r\nfrom_uri: uac@127.0.0.1:54784\r\nto_uri: uas@127.0.0.1:32968\r\n"       \
	"from_tag: 16898SIPpTag001\r\nto_tag: \r\nuser_agent: e2e-uac\r\n"                  \
	"signaling_ip: 127.0.0.1\r\nmedia_relay: \r\n"                                      \
	"media: audio:127.0.0.1:23604:sendrecv:ice=no\r\n\r\n"
#define KAM_ANSWER                                                                  \
	"update\r\ntype: reply\r\ndialog_id: 3431:9579\r\ncall_id: 1-16898@127.0.0.1\r\n"   \
	"cseq: 1\r\nfrom_uri: uac@127.0.0.1:54784\r\nto_uri: uas@127.0.0.1:32968\r\n"       \
	"from_tag: 16898SIPpTag001\r\nto_tag: 16885SIPpTag011\r\nuser_agent: e2e-uas\r\n"   \
	"signaling_ip: 127.0.0.1\r\nmedia_relay: \r\n"                                      \
	"media: audio:127.0.0.1:21912:sendrecv:ice=no\r\n\r\n"
#define KAM_REMOVE                                                                  \
	"remove\r\ncall_id: 1-16898@127.0.0.1\r\nfrom_tag: 16898SIPpTag001\r\n"             \
	"to_tag: 16885SIPpTag011\r\n\r\n"
#define OSIPS_OFFER                                                                 \
	"update\r\ntype: request\r\ndialog_id: 1181799336689\r\ncall_id: 1-3883@127.0.0.1\r\n" \
	"cseq: 1\r\nfrom_uri: caller@127.0.0.1:58326\r\nto_uri: callee@127.0.0.1:37132\r\n"  \
	"from_tag: 3883SIPpTag001\r\nto_tag: \r\nuser_agent: e2e-opensips-uac\r\n"           \
	"signaling_ip: 127.0.0.1\r\nmedia_relay: \r\n"                                       \
	"media: audio:127.0.0.1:47504:sendrecv:ice=no\r\n\r\n"
#define OSIPS_REMOVE                                                                \
	"remove\r\ncall_id: 1-3883@127.0.0.1\r\nfrom_tag: 3883SIPpTag001\r\n"               \
	"to_tag: 3880SIPpTag011\r\n\r\n"

#endif
