/* Fuzz target: protobuf field walker, Event span extraction, accept and stage. */
#include <stdlib.h>
#include <string.h>

#include "shardq.h"

static void fail(void)
{
    abort();
}

/* The EVENTS entry of one staged source (plain or sealed records); its size, 0 on failure. */
static size_t entry_of(const struct shardq_staged *out, uint32_t flags, unsigned char *entry,
                       size_t cap)
{
    struct shardq_entry_source src = {out->records, out->records_len, out->record_ends,
                                      out->record_topics, out->record_priorities,
                                      out->part_counts, out->record_count, flags};
    uint64_t next[3] = {0, 0, 0};
    int64_t blocks[3 * SHARDQ_ENTRY_BLOCK_FIELDS];
    struct shardq_entry_args e = {.size = sizeof e, .partitions = 3, .index = 1, .term = 1,
                                  .time_ns = 1, .sources = &src, .source_count = 1,
                                  .next_offsets = next, .out = entry, .out_cap = cap,
                                  .blocks = blocks, .blocks_cap = 3};
    return shardq_entry_encode(&e) == 0 ? e.out_len : 0;
}

/* Whatever the request, accepted rows stay inside the buffers and stage; the
 * records staged sealed make the entry the plain ones make, byte for byte. */
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
        size_t entry_cap = 2 * records_cap + ok * SHARDQ_SEGMENT_HEADER + 64;
        unsigned char *plain = malloc(entry_cap), *sealed_entry = malloc(entry_cap);
        unsigned char *sealed = malloc(entry_cap);
        if (plain == NULL || sealed_entry == NULL || sealed == NULL)
            fail();
        size_t plain_len = entry_of(&out, 0, plain, entry_cap);
        struct shardq_staged again = out;
        again.records = sealed;
        again.records_cap = entry_cap;
        uint64_t next2[3] = {0, 0, 0};
        a.id_counter = 0;
        a.flags = SHARDQ_RECORDS_STORED;
        if (shardq_stage(&a, bodies, used, rows, ok, NULL, next2, &again) != 0 ||
            next2[0] != next[0] || next2[1] != next[1] || next2[2] != next[2])
            fail();
        size_t sealed_len = entry_of(&again, SHARDQ_RECORDS_STORED, sealed_entry, entry_cap);
        if (plain_len == 0 || plain_len != sealed_len || memcmp(plain, sealed_entry, plain_len))
            fail();
        free(plain);
        free(sealed_entry);
        free(sealed);
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
