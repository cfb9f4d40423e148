/*
 * udp.c - a thread that moves datagrams from a UDP socket into a queue.
 *
 * Why a thread of its own: an event loop reads one datagram per system call
 * and only when it gets round to the socket, so a burst overflows the
 * socket's buffer while the loop is busy elsewhere. This thread sleeps in
 * poll(2), takes up to `batch` datagrams per recvmmsg(2) and pushes them, one
 * record each, into one shard of a queue, where the consumer finds them in
 * arrival order; it never holds Python's GIL.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#define UDP_MAX_BATCH 1024u
#define UDP_MAX_DATAGRAM 65535u

struct shardq_udp {
    shardq_t *q;
    int fd;
    int stop_fd;
    uint32_t shard, batch, max_datagram;
    int32_t numa_node;
    pthread_t thread;
    atomic_bool stopping;
    atomic_uint_fast64_t datagrams, bytes, queue_full, truncated, errors, source_refused;
    atomic_int last_errno;
    unsigned char *slots;  /* batch slots of 4 + max_datagram bytes */
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *sources;  /* one per slot, with networks only */
    uint32_t n_networks;
    uint8_t *networks;     /* a copy of the options' table */
};

/* Whether the first `prefix` bits of a and b are equal. */
static int same_prefix(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* Whether a datagram's source is in one of the networks (IPv4-mapped IPv6 as IPv4). */
static int source_allowed(const struct shardq_udp *u, const struct sockaddr_storage *from)
{
    const uint8_t *addr;
    uint8_t family;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (from->ss_family == AF_INET) {
        addr = (const uint8_t *)&((const struct sockaddr_in *)from)->sin_addr;
        family = 4;
    } else if (from->ss_family == AF_INET6) {
        addr = (const uint8_t *)&((const struct sockaddr_in6 *)from)->sin6_addr;
        family = 6;
        if (memcmp(addr, mapped, sizeof mapped) == 0) {
            addr += sizeof mapped;
            family = 4;
        }
    } else {
        return 0;
    }
    for (uint32_t i = 0; i < u->n_networks; i++) {
        const uint8_t *net = u->networks + (size_t)i * SHARDQ_UDP_NETWORK_BYTES;
        if (net[0] == family && same_prefix(addr, net + 2, net[1]))
            return 1;
    }
    return 0;
}

/* Checks a table of networks: family 4 or 6, a prefix that fits it. */
static int networks_valid(const uint8_t *nets, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *net = nets + (size_t)i * SHARDQ_UDP_NETWORK_BYTES;
        if (!((net[0] == 4 && net[1] <= 32) || (net[0] == 6 && net[1] <= 128)))
            return 0;
    }
    return 1;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Errors after which the socket is unusable; anything else (an ICMP error
 * reported on the socket, a signal) is counted and the loop goes on. */
static int fatal_errno(int e)
{
    return e == EBADF || e == ENOTSOCK || e == EINVAL || e == EFAULT;
}

/* Turns the first n received slots into one push buffer, in place: each
 * record is a u32 big-endian length and the datagram. Truncated datagrams
 * (larger than max_datagram) are left out and counted. */
static size_t compact(struct shardq_udp *u, unsigned n, size_t *records)
{
    size_t stride = 4 + (size_t)u->max_datagram, out = 0, kept = 0, bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned char *slot = u->slots + i * stride;
        uint32_t len = u->msgs[i].msg_len;
        bytes += len;
        if (u->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
            atomic_fetch_add(&u->truncated, 1);
            continue;
        }
        if (u->n_networks && !source_allowed(u, &u->sources[i])) {
            atomic_fetch_add(&u->source_refused, 1);
            continue;
        }
        put_be32(slot, len);
        if (slot != u->slots + out)
            memmove(u->slots + out, slot, 4 + (size_t)len);
        out += 4 + (size_t)len;
        kept++;
    }
    atomic_fetch_add(&u->datagrams, n);
    atomic_fetch_add(&u->bytes, bytes);
    *records = kept;
    return out;
}

static void *receive_loop(void *arg)
{
    struct shardq_udp *u = arg;
    struct pollfd waits[2] = {{.fd = u->fd, .events = POLLIN}, {.fd = u->stop_fd, .events = POLLIN}};
    if (u->numa_node >= 0) {
        int rc = shardq_numa_pin_thread(NULL, u->numa_node);
        if (rc)
            atomic_store(&u->last_errno, -rc);  /* placement is best effort */
    }
    while (!atomic_load(&u->stopping)) {
        for (unsigned i = 0; i < u->batch; i++) {
            u->iovs[i].iov_len = u->max_datagram;
            u->msgs[i].msg_hdr.msg_flags = 0;
            if (u->sources)
                u->msgs[i].msg_hdr.msg_namelen = sizeof u->sources[i];
        }
        int n = recvmmsg(u->fd, u->msgs, u->batch, MSG_DONTWAIT, NULL);
        if (n < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                if (poll(waits, 2, -1) < 0 && errno != EINTR) {
                    atomic_store(&u->last_errno, errno);
                    atomic_fetch_add(&u->errors, 1);
                    break;
                }
                continue;
            }
            if (e == EINTR)
                continue;
            atomic_store(&u->last_errno, e);
            atomic_fetch_add(&u->errors, 1);
            if (fatal_errno(e))
                break;
            continue;
        }
        size_t records = 0;
        size_t len = compact(u, (unsigned)n, &records);
        if (!records)
            continue;
        size_t pushed = 0;
        int rc = shardq_push_batch(u->q, u->shard, u->slots, len, 0, &pushed);
        if (rc != SHARDQ_OK)
            pushed = 0;
        if (pushed < records)
            atomic_fetch_add(&u->queue_full, records - pushed);
        if (rc == SHARDQ_ECLOSED)
            break;
    }
    return NULL;
}

static void release(struct shardq_udp *u)
{
    if (u->stop_fd >= 0)
        close(u->stop_fd);
    free(u->slots);
    free(u->msgs);
    free(u->iovs);
    free(u->sources);
    free(u->networks);
    free(u);
}

int shardq_udp_start(const struct shardq_udp_options *opts, shardq_t *q, shardq_udp_t **out)
{
    if (!opts || !q || !out || opts->size < offsetof(struct shardq_udp_options, n_networks) ||
        opts->fd < 0)
        return SHARDQ_EINVAL;
    int has_networks = opts->size >= sizeof(struct shardq_udp_options);
    uint32_t n_networks = has_networks ? opts->n_networks : 0;
    if (n_networks && (!opts->networks || !networks_valid(opts->networks, n_networks)))
        return SHARDQ_EINVAL;
    uint32_t batch = opts->batch ? opts->batch : 64;
    uint32_t max_datagram = opts->max_datagram ? opts->max_datagram : UDP_MAX_DATAGRAM;
    if (batch > UDP_MAX_BATCH || max_datagram > UDP_MAX_DATAGRAM)
        return SHARDQ_EINVAL;
    struct shardq_stats s = {.size = sizeof s};
    if (shardq_stats(q, opts->shard, &s) != SHARDQ_OK || opts->shard == SHARDQ_SHARD_ANY)
        return SHARDQ_EINVAL;

    struct shardq_udp *u = calloc(1, sizeof *u);
    if (!u)
        return SHARDQ_ENOMEM;
    u->q = q;
    u->fd = opts->fd;
    u->shard = opts->shard;
    u->batch = batch;
    u->max_datagram = max_datagram;
    u->numa_node = opts->numa_node;
    u->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    size_t stride = 4 + (size_t)max_datagram;
    u->slots = malloc(stride * batch);
    u->msgs = calloc(batch, sizeof *u->msgs);
    u->iovs = calloc(batch, sizeof *u->iovs);
    int nets_ok = 1;
    if (n_networks) {
        size_t table = (size_t)n_networks * SHARDQ_UDP_NETWORK_BYTES;
        u->sources = calloc(batch, sizeof *u->sources);
        u->networks = malloc(table);
        nets_ok = u->sources && u->networks;
        if (nets_ok) {
            memcpy(u->networks, opts->networks, table);
            u->n_networks = n_networks;
        }
    }
    if (u->stop_fd < 0 || !u->slots || !u->msgs || !u->iovs || !nets_ok) {
        int rc = u->stop_fd < 0 ? -errno : SHARDQ_ENOMEM;
        release(u);
        return rc;
    }
    for (uint32_t i = 0; i < batch; i++) {
        u->iovs[i].iov_base = u->slots + i * stride + 4;  /* room for the record header */
        u->msgs[i].msg_hdr.msg_iov = &u->iovs[i];
        u->msgs[i].msg_hdr.msg_iovlen = 1;
        if (u->sources) {
            u->msgs[i].msg_hdr.msg_name = &u->sources[i];
            u->msgs[i].msg_hdr.msg_namelen = sizeof u->sources[i];
        }
    }
    int rc = pthread_create(&u->thread, NULL, receive_loop, u);
    if (rc) {
        release(u);
        return -rc;
    }
    *out = u;
    return SHARDQ_OK;
}

int shardq_udp_stats(shardq_udp_t *u, struct shardq_udp_stats *out)
{
    if (!u || !out || out->size < offsetof(struct shardq_udp_stats, source_refused))
        return SHARDQ_EINVAL;
    out->datagrams = atomic_load(&u->datagrams);
    out->bytes = atomic_load(&u->bytes);
    out->queue_full = atomic_load(&u->queue_full);
    out->truncated = atomic_load(&u->truncated);
    out->errors = atomic_load(&u->errors);
    out->last_errno = atomic_load(&u->last_errno);
    if (out->size >= sizeof(struct shardq_udp_stats))
        out->source_refused = atomic_load(&u->source_refused);
    return SHARDQ_OK;
}

void shardq_udp_stop(shardq_udp_t *u, struct shardq_udp_stats *final)
{
    if (!u)
        return;
    atomic_store(&u->stopping, true);
    uint64_t one = 1;
    while (write(u->stop_fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
    pthread_join(u->thread, NULL);
    if (final)
        shardq_udp_stats(u, final);
    release(u);
}
