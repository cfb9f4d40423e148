/* UDP receiver: datagrams arrive in the queue in order, whole; what does not
 * fit is counted; a long datagram is counted as truncated; stop is clean. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "shardq.h"

static int bound_socket(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    int buf = 4 * 1024 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    return fd;
}

static shardq_t *make_queue(uint64_t records, uint64_t bytes)
{
    struct shardq_options o = {sizeof o, 2, records, bytes, 0, 0, NULL};
    shardq_t *q = NULL;
    CHECK_EQ(shardq_create(&o, &q), 0);
    return q;
}

static struct shardq_udp_stats udp_stats(shardq_udp_t *u)
{
    struct shardq_udp_stats s = {.size = sizeof s};
    CHECK_EQ(shardq_udp_stats(u, &s), 0);
    return s;
}

/* Waits (bounded) until the receiver has read `n` datagrams. */
static void await_datagrams(shardq_udp_t *u, uint64_t n)
{
    for (int i = 0; i < 5000 && udp_stats(u).datagrams < n; i++)
        usleep(1000);
    CHECK_EQ(udp_stats(u).datagrams, n);
}

static void test_order_and_contents(void)
{
    struct sockaddr_in addr;
    int rx = bound_socket(&addr), tx = socket(AF_INET, SOCK_DGRAM, 0);
    shardq_t *q = make_queue(4096, 1 << 22);
    shardq_udp_t *u = NULL;
    struct shardq_udp_options o = {sizeof o, rx, 1, 8, 0, -1, 0, NULL};
    CHECK_EQ(shardq_udp_start(&o, q, &u), 0);

    enum { N = 500 };
    char msg[64];
    for (int i = 0; i < N; i++) {
        int len = snprintf(msg, sizeof msg, "datagram %d", i);
        CHECK_EQ(sendto(tx, msg, (size_t)(i % 7 ? len : 0), 0, (struct sockaddr *)&addr, sizeof addr),
                 i % 7 ? len : 0);
    }
    await_datagrams(u, N);

    /* Everything went to shard 1, one record per datagram, in order. */
    struct shardq_stats s = {.size = sizeof s};
    CHECK_EQ(shardq_stats(q, 0, &s), 0);
    CHECK_EQ(s.pushes, 0u);
    unsigned char *out = malloc(1 << 20);
    size_t n_records = 0, n_bytes = 0;
    CHECK_EQ(shardq_pop_batch(q, 1, N + 1, out, 1 << 20, &n_records, &n_bytes), 0);
    CHECK_EQ(n_records, (size_t)N);
    size_t at = 0;
    for (int i = 0; i < N; i++) {
        uint32_t len = ((uint32_t)out[at] << 24) | ((uint32_t)out[at + 1] << 16) |
                       ((uint32_t)out[at + 2] << 8) | out[at + 3];
        int want = snprintf(msg, sizeof msg, "datagram %d", i);
        if (i % 7 == 0)
            want = 0;
        CHECK_EQ(len, (uint32_t)want);
        CHECK(memcmp(out + at + 4, msg, len) == 0);
        at += 4 + len;
    }
    CHECK_EQ(at, n_bytes);
    struct shardq_udp_stats us = udp_stats(u);
    CHECK_EQ(us.queue_full, 0u);
    CHECK_EQ(us.truncated, 0u);
    CHECK_EQ(us.errors, 0u);

    shardq_udp_stop(u, NULL);
    free(out);
    shardq_destroy(q);
    close(rx);
    close(tx);
}

static void test_full_queue_and_long_datagrams_are_counted(void)
{
    struct sockaddr_in addr;
    int rx = bound_socket(&addr), tx = socket(AF_INET, SOCK_DGRAM, 0);
    shardq_t *q = make_queue(2 * 10, 1 << 16);  /* 10 records per shard */
    shardq_udp_t *u = NULL;
    struct shardq_udp_options o = {sizeof o, rx, 0, 4, 100, -1, 0, NULL};
    CHECK_EQ(shardq_udp_start(&o, q, &u), 0);

    char big[200];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < 25; i++)
        CHECK_EQ(sendto(tx, big, 50, 0, (struct sockaddr *)&addr, sizeof addr), 50);
    CHECK_EQ(sendto(tx, big, sizeof big, 0, (struct sockaddr *)&addr, sizeof addr), (ssize_t)sizeof big);
    await_datagrams(u, 26);

    struct shardq_udp_stats us = udp_stats(u);
    CHECK_EQ(us.truncated, 1u);
    CHECK_EQ(us.queue_full, 15u);
    struct shardq_stats s = {.size = sizeof s};
    CHECK_EQ(shardq_stats(q, 0, &s), 0);
    CHECK_EQ(s.depth, 10u);
    CHECK_EQ(us.bytes, 25u * 50u + 100u);

    shardq_udp_stop(u, NULL);
    shardq_destroy(q);
    close(rx);
    close(tx);
}

static void test_bad_options(void)
{
    shardq_t *q = make_queue(16, 1 << 16);
    shardq_udp_t *u = NULL;
    struct shardq_udp_options o = {sizeof o, -1, 0, 0, 0, -1, 0, NULL};
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    o.fd = 0;
    o.shard = SHARDQ_SHARD_ANY;
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    o.shard = 2;  /* the queue has shards 0 and 1 */
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    o.shard = 0;
    o.batch = 5000;
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    o.batch = 0;
    o.max_datagram = 70000;
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    o.max_datagram = 0;
    o.size = 4;
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    CHECK(u == NULL);
    shardq_udp_stop(NULL, NULL);
    shardq_destroy(q);
}

static void test_stop_while_idle_and_closed_queue_ends_the_thread(void)
{
    struct sockaddr_in addr;
    int rx = bound_socket(&addr), tx = socket(AF_INET, SOCK_DGRAM, 0);
    shardq_t *q = make_queue(64, 1 << 16);
    shardq_udp_t *u = NULL;
    struct shardq_udp_options o = {sizeof o, rx, 0, 0, 0, -1, 0, NULL};
    CHECK_EQ(shardq_udp_start(&o, q, &u), 0);
    shardq_close(q);
    CHECK_EQ(sendto(tx, "x", 1, 0, (struct sockaddr *)&addr, sizeof addr), 1);
    await_datagrams(u, 1);
    struct shardq_udp_stats final = {.size = sizeof final};
    shardq_udp_stop(u, &final);   /* joins a thread that already ended */
    CHECK_EQ(final.datagrams, 1u);
    CHECK_EQ(final.queue_full, 1u);  /* refused by the closed queue */
    shardq_destroy(q);
    close(rx);
    close(tx);
}

/* One network table entry: family, prefix, address. */
static void network(uint8_t *entry, uint8_t family, uint8_t prefix, const char *text)
{
    memset(entry, 0, SHARDQ_UDP_NETWORK_BYTES);
    entry[0] = family;
    entry[1] = prefix;
    CHECK_EQ(inet_pton(family == 4 ? AF_INET : AF_INET6, text, entry + 2), 1);
}

static void test_sources_outside_the_networks_are_refused(void)
{
    struct sockaddr_in addr;
    int rx = bound_socket(&addr), tx = socket(AF_INET, SOCK_DGRAM, 0);
    shardq_t *q = make_queue(64, 1 << 16);
    uint8_t nets[3 * SHARDQ_UDP_NETWORK_BYTES];
    network(nets, 4, 8, "10.0.0.0");
    network(nets + SHARDQ_UDP_NETWORK_BYTES, 6, 128, "::1");
    network(nets + 2 * SHARDQ_UDP_NETWORK_BYTES, 4, 31, "127.0.0.2");  /* .2 and .3 only */
    shardq_udp_t *u = NULL;
    struct shardq_udp_options o = {sizeof o, rx, 0, 4, 0, -1, 3, nets};
    CHECK_EQ(shardq_udp_start(&o, q, &u), 0);
    memset(nets, 0, sizeof nets);   /* the receiver keeps its own copy */
    CHECK_EQ(sendto(tx, "a", 1, 0, (struct sockaddr *)&addr, sizeof addr), 1);   /* 127.0.0.1 */
    await_datagrams(u, 1);
    struct shardq_udp_stats us = udp_stats(u);
    CHECK_EQ(us.source_refused, 1u);
    shardq_udp_stop(u, NULL);

    /* 127.0.0.0/8 lets it in. */
    network(nets, 4, 8, "127.0.0.0");
    o.n_networks = 1;
    CHECK_EQ(shardq_udp_start(&o, q, &u), 0);
    CHECK_EQ(sendto(tx, "b", 1, 0, (struct sockaddr *)&addr, sizeof addr), 1);
    await_datagrams(u, 1);
    CHECK_EQ(udp_stats(u).source_refused, 0u);
    struct shardq_stats s = {.size = sizeof s};
    CHECK_EQ(shardq_stats(q, 0, &s), 0);
    CHECK_EQ(s.depth, 1u);
    shardq_udp_stop(u, NULL);

    /* Bad tables; an old caller's smaller struct means any source. */
    nets[1] = 33;
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    nets[0] = 5;
    nets[1] = 8;
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    o.networks = NULL;
    CHECK_EQ(shardq_udp_start(&o, q, &u), SHARDQ_EINVAL);
    o.size = offsetof(struct shardq_udp_options, n_networks);
    CHECK_EQ(shardq_udp_start(&o, q, &u), 0);
    struct shardq_udp_stats old = {.size = offsetof(struct shardq_udp_stats, source_refused)};
    CHECK_EQ(shardq_udp_stats(u, &old), 0);
    shardq_udp_stop(u, NULL);
    shardq_destroy(q);
    close(rx);
    close(tx);
}

int main(void)
{
    test_order_and_contents();
    test_full_queue_and_long_datagrams_are_counted();
    test_bad_options();
    test_stop_while_idle_and_closed_queue_ends_the_thread();
    test_sources_outside_the_networks_are_refused();
    return CHECK_DONE();
}
