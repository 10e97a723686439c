/* SPDX-License-Identifier: ISC */
/*
 * libconduit/rendezvous/xen.c (the accept rendezvous and domain names on
 * xenstore) over tests/unit/fake_xen.c's in-memory xenstore: listener domain
 * 1, client domain 2, a third domain 3 that forges. The layout and its
 * permissions, a request answered and refused, forged and malformed
 * requests dropped, no listener, names to domain ids.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif

#include <errno.h>
#include <xenstore.h>

#include "libconduit/internal/internal.h"
#include "fake_xen.h"
#include "unit.h"

#define NONCE "0123456789abcdef"
#define BASE "/local/domain/1/data/conduit/svc"

static const char *errname(int rc)
{
    return conduit_errname(rc);
}

static void world(void)
{
    fake_xen_reset();
    for (int d = 1; d <= 3; d++) {
        fake_xen_add_domain(d);
    }
}

static struct conduit__rdv_server *server(struct conduit__err *e)
{
    struct conduit__rdv_server *rs = NULL;

    fake_xen_set_domid(1);
    if (!UNIT_EQ_NAMED(conduit__xen_rdv_server_open(e, "svc", &rs), 0, errname)) {
        fprintf(stderr, "\n  %s\n", e->msg);
    }
    return rs;
}

static struct conduit__rdv_client *client(struct conduit__err *e, int dom)
{
    struct conduit__rdv_client *rc = NULL;

    fake_xen_set_domid(dom);
    if (!UNIT_EQ_NAMED(conduit__xen_rdv_client_open(e, 1, "svc", vclock_deadline(2000), &rc), 0,
                       errname)) {
        fprintf(stderr, "\n  %s\n", e->msg);
    }
    return rc;
}

/*
 * Write a node as domain `dom` would, through its own xenstore connection;
 * with `for_server`, readable and writable by the listener's domain 1, as
 * a client's request is.
 */
static bool write_as(int dom, const char *path, const char *val, bool for_server)
{
    struct xs_permissions perms[2] = {
        { .id = (unsigned)dom, .perms = XS_PERM_NONE },
        { .id = 1, .perms = XS_PERM_READ | XS_PERM_WRITE },
    };
    struct xs_handle *h;
    bool ok;

    fake_xen_set_domid(dom);
    h = xs_open(0);
    ok = h && xs_write(h, XBT_NULL, path, val, (unsigned)strlen(val)) &&
         (!for_server || xs_set_permissions(h, XBT_NULL, path, perms, 2));
    xs_close(h);
    return ok;
}

static void test_rendezvous_xen_layout(void)
{
    struct conduit__err se = { .name = "server" };
    struct conduit__rdv_server *rs;

    world();
    if (!(rs = server(&se))) {
        return;
    }
    /* A listener is visible to all, its pid to itself, its requests writable by all. */
    CU_ASSERT(fake_xen_store_readable(BASE, 2));
    CU_ASSERT(fake_xen_store_readable(BASE "/pid", 1));
    CU_ASSERT(!fake_xen_store_readable(BASE "/pid", 2));
    CU_ASSERT(!fake_xen_store_readable(BASE "/requests", 2)); /* create, not list */
    CU_ASSERT(write_as(2, BASE "/requests/x", "", false));
    CU_ASSERT(conduit__rdv_server_fd(rs) >= 0);
    conduit__rdv_server_close(rs);
    CU_ASSERT(!fake_xen_store_exists(BASE));
    UNIT_EQ(fake_xen_watches_live(), 0);
}

static void test_rendezvous_xen_accept_and_refuse(void)
{
    struct conduit__err se = { .name = "server" }, ce = { .name = "client" };
    struct conduit__rdv_server *rs;
    struct conduit__rdv_client *rc = NULL;
    enum conduit__probe probe = CONDUIT__PROBE_NONE;
    char nonce[CONDUIT__NONCE_LEN + 1] = "";
    int who = -1;

    world();
    if (!(rs = server(&se))) {
        return;
    }
    if (!(rc = client(&ce, 2))) {
        goto out;
    }
    UNIT_EQ_NAMED(conduit__rdv_client_probe(rc, NONCE, &probe), 0, errname);
    UNIT_EQ(probe, CONDUIT__PROBE_ACCEPT);
    CU_ASSERT(fake_xen_store_exists(BASE "/requests/2-" NONCE));
    UNIT_EQ(conduit__rdv_client_answer(rc), 0); /* not yet */

    fake_xen_set_domid(1);
    UNIT_EQ(conduit__rdv_server_next(rs, &who, nonce), 1);
    UNIT_EQ(who, 2);
    CU_ASSERT_STRING_EQUAL(nonce, NONCE);
    /* The server publishes the channel (here: by hand), then answers. */
    fake_xen_store_write("/local/domain/1/data/vchan/2/accept-" NONCE "/ring-ref", "8");
    conduit__rdv_server_answer(rs, 0, NULL);
    CU_ASSERT(!fake_xen_store_exists(BASE "/requests/2-" NONCE));
    fake_xen_set_domid(2);
    UNIT_EQ(conduit__rdv_client_answer(rc), 1);
    conduit__rdv_client_close(rc);

    /* A refusal reaches the client with its reason. */
    if (!(rc = client(&ce, 2))) {
        goto out;
    }
    UNIT_EQ_NAMED(conduit__rdv_client_probe(rc, "00000000000000ff", &probe), 0, errname);
    UNIT_EQ(probe, CONDUIT__PROBE_ACCEPT);
    fake_xen_set_domid(1);
    UNIT_EQ(conduit__rdv_server_next(rs, &who, nonce), 1);
    conduit__rdv_server_answer(rs, CONDUIT_EPERM, "not you");
    fake_xen_set_domid(2);
    UNIT_EQ_NAMED(conduit__rdv_client_answer(rc), -CONDUIT_ECONNREFUSED, errname);
    CU_ASSERT(strstr(ce.msg, "not you") != NULL);
    conduit__rdv_client_close(rc);
    rc = NULL;
    /* The client removes its answered request. */
    CU_ASSERT(!fake_xen_store_exists(BASE "/requests/2-00000000000000ff"));
out:
    conduit__rdv_client_close(rc);
    fake_xen_set_domid(1);
    conduit__rdv_server_close(rs);
}

/* Requests in another domain's name, or with names that are not requests: removed, not served. */
static void test_rendezvous_xen_hostile_requests(void)
{
    static const char *names[] = {
        "2-" NONCE,              /* written by domain 3 in domain 2's name */
        "junk",                  /* not "<domid>-<nonce>" */
        "3-0123456789ABCDEF",    /* upper-case nonce */
        "99999-" NONCE,          /* domain id out of range */
        "3-" NONCE "0",          /* nonce too long */
    };
    struct conduit__err se = { .name = "server" };
    struct conduit__rdv_server *rs;
    char nonce[CONDUIT__NONCE_LEN + 1], path[200];
    int who = -1;

    world();
    if (!(rs = server(&se))) {
        return;
    }
    for (size_t i = 0; i < UNIT_ARRAY_LEN(names); i++) {
        snprintf(path, sizeof(path), BASE "/requests/%s", names[i]);
        CU_ASSERT(write_as(3, path, "", true));
    }
    /* One the listener may not even read: never served either. */
    CU_ASSERT(write_as(3, BASE "/requests/1-" NONCE, "", false));
    fake_xen_set_domid(1);
    UNIT_EQ(conduit__rdv_server_next(rs, &who, nonce), 0);
    for (size_t i = 0; i < UNIT_ARRAY_LEN(names); i++) {
        snprintf(path, sizeof(path), BASE "/requests/%s", names[i]);
        if (fake_xen_store_exists(path)) {
            CU_FAIL("a hostile request was left in place");
            fprintf(stderr, "\n  %s\n", names[i]);
        }
    }
    /* A real request afterwards is served. */
    CU_ASSERT(write_as(3, BASE "/requests/3-" NONCE, "", true));
    fake_xen_set_domid(1);
    UNIT_EQ(conduit__rdv_server_next(rs, &who, nonce), 1);
    UNIT_EQ(who, 3);
    conduit__rdv_server_close(rs);
}

static void test_rendezvous_xen_no_listener(void)
{
    struct conduit__err ce = { .name = "client" };
    struct conduit__rdv_client *rc;
    enum conduit__probe probe = CONDUIT__PROBE_ACCEPT;
    char where[400];

    world();
    if (!(rc = client(&ce, 2))) {
        return;
    }
    UNIT_EQ_NAMED(conduit__rdv_client_probe(rc, NONCE, &probe), 0, errname);
    UNIT_EQ(probe, CONDUIT__PROBE_NONE);
    CU_ASSERT(!fake_xen_store_exists(BASE));
    conduit__rdv_client_where(rc, where, sizeof(where));
    CU_ASSERT(strstr(where, "/local/domain/1/data/vchan/2/svc") != NULL);
    conduit__rdv_client_close(rc);
}

/* A channel published for the client alone comes first. */
static void test_rendezvous_xen_direct_first(void)
{
    struct conduit__err ce = { .name = "client" };
    struct conduit__rdv_client *rc;
    enum conduit__probe probe = CONDUIT__PROBE_NONE;

    world();
    fake_xen_store_write("/local/domain/1/data/vchan/2/svc/ring-ref", "8");
    fake_xen_store_write("/local/domain/1/data/vchan/2/svc/event-channel", "5");
    if (!(rc = client(&ce, 2))) {
        return;
    }
    UNIT_EQ_NAMED(conduit__rdv_client_probe(rc, NONCE, &probe), 0, errname);
    UNIT_EQ(probe, CONDUIT__PROBE_DIRECT);
    conduit__rdv_client_close(rc);
}

static void test_rendezvous_xen_domids(void)
{
    struct conduit__err e = { .name = "x" };
    int d = -1;

    world();
    fake_xen_set_domid(2);
    UNIT_EQ_NAMED(conduit__xen_self_domid(&e, &d), 0, errname);
    UNIT_EQ(d, 2);
    fake_xen_set_domid(0);
    UNIT_EQ_NAMED(conduit__xen_domid_by_name(&e, "guest3", &d), 0, errname);
    UNIT_EQ(d, 3);
    CU_ASSERT(conduit__xen_domid_by_name(&e, "nosuch", &d) < 0);
    CU_ASSERT(e.msg[0] != '\0');
    /* A hostile own domid. */
    fake_xen_store_write("/local/domain/2/domid", "2x");
    fake_xen_set_domid(2);
    CU_ASSERT(conduit__xen_self_domid(&e, &d) < 0);
    CU_ASSERT(strstr(e.msg, "not a domain id") != NULL);
}

static const struct unit_test tests[] = {
    UNIT_TEST(test_rendezvous_xen_layout),
    UNIT_TEST(test_rendezvous_xen_accept_and_refuse),
    UNIT_TEST(test_rendezvous_xen_hostile_requests),
    UNIT_TEST(test_rendezvous_xen_no_listener),
    UNIT_TEST(test_rendezvous_xen_direct_first),
    UNIT_TEST(test_rendezvous_xen_domids),
};

UNIT_MAIN("rendezvous_xen", tests)
