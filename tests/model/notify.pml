/* SPDX-License-Identifier: ISC */
/*
 * notify.pml: the vchan notify protocol (docs/protocol.md, "Notification";
 * libvchan/core/ring.c request_notify / signal_peer), checked for lost wake-ups.
 *
 * One direction of a channel: a writer puts N items into a ring of SIZE
 * slots, a reader takes them; each sleeps on its event channel when it
 * cannot go on. The protocol:
 *   - to wait for data (space): set WRITE (READ) in the peer's notify byte,
 *     full fence, read the index again, sleep only if still nothing;
 *   - after writing (consuming): full fence, clear WRITE (READ) in our own
 *     byte, signal the peer only if the bit was set.
 * A lost wake-up is a process asleep for good while the other has finished:
 * spin reports it as an invalid end state.
 *
 * Memory is x86-TSO, which is where the fences matter: plain stores (the
 * release stores of prod and cons) go to a per-process store buffer that
 * drains to memory at any later time, in order; a process reads its own
 * buffered store; a fence waits for its buffer to drain; a locked
 * read-modify-write (fetch_or, fetch_and) drains it first and is atomic.
 *
 * Variants (spin -D...):
 *   SKIP_RMW=1  ring.c's current fast path: load the notify byte first and
 *               do the locked operation only when the bit needs setting
 *               (request) or is there to clear (signal).
 *   FENCE=0     leave out the full fences: with SKIP_RMW=1 this must lose a
 *               wake-up (a load passes the buffered index store), which
 *               shows the model can see the bug the fences prevent.
 *   N, SIZE     items and ring slots (defaults 3 and 1).
 * tests/model/check.sh runs every variant and expects exactly that.
 */

#ifndef N
#define N 3
#endif
#ifndef SIZE
#define SIZE 1
#endif
#ifndef SKIP_RMW
#define SKIP_RMW 0
#endif
#ifndef FENCE
#define FENCE 1
#endif

#define NOTIFY_WRITE 1
#define NOTIFY_READ 2

/* Shared memory. */
byte prod = 0;     /* written by the writer */
byte cons = 0;     /* written by the reader */
byte wnotify = 0;  /* the writer's own notify byte: the reader sets WRITE in it */
byte rnotify = 0;  /* the reader's own: the writer sets READ in it */
bit ev_r = 0;      /* an event pending for the reader */
bit ev_w = 0;      /* an event pending for the writer */

/* Store buffers, one entry each (a second store waits for the first to drain). */
bit wsb = 0;       /* the writer's buffered store to prod */
byte wsb_val;
bit rsb = 0;       /* the reader's buffered store to cons */
byte rsb_val;

byte received = 0;

#if FENCE
#define WRITER_FENCE (wsb == 0)
#define READER_FENCE (rsb == 0)
#else
#define WRITER_FENCE skip
#define READER_FENCE skip
#endif

/* The hardware draining store buffers, whenever it likes. */
active proctype tso()
{
end:
    do
    :: atomic { wsb -> prod = wsb_val; wsb = 0 }
    :: atomic { rsb -> cons = rsb_val; rsb = 0 }
    od
}

active proctype writer()
{
    byte own = 0;   /* private producer index */
    byte c;         /* the reader's consumer index as read */
    byte prev;

    do
    :: own == N -> break
    :: else ->
retry:
        /* space(): load-acquire cons (from memory: the reader's buffer is not ours) */
        c = cons;
        if
        :: own - c < SIZE -> goto put
        :: else
        fi;
        /* request_notify(READ) in the reader's byte */
#if SKIP_RMW
        if
        :: (rnotify & NOTIFY_READ) != 0 -> skip
        :: else -> atomic { wsb == 0 -> rnotify = rnotify | NOTIFY_READ }
        fi;
#else
        atomic { wsb == 0 -> rnotify = rnotify | NOTIFY_READ };
#endif
        WRITER_FENCE;
        c = cons;
        if
        :: own - c < SIZE -> goto put
        :: else
        fi;
        /* block(): sleep until an event, consume it, look again */
        atomic { ev_w -> ev_w = 0 };
        goto retry;
put:
        own++;
        /* copy_in(): store-release prod (buffered) */
        atomic { wsb == 0 -> wsb = 1; wsb_val = own };
        /* signal_peer(WRITE) on our own byte */
        WRITER_FENCE;
#if SKIP_RMW
        if
        :: (wnotify & NOTIFY_WRITE) != 0 ->
            atomic { wsb == 0 -> prev = wnotify; wnotify = wnotify & ~NOTIFY_WRITE };
            if
            :: (prev & NOTIFY_WRITE) != 0 -> ev_r = 1
            :: else
            fi
        :: else
        fi
#else
        atomic { wsb == 0 -> prev = wnotify; wnotify = wnotify & ~NOTIFY_WRITE };
        if
        :: (prev & NOTIFY_WRITE) != 0 -> ev_r = 1
        :: else
        fi
#endif
    od
}

active proctype reader()
{
    byte own = 0;   /* private consumer index */
    byte p;         /* the writer's producer index as read */
    byte prev;

    do
    :: own == N -> break
    :: else ->
retry:
        /* ready(): load-acquire prod */
        p = prod;
        if
        :: p != own -> goto take
        :: else
        fi;
        /* request_notify(WRITE) in the writer's byte */
#if SKIP_RMW
        if
        :: (wnotify & NOTIFY_WRITE) != 0 -> skip
        :: else -> atomic { rsb == 0 -> wnotify = wnotify | NOTIFY_WRITE }
        fi;
#else
        atomic { rsb == 0 -> wnotify = wnotify | NOTIFY_WRITE };
#endif
        READER_FENCE;
        p = prod;
        if
        :: p != own -> goto take
        :: else
        fi;
        atomic { ev_r -> ev_r = 0 };
        goto retry;
take:
        /* copy_out(): everything ready, then store-release cons (buffered) */
        assert(p - own <= SIZE);
        received = received + (p - own);
        own = p;
        atomic { rsb == 0 -> rsb = 1; rsb_val = own };
        /* signal_peer(READ) on our own byte */
        READER_FENCE;
#if SKIP_RMW
        if
        :: (rnotify & NOTIFY_READ) != 0 ->
            atomic { rsb == 0 -> prev = rnotify; rnotify = rnotify & ~NOTIFY_READ };
            if
            :: (prev & NOTIFY_READ) != 0 -> ev_w = 1
            :: else
            fi
        :: else
        fi
#else
        atomic { rsb == 0 -> prev = rnotify; rnotify = rnotify & ~NOTIFY_READ };
        if
        :: (prev & NOTIFY_READ) != 0 -> ev_w = 1
        :: else
        fi
#endif
    od;
    assert(received == N)
}
