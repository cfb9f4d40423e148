/*
 * Fuzz target: frame parser, topic check, pattern matcher and record selection.
 * Checks the parser's invariants on arbitrary bytes, not just "no crash".
 */
#include <stdlib.h>
#include <string.h>

#include "shardq.h"

#define MAX_OUT 64

static void fail(void)
{
    abort();
}

static void check_parse(const uint8_t *data, size_t size, uint32_t max_frame, uint32_t flags)
{
    struct shardq_frame f[MAX_OUT];
    size_t n = 0, used = 0;
    if (shardq_frame_parse(data, size, max_frame, flags, f, MAX_OUT, &n, &used) != 0)
        fail();
    if (n > MAX_OUT || used > size)
        fail();
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        int fatal = f[i].reason == SHARDQ_FRAME_TRUNCATED || f[i].reason == SHARDQ_FRAME_TOO_LONG;
        if (f[i].offset != pos || f[i].reason > SHARDQ_FRAME_TOPIC_EMPTY_LEVEL)
            fail();
        if (fatal) {
            if (i != n - 1 || pos != used)
                fail();
            if (f[i].reason == SHARDQ_FRAME_TRUNCATED && !(flags & SHARDQ_FRAME_FINAL))
                fail();
            break;
        }
        if ((size_t)f[i].offset + f[i].length > size || f[i].length < 4)
            fail();
        if (f[i].reason >= SHARDQ_FRAME_TOPIC_EMPTY || f[i].reason == SHARDQ_FRAME_OK) {
            if (f[i].topic_off != f[i].offset + 7 || f[i].payload_off != f[i].topic_off + f[i].topic_len ||
                f[i].payload_off + f[i].payload_len != f[i].offset + f[i].length)
                fail();
            if (shardq_topic_check(data + f[i].topic_off, f[i].topic_len) != f[i].reason)
                fail();
        }
        if (f[i].reason == SHARDQ_FRAME_OK &&
            (f[i].priority > 4 || f[i].hash != shardq_crc32c(0, data + f[i].topic_off, f[i].topic_len)))
            fail();
        pos += f[i].length;
    }
    if (n < MAX_OUT && !(flags & SHARDQ_FRAME_FINAL)) {
        /* Stopped early only for a fatal frame or an incomplete tail. */
        int fatal_last = n > 0 && (f[n - 1].reason == SHARDQ_FRAME_TOO_LONG);
        if (!fatal_last && used < size) {
            size_t left = size - used;
            if (left >= 4) {
                uint32_t l = (uint32_t)data[used] << 24 | (uint32_t)data[used + 1] << 16 |
                             (uint32_t)data[used + 2] << 8 | data[used + 3];
                if ((size_t)l + 4 <= left)
                    fail();
            }
        }
    }
}

/* Frames become Events: rows stay inside their buffers, nothing past consumed. */
static void frames_accept(const uint8_t *data, size_t size, uint32_t flags)
{
    struct shardq_accept_limits lim = {sizeof lim, 16, 64, 8, 8, 2, 0};
    size_t cap = size / 7 + 1, n = 0, used = 0, consumed = 0;
    uint32_t counts[3], fatal = 0;
    struct shardq_accepted *rows = malloc(cap * sizeof *rows);
    unsigned char *bodies = malloc(2 * size + 16);
    if (rows == NULL || bodies == NULL)
        abort();
    if (shardq_frames_accept(data, size, 128, flags, &lim, rows, cap, &n, bodies, 2 * size + 16, &used,
                             counts, &consumed, &fatal) != 0 ||
        consumed > size || (size_t)counts[0] + counts[1] + counts[2] != n)
        abort();
    for (size_t i = 0; i < n; i++) {
        int accepted = i < (size_t)counts[0] + counts[1];
        size_t limit = accepted ? used : consumed;
        if ((size_t)rows[i].body_off + rows[i].body_len > limit || accepted != (rows[i].reason == 0))
            abort();
    }
    free(rows);
    free(bodies);
}

/* Datagram batches: rows inside their buffers, and a refused datagram is one row. */
static void datagrams_accept(const uint8_t *data, size_t size)
{
    struct shardq_accept_limits lim = {sizeof lim, 16, 64, 8, 8, 2, 0};
    size_t cap = size / 4 + 1, n = 0, used = 0;
    uint32_t counts[3];
    struct shardq_accepted *rows = malloc(cap * sizeof *rows);
    unsigned char *bodies = malloc(2 * size + 16);
    if (rows == NULL || bodies == NULL)
        abort();
    int rc = shardq_datagrams_accept(data, size, 128, &lim, rows, cap, &n, bodies, 2 * size + 16,
                                     &used, counts);
    if (rc != 0 && rc != SHARDQ_EBADMSG)
        abort();
    if (rc == 0) {
        if ((size_t)counts[0] + counts[1] + counts[2] != n)
            abort();
        for (size_t i = 0; i < n; i++) {
            int accepted = i < (size_t)counts[0] + counts[1];
            size_t limit = accepted ? used : size;
            if ((size_t)rows[i].body_off + rows[i].body_len > limit || accepted != (rows[i].reason == 0))
                abort();
        }
    }
    free(rows);
    free(bodies);
}

/* Segment records selected by topic: the input is the block, the first byte's
 * low bits choose the priority floor; matches stay inside the output, the scan
 * inside the block, and every match of "#" is a match of everything. */
static void records_select(const uint8_t *data, size_t size)
{
    static const unsigned char pats[] = {3, 0, 'a', '/', '*', 1, 0, '#'};
    unsigned char *out = malloc(size + 1);
    if (out == NULL)
        abort();
    struct shardq_select_args a = {.size = sizeof a, .limit = 64, .n_patterns = 1, .patterns = pats,
                                   .patterns_len = 5, .budget = 256};
    a.min_priority = size ? data[0] & 7 : 0;
    int rc = shardq_records_select(data, size, &a, out, size);
    if ((rc != 0 && rc != SHARDQ_EBADMSG) || a.examined > a.limit || a.matched > a.examined ||
        a.out_len > size || a.end > size)
        abort();
    struct shardq_select_args all = a;
    all.n_patterns = 2;
    all.patterns_len = sizeof pats;
    all.budget = UINT64_MAX;
    int rc_all = shardq_records_select(data, size, &all, out, size);
    if ((rc_all != rc && !a.full) || all.examined < a.examined || all.matched < a.matched || all.full)
        abort();
    free(out);
}

/* An EVENTS payload from a peer: the scan and the checked scan stay in
 * bounds, give the same rows, and the check accepts nothing the scan refuses. */
static void entry_scan(const uint8_t *data, size_t size)
{
    int64_t blocks[8 * SHARDQ_ENTRY_BLOCK_FIELDS], ids[8 * SHARDQ_ENTRY_ID_FIELDS];
    int64_t cblocks[8 * SHARDQ_ENTRY_BLOCK_FIELDS], cids[8 * SHARDQ_ENTRY_ID_FIELDS];
    size_t nb = 0, ni = 0, cb = 0, ci = 0;
    int rc = shardq_entry_scan(data, size, 0, blocks, 8, &nb, ids, 8, &ni);
    int crc = shardq_entry_check(data, size, 0, cblocks, 8, &cb, cids, 8, &ci);
    if ((rc != 0 && rc != SHARDQ_EBADMSG && rc != SHARDQ_ENOBUFS) || (crc != 0 && crc != rc &&
        crc != SHARDQ_EBADMSG))
        fail();
    if (crc == 0 && (rc != 0 || cb != nb || ci != ni ||
                     memcmp(cblocks, blocks, nb * sizeof blocks[0] * SHARDQ_ENTRY_BLOCK_FIELDS) ||
                     memcmp(cids, ids, ni * sizeof ids[0] * SHARDQ_ENTRY_ID_FIELDS)))
        fail();
    for (size_t i = 0; rc == 0 && i < ni; i++) {
        const int64_t *row = ids + SHARDQ_ENTRY_ID_FIELDS * i;
        if (row[2] < 0 || row[3] <= 0 || (uint64_t)(row[2] + row[3]) > size)
            fail();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size, 1u << 20, 0);
    check_parse(data, size, 1u << 20, SHARDQ_FRAME_FINAL);
    check_parse(data, size, 16, SHARDQ_FRAME_FINAL);
    /* Pattern matching: split the input at the first NUL into pattern/topic. */
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    const uint8_t *topic = nul ? nul + 1 : data + size;
    size_t tlen = nul ? size - plen - 1 : 0;
    int m = shardq_topic_match(data, plen, topic, tlen);
    if (m != 0 && m != 1 && m != SHARDQ_EINVAL)
        fail();
    if (m >= 0 && shardq_topic_match("#", 1, topic, tlen) != 1)
        fail();
    if (shardq_topic_match(topic, tlen, topic, tlen) == 0 &&
        shardq_topic_check(topic, tlen) == SHARDQ_FRAME_OK)
        fail(); /* a valid topic is a pattern that matches itself */
    frames_accept(data, size, 0);
    frames_accept(data, size, SHARDQ_FRAME_FINAL);
    datagrams_accept(data, size);
    records_select(data, size);
    entry_scan(data, size);
    return 0;
}
