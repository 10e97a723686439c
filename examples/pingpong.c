/* SPDX-License-Identifier: ISC */
/*
 * pingpong: the smallest complete vchan program. It forks; the parent
 * serves a channel, the child connects to it, and they bounce fixed-size
 * packets back and forth, checking each one. Uses only <vchan.h>.
 *
 *   pingpong [ROUNDS [SIZE]]      (local platform unless VCHAN_PLATFORM says)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vchan.h>

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what, struct vchan *v, int rc)
{
    fprintf(stderr, "pingpong: %s: %s%s%s\n", what, vchan_strerror(rc), v ? ": " : "",
            v ? vchan_last_error(v) : "");
    return 1;
}

/* The child: echo every packet back until the server closes. */
static int client(const char *port, size_t size)
{
    char err[256] = "";
    struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = 0, .port = port, .timeout_ms = 10000,
                                                .errbuf = err, .errbuf_len = sizeof(err));
    struct vchan *v;
    char *buf = malloc(size);
    int rc;

    if (!buf) {
        return 1;
    }
    if ((rc = vchan_client_open(&v, &cfg))) {
        fprintf(stderr, "pingpong: client open: %s\n", err);
        free(buf);
        return 1;
    }
    while ((rc = vchan_recv(v, buf, size)) == 0) {
        if ((rc = vchan_send(v, buf, size))) {
            break;
        }
    }
    /* The server closing is how a run ends; anything else is a failure. */
    if (rc != -VCHAN_EPIPE) {
        die("client", v, rc);
    }
    vchan_close(v);
    free(buf);
    return rc == -VCHAN_EPIPE ? 0 : 1;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    long size = argc > 2 ? strtol(argv[2], NULL, 10) : 64;
    char port[32], err[256] = "";
    struct vchan_config cfg = VCHAN_CONFIG_INIT(.domain = 0, .timeout_ms = 10000, .errbuf = err,
                                                .errbuf_len = sizeof(err));
    struct vchan *v;
    char *out, *in;
    double t0;
    pid_t pid;
    int rc, status, fails = 0;

    if (rounds <= 0 || size <= 0 || size > 65536) {
        fprintf(stderr, "usage: pingpong [ROUNDS [SIZE <= 65536]]\n");
        return 2;
    }
    snprintf(port, sizeof(port), "pingpong-%ld", (long)getpid());
    cfg.port = port;
    if ((rc = vchan_server_open(&v, &cfg))) {
        fprintf(stderr, "pingpong: server open: %s\n", err);
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        _exit(client(port, (size_t)size));
    }
    out = malloc(size);
    in = malloc(size);
    if (pid < 0 || !out || !in) {
        perror("pingpong");
        return 1;
    }
    if ((rc = vchan_wait_connected(v))) {
        return die("waiting for the client", v, rc);
    }
    t0 = now();
    for (long i = 0; i < rounds; i++) {
        memset(out, (int)(i & 0xff), size);
        if ((rc = vchan_send(v, out, size)) || (rc = vchan_recv(v, in, size))) {
            return die("round trip", v, rc);
        }
        fails += memcmp(in, out, size) != 0;
    }
    printf("%ld round trips of %ld bytes over %s: %.2f us each, %d corrupted\n", rounds, size,
           vchan_platform_name(v), (now() - t0) * 1e6 / rounds, fails);
    vchan_close(v);
    waitpid(pid, &status, 0);
    free(out);
    free(in);
    return fails || !WIFEXITED(status) || WEXITSTATUS(status) ? 1 : 0;
}
