/* The de-duplication table: check, hold, promote, remember, expire, encode/restore, bounds. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "shardq.h"

/* Accepted rows whose ids are the given strings, back to back in @bodies. */
static size_t rows_of(const char **ids, size_t n, unsigned char *bodies, struct shardq_accepted *rows)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        memset(&rows[i], 0, sizeof rows[i]);
        rows[i].body_off = (uint32_t)at;
        rows[i].body_len = (uint32_t)(len + 2);
        rows[i].id_off = 2;
        rows[i].id_len = (uint32_t)len;
        bodies[at] = 0x0a;
        bodies[at + 1] = (unsigned char)len;
        memcpy(bodies + at + 2, ids[i], len);
        at += len + 2;
    }
    return at;
}

/* Id rows (partition, offset, position, length) of @ids, back to back in @buf. */
static size_t id_rows_of(const char **ids, const int64_t *positions, size_t n, unsigned char *buf,
                         int64_t *rows)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(ids[i]);
        memcpy(buf + at, ids[i], len);
        rows[4 * i] = positions[2 * i];
        rows[4 * i + 1] = positions[2 * i + 1];
        rows[4 * i + 2] = (int64_t)at;
        rows[4 * i + 3] = (int64_t)len;
        at += len;
    }
    return at;
}

static uint64_t count(shardq_dedup_t *t, int which)
{
    uint64_t c[3];
    CHECK_EQ(shardq_dedup_counts(t, c), 0);
    return c[which];
}

static void check_and_hold(void)
{
    shardq_dedup_t *t;
    CHECK_EQ(shardq_dedup_create(100, 10, &t), 0);
    const char *ids[] = {"a", "", "b", "a", "c"};
    unsigned char bodies[64];
    struct shardq_accepted rows[5];
    size_t len = rows_of(ids, 5, bodies, rows);
    struct shardq_dup v[5];
    size_t dups[2] = {99, 99};
    CHECK_EQ(shardq_dedup_check(t, bodies, len, rows, 5, 1000, v, dups), 0);
    CHECK_EQ(dups[0], 1); /* the second "a" repeats row 0 */
    CHECK_EQ(dups[1], 4);
    CHECK_EQ(v[0].partition, -1);
    CHECK_EQ(v[1].partition, -1);
    CHECK_EQ(v[3].partition, -2);
    uint64_t positions[10] = {0, 5, 1, 0, 1, 1, 1, 1, 0, 6};
    CHECK_EQ(shardq_dedup_hold(t, bodies, len, rows, 5, v, positions, 1000, 7), 0);
    CHECK_EQ(count(t, 1), 3); /* a, b, c in flight; the repeat and the empty id are not */
    CHECK_EQ(count(t, 0), 0);

    /* In flight: a duplicate whatever its age, with the held position. */
    CHECK_EQ(shardq_dedup_check(t, bodies, len, rows, 5, 1 << 30, v, dups), 0);
    CHECK_EQ(dups[0], 4);
    CHECK_EQ(v[0].partition, 0);
    CHECK_EQ(v[0].offset, 5);
    CHECK_EQ(v[0].time_ns, 1000);
    CHECK_EQ(v[2].partition, 1);
    CHECK_EQ(v[2].offset, 1);
    CHECK_EQ(v[4].offset, 6);

    /* A later entry's index below the tail's is refused. */
    CHECK_EQ(shardq_dedup_hold(t, bodies, len, rows, 5, v, positions, 1000, 6), SHARDQ_EINVAL);

    /* Promote: into the window in (partition, offset) order, out of flight. */
    CHECK_EQ(shardq_dedup_promote(t, 7, 1000), 0);
    CHECK_EQ(count(t, 1), 0);
    CHECK_EQ(count(t, 0), 3);
    unsigned char out[256];
    size_t out_len;
    CHECK_EQ(shardq_dedup_encode(t, out, sizeof out, &out_len), 0);
    CHECK_EQ(out_len, 4 + 3 * (22 + 1));
    CHECK_EQ(out[0], 3);
    CHECK_EQ(out[4 + 22], 'a');           /* (0, 5) */
    CHECK_EQ(out[4 + 23 + 22], 'c');      /* (0, 6) */
    CHECK_EQ(out[4 + 46 + 22], 'b');      /* (1, 1) */

    /* The window answers until the id is older than the window. */
    int64_t hit[3];
    CHECK_EQ(shardq_dedup_lookup(t, "b", 1, 1100, hit), 1);
    CHECK_EQ(hit[0], 1);
    CHECK_EQ(hit[1], 1);
    CHECK_EQ(hit[2], 1000);
    CHECK_EQ(shardq_dedup_lookup(t, "b", 1, 1101, hit), 0);
    CHECK_EQ(shardq_dedup_check(t, bodies, len, rows, 5, 1101, v, dups), 0);
    CHECK_EQ(dups[0], 1); /* only the repeat inside the call */
    shardq_dedup_destroy(t);
}

static void release_and_server_ids(void)
{
    shardq_dedup_t *t;
    CHECK_EQ(shardq_dedup_create(100, 10, &t), 0);
    const char *ids[] = {"x", "0123456789abcdef-1f", "y"};
    unsigned char buf[64];
    int64_t rows[12];
    int64_t positions[6] = {0, 0, 0, 1, 0, 2};
    size_t len = id_rows_of(ids, positions, 3, buf, rows);
    CHECK_EQ(shardq_dedup_hold_ids(t, buf, len, rows, 1, 10, 1), 0);
    CHECK_EQ(shardq_dedup_hold_ids(t, buf, len, rows + 4, 1, 10, 2), 0);
    CHECK_EQ(shardq_dedup_hold_ids(t, buf, len, rows + 8, 1, 10, 3), 0);
    CHECK_EQ(count(t, 1), 3);
    CHECK_EQ(shardq_dedup_release(t, 0, 3), 0); /* a round never proposed */
    CHECK_EQ(count(t, 1), 2);
    CHECK_EQ(shardq_dedup_promote(t, 2, 10), 0); /* the server's form is left out */
    CHECK_EQ(count(t, 0), 0);
    CHECK_EQ(count(t, 1), 1);
    CHECK_EQ(shardq_dedup_release(t, 1, UINT64_MAX), 0);
    CHECK_EQ(count(t, 1), 0);
    /* Rows outside the buffer, or ids too long: refused, nothing held. */
    rows[2] = (int64_t)len;
    CHECK_EQ(shardq_dedup_hold_ids(t, buf, len, rows, 1, 10, 4), SHARDQ_EINVAL);
    CHECK_EQ(shardq_dedup_remember(t, buf, len, rows, 1, 10), SHARDQ_EINVAL);
    rows[2] = 0;
    rows[3] = -1;
    CHECK_EQ(shardq_dedup_remember(t, buf, len, rows, 1, 10), SHARDQ_EINVAL);
    rows[3] = INT64_MAX;
    CHECK_EQ(shardq_dedup_remember(t, buf, len, rows, 1, 10), SHARDQ_EINVAL);
    CHECK_EQ(count(t, 0) + count(t, 1), 0);
    struct shardq_accepted bad;
    memset(&bad, 0, sizeof bad);
    bad.id_off = UINT32_MAX;
    bad.id_len = 4;
    struct shardq_dup v[1];
    size_t dups[2];
    CHECK_EQ(shardq_dedup_check(t, buf, len, &bad, 1, 0, v, dups), SHARDQ_EINVAL);
    bad.id_off = 0;
    bad.id_len = SHARDQ_DEDUP_ID_MAX + 1;
    CHECK_EQ(shardq_dedup_check(t, buf, len, &bad, 1, 0, v, dups), SHARDQ_EINVAL);
    CHECK_EQ(shardq_dedup_lookup(t, buf, SHARDQ_DEDUP_ID_MAX + 1, 0, (int64_t[3]){0}), SHARDQ_EINVAL);
    shardq_dedup_destroy(t);
}

static void expire_and_restore(void)
{
    shardq_dedup_t *t, *copy;
    CHECK_EQ(shardq_dedup_create(100, 2, &t), 0);
    CHECK_EQ(shardq_dedup_create(100, 2, &copy), 0);
    const char *ids[] = {"a", "b", "c", "d", "b"};
    int64_t positions[10] = {1, 10, 0, 1, 0, 2, 0, 3, 0, 4};
    unsigned char buf[16];
    int64_t rows[20];
    size_t len = id_rows_of(ids, positions, 5, buf, rows);
    CHECK_EQ(shardq_dedup_remember(t, buf, len, rows, 1, 0), 0);
    CHECK_EQ(shardq_dedup_remember(t, buf, len, rows + 4, 3, 200), 0);
    CHECK_EQ(count(t, 0), 4);
    CHECK_EQ(shardq_dedup_expire(t, 200), 0); /* count first (a, b), then age */
    CHECK_EQ(count(t, 0), 2);
    int64_t hit[3];
    CHECK_EQ(shardq_dedup_lookup(t, "b", 1, 200, hit), 0);
    CHECK_EQ(shardq_dedup_lookup(t, "d", 1, 200, hit), 1);
    CHECK_EQ(hit[1], 3);
    /* A remembered id again becomes the youngest. */
    CHECK_EQ(shardq_dedup_remember(t, buf, len, rows + 12, 1, 250), 0);
    CHECK_EQ(shardq_dedup_remember(t, buf, len, rows + 16, 1, 260), 0);
    CHECK_EQ(shardq_dedup_expire(t, 260), 0);
    CHECK_EQ(shardq_dedup_lookup(t, "c", 1, 260, hit), 0);
    CHECK_EQ(shardq_dedup_lookup(t, "d", 1, 260, hit), 1);
    CHECK_EQ(hit[2], 250);

    unsigned char out[128], again[128];
    size_t out_len, again_len;
    CHECK_EQ(shardq_dedup_encode(t, out, 3, &out_len), SHARDQ_ENOBUFS);
    CHECK_EQ(shardq_dedup_encode(t, out, sizeof out, &out_len), 0);
    CHECK_EQ(shardq_dedup_restore(copy, out, out_len), 0);
    CHECK_EQ(shardq_dedup_encode(copy, again, sizeof again, &again_len), 0);
    CHECK_EQ(again_len, out_len);
    CHECK(memcmp(out, again, out_len) == 0);
    /* Cut short or followed by other bytes: refused, the window unchanged. */
    CHECK_EQ(shardq_dedup_restore(copy, out, out_len - 1), SHARDQ_EBADMSG);
    out[out_len] = 0;
    CHECK_EQ(shardq_dedup_restore(copy, out, out_len + 1), SHARDQ_EBADMSG);
    CHECK_EQ(shardq_dedup_restore(copy, out, 3), SHARDQ_EBADMSG);
    CHECK_EQ(count(copy, 0), 2);
    /* Disabled (max_ids 0): nothing is remembered, expire empties it. */
    shardq_dedup_t *off;
    CHECK_EQ(shardq_dedup_create(100, 0, &off), 0);
    CHECK_EQ(shardq_dedup_restore(off, out, out_len), 0);
    CHECK_EQ(shardq_dedup_remember(off, buf, len, rows, 1, 0), 0);
    CHECK_EQ(count(off, 0), 2);
    CHECK_EQ(shardq_dedup_expire(off, 0), 0);
    CHECK_EQ(count(off, 0), 0);
    shardq_dedup_destroy(off);
    shardq_dedup_destroy(copy);
    shardq_dedup_destroy(t);
}

/* Many ids: the table grows and shrinks; every id is found while remembered. */
static void many_ids(void)
{
    shardq_dedup_t *t;
    enum { N = 20000 };
    CHECK_EQ(shardq_dedup_create(1000, N, &t), 0);
    static unsigned char buf[N * 8];
    static int64_t rows[N * 4];
    for (int i = 0; i < N; i++) {
        for (int d = 0, v = i; d < 8; d++, v /= 10)
            buf[8 * i + 7 - d] = (unsigned char)('0' + v % 10);
        rows[4 * i] = i % 7;
        rows[4 * i + 1] = i;
        rows[4 * i + 2] = 8 * i;
        rows[4 * i + 3] = 8;
    }
    CHECK_EQ(shardq_dedup_remember(t, buf, sizeof buf, rows, N, 5), 0);
    CHECK_EQ(count(t, 0), N);
    int64_t hit[3];
    int found = 0;
    for (int i = 0; i < N; i++)
        found += shardq_dedup_lookup(t, buf + 8 * i, 8, 5, hit) == 1 && hit[1] == i;
    CHECK_EQ(found, N);
    CHECK_EQ(shardq_dedup_expire(t, 2000), 0);
    CHECK_EQ(count(t, 0), 0);
    CHECK_EQ(count(t, 2), 4);
    shardq_dedup_destroy(t);
}

int main(void)
{
    check_and_hold();
    release_and_server_ids();
    expire_and_restore();
    many_ids();
    return CHECK_DONE();
}
