/* Fuzz target: protobuf field walker, Event span extraction, accept and stage. */
#include <stdlib.h>

#include "shardq.h"

static void fail(void)
{
    abort();
}

/* Whatever the request, accepted rows stay inside the buffers and stage. */
static void accept_and_stage(const uint8_t *data, size_t size)
{
    struct shardq_accept_limits lim = {sizeof lim, 64, 256, 32, 32, 4, 512};
    size_t cap = size / 2 + 1, n = 0, used = 0;
    uint32_t counts[3];
    uint64_t seq;
    struct shardq_accepted *rows = malloc(cap * sizeof *rows);
    unsigned char *bodies = malloc(2 * size + 16);
    if (rows == NULL || bodies == NULL)
        fail();
    int rc = shardq_pb_accept(data, size, 1, 2, &lim, rows, cap, &n, bodies, 2 * size + 16, &used,
                              counts, &seq);
    if (rc == 0) {
        size_t ok = (size_t)counts[0] + counts[1];
        if (ok + counts[2] != n)
            fail();
        for (size_t i = 0; i < n; i++) {
            const struct shardq_accepted *r = &rows[i];
            size_t limit = i < ok ? used : size;
            if ((size_t)r->body_off + r->body_len > limit || (i < ok) != (r->reason == 0))
                fail();
        }
        size_t records_cap = used + ok * (SHARDQ_ID_PREFIX_MAX + 16 + SHARDQ_RECORD_MAX_OVERHEAD);
        size_t results_cap = used + ok * (SHARDQ_ID_PREFIX_MAX + 16 + SHARDQ_ACK_MAX_OVERHEAD);
        size_t k = ok ? ok : 1;
        struct shardq_stage_args a = {.size = sizeof a, .partitions = 3, .time_ns = 1, .durability = 1,
                                      .result_tag = 0x0a, .id_prefix_len = 2, .id_prefix = "f-"};
        uint64_t next[3] = {0, 0, 0};
        uint32_t part_counts[3];
        struct shardq_staged out = {.size = sizeof out};
        out.records = malloc(records_cap);
        out.records_cap = records_cap;
        out.record_ends = malloc(k * 4);
        out.record_topics = malloc(k * 8);
        out.record_priorities = malloc(k);
        out.part_counts = part_counts;
        out.row_positions = malloc(k * 16);
        out.results = malloc(results_cap);
        out.results_cap = results_cap;
        if (!out.records || !out.record_ends || !out.record_topics || !out.record_priorities ||
            !out.row_positions || !out.results)
            fail();
        if (shardq_stage(&a, bodies, used, rows, ok, NULL, next, &out) != 0 || out.record_count != ok ||
            out.records_len > records_cap || out.results_len > results_cap)
            fail();
        free(out.records);
        free(out.record_ends);
        free(out.record_topics);
        free(out.record_priorities);
        free(out.row_positions);
        free(out.results);
    } else if (rc != SHARDQ_EBADMSG) {
        fail();
    }
    free(rows);
    free(bodies);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t spans[2 * 16];
    size_t n = 0;
    int rc = shardq_pb_fields(data, size, 1, spans, 16, &n);
    if (rc == 0 || rc == SHARDQ_ENOBUFS) {
        for (size_t i = 0; i < n && i < 16; i++)
            if ((size_t)spans[2 * i] + spans[2 * i + 1] > size)
                fail();
    } else if (rc != SHARDQ_EBADMSG) {
        fail();
    }
    struct shardq_event_spans e[8];
    rc = shardq_pb_events(data, size, 1, e, 8, &n);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++) {
            if ((size_t)e[i].event_off + e[i].event_len > size ||
                (size_t)e[i].topic_off + e[i].topic_len > size ||
                (size_t)e[i].payload_off + e[i].payload_len > size ||
                (size_t)e[i].key_off + e[i].key_len > size || (size_t)e[i].id_off + e[i].id_len > size)
                fail();
        }
    } else if (rc != SHARDQ_ENOBUFS && rc != SHARDQ_EBADMSG && rc != SHARDQ_EILSEQ) {
        fail();
    }
    rc = shardq_pb_event(data, size, e);
    if (rc != 0 && rc != SHARDQ_EBADMSG && rc != SHARDQ_EILSEQ)
        fail();
    accept_and_stage(data, size);
    return 0;
}
