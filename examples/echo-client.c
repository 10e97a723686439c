/* SPDX-License-Identifier: ISC */
/*
 * echo-client: sends data to an echo server and checks that the same bytes
 * come back, over any libconduit transport. Only the URI differs:
 *
 *   echo-client tcp://localhost:7000
 *   echo-client unix:///run/echo.sock
 *   echo-client vchan://0/echo
 *   echo-client 'tls://localhost:7443?ca=ca.pem'
 *
 * Blocking I/O: each round writes SIZE bytes and reads them back, then
 * waits PAUSE milliseconds (so that several clients overlap). Exits 0 when
 * every byte came back unchanged, 1 otherwise, 2 on a usage error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <conduit.h>

static void usage(void)
{
    fprintf(stderr, "usage: echo-client [-r ROUNDS] [-s SIZE] [-p PAUSE_MS] [-v] URI\n");
}

/* Bytes of round r that depend on the position and this process, so mix-ups show. */
static void fill(uint8_t *buf, size_t len, unsigned r)
{
    uint32_t x = (uint32_t)getpid() * 2654435761u + r * 40503u;

    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
}

static void pause_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    long rounds = 3, size = 1000, pause = 0;
    struct conduit *c = NULL;
    uint8_t *out = NULL, *in = NULL;
    int ch, rc, status = 1, verbose = 0;

    while ((ch = getopt(argc, argv, "r:s:p:v")) != -1) {
        switch (ch) {
        case 'r':
            rounds = strtol(optarg, NULL, 10);
            break;
        case 's':
            size = strtol(optarg, NULL, 10);
            break;
        case 'p':
            pause = strtol(optarg, NULL, 10);
            break;
        case 'v':
            verbose = 1;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (optind != argc - 1 || rounds < 1 || size < 1 || size > 16 * 1024 * 1024 || pause < 0) {
        usage();
        return 2;
    }
    rc = conduit_connect(&c, argv[optind], NULL);
    if (rc < 0) {
        fprintf(stderr, "echo-client: %s\n", conduit_last_error(NULL));
        return conduit_err_is_usage(rc) ? 2 : 1;
    }
    if (verbose) {
        fprintf(stderr, "echo-client: %s\n", conduit_info(c));
    }
    out = malloc((size_t)size);
    in = malloc((size_t)size);
    if (!out || !in) {
        fprintf(stderr, "echo-client: out of memory\n");
        goto out;
    }
    for (unsigned r = 0; r < (unsigned)rounds; r++) {
        size_t n = 0, got = 0;

        fill(out, (size_t)size, r);
        /* Blocking: writes it all (the server echoes as we go, so this cannot stall). */
        if ((rc = conduit_write(c, out, (size_t)size, &n)) < 0) {
            fprintf(stderr, "echo-client: %s\n", conduit_last_error(c));
            goto out;
        }
        while (got < (size_t)size) {
            if ((rc = conduit_read(c, in + got, (size_t)size - got, &n)) < 0) {
                fprintf(stderr, "echo-client: %s\n", conduit_last_error(c));
                goto out;
            }
            if (n == 0) {
                fprintf(stderr, "echo-client: the server closed after %zu of %ld bytes\n", got,
                        size);
                goto out;
            }
            got += n;
        }
        if (memcmp(out, in, (size_t)size) != 0) {
            fprintf(stderr, "echo-client: round %u: the echo differs from what was sent\n", r);
            goto out;
        }
        if (pause > 0) {
            pause_ms(pause);
        }
    }
    printf("echo-client: %ld bytes echoed in %ld rounds\n", size * rounds, rounds);
    status = 0;
out:
    free(out);
    free(in);
    conduit_close(c);
    return status;
}
