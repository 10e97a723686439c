/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of libconduit/uri.c, table-driven in the style of curl's
 * lib1560: each good URI with the fields it must give (as one line, so a
 * failure shows the whole difference), each bad URI with its error code and
 * a piece of the message that must name the bad part.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conduit.h"
#include "libconduit/internal/uri.h" /* the fields behind the accessors */
#include "unit.h"

#define LISTEN CONDUIT_URI_LISTEN

/* Assert with a message that names the table row. */
#define ROW_ASSERT(cond, ...)                                                                  \
    do {                                                                                       \
        char row_msg_[4096];                                                                   \
        snprintf(row_msg_, sizeof(row_msg_), __VA_ARGS__);                                     \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "\n  %s:%d: %s\n", __FILE__, __LINE__, row_msg_);                  \
        }                                                                                      \
        CU_assertImplementation((cond) ? CU_TRUE : CU_FALSE, __LINE__, row_msg_, __FILE__, "", \
                                CU_FALSE);                                                     \
    } while (0)

/* One line describing every field of a parsed URI. */
static void describe(const struct conduit_uri *u, char *buf, size_t len)
{
    size_t o = 0;

#define ADD(...)                                                  \
    do {                                                          \
        int n_ = snprintf(buf + o, len - o, __VA_ARGS__);         \
        if (n_ > 0) {                                             \
            o += (size_t)n_ < len - o ? (size_t)n_ : len - o - 1; \
        }                                                         \
    } while (0)

    buf[0] = '\0';
    if (u->layer != CONDUIT_LAYER_NONE) {
        ADD("%s+", conduit_layer_name(u->layer));
    }
    ADD("%s", conduit_transport_name(u->transport));
    switch (u->transport) {
    case CONDUIT_TRANSPORT_TCP:
        ADD(" host=%s port=%u", u->tcp.host != NULL ? u->tcp.host : "*", (unsigned)u->tcp.port);
        break;
    case CONDUIT_TRANSPORT_UNIX:
        ADD(" path=%s", u->un.path);
        break;
    case CONDUIT_TRANSPORT_VCHAN:
        if (u->vchan.domid == CONDUIT_DOMID_ANY) {
            ADD(" domid=*");
        } else if (u->vchan.domid == CONDUIT_DOMID_NAMED) {
            ADD(" name=%s", u->vchan.domain_name);
        } else {
            ADD(" domid=%d", u->vchan.domid);
        }
        ADD(" port=%s", u->vchan.port);
        break;
    }
    if (u->options & CONDUIT_URI_OPT_TIMEOUT) {
        ADD(" timeout_ms=%d", u->timeout_ms);
    }
    if (u->options & CONDUIT_URI_OPT_CONNECT_TIMEOUT) {
        ADD(" connect_timeout_ms=%d", u->connect_timeout_ms);
    }
    if (u->options & CONDUIT_URI_OPT_READ_SIZE) {
        ADD(" read-size=%zu", u->vchan.read_size);
    }
    if (u->options & CONDUIT_URI_OPT_WRITE_SIZE) {
        ADD(" write-size=%zu", u->vchan.write_size);
    }
    if (u->options & CONDUIT_URI_OPT_CA) {
        ADD(" ca=%s", u->tls.ca);
    }
    if (u->options & CONDUIT_URI_OPT_CERT) {
        ADD(" cert=%s", u->tls.cert);
    }
    if (u->options & CONDUIT_URI_OPT_KEY) {
        ADD(" key=%s", u->tls.key);
    }
    if (u->options & CONDUIT_URI_OPT_SERVERNAME) {
        ADD(" servername=%s", u->tls.servername);
    }
    if (u->options & CONDUIT_URI_OPT_VERIFY) {
        ADD(" verify=%d", u->tls.verify ? 1 : 0);
    }
    if (u->options & CONDUIT_URI_OPT_PEER) {
        ADD(" peer=%s", u->sodium.peer);
    }
    if (u->options & CONDUIT_URI_OPT_PEERS) {
        ADD(" peers=%s", u->sodium.peers);
    }
#undef ADD
}

/* ------------------------------------------------------------ good URIs */

/* clang-format off */
static const struct good {
    const char *in;
    unsigned flags;
    const char *want;
} good[] = {
    /* tcp: names, IPv4, IPv6, wildcard, ports */
    {"tcp://example.com:80", 0, "tcp host=example.com port=80"},
    {"tcp://localhost:1", 0, "tcp host=localhost port=1"},
    {"tcp://a:65535", 0, "tcp host=a port=65535"},
    {"tcp://host:0080", 0, "tcp host=host port=80"},
    {"tcp://my-host.example.org.:443", 0, "tcp host=my-host.example.org. port=443"},
    {"tcp://_srv.x1.example:5", 0, "tcp host=_srv.x1.example port=5"},
    {"tcp://127.0.0.1:8080", 0, "tcp host=127.0.0.1 port=8080"},
    {"tcp://255.255.255.255:9", 0, "tcp host=255.255.255.255 port=9"},
    {"tcp://[::1]:22", 0, "tcp host=::1 port=22"},
    {"tcp://[2001:db8::5]:443", 0, "tcp host=2001:db8::5 port=443"},
    {"tcp://[::ffff:10.0.0.1]:7", 0, "tcp host=::ffff:10.0.0.1 port=7"},
    {"tcp://[fe80::1%25eth0]:80", 0, "tcp host=fe80::1%eth0 port=80"},
    {"tcp://*:8000", LISTEN, "tcp host=* port=8000"},
    {"tcp://example.com:80", LISTEN, "tcp host=example.com port=80"},
    {"TCP://Example.COM:80", 0, "tcp host=Example.COM port=80"},
    {"tcp://h:1?timeout=5", 0, "tcp host=h port=1 timeout_ms=5000"},
    /* unix */
    {"unix:///run/app.sock", 0, "unix path=/run/app.sock"},
    {"unix:///", 0, "unix path=/"},
    {"unix:///tmp/a%20b%3Fc%25", 0, "unix path=/tmp/a b?c%"},
    {"unix:///tmp/with space", 0, "unix path=/tmp/with space"},
    {"unix:///tmp/s?timeout=0.25", LISTEN, "unix path=/tmp/s timeout_ms=250"},
    {"unix:///tmp/x+y", 0, "unix path=/tmp/x+y"},
    {"unix:///a%0ab", 0, "unix path=/a\nb"},
    {"unix:///"
     "1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678"
     "901234567890123456",
     0,
     "unix path=/"
     "1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678"
     "901234567890123456"},
    /* vchan: domids, names, wildcard, ports */
    {"vchan://0/p", 0, "vchan domid=0 port=p"},
    {"vchan://0/demo", LISTEN, "vchan domid=0 port=demo"},
    {"vchan://32751/data", 0, "vchan domid=32751 port=data"},
    {"vchan://007/x", 0, "vchan domid=7 port=x"},
    {"vchan://guest1/data", 0, "vchan name=guest1 port=data"},
    {"vchan://my_vm.test-2/a", 0, "vchan name=my_vm.test-2 port=a"},
    {"vchan://1-debian/a", 0, "vchan name=1-debian port=a"},
    {"vchan://*/svc", LISTEN, "vchan domid=* port=svc"},
    {"vchan://3/A-Za-z0-9_-", 0, "vchan domid=3 port=A-Za-z0-9_-"},
    {"vchan://3/" "0123456789012345678901234567890123456789012345678901234567890123", 0,
     "vchan domid=3 port=0123456789012345678901234567890123456789012345678901234567890123"},
    {"VChan://1/p", 0, "vchan domid=1 port=p"},
    /* vchan options */
    {"vchan://1/p?read-size=1", LISTEN, "vchan domid=1 port=p read-size=1"},
    {"vchan://1/p?write-size=1048576", LISTEN, "vchan domid=1 port=p write-size=1048576"},
    {"vchan://1/p?read-size=65536&write-size=4096", LISTEN,
     "vchan domid=1 port=p read-size=65536 write-size=4096"},
    {"vchan://1/p?write-size=4096&read-size=%36%35%35%33%36", 0,
     "vchan domid=1 port=p read-size=65536 write-size=4096"},
    {"vchan://1/p?timeout=30", 0, "vchan domid=1 port=p timeout_ms=30000"},
    {"vchan://1/p?connect-timeout=2.5", 0, "vchan domid=1 port=p connect_timeout_ms=2500"},
    {"tcp://h:1?timeout=60&connect-timeout=0.2", 0,
     "tcp host=h port=1 timeout_ms=60000 connect_timeout_ms=200"},
    {"vchan://1/p?timeout=0.5", 0, "vchan domid=1 port=p timeout_ms=500"},
    {"vchan://1/p?timeout=0.001", 0, "vchan domid=1 port=p timeout_ms=1"},
    {"vchan://1/p?timeout=1.25", 0, "vchan domid=1 port=p timeout_ms=1250"},
    {"vchan://1/p?timeout=86400", 0, "vchan domid=1 port=p timeout_ms=86400000"},
    {"vchan://1/p?timeout=86400.000", 0, "vchan domid=1 port=p timeout_ms=86400000"},
    {"vchan://1/p?timeout=00002", 0, "vchan domid=1 port=p timeout_ms=2000"},
    {"vchan://1/p?timeout=1&read-size=2048&write-size=1024", LISTEN,
     "vchan domid=1 port=p timeout_ms=1000 read-size=2048 write-size=1024"},
    /* layers */
    {"tls://example.com:443", 0, "tls+tcp host=example.com port=443"},
    {"tls+tcp://example.com:443", 0, "tls+tcp host=example.com port=443"},
    {"TLS+TCP://example.com:443", 0, "tls+tcp host=example.com port=443"},
    {"tls+unix:///run/s.sock?servername=svc.local", 0,
     "tls+unix path=/run/s.sock servername=svc.local"},
    {"tls+vchan://2/secure?servername=guest.example&ca=/etc/ca.pem", 0,
     "tls+vchan domid=2 port=secure ca=/etc/ca.pem servername=guest.example"},
    {"tls://h:1?ca=%2Fetc%2Fca%20file.pem&cert=c.pem&key=k.pem", 0,
     "tls+tcp host=h port=1 ca=/etc/ca file.pem cert=c.pem key=k.pem"},
    {"tls://h:1?verify=0", 0, "tls+tcp host=h port=1 verify=0"},
    {"tls://h:1?verify=no", 0, "tls+tcp host=h port=1 verify=0"},
    {"tls://h:1?verify=false", 0, "tls+tcp host=h port=1 verify=0"},
    {"tls://h:1?verify=1", 0, "tls+tcp host=h port=1 verify=1"},
    {"tls://h:1?verify=yes", 0, "tls+tcp host=h port=1 verify=1"},
    {"tls://h:1?verify=true", 0, "tls+tcp host=h port=1 verify=1"},
    {"tls://h:1?servername=10.0.0.1", 0, "tls+tcp host=h port=1 servername=10.0.0.1"},
    {"tls://h:1?servername=2001:db8::1", 0, "tls+tcp host=h port=1 servername=2001:db8::1"},
    {"tls+vchan://1/p?read-size=4096&verify=1&timeout=2", LISTEN,
     "tls+vchan domid=1 port=p timeout_ms=2000 read-size=4096 verify=1"},
    {"tls://*:443?cert=/c&key=/k", LISTEN, "tls+tcp host=* port=443 cert=/c key=/k"},
    {"sodium+tcp://h:9", 0, "sodium+tcp host=h port=9"},
    {"sodium+unix:///s", 0, "sodium+unix path=/s"},
    {"sodium+vchan://4/p?timeout=3", 0, "sodium+vchan domid=4 port=p timeout_ms=3000"},
    /* A base64 key raw ('+', '/' and '=' pass as they are) and percent-encoded. */
    {"sodium+tcp://h:9?key=/k&peer=xp5u1ibagT3BJes74qZgUh6RFzUHKUYgz6lihUU/3FU=", 0,
     "sodium+tcp host=h port=9 key=/k peer=xp5u1ibagT3BJes74qZgUh6RFzUHKUYgz6lihUU/3FU="},
    {"sodium+unix:///s?peer=xp5u1ibagT3BJes74qZgUh6RFzUHKUYgz6lihUU%2F3FU%3D&key=/k", 0,
     "sodium+unix path=/s key=/k peer=xp5u1ibagT3BJes74qZgUh6RFzUHKUYgz6lihUU/3FU="},
    {"sodium+vchan://*/p?key=/k&peers=any", LISTEN, "sodium+vchan domid=* port=p key=/k peers=any"},
    {"tls://h:1?ca=a+b", 0, "tls+tcp host=h port=1 ca=a+b"},
    {"tls://h:1?ca=%e2%9c%93", 0, "tls+tcp host=h port=1 ca=\xe2\x9c\x93"},
};

/* clang-format on */

static void test_uri_good_table(void)
{
    for (size_t i = 0; i < UNIT_ARRAY_LEN(good); i++) {
        const struct good *t = &good[i];
        struct conduit_uri *u = (struct conduit_uri *)1;
        char err[256], got[1024];
        int r = conduit_uri_parse(t->in, t->flags, &u, err, sizeof(err));

        ROW_ASSERT(r == 0, "'%s': returned %d (%s)", t->in, r, err);
        if (r != 0) {
            continue;
        }
        ROW_ASSERT(u != NULL, "'%s': no struct", t->in);
        ROW_ASSERT(err[0] == '\0', "'%s': message on success: %s", t->in, err);
        describe(u, got, sizeof(got));
        ROW_ASSERT(strcmp(got, t->want) == 0, "'%s':\n    got  %s\n    want %s", t->in, got,
                   t->want);
        ROW_ASSERT(u->listen == ((t->flags & LISTEN) != 0), "'%s': listen flag", t->in);
        conduit_uri_free(u);
    }
}

/* ------------------------------------------------------------ bad URIs */

/* clang-format off */
static const struct bad {
    const char *in;
    unsigned flags;
    int code;        /* positive CONDUIT_E* */
    const char *msg; /* must appear in the message */
} bad[] = {
    /* whole-URI syntax */
    {"", 0, CONDUIT_ESYNTAX, "empty URI"},
    {"vchan", 0, CONDUIT_ESYNTAX, "has no '://'"},
    {"vchan:/0/p", 0, CONDUIT_ESYNTAX, "has no '://'"},
    {"0/p", 0, CONDUIT_ESYNTAX, "has no '://'"},
    {"://0/p", 0, CONDUIT_ESYNTAX, "empty scheme"},
    {"vchan://0/p#frag", 0, CONDUIT_ESYNTAX, "fragments are not allowed"},
    {"vchan://0/p\n", 0, CONDUIT_ESYNTAX, "control character 0x0a at offset 11"},
    {"vchan://0/\x7fp", 0, CONDUIT_ESYNTAX, "control character 0x7f"},
    {"tcp://h:1\t", 0, CONDUIT_ESYNTAX, "control character 0x09"},
    /* schemes and layers */
    {"bogus://x", 0, CONDUIT_ESCHEME, "unknown scheme 'bogus'"},
    {"http://example.com:80", 0, CONDUIT_ESCHEME, "unknown scheme 'http'"},
    {"vchan+tcp://h:1", 0, CONDUIT_ESCHEME, "unknown layer 'vchan' in scheme 'vchan+tcp'"},
    {"ssl+tcp://h:1", 0, CONDUIT_ESCHEME, "unknown layer 'ssl'"},
    {"tls+tls://h:1", 0, CONDUIT_ESCHEME, "unknown transport 'tls' in scheme 'tls+tls'"},
    {"tls+sodium+tcp://h:1", 0, CONDUIT_ESCHEME, "unknown transport 'sodium+tcp'"},
    {"tls+://h:1", 0, CONDUIT_ESCHEME, "unknown transport ''"},
    {"+tcp://h:1", 0, CONDUIT_ESCHEME, "unknown layer ''"},
    {"sodium://h:1", 0, CONDUIT_ESCHEME, "scheme 'sodium' needs a transport"},
    {"udp://h:1", 0, CONDUIT_ESCHEME, "unknown scheme 'udp'"},
    /* tcp addresses */
    {"tcp://", 0, CONDUIT_ESYNTAX, "empty tcp address"},
    {"tcp://?timeout=1", 0, CONDUIT_ESYNTAX, "empty tcp address"},
    {"tcp://example.com", 0, CONDUIT_ESYNTAX, "missing port in tcp address 'example.com'"},
    {"tcp://example.com:", 0, CONDUIT_ESYNTAX, "empty port"},
    {"tcp://:80", 0, CONDUIT_ESYNTAX, "empty host in tcp address ':80'"},
    {"tcp://h:http", 0, CONDUIT_ESYNTAX, "port 'http' is not a number"},
    {"tcp://h:+80", 0, CONDUIT_ESYNTAX, "port '+80' is not a number"},
    {"tcp://h:-1", 0, CONDUIT_ESYNTAX, "port '-1' is not a number"},
    {"tcp://h: 80", 0, CONDUIT_ESYNTAX, "port ' 80' is not a number"},
    {"tcp://h:0", 0, CONDUIT_ERANGE, "port 0 out of range (1-65535)"},
    {"tcp://h:65536", 0, CONDUIT_ERANGE, "port 65536 out of range (1-65535)"},
    {"tcp://h:99999", 0, CONDUIT_ERANGE, "port 99999 out of range (1-65535)"},
    {"tcp://h:184467440737095516160", 0, CONDUIT_ERANGE,
     "port 184467440737095516160 out of range"},
    {"tcp://h:80/path", 0, CONDUIT_ESYNTAX, "tcp address 'h:80/path' has a path"},
    {"tcp://::1:80", 0, CONDUIT_ESYNTAX, "IPv6 address goes in brackets"},
    {"tcp://[::1]", 0, CONDUIT_ESYNTAX, "missing port in tcp address '[::1]'"},
    {"tcp://[::1]80", 0, CONDUIT_ESYNTAX, "expected ':' after ']'"},
    {"tcp://[::1:80", 0, CONDUIT_ESYNTAX, "unterminated '['"},
    {"tcp://[]:80", 0, CONDUIT_ESYNTAX, "empty IPv6 address"},
    {"tcp://[::g]:80", 0, CONDUIT_ESYNTAX, "bad IPv6 address '[::g]'"},
    {"tcp://[1.2.3.4]:80", 0, CONDUIT_ESYNTAX, "bad IPv6 address"},
    {"tcp://[fe80::1%eth0]:80", 0, CONDUIT_ESYNTAX, "must be written %25ZONE"},
    {"tcp://[fe80::1%25]:80", 0, CONDUIT_ESYNTAX, "empty IPv6 zone"},
    {"tcp://[fe80::1%25e/0]:80", 0, CONDUIT_ESYNTAX, "has a path"},
    {"tcp://[fe80::1%25e:0]:80", 0, CONDUIT_ESYNTAX, "IPv6 zone"},
    {"tcp://1.2.3:80", 0, CONDUIT_ESYNTAX, "bad IPv4 address '1.2.3'"},
    {"tcp://256.1.1.1:80", 0, CONDUIT_ESYNTAX, "bad IPv4 address '256.1.1.1'"},
    {"tcp://10:80", 0, CONDUIT_ESYNTAX, "bad IPv4 address '10'"},
    {"tcp://a..b:80", 0, CONDUIT_ESYNTAX, "host 'a..b' has an empty label"},
    {"tcp://.a:80", 0, CONDUIT_ESYNTAX, "empty label"},
    {"tcp://-a.b:80", 0, CONDUIT_ESYNTAX, "label starting with '-'"},
    {"tcp://a-.b:80", 0, CONDUIT_ESYNTAX, "label ending in '-'"},
    {"tcp://a.b-:80", 0, CONDUIT_ESYNTAX, "label ending in '-'"},
    {"tcp://user@h:80", 0, CONDUIT_ESYNTAX, "host 'user@h' has a character outside"},
    {"tcp://h%41:80", 0, CONDUIT_ESYNTAX, "has a character outside [A-Za-z0-9._-]"},
    {"tcp://b\xc3\xbc:80", 0, CONDUIT_ESYNTAX, "has a character outside"},
    {"tcp://"
     "a123456789012345678901234567890123456789012345678901234567890123.b:80",
     0, CONDUIT_ESYNTAX, "label longer than 63 bytes"},
    {"tcp://*:80", 0, CONDUIT_EWILDCARD, "host '*' (any address) is only valid for listen"},
    {"tcp://**:80", LISTEN, CONDUIT_ESYNTAX, "host '**' has a character outside"},
    /* unix */
    {"unix://", 0, CONDUIT_ESYNTAX, "empty unix path"},
    {"unix://run/app.sock", 0, CONDUIT_ESYNTAX, "unix path 'run/app.sock' is not absolute"},
    {"unix://./s", 0, CONDUIT_ESYNTAX, "not absolute"},
    {"unix://%2", 0, CONDUIT_ESYNTAX, "malformed percent-escape '%2' in unix path"},
    {"unix:///a%zz", 0, CONDUIT_ESYNTAX, "malformed percent-escape '%zz' in unix path"},
    {"unix:///a%", 0, CONDUIT_ESYNTAX, "malformed percent-escape '%' in unix path"},
    {"unix:///a%00b", 0, CONDUIT_ESYNTAX, "unix path contains an encoded NUL"},
    {"unix:///"
     "1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678"
     "9012345678901234567",
     0, CONDUIT_ERANGE, "is 108 bytes, longer than 107"},
    /* vchan addresses */
    {"vchan://", 0, CONDUIT_ESYNTAX, "empty vchan address"},
    {"vchan://0", 0, CONDUIT_ESYNTAX, "vchan address '0' has no '/'"},
    {"vchan:///p", 0, CONDUIT_ESYNTAX, "empty domain in vchan address '/p'"},
    {"vchan://0/", 0, CONDUIT_ESYNTAX, "empty vchan port in vchan address '0/'"},
    {"vchan://0/?timeout=1", 0, CONDUIT_ESYNTAX, "empty vchan port"},
    {"vchan://40000/p", 0, CONDUIT_ERANGE, "domain 40000 out of range (0-32751)"},
    {"vchan://32752/p", 0, CONDUIT_ERANGE, "domain 32752 out of range (0-32751)"},
    {"vchan://99999999999999999999999/p", 0, CONDUIT_ERANGE,
     "domain 99999999999999999999999 out of range"},
    {"vchan://-1/p", 0, CONDUIT_ESYNTAX, "domain '-1' is neither a domid (0-32751) nor"},
    {"vchan://+1/p", 0, CONDUIT_ESYNTAX, "domain '+1' is neither"},
    {"vchan://a b/p", 0, CONDUIT_ESYNTAX, "domain name 'a b' has a character outside"},
    {"vchan://vm%31/p", 0, CONDUIT_ESYNTAX, "domain name 'vm%31' has a character outside"},
    {"vchan://*/p", 0, CONDUIT_EWILDCARD, "domain '*' (any domain) is only valid for listen"},
    {"vchan://**/p", LISTEN, CONDUIT_ESYNTAX, "domain '**' is neither"},
    {"vchan://0/a b", 0, CONDUIT_ESYNTAX,
     "vchan port 'a b' has a character outside [A-Za-z0-9_-]"},
    {"vchan://0/a/b", 0, CONDUIT_ESYNTAX, "vchan port 'a/b' has a character outside"},
    {"vchan://0/a.b", 0, CONDUIT_ESYNTAX, "vchan port 'a.b' has a character outside"},
    {"vchan://0/a%41", 0, CONDUIT_ESYNTAX, "vchan port 'a%41'"},
    {"vchan://0/a@b", 0, CONDUIT_ESYNTAX, "vchan port 'a@b'"},
    {"vchan://0/*", LISTEN, CONDUIT_ESYNTAX, "vchan port '*'"},
    {"vchan://3/" "01234567890123456789012345678901234567890123456789012345678901234", 0,
     CONDUIT_ERANGE, "is longer than 64 characters"},
    /* options: syntax */
    {"vchan://0/p?", 0, CONDUIT_ESYNTAX, "empty query after '?'"},
    {"vchan://0/p?timeout=1&", 0, CONDUIT_ESYNTAX, "empty option"},
    {"vchan://0/p?&timeout=1", 0, CONDUIT_ESYNTAX, "empty option"},
    {"vchan://0/p?timeout=1&&read-size=1", LISTEN, CONDUIT_ESYNTAX, "empty option"},
    {"vchan://0/p?=1", 0, CONDUIT_ESYNTAX, "option '=1' has no name"},
    {"vchan://0/p??timeout=1", 0, CONDUIT_EOPTION, "unknown option '?timeout'"},
    {"vchan://0/p?timeout", 0, CONDUIT_EOPTION, "option 'timeout' has no value"},
    {"vchan://0/p?timeout=", 0, CONDUIT_EOPTION, "option 'timeout' has an empty value"},
    /* options: names and scopes */
    {"vchan://0/p?bogus=1", 0, CONDUIT_EOPTION, "unknown option 'bogus'"},
    {"vchan://0/p?Timeout=1", 0, CONDUIT_EOPTION, "unknown option 'Timeout'"},
    {"vchan://0/p?read_size=1", 0, CONDUIT_EOPTION, "unknown option 'read_size'"},
    {"vchan://0/p?timeout=1&timeout=2", 0, CONDUIT_EOPTION, "duplicate option 'timeout'"},
    {"vchan://0/p?read-size=1&read-size=1", 0, CONDUIT_EOPTION, "duplicate option 'read-size'"},
    {"tls://h:1?ca=a&ca=b", 0, CONDUIT_EOPTION, "duplicate option 'ca'"},
    {"tcp://h:1?read-size=1024", 0, CONDUIT_EOPTION,
     "option 'read-size' is only valid for vchan, not tcp"},
    {"unix:///s?write-size=1024", 0, CONDUIT_EOPTION,
     "option 'write-size' is only valid for vchan, not unix"},
    {"tls://h:1?read-size=1024", 0, CONDUIT_EOPTION, "option 'read-size' is only valid for vchan"},
    {"vchan://0/p?ca=/etc/ca.pem", 0, CONDUIT_EOPTION,
     "option 'ca' needs the tls layer (tls://, tls+vchan://)"},
    {"tcp://h:1?cert=c", 0, CONDUIT_EOPTION, "option 'cert' needs the tls layer"},
    {"unix:///s?key=k", 0, CONDUIT_EOPTION, "option 'key' needs the tls or sodium layer"},
    {"tcp://h:1?servername=x", 0, CONDUIT_EOPTION, "option 'servername' needs the tls layer"},
    {"vchan://0/p?verify=0", 0, CONDUIT_EOPTION, "option 'verify' needs the tls layer"},
    {"sodium+vchan://0/p?ca=x", 0, CONDUIT_EOPTION, "option 'ca' needs the tls layer"},
    {"tls+tcp://h:1?peer=x", 0, CONDUIT_EOPTION, "option 'peer' needs the sodium layer"},
    {"tcp://h:1?peers=any", 0, CONDUIT_EOPTION, "option 'peers' needs the sodium layer"},
    {"sodium+tcp://h:1?peer=abc", 0, CONDUIT_EOPTION, "peer 'abc' is not a public key"},
    {"sodium+tcp://h:1?peer=%41%41", 0, CONDUIT_EOPTION, "peer 'AA' is not a public key"},
    {"sodium+tcp://h:1?peers=a&peers=b", 0, CONDUIT_EOPTION, "duplicate option 'peers'"},
    /* options: values */
    {"vchan://0/p?timeout=0", 0, CONDUIT_ERANGE, "timeout 0 out of range (0.001-86400 seconds)"},
    {"vchan://0/p?timeout=0.000", 0, CONDUIT_ERANGE, "timeout 0.000 out of range"},
    {"vchan://0/p?timeout=86401", 0, CONDUIT_ERANGE, "timeout 86401 out of range"},
    {"vchan://0/p?timeout=86400.001", 0, CONDUIT_ERANGE, "timeout 86400.001 out of range"},
    {"vchan://0/p?timeout=99999999999999999999999", 0, CONDUIT_ERANGE, "out of range"},
    {"vchan://0/p?timeout=-1", 0, CONDUIT_ESYNTAX, "timeout '-1' is not a number of seconds"},
    {"vchan://0/p?timeout=1e3", 0, CONDUIT_ESYNTAX, "timeout '1e3' is not a number"},
    {"vchan://0/p?timeout=.5", 0, CONDUIT_ESYNTAX, "timeout '.5' is not a number"},
    {"vchan://0/p?timeout=5.", 0, CONDUIT_ESYNTAX, "timeout '5.' is not a number"},
    {"vchan://0/p?timeout=1.2.3", 0, CONDUIT_ESYNTAX, "timeout '1.2.3' is not a number"},
    {"vchan://0/p?timeout=0x10", 0, CONDUIT_ESYNTAX, "timeout '0x10' is not a number"},
    {"vchan://0/p?timeout=%2030", 0, CONDUIT_ESYNTAX, "timeout ' 30' is not a number"},
    {"vchan://0/p?timeout=30s", 0, CONDUIT_ESYNTAX, "timeout '30s' is not a number"},
    {"vchan://0/p?timeout=0.0001", 0, CONDUIT_ESYNTAX, "has more than 3 decimals"},
    {"vchan://0/p?read-size=0", LISTEN, CONDUIT_ERANGE, "read-size 0 out of range (1-1048576)"},
    {"vchan://0/p?write-size=1048577", LISTEN, CONDUIT_ERANGE,
     "write-size 1048577 out of range (1-1048576)"},
    {"vchan://0/p?read-size=18446744073709551617", LISTEN, CONDUIT_ERANGE,
     "read-size 18446744073709551617 out of range"},
    {"vchan://0/p?read-size=64k", LISTEN, CONDUIT_ESYNTAX, "read-size '64k' is not a number"},
    {"vchan://0/p?read-size=-1", LISTEN, CONDUIT_ESYNTAX, "read-size '-1' is not a number"},
    {"vchan://0/p?write-size=+4", LISTEN, CONDUIT_ESYNTAX, "write-size '+4' is not a number"},
    {"vchan://0/p?read-size=%", LISTEN, CONDUIT_ESYNTAX,
     "malformed percent-escape '%' in option 'read-size'"},
    {"vchan://0/p?read-size=%4", LISTEN, CONDUIT_ESYNTAX, "malformed percent-escape '%4'"},
    {"vchan://0/p?read-size=%g1", LISTEN, CONDUIT_ESYNTAX, "malformed percent-escape '%g1'"},
    {"tls://h:1?ca=a%00b", 0, CONDUIT_ESYNTAX, "option 'ca' contains an encoded NUL"},
    {"tls://h:1?verify=maybe", 0, CONDUIT_EOPTION, "verify 'maybe' must be 1/0"},
    {"tls://h:1?verify=TRUE", 0, CONDUIT_EOPTION, "verify 'TRUE' must be"},
    {"tls://h:1?servername=bad_name!", 0, CONDUIT_ESYNTAX, "servername 'bad_name!'"},
    {"tls://h:1?servername=a..b", 0, CONDUIT_ESYNTAX, "servername 'a..b' has an empty label"},
    {"tls://h:1?servername=::g", 0, CONDUIT_ESYNTAX, "servername '::g'"},
    /* the first error wins, in order: scheme, address, options */
    {"bogus://0/p?bogus=1", 0, CONDUIT_ESCHEME, "unknown scheme 'bogus'"},
    {"vchan://40000/p?bogus=1", 0, CONDUIT_ERANGE, "domain 40000"},
    /* quoting: control bytes never reach the message raw, long parts are cut */
    {"vchan://0/\\x", 0, CONDUIT_ESYNTAX, "vchan port '\\x5cx'"},
    {"vchan://0/"
     "ab cdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789",
     0, CONDUIT_ESYNTAX, "vchan port 'ab cdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
                         "abcdefghijklmnopqrstuvwxyz0...' has"},
};

/* clang-format on */

static void test_uri_bad_table(void)
{
    for (size_t i = 0; i < UNIT_ARRAY_LEN(bad); i++) {
        const struct bad *t = &bad[i];
        struct conduit_uri *u = (struct conduit_uri *)1;
        char err[512];
        int r = conduit_uri_parse(t->in, t->flags, &u, err, sizeof(err));

        ROW_ASSERT(r == -t->code, "'%s': returned %d (%s), want -%s: %s", t->in, r, err,
                   conduit_errname(t->code), t->msg);
        ROW_ASSERT(u == NULL, "'%s': *out not NULL on failure", t->in);
        ROW_ASSERT(strstr(err, t->msg) != NULL, "'%s':\n    message '%s'\n    lacks   '%s'", t->in,
                   err, t->msg);
        if (r == 0) {
            conduit_uri_free(u);
        }
    }
}

/* ------------------------------------------------------------ behaviours */

static void test_uri_defaults(void)
{
    struct conduit_uri *u = NULL;
    char err[256];

    CU_ASSERT_EQUAL_FATAL(conduit_uri_parse("vchan://5/p", 0, &u, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(u->layer, CONDUIT_LAYER_NONE);
    CU_ASSERT_EQUAL(u->transport, CONDUIT_TRANSPORT_VCHAN);
    CU_ASSERT_FALSE(u->listen);
    CU_ASSERT_EQUAL(u->options, 0u);
    CU_ASSERT_EQUAL(u->timeout_ms, 0);
    CU_ASSERT_EQUAL(u->vchan.read_size, 0u);
    CU_ASSERT_EQUAL(u->vchan.write_size, 0u);
    CU_ASSERT_PTR_NULL(u->vchan.domain_name);
    CU_ASSERT_PTR_NULL(u->tcp.host);
    CU_ASSERT_PTR_NULL(u->un.path);
    CU_ASSERT_PTR_NULL(u->tls.ca);
    /* TLS verifies unless told not to, even on a URI without the layer */
    CU_ASSERT_TRUE(u->tls.verify);
    conduit_uri_free(u);

    CU_ASSERT_EQUAL_FATAL(conduit_uri_parse("tls://h:1", 0, &u, err, sizeof(err)), 0);
    CU_ASSERT_TRUE(u->tls.verify);
    CU_ASSERT_PTR_NULL(u->tls.servername);
    CU_ASSERT_PTR_NULL(u->tls.ca);
    CU_ASSERT_PTR_NULL(u->tls.cert);
    CU_ASSERT_PTR_NULL(u->tls.key);
    conduit_uri_free(u);
}

static void test_uri_domid_constants(void)
{
    struct conduit_uri *u = NULL;

    CU_ASSERT_EQUAL_FATAL(conduit_uri_parse("vchan://*/p", LISTEN, &u, NULL, 0), 0);
    CU_ASSERT_EQUAL(u->vchan.domid, CONDUIT_DOMID_ANY);
    CU_ASSERT_EQUAL(u->vchan.domid, -1);
    CU_ASSERT_PTR_NULL(u->vchan.domain_name);
    conduit_uri_free(u);

    CU_ASSERT_EQUAL_FATAL(conduit_uri_parse("vchan://web/p", 0, &u, NULL, 0), 0);
    CU_ASSERT_EQUAL(u->vchan.domid, CONDUIT_DOMID_NAMED);
    CU_ASSERT_STRING_EQUAL(u->vchan.domain_name, "web");
    conduit_uri_free(u);
}

static void test_uri_bad_arguments(void)
{
    struct conduit_uri *u = (struct conduit_uri *)1;
    char err[128];

    CU_ASSERT_EQUAL(conduit_uri_parse(NULL, 0, &u, err, sizeof(err)), -CONDUIT_EINVAL);
    CU_ASSERT_PTR_NULL(u);
    CU_ASSERT_EQUAL(conduit_uri_parse("vchan://0/p", 0, NULL, err, sizeof(err)), -CONDUIT_EINVAL);
    u = (struct conduit_uri *)1;
    CU_ASSERT_EQUAL(conduit_uri_parse("vchan://0/p", 0x80, &u, err, sizeof(err)), -CONDUIT_EINVAL);
    CU_ASSERT_PTR_NULL(u);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown flags 0x80"));
    conduit_uri_free(NULL);
}

/* The message buffer is optional and never overrun. */
static void test_uri_message_buffer(void)
{
    struct conduit_uri *u = NULL;
    char err[16];

    CU_ASSERT_EQUAL(conduit_uri_parse("bogus://x", 0, &u, NULL, 0), -CONDUIT_ESCHEME);
    CU_ASSERT_EQUAL(conduit_uri_parse("bogus://x", 0, &u, NULL, 100), -CONDUIT_ESCHEME);
    memset(err, 'X', sizeof(err));
    CU_ASSERT_EQUAL(conduit_uri_parse("bogus://x", 0, &u, err, 0), -CONDUIT_ESCHEME);
    CU_ASSERT_EQUAL(err[0], 'X');
    memset(err, 'X', sizeof(err));
    CU_ASSERT_EQUAL(conduit_uri_parse("bogus://x", 0, &u, err, 8), -CONDUIT_ESCHEME);
    CU_ASSERT_STRING_EQUAL(err, "unknown");
    CU_ASSERT_EQUAL(err[8], 'X');
    /* and cleared on success, so a stale message is never mistaken */
    CU_ASSERT_EQUAL(conduit_uri_parse("vchan://0/p", 0, &u, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    conduit_uri_free(u);
}

static void test_uri_length_limit(void)
{
    size_t n = CONDUIT_URI_MAX + 1;
    char *text = malloc(n + 1);
    struct conduit_uri *u = NULL;
    char err[256];
    static const char prefix[] = "tls://h:1?ca=/";

    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    memcpy(text, prefix, sizeof(prefix) - 1);
    memset(text + sizeof(prefix) - 1, 'a', n - (sizeof(prefix) - 1));
    text[n] = '\0';
    CU_ASSERT_EQUAL(conduit_uri_parse(text, 0, &u, err, sizeof(err)), -CONDUIT_ERANGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "URI longer than 8192 bytes"));
    /* one byte less is fine, and the long value survives whole */
    text[n - 1] = '\0';
    CU_ASSERT_EQUAL_FATAL(conduit_uri_parse(text, 0, &u, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(strlen(u->tls.ca), n - 1 - (sizeof(prefix) - 1) + 1);
    conduit_uri_free(u);
    free(text);
}

/* Every byte value after a valid prefix: parse must never crash or leak. */
static void test_uri_every_byte(void)
{
    static const char *const prefixes[] = {"vchan://0/",        "tcp://h:", "unix:///",
                                           "tls://h:1?ca=",     "vchan://", "tcp://[",
                                           "tcp://h:1?timeout="};

    for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
        for (int c = 1; c < 256; c++) {
            char text[64], err[256];
            struct conduit_uri *u = NULL;
            int r;

            snprintf(text, sizeof(text), "%s%c1", prefixes[p], c);
            r = conduit_uri_parse(text, 0, &u, err, sizeof(err));
            ROW_ASSERT(r == 0 || (r < 0 && err[0] != '\0' && u == NULL),
                       "'%s': r=%d without a message", text, r);
            for (const char *m = err; *m != '\0'; m++) {
                ROW_ASSERT((unsigned char)*m >= 0x20 && *m != 0x7f,
                           "'%s': control byte in the message", text);
            }
            conduit_uri_free(u);
        }
    }
}

static void test_uri_timeout_parse(void)
{
    static const struct {
        const char *in;
        int r;
        int ms;
    } t[] = {
        {"1", 0, 1000},
        {"0.5", 0, 500},
        {"0.05", 0, 50},
        {"30", 0, 30000},
        {"86400", 0, 86400000},
        {"0", -CONDUIT_ERANGE, 0},
        {"", -CONDUIT_ESYNTAX, 0},
        {"abc", -CONDUIT_ESYNTAX, 0},
        {"1.0001", -CONDUIT_ESYNTAX, 0},
        {" 1", -CONDUIT_ESYNTAX, 0},
        {"1 ", -CONDUIT_ESYNTAX, 0},
        {"100000", -CONDUIT_ERANGE, 0},
    };
    char err[256];
    int ms;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        ms = -7;
        int r = conduit_timeout_parse(t[i].in, &ms, err, sizeof(err));

        ROW_ASSERT(r == t[i].r, "timeout '%s': returned %d (%s), want %d", t[i].in, r, err, t[i].r);
        if (r == 0) {
            ROW_ASSERT(ms == t[i].ms, "timeout '%s': %d ms, want %d", t[i].in, ms, t[i].ms);
        } else {
            ROW_ASSERT(ms == -7, "timeout '%s': *ms changed on failure", t[i].in);
            ROW_ASSERT(strstr(err, "timeout") != NULL, "timeout '%s': message '%s'", t[i].in, err);
        }
    }
    CU_ASSERT_EQUAL(conduit_timeout_parse(NULL, &ms, err, sizeof(err)), -CONDUIT_EINVAL);
    CU_ASSERT_EQUAL(conduit_timeout_parse("1", NULL, NULL, 0), -CONDUIT_EINVAL);
}

static void test_uri_error_table(void)
{
    CU_ASSERT_STRING_EQUAL(conduit_strerror(0), "success");
    CU_ASSERT_STRING_EQUAL(conduit_strerror(-CONDUIT_ESCHEME), "unknown URI scheme");
    CU_ASSERT_STRING_EQUAL(conduit_strerror(CONDUIT_ESCHEME), "unknown URI scheme");
    CU_ASSERT_STRING_EQUAL(conduit_strerror(-9999), "unknown error");
    CU_ASSERT_STRING_EQUAL(conduit_strerror(-2147483647 - 1), "unknown error");
    CU_ASSERT_STRING_EQUAL(conduit_errname(-CONDUIT_EWILDCARD), "EWILDCARD");
    CU_ASSERT_STRING_EQUAL(conduit_errname(9999), "EUNKNOWN");
    for (int e = 0; e < CONDUIT_ERRNO_MAX; e++) {
        CU_ASSERT_PTR_NOT_NULL(conduit_strerror(-e));
        CU_ASSERT_PTR_NOT_NULL(conduit_errname(-e));
    }
    CU_ASSERT_STRING_EQUAL(conduit_layer_name(CONDUIT_LAYER_NONE), "");
    CU_ASSERT_STRING_EQUAL(conduit_layer_name(CONDUIT_LAYER_SODIUM), "sodium");
    CU_ASSERT_STRING_EQUAL(conduit_transport_name(CONDUIT_TRANSPORT_UNIX), "unix");
    CU_ASSERT_STRING_EQUAL(conduit_transport_name((enum conduit_transport)99), "?");
}

/* ------------------------------------------------------------ runner */

/* The public accessors say what the fields say, and NULL is safe. */
static void test_uri_accessors(void)
{
    struct conduit_uri *u = NULL;
    char err[256];

    UNIT_EQ(conduit_uri_parse("tls://[::1]:8443?servername=a%2eb&timeout=2.5", 0, &u, err,
                              sizeof(err)),
            0);
    UNIT_EQ(conduit_uri_layer(u), CONDUIT_LAYER_TLS);
    UNIT_EQ(conduit_uri_transport(u), CONDUIT_TRANSPORT_TCP);
    CU_ASSERT_FALSE(conduit_uri_listen(u));
    CU_ASSERT_STRING_EQUAL(conduit_uri_host(u), "::1");
    UNIT_EQ(conduit_uri_port(u), 8443);
    CU_ASSERT_PTR_NULL(conduit_uri_path(u));
    CU_ASSERT_STRING_EQUAL(conduit_uri_option(u, "servername"), "a.b"); /* decoded */
    CU_ASSERT_STRING_EQUAL(conduit_uri_option(u, "timeout"), "2.5");
    CU_ASSERT_PTR_NULL(conduit_uri_option(u, "ca"));
    CU_ASSERT_PTR_NULL(conduit_uri_option(u, "nonsense"));
    CU_ASSERT_PTR_NULL(conduit_uri_option(u, NULL));
    conduit_uri_free(u);

    UNIT_EQ(conduit_uri_parse("vchan://*/svc?read-size=4096", CONDUIT_URI_LISTEN, &u, err,
                              sizeof(err)),
            0);
    UNIT_EQ(conduit_uri_transport(u), CONDUIT_TRANSPORT_VCHAN);
    CU_ASSERT_TRUE(conduit_uri_listen(u));
    UNIT_EQ(conduit_uri_domid(u), CONDUIT_DOMID_ANY);
    CU_ASSERT_STRING_EQUAL(conduit_uri_vchan_port(u), "svc");
    CU_ASSERT_STRING_EQUAL(conduit_uri_option(u, "read-size"), "4096");
    CU_ASSERT_PTR_NULL(conduit_uri_host(u));
    conduit_uri_free(u);

    UNIT_EQ(conduit_uri_parse("unix:///run/a%20b.sock", 0, &u, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(conduit_uri_path(u), "/run/a b.sock");
    UNIT_EQ(conduit_uri_domid(u), 0);
    conduit_uri_free(u);

    UNIT_EQ(conduit_uri_layer(NULL), CONDUIT_LAYER_NONE);
    UNIT_EQ(conduit_uri_port(NULL), 0);
    CU_ASSERT_FALSE(conduit_uri_listen(NULL));
    CU_ASSERT_PTR_NULL(conduit_uri_option(NULL, "timeout"));
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_uri_accessors),
    UNIT_TEST(test_uri_good_table),    UNIT_TEST(test_uri_bad_table),
    UNIT_TEST(test_uri_defaults),      UNIT_TEST(test_uri_domid_constants),
    UNIT_TEST(test_uri_bad_arguments), UNIT_TEST(test_uri_message_buffer),
    UNIT_TEST(test_uri_length_limit),  UNIT_TEST(test_uri_every_byte),
    UNIT_TEST(test_uri_timeout_parse), UNIT_TEST(test_uri_error_table),
};

UNIT_MAIN("uri", tests)
