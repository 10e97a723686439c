/* SPDX-License-Identifier: ISC */
/*
 * The test guest's xenstore client: requests and replies (struct
 * xsd_sockmsg + payload) over the store ring that start_info names, with
 * its event channel, one request at a time. Paths that do not start with
 * '/' are resolved by xenstored under /local/domain/<our domid>.
 *
 * The daemon is trusted as far as Xen trusts it, but a corrupt ring still
 * ends in an error rather than an overrun.
 */
#include "guest.h"
#include "hypercall.h"

/* A reply slower than this means xenstored is gone. */
#define XS_TIMEOUT_NS (30ull * 1000000000ull)
/* Our requests are short; replies longer than this are cut (XS_READ says -ENOSPC). */
#define XS_BUF 1024u

static struct xenstore_domain_interface *ring;
static uint32_t ring_port;
static uint32_t next_req_id = 1;

static const struct {
    const char *name;
    int err;
} xs_errors[] = {
    {"EINVAL", XEN_EINVAL}, {"EACCES", XEN_EACCES}, {"EEXIST", XEN_EEXIST},
    {"EISDIR", XEN_EISDIR}, {"ENOENT", XEN_ENOENT}, {"ENOMEM", XEN_ENOMEM},
    {"ENOSPC", XEN_ENOSPC}, {"EIO", XEN_EIO},       {"ENOTEMPTY", XEN_ENOTEMPTY},
    {"ENOSYS", XEN_ENOSYS}, {"EROFS", XEN_EROFS},   {"EBUSY", XEN_EBUSY},
    {"EAGAIN", XEN_EAGAIN}, {"EISCONN", XEN_EISCONN}, {"E2BIG", XEN_E2BIG},
    {"EPERM", XEN_EPERM},
};

const char *xs_errname(int err)
{
    size_t i;

    for (i = 0; i < sizeof(xs_errors) / sizeof(xs_errors[0]); i++) {
        if (-err == xs_errors[i].err) {
            return xs_errors[i].name;
        }
    }
    return "E?";
}

int xs_init(void)
{
    const struct start_info *si = guest_start_info();

    ring = guest_mfn_to_virt(si->store_mfn);
    ring_port = si->store_evtchn;
    return 0;
}

static int ring_put(const char *data, size_t len, uint64_t deadline)
{
    while (len > 0) {
        XENSTORE_RING_IDX cons = __atomic_load_n(&ring->req_cons, __ATOMIC_ACQUIRE);
        XENSTORE_RING_IDX prod = ring->req_prod;
        size_t room = XENSTORE_RING_SIZE - (prod - cons), k, i;

        if (room > XENSTORE_RING_SIZE) {
            return -XEN_EIO; /* indices make no sense */
        }
        if (room == 0) {
            (void)evtchn_send(ring_port);
            if (evtchn_wait_until(ring_port, deadline)) {
                return -XEN_ETIMEDOUT;
            }
            continue;
        }
        k = len < room ? len : room;
        for (i = 0; i < k; i++) {
            ring->req[MASK_XENSTORE_IDX(prod + i)] = data[i];
        }
        /* The bytes are in place /before/ xenstored sees the index. */
        __atomic_store_n(&ring->req_prod, prod + (XENSTORE_RING_IDX)k, __ATOMIC_RELEASE);
        data += k;
        len -= k;
    }
    return evtchn_send(ring_port);
}

/* Read `len` reply bytes into data (NULL: skip them). */
static int ring_get(char *data, size_t len, uint64_t deadline)
{
    while (len > 0) {
        XENSTORE_RING_IDX prod = __atomic_load_n(&ring->rsp_prod, __ATOMIC_ACQUIRE);
        XENSTORE_RING_IDX cons = ring->rsp_cons;
        size_t avail = prod - cons, k, i;

        if (avail > XENSTORE_RING_SIZE) {
            return -XEN_EIO;
        }
        if (avail == 0) {
            if (evtchn_wait_until(ring_port, deadline)) {
                return -XEN_ETIMEDOUT;
            }
            continue;
        }
        k = len < avail ? len : avail;
        for (i = 0; i < k; i++) {
            char c = ring->rsp[MASK_XENSTORE_IDX(cons + i)];

            if (data) {
                *data++ = c;
            }
        }
        /* Copied out /before/ xenstored may reuse the space. */
        __atomic_store_n(&ring->rsp_cons, cons + (XENSTORE_RING_IDX)k, __ATOMIC_RELEASE);
        (void)evtchn_send(ring_port);
        len -= k;
    }
    return 0;
}

/*
 * One request: `payload` of `plen` bytes; the reply's payload goes to
 * reply (NUL-terminated, cut at rlen - 1; *rfull says how long it was).
 */
static int talk(uint32_t type, uint32_t tx, const char *payload, size_t plen, char *reply,
                size_t rlen, size_t *rfull)
{
    uint64_t deadline = guest_time_ns() + XS_TIMEOUT_NS;
    struct xsd_sockmsg msg = {.type = type, .req_id = next_req_id++, .tx_id = tx,
                              .len = (uint32_t)plen};
    char err[32];
    int rc;

    if (plen > XENSTORE_PAYLOAD_MAX) {
        return -XEN_E2BIG;
    }
    if ((rc = ring_put((const char *)&msg, sizeof(msg), deadline)) ||
        (rc = ring_put(payload, plen, deadline))) {
        return rc;
    }
    for (;;) {
        struct xsd_sockmsg hdr;
        size_t keep;

        if ((rc = ring_get((char *)&hdr, sizeof(hdr), deadline))) {
            return rc;
        }
        if (hdr.len > XENSTORE_PAYLOAD_MAX) {
            return -XEN_EIO;
        }
        if (hdr.type == XS_WATCH_EVENT || hdr.req_id != msg.req_id) {
            /* Not ours (we set no watches; be robust anyway). */
            if ((rc = ring_get(NULL, hdr.len, deadline))) {
                return rc;
            }
            continue;
        }
        if (hdr.type == XS_ERROR) {
            size_t i;

            keep = hdr.len < sizeof(err) - 1 ? hdr.len : sizeof(err) - 1;
            if ((rc = ring_get(err, keep, deadline)) ||
                (rc = ring_get(NULL, hdr.len - keep, deadline))) {
                return rc;
            }
            err[keep] = '\0';
            for (i = 0; i < sizeof(xs_errors) / sizeof(xs_errors[0]); i++) {
                if (strcmp(err, xs_errors[i].name) == 0) {
                    return -xs_errors[i].err;
                }
            }
            return -XEN_EIO;
        }
        keep = reply && rlen ? (hdr.len < rlen - 1 ? hdr.len : rlen - 1) : 0;
        if ((rc = ring_get(reply, keep, deadline)) ||
            (rc = ring_get(NULL, hdr.len - keep, deadline))) {
            return rc;
        }
        if (reply && rlen) {
            reply[keep] = '\0';
        }
        if (rfull) {
            *rfull = hdr.len;
        }
        return 0;
    }
}

/* Concatenate NUL-terminated strings (each with its NUL) into buf; the length, or 0 if too long. */
static size_t pack(char *buf, size_t len, const char *const *parts, size_t n, bool last_nul)
{
    size_t used = 0, i;

    for (i = 0; i < n; i++) {
        size_t k = strlen(parts[i]) + (i + 1 < n || last_nul ? 1 : 0);

        if (k > len - used) {
            return 0;
        }
        memcpy(buf + used, parts[i], k);
        used += k;
    }
    return used;
}

int xs_read(uint32_t tx, const char *path, char *buf, size_t len)
{
    size_t full = 0;
    int rc = talk(XS_READ, tx, path, strlen(path) + 1, buf, len, &full);

    if (rc == 0 && full + 1 > len) {
        return -XEN_ENOSPC;
    }
    return rc;
}

int xs_write(uint32_t tx, const char *path, const char *value)
{
    const char *parts[2] = {path, value};
    char buf[XS_BUF];
    /* path NUL value, no NUL after the value: its length is the payload's. */
    size_t n = pack(buf, sizeof(buf), parts, 2, false);

    return n ? talk(XS_WRITE, tx, buf, n, NULL, 0, NULL) : -XEN_E2BIG;
}

int xs_rm(uint32_t tx, const char *path)
{
    return talk(XS_RM, tx, path, strlen(path) + 1, NULL, 0, NULL);
}

int xs_set_perms(uint32_t tx, const char *path, const char *const *perms, size_t n)
{
    const char *parts[9];
    char buf[XS_BUF];
    size_t i, len;

    if (n + 1 > sizeof(parts) / sizeof(parts[0])) {
        return -XEN_E2BIG;
    }
    parts[0] = path;
    for (i = 0; i < n; i++) {
        parts[i + 1] = perms[i];
    }
    len = pack(buf, sizeof(buf), parts, n + 1, true);
    return len ? talk(XS_SET_PERMS, tx, buf, len, NULL, 0, NULL) : -XEN_E2BIG;
}

int xs_transaction_start(uint32_t *tx)
{
    char id[16];
    uint32_t v = 0;
    size_t i;
    int rc = talk(XS_TRANSACTION_START, 0, "", 1, id, sizeof(id), NULL);

    if (rc) {
        return rc;
    }
    for (i = 0; id[i] >= '0' && id[i] <= '9'; i++) {
        v = v * 10 + (uint32_t)(id[i] - '0');
    }
    if (i == 0 || id[i] || v == 0) {
        return -XEN_EIO;
    }
    *tx = v;
    return 0;
}

int xs_transaction_end(uint32_t tx, bool abort)
{
    return talk(XS_TRANSACTION_END, tx, abort ? "F" : "T", 2, NULL, 0, NULL);
}
