/* SPDX-License-Identifier: ISC */
/*
 * Event channels of the test guest. Upcalls stay masked: an event only
 * sets its pending bit in shared_info, and a wait is test-and-clear of
 * that bit, else SCHEDOP_poll on the port (which Xen allows only with
 * upcalls masked) until it is set or a deadline passes. A bit left set
 * would make every later poll on the port return at once, so each wait
 * consumes it.
 */
#include "guest.h"
#include "hypercall.h"

int evtchn_alloc_unbound_port(uint16_t remote, uint32_t *port)
{
    struct evtchn_alloc_unbound op = {.dom = DOMID_SELF, .remote_dom = remote};
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &op);

    if (rc == 0) {
        *port = op.port;
    }
    return (int)rc;
}

int evtchn_bind_port(uint16_t remote, uint32_t remote_port, uint32_t *local)
{
    struct evtchn_bind_interdomain op = {.remote_dom = remote, .remote_port = remote_port};
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &op);

    if (rc == 0) {
        *local = op.local_port;
    }
    return (int)rc;
}

int evtchn_send(uint32_t port)
{
    struct evtchn_send op = {.port = port};

    return (int)HYPERVISOR_event_channel_op(EVTCHNOP_send, &op);
}

void evtchn_close(uint32_t port)
{
    struct evtchn_close op = {.port = port};

    (void)HYPERVISOR_event_channel_op(EVTCHNOP_close, &op);
    (void)evtchn_consume(port); /* a later owner of the number starts clean */
}

bool evtchn_consume(uint32_t port)
{
    xen_ulong_t *word = &guest_shared_info()->evtchn_pending[port / (8 * sizeof(xen_ulong_t))];
    xen_ulong_t bit = (xen_ulong_t)1 << (port % (8 * sizeof(xen_ulong_t)));

    /* Xen sets the bit with a locked operation; clear it with one too. */
    return (__atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST) & bit) != 0;
}

int evtchn_wait_until(uint32_t port, uint64_t deadline_ns)
{
    evtchn_port_t ports[1] = {port};
    struct sched_poll poll = {.nr_ports = 1, .timeout = deadline_ns};

    set_xen_guest_handle(poll.ports, ports);
    for (;;) {
        long rc;

        if (evtchn_consume(port)) {
            return 0;
        }
        if (deadline_ns && guest_time_ns() >= deadline_ns) {
            return -XEN_ETIMEDOUT;
        }
        /* Returns at once if the bit is set by now: no event is lost between the two. */
        rc = HYPERVISOR_sched_op(SCHEDOP_poll, &poll);
        if (rc) {
            return (int)rc;
        }
    }
}

void guest_sleep_until(uint64_t deadline_ns)
{
    /* No port: only the timeout (or any event of ours) ends the poll. */
    evtchn_port_t none[1] = {0};
    struct sched_poll poll = {.nr_ports = 0, .timeout = deadline_ns};

    set_xen_guest_handle(poll.ports, none);
    while (guest_time_ns() < deadline_ns) {
        (void)HYPERVISOR_sched_op(SCHEDOP_poll, &poll);
    }
}
