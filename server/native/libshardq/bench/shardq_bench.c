/*
 * shardq_bench - ring push+pop throughput for 100-byte records.
 *
 * Single thread: push a batch, pop it back, repeat; batch sizes 1, 64, 1024.
 * Then one producer and one consumer thread at batch 64. Every loop is
 * bounded by a record count and by time. Prints ns/record and records/s.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shardq.h"

#define RECORD 100
#define MAX_RECORDS 2000000ULL
#define MAX_SECONDS 1.0

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static size_t fill(unsigned char *buf, size_t batch)
{
    size_t len = 0;
    for (size_t i = 0; i < batch; i++) {
        buf[len] = 0;
        buf[len + 1] = 0;
        buf[len + 2] = 0;
        buf[len + 3] = RECORD;
        memset(buf + len + 4, (int)i, RECORD);
        len += 4 + RECORD;
    }
    return len;
}

static shardq_t *make(void)
{
    struct shardq_options o = {sizeof o, 1, 65536, 16u << 20, 0, 0, NULL};
    shardq_t *q;
    if (shardq_create(&o, &q) != 0) {
        fprintf(stderr, "create failed\n");
        exit(1);
    }
    return q;
}

static void single(size_t batch)
{
    shardq_t *q = make();
    size_t cap = batch * (4 + RECORD);
    unsigned char *in = malloc(cap), *out = malloc(cap);
    size_t len = fill(in, batch);
    unsigned long long done = 0;
    double t0 = now(), t = t0;
    while (done < MAX_RECORDS) {
        for (int k = 0; k < 64; k++) {
            size_t n, nb;
            if (shardq_push_batch(q, 0, in, len, 0, &n) != 0 || n != batch)
                exit(1);
            if (shardq_pop_batch(q, 0, batch, out, cap, &n, &nb) != 0 || n != batch)
                exit(1);
            done += batch;
        }
        t = now();
        if (t - t0 > MAX_SECONDS)
            break;
    }
    double ns = (t - t0) * 1e9 / (double)done;
    printf("native  batch %5zu  push+pop  %8.1f ns/record  %12.0f records/s\n", batch, ns, 1e9 / ns);
    free(in);
    free(out);
    shardq_destroy(q);
}

static shardq_t *tq;
static _Atomic unsigned long long target;

static void *consumer(void *arg)
{
    (void)arg;
    unsigned char *out = malloc(1 << 20);
    unsigned long long got = 0;
    while (got < atomic_load(&target)) {
        size_t n, nb;
        int rc = shardq_pop_batch(tq, 0, 64, out, 1 << 20, &n, &nb);
        if (rc == 0)
            got += n;
        else if (rc == SHARDQ_EEMPTY)
            shardq_wait(tq, 100);
        else
            exit(1);
    }
    free(out);
    return NULL;
}

static void threaded(void)
{
    const size_t batch = 64;
    tq = make();
    atomic_store(&target, 1000000);
    unsigned char *in = malloc(batch * (4 + RECORD));
    size_t len = fill(in, batch);
    pthread_t c;
    double t0 = now();
    pthread_create(&c, NULL, consumer, NULL);
    unsigned long long sent = 0;
    while (sent < atomic_load(&target)) {
        size_t n;
        int rc = shardq_push_batch(tq, 0, in, len, SHARDQ_PUSH_ALL_OR_NOTHING, &n);
        if (rc == 0)
            sent += n;
        else if (rc == SHARDQ_EFULL)
            sched_yield();
        else
            exit(1);
        if (now() - t0 > 5 * MAX_SECONDS) { /* bounded even if the consumer stalls */
            atomic_store(&target, sent);
            break;
        }
    }
    pthread_join(c, NULL);
    double ns = (now() - t0) * 1e9 / (double)sent;
    printf("native  batch %5zu  1 producer + 1 consumer thread  %8.1f ns/record  %12.0f records/s\n",
           batch, ns, 1e9 / ns);
    free(in);
    shardq_destroy(tq);
}

int main(void)
{
    printf("libshardq ABI %u, crc32c %s, %d-byte records\n", shardq_abi_version(),
           (shardq_features() & SHARDQ_FEATURE_CRC32C_HW) ? "sse4.2" : "table", RECORD);
    single(1);
    single(64);
    single(1024);
    threaded();
    return 0;
}
