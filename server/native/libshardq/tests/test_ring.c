/* Queue behaviour: capacity, codes, ordering, wrap-around, counters, wake-ups. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "shardq.h"

static size_t put_rec(unsigned char *b, size_t at, const void *p, uint32_t n)
{
    b[at] = (unsigned char)(n >> 24);
    b[at + 1] = (unsigned char)(n >> 16);
    b[at + 2] = (unsigned char)(n >> 8);
    b[at + 3] = (unsigned char)n;
    memcpy(b + at + 4, p, n);
    return at + 4 + n;
}

static shardq_t *make(uint32_t shards, uint64_t recs, uint64_t bytes, uint32_t max_record)
{
    struct shardq_options o = {sizeof o, shards, recs, bytes, max_record, 0, NULL};
    shardq_t *q = NULL;
    CHECK_EQ(shardq_create(&o, &q), 0);
    return q;
}

static struct shardq_stats stats(shardq_t *q, uint32_t shard)
{
    struct shardq_stats s;
    s.size = sizeof s;
    CHECK_EQ(shardq_stats(q, shard, &s), 0);
    return s;
}

static int readable(shardq_t *q)
{
    int32_t fd;
    CHECK_EQ(shardq_eventfd(q, &fd), 0);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void test_create_args(void)
{
    shardq_t *q = NULL;
    struct shardq_options o = {sizeof o, 1, 10, 1024, 0, 0, NULL};
    o.size = 8;
    CHECK_EQ(shardq_create(&o, &q), SHARDQ_EINVAL);
    o.size = sizeof o;
    o.shards = 0;
    CHECK_EQ(shardq_create(&o, &q), SHARDQ_EINVAL);
    o.shards = 1;
    o.capacity_records = 0;
    CHECK_EQ(shardq_create(&o, &q), SHARDQ_EINVAL);
    o.capacity_records = 10;
    o.max_record = 2000; /* larger than a shard */
    CHECK_EQ(shardq_create(&o, &q), SHARDQ_EINVAL);
    o.max_record = 0;
    o.flags = 0x80;
    CHECK_EQ(shardq_create(&o, &q), SHARDQ_EINVAL);
    CHECK(q == NULL);
    shardq_destroy(NULL);
}

static void test_round_trip(void)
{
    shardq_t *q = make(1, 100, 4096, 256);
    unsigned char in[512], out[512];
    size_t len = 0, n, nb;
    len = put_rec(in, len, "one", 3);
    len = put_rec(in, len, "", 0);
    len = put_rec(in, len, "three", 5);
    CHECK_EQ(shardq_pop_batch(q, 0, 10, out, sizeof out, &n, &nb), SHARDQ_EEMPTY);
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 0, &n), 0);
    CHECK_EQ(n, 3);
    struct shardq_stats s = stats(q, SHARDQ_SHARD_ANY);
    CHECK_EQ(s.depth, 3);
    CHECK_EQ(s.depth_bytes, len);
    CHECK_EQ(s.capacity_records, 100);
    CHECK_EQ(s.capacity_bytes, 4096);
    CHECK_EQ(s.pushes, 3);
    CHECK_EQ(s.numa_node, -1);
    CHECK_EQ(shardq_pop_batch(q, 0, 10, out, sizeof out, &n, &nb), 0);
    CHECK_EQ(n, 3);
    CHECK_EQ(nb, len);
    CHECK(memcmp(in, out, len) == 0);
    s = stats(q, 0);
    CHECK_EQ(s.depth, 0);
    CHECK_EQ(s.pops, 3);
    /* max_records bounds a pop; order is kept. */
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 0, &n), 0);
    CHECK_EQ(shardq_pop_batch(q, 0, 1, out, sizeof out, &n, &nb), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(nb, 7);
    CHECK(memcmp(out + 4, "one", 3) == 0);
    /* A buffer too small for the first record reports the size needed. */
    CHECK_EQ(shardq_pop_batch(q, 0, 10, out, 3, &n, &nb), SHARDQ_ENOBUFS);
    CHECK_EQ(nb, 4);
    /* A buffer that holds only some records returns those. */
    CHECK_EQ(shardq_pop_batch(q, 0, 10, out, 8, &n, &nb), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(nb, 4);
    CHECK_EQ(shardq_pop_batch(q, 0, 10, out, 8, &n, &nb), SHARDQ_ENOBUFS);
    CHECK_EQ(nb, 9);
    CHECK_EQ(shardq_pop_batch(q, 0, 10, out, 9, &n, &nb), 0);
    CHECK_EQ(shardq_pop_batch(q, 0, 10, out, 9, &n, &nb), SHARDQ_EEMPTY);
    /* Arguments. */
    CHECK_EQ(shardq_push_batch(q, 1, in, len, 0, &n), SHARDQ_EINVAL);
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 4, &n), SHARDQ_EINVAL);
    CHECK_EQ(shardq_pop_batch(q, 0, 0, out, 9, &n, &nb), SHARDQ_EINVAL);
    CHECK_EQ(shardq_pop_batch(q, 7, 1, out, 9, &n, &nb), SHARDQ_EINVAL);
    CHECK_EQ(shardq_push_batch(q, 0, in, 0, 0, &n), 0);
    CHECK_EQ(n, 0);
    shardq_destroy(q);
}

static void test_full_and_too_large(void)
{
    shardq_t *q = make(1, 4, 1024, 100);
    unsigned char in[2048];
    size_t len = 0, n;
    for (int i = 0; i < 6; i++)
        len = put_rec(in, len, "abcdefgh", 8);
    /* All or nothing: refused whole. */
    CHECK_EQ(shardq_push_batch(q, 0, in, len, SHARDQ_PUSH_ALL_OR_NOTHING, &n), SHARDQ_EFULL);
    CHECK_EQ(n, 0);
    CHECK_EQ(stats(q, 0).full_rejections, 6);
    /* Default: the prefix that fits (4 records). */
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 0, &n), 0);
    CHECK_EQ(n, 4);
    CHECK_EQ(shardq_push_batch(q, 0, in, 12, 0, &n), SHARDQ_EFULL);
    struct shardq_stats s = stats(q, 0);
    CHECK_EQ(s.full_rejections, 6 + 2 + 1);
    CHECK_EQ(s.depth, 4);
    shardq_destroy(q);

    /* Bounded by bytes: 64-byte shard, records of 4 + 20 bytes: two fit. */
    q = make(1, 100, 64, 40);
    len = 0;
    for (int i = 0; i < 3; i++)
        len = put_rec(in, len, "01234567890123456789", 20);
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 0, &n), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(stats(q, 0).depth_bytes, 48);
    shardq_destroy(q);

    /* Too large: nothing pushed, index reported, counted. */
    q = make(1, 100, 4096, 10);
    len = 0;
    len = put_rec(in, len, "ok", 2);
    len = put_rec(in, len, "this one is too long", 20);
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 0, &n), SHARDQ_E2BIG);
    CHECK_EQ(n, 1);
    s = stats(q, 0);
    CHECK_EQ(s.depth, 0);
    CHECK_EQ(s.too_large_rejections, 1);
    /* Malformed batches. */
    CHECK_EQ(shardq_push_batch(q, 0, in, 5, 0, &n), SHARDQ_EBADMSG);   /* record cut */
    CHECK_EQ(shardq_push_batch(q, 0, in, 8, 0, &n), SHARDQ_EBADMSG);   /* header cut */
    CHECK_EQ(stats(q, 0).depth, 0);
    shardq_destroy(q);
}

static void test_wrap_around(void)
{
    /* 256-byte ring, varied sizes, many rounds: contents survive wrapping. */
    shardq_t *q = make(1, 1000, 256, 60);
    unsigned char in[4096], out[4096], payload[64];
    unsigned seed = 1;
    uint64_t pushed_total = 0, popped_total = 0;
    for (int round = 0; round < 2000; round++) {
        size_t len = 0, n, nb;
        int k = 1 + round % 5;
        for (int i = 0; i < k; i++) {
            uint32_t sz = (seed = seed * 1103515245u + 12345u) % 61;
            for (uint32_t j = 0; j < sz; j++)
                payload[j] = (unsigned char)(round + j);
            len = put_rec(in, len, payload, sz);
        }
        int rc = shardq_push_batch(q, 0, in, len, SHARDQ_PUSH_ALL_OR_NOTHING, &n);
        CHECK(rc == 0 || rc == SHARDQ_EFULL);
        if (rc == 0)
            pushed_total += n;
        rc = shardq_pop_batch(q, 0, 1000, out, sizeof out, &n, &nb);
        CHECK(rc == 0 || rc == SHARDQ_EEMPTY);
        if (rc == 0) {
            popped_total += n;
            /* Verify each record's pattern. */
            size_t pos = 0;
            for (size_t i = 0; i < n; i++) {
                uint32_t sz = (uint32_t)out[pos] << 24 | (uint32_t)out[pos + 1] << 16 |
                              (uint32_t)out[pos + 2] << 8 | out[pos + 3];
                CHECK(sz <= 60);
                for (uint32_t j = 1; j < sz; j++)
                    CHECK_EQ((unsigned char)(out[pos + 4 + j] - out[pos + 4]), (unsigned char)j);
                pos += 4 + sz;
            }
            CHECK_EQ(pos, nb);
        }
    }
    CHECK_EQ(pushed_total, popped_total);
    CHECK(pushed_total > 2000);
    shardq_destroy(q);
}

static void test_shards(void)
{
    shardq_t *q = make(4, 40, 4096, 0);
    unsigned char in[64], out[256];
    size_t len = put_rec(in, 0, "x", 1), n, nb;
    struct shardq_stats s = stats(q, SHARDQ_SHARD_ANY);
    CHECK_EQ(s.shards, 4);
    CHECK_EQ(s.capacity_records, 40);
    CHECK_EQ(s.capacity_bytes, 4096);
    CHECK_EQ(stats(q, 2).capacity_records, 10);
    for (uint32_t i = 0; i < 4; i++)
        CHECK_EQ(shardq_push_batch(q, SHARDQ_SHARD_ANY, in, len, 0, &n), 0);
    for (uint32_t i = 0; i < 4; i++)
        CHECK_EQ(stats(q, i).depth, 1); /* round-robin */
    CHECK_EQ(shardq_push_batch(q, 3, in, len, 0, &n), 0);
    CHECK_EQ(shardq_pop_batch(q, 3, 10, out, sizeof out, &n, &nb), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(shardq_pop_batch(q, SHARDQ_SHARD_ANY, 10, out, sizeof out, &n, &nb), 0);
    CHECK_EQ(n, 3);
    CHECK_EQ(stats(q, SHARDQ_SHARD_ANY).depth, 0);
    CHECK_EQ(shardq_pop_batch(q, SHARDQ_SHARD_ANY, 10, out, sizeof out, &n, &nb), SHARDQ_EEMPTY);
    shardq_destroy(q);
}

static void test_wakeups(void)
{
    shardq_t *q = make(2, 10, 1024, 0);
    unsigned char in[16], out[64];
    size_t len = put_rec(in, 0, "w", 1), n, nb;
    CHECK(!readable(q));
    /* No sleeper: a push does not touch the fd. */
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 0, &n), 0);
    CHECK(!readable(q));
    CHECK_EQ(shardq_sleep_prepare(q), SHARDQ_ENOTEMPTY);
    CHECK_EQ(shardq_pop_batch(q, SHARDQ_SHARD_ANY, 10, out, sizeof out, &n, &nb), 0);
    /* Armed (the earlier prepare left the flag): the next push wakes. */
    CHECK_EQ(shardq_sleep_prepare(q), 0);
    CHECK(!readable(q));
    CHECK_EQ(shardq_push_batch(q, 1, in, len, 0, &n), 0);
    CHECK(readable(q));
    CHECK_EQ(stats(q, SHARDQ_SHARD_ANY).wakeups, 1);
    CHECK_EQ(shardq_wakeup_clear(q), 0);
    CHECK(!readable(q));
    /* Only one wake-up per sleep. */
    CHECK_EQ(shardq_push_batch(q, 1, in, len, 0, &n), 0);
    CHECK(!readable(q));
    /* wait() returns at once when records wait, times out when empty. */
    CHECK_EQ(shardq_wait(q, 1000), 0);
    CHECK_EQ(shardq_pop_batch(q, SHARDQ_SHARD_ANY, 10, out, sizeof out, &n, &nb), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(shardq_wait(q, 5), SHARDQ_ETIMEDOUT);
    /* Close: pushes refused, records drain, then wait reports closed. */
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 0, &n), 0);
    CHECK_EQ(shardq_close(q), 0);
    CHECK_EQ(shardq_close(q), 0);
    CHECK(readable(q));
    CHECK_EQ(shardq_push_batch(q, 0, in, len, 0, &n), SHARDQ_ECLOSED);
    CHECK_EQ(shardq_wait(q, 0), 0);
    CHECK_EQ(shardq_pop_batch(q, SHARDQ_SHARD_ANY, 10, out, sizeof out, &n, &nb), 0);
    CHECK_EQ(shardq_wait(q, 1000), SHARDQ_ECLOSED);
    CHECK_EQ(shardq_sleep_prepare(q), SHARDQ_ECLOSED);
    shardq_destroy(q);
}

int main(void)
{
    test_create_args();
    test_round_trip();
    test_full_and_too_large();
    test_wrap_around();
    test_shards();
    test_wakeups();
    return CHECK_DONE();
}
