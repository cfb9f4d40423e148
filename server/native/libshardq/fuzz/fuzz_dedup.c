/*
 * Fuzz target: the de-duplication table's snapshot reader and its id rows.
 * Checks invariants, not just "no crash": an accepted snapshot encodes to at
 * most its own size, and that encoding restores to itself; id rows and
 * accepted rows taken from the input are refused or stay inside it.
 */
#include <stdlib.h>
#include <string.h>

#include "shardq.h"

static void fail(void)
{
    abort();
}

static uint64_t word(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void check_restore(shardq_dedup_t *t, const uint8_t *data, size_t size)
{
    if (shardq_dedup_restore(t, data, size) != 0)
        return;
    size_t len = 0;
    if (shardq_dedup_encode(t, NULL, 0, &len) != SHARDQ_ENOBUFS || len > size)
        fail();
    uint8_t *out = malloc(len), *again = malloc(len);
    size_t got = 0;
    if (!out || !again || shardq_dedup_encode(t, out, len, &got) != 0 || got != len)
        fail();
    if (shardq_dedup_restore(t, out, len) != 0 || shardq_dedup_encode(t, again, len, &got) != 0 ||
        got != len || memcmp(out, again, len) != 0)
        fail();
    free(out);
    free(again);
}

/* Rows read from the input: (partition, offset, position, length) words. */
static void check_rows(shardq_dedup_t *t, const uint8_t *data, size_t size)
{
    enum { MAX_ROWS = 16 };
    int64_t rows[4 * MAX_ROWS];
    size_t n = size / 32 < MAX_ROWS ? size / 32 : MAX_ROWS;
    for (size_t i = 0; i < 4 * n; i++)
        rows[i] = (int64_t)word(data + 8 * i);
    for (size_t i = 0; i < n; i++) /* mostly small positions and lengths */
        if (rows[4 * i + 3] & 1) {
            rows[4 * i + 2] = (int64_t)((uint64_t)rows[4 * i + 2] % (size + 1));
            rows[4 * i + 3] = (int64_t)((uint64_t)rows[4 * i + 3] % 40);
        }
    int rc = shardq_dedup_remember(t, data, size, rows, n, 5);
    if (rc != 0 && rc != SHARDQ_EINVAL)
        fail();
    rc = shardq_dedup_hold_ids(t, data, size, rows, n, 5, 1);
    if (rc != 0 && rc != SHARDQ_EINVAL)
        fail();
    if (shardq_dedup_promote(t, 1, 6) != 0 || shardq_dedup_expire(t, 6) != 0)
        fail();

    struct shardq_accepted acc[MAX_ROWS];
    struct shardq_dup v[MAX_ROWS];
    memset(acc, 0, sizeof acc);
    for (size_t i = 0; i < n; i++) {
        acc[i].body_off = (uint32_t)(rows[4 * i + 2] & 0xffff);
        acc[i].id_off = (uint32_t)((uint64_t)rows[4 * i + 2] >> 16 & 0xff);
        acc[i].id_len = (uint32_t)((uint64_t)rows[4 * i + 3] & 0x3f);
    }
    size_t counts[2] = {0, 0};
    rc = shardq_dedup_check(t, data, size, acc, n, 6, v, counts);
    if (rc == 0) {
        if (counts[0] > counts[1] || counts[1] > n)
            fail();
        for (size_t i = 0; i < n; i++)
            if (v[i].partition < -1 && (size_t)(-2 - v[i].partition) >= i)
                fail();
    } else if (rc != SHARDQ_EINVAL) {
        fail();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shardq_dedup_t *t;
    if (shardq_dedup_create(10, 1000, &t) != 0)
        fail();
    check_restore(t, data, size);
    check_rows(t, data, size);
    shardq_dedup_destroy(t);
    return 0;
}
