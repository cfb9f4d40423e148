/*
 * MPMC stress: producers push numbered records in random batches, consumers
 * pop from any shard and sleep on the wake-up protocol when it is empty.
 * Checks: every record arrives exactly once, intact, and each consumer sees
 * each producer's records in increasing order. Built under TSan and ASan.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shardq.h"

#define PRODUCERS 4
#define CONSUMERS 3
#define PER_PRODUCER 20000
#define MAX_PAYLOAD 40

static shardq_t *q;
static _Atomic unsigned char seen[PRODUCERS][PER_PRODUCER];
static _Atomic int errors;
static _Atomic int producers_left = PRODUCERS;

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void *producer(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    unsigned seed = id * 7919u + 1;
    unsigned char buf[16 * (4 + 8 + MAX_PAYLOAD)];
    uint32_t seq = 0;
    while (seq < PER_PRODUCER) {
        size_t len = 0;
        uint32_t batch = 1 + rand_r(&seed) % 16;
        for (uint32_t i = 0; i < batch && seq < PER_PRODUCER; i++, seq++) {
            uint32_t pl = rand_r(&seed) % MAX_PAYLOAD;
            put_be32(buf + len, 8 + pl);
            put_be32(buf + len + 4, id);
            put_be32(buf + len + 8, seq);
            memset(buf + len + 12, (int)(seq & 0xFF), pl);
            len += 12 + pl;
        }
        /* Keep each producer on one shard so its order is observable. */
        uint32_t shard = id % 2;
        size_t off = 0;
        while (off < len) {
            size_t pushed = 0;
            int rc = shardq_push_batch(q, shard, buf + off, len - off, 0, &pushed);
            if (rc == SHARDQ_EFULL) {
                sched_yield();
                continue;
            }
            if (rc != 0) {
                atomic_fetch_add(&errors, 1);
                return NULL;
            }
            for (size_t k = 0; k < pushed; k++)
                off += 4 + get_be32(buf + off);
        }
    }
    if (atomic_fetch_sub(&producers_left, 1) == 1)
        shardq_close(q);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    unsigned char out[4096];
    int64_t last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    for (;;) {
        size_t n = 0, nb = 0;
        int rc = shardq_pop_batch(q, SHARDQ_SHARD_ANY, 64, out, sizeof out, &n, &nb);
        if (rc == SHARDQ_EEMPTY) {
            rc = shardq_wait(q, 1000);
            if (rc == SHARDQ_ECLOSED)
                return NULL;
            if (rc != 0 && rc != SHARDQ_ETIMEDOUT)
                atomic_fetch_add(&errors, 1);
            continue;
        }
        if (rc != 0) {
            atomic_fetch_add(&errors, 1);
            return NULL;
        }
        size_t pos = 0;
        for (size_t k = 0; k < n; k++) {
            uint32_t len = get_be32(out + pos);
            uint32_t id = get_be32(out + pos + 4), seq = get_be32(out + pos + 8);
            if (len < 8 || id >= PRODUCERS || seq >= PER_PRODUCER || (int64_t)seq <= last[id]) {
                atomic_fetch_add(&errors, 1);
                return NULL;
            }
            last[id] = seq;
            for (uint32_t j = 8; j < len; j++)
                if (out[pos + 4 + j] != (unsigned char)(seq & 0xFF))
                    atomic_fetch_add(&errors, 1);
            atomic_fetch_add(&seen[id][seq], 1);
            pos += 4 + len;
        }
        if (pos != nb)
            atomic_fetch_add(&errors, 1);
    }
}

int main(void)
{
    /* Small shards so producers hit "full" and the ring wraps often. */
    struct shardq_options o = {sizeof o, 2, 256, 8192, 0, 0, NULL};
    CHECK_EQ(shardq_create(&o, &q), 0);
    pthread_t p[PRODUCERS], c[CONSUMERS];
    for (uintptr_t i = 0; i < CONSUMERS; i++)
        CHECK_EQ(pthread_create(&c[i], NULL, consumer, (void *)i), 0);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        CHECK_EQ(pthread_create(&p[i], NULL, producer, (void *)i), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(c[i], NULL);
    CHECK_EQ(atomic_load(&errors), 0);
    for (int i = 0; i < PRODUCERS; i++)
        for (int s = 0; s < PER_PRODUCER; s++)
            if (atomic_load(&seen[i][s]) != 1) {
                CHECK_EQ(atomic_load(&seen[i][s]), 1);
                i = PRODUCERS;
                break;
            }
    struct shardq_stats st;
    st.size = sizeof st;
    CHECK_EQ(shardq_stats(q, SHARDQ_SHARD_ANY, &st), 0);
    CHECK_EQ(st.pushes, PRODUCERS * PER_PRODUCER);
    CHECK_EQ(st.pops, PRODUCERS * PER_PRODUCER);
    CHECK_EQ(st.depth, 0);
    fprintf(stderr, "stress: %llu records, %llu full rejections, %llu wake-ups\n",
            (unsigned long long)st.pushes, (unsigned long long)st.full_rejections,
            (unsigned long long)st.wakeups);
    shardq_destroy(q);
    return CHECK_DONE();
}
