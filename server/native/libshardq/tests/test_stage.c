/* Accepting a publish request and staging its records: known vectors. */
#include <stddef.h>
#include <string.h>

#include "check.h"
#include "pbenc.h"
#include "shardq.h"

/* One Event: topic, payload, optional id and priority, a stale offset. */
static size_t put_event(unsigned char *b, size_t at, const char *id, const char *topic, int priority)
{
    unsigned char e[128];
    size_t n = 0;
    if (id)
        n = put_bytes(e, n, 1, id, strlen(id));
    n = put_bytes(e, n, 2, topic, strlen(topic));
    n = put_bytes(e, n, 4, "pay", 3);
    if (priority >= 0) {
        e[n++] = 0x28;
        e[n++] = (unsigned char)priority;
    }
    e[n++] = 0x50; /* offset 7: the server's to set, dropped */
    e[n++] = 7;
    return put_bytes(b, at, 1, e, n);
}

/* A header entry (key, value) as Event field 6. */
static size_t put_header(unsigned char *e, size_t at, const char *key, size_t key_len,
                         const char *value, size_t value_len)
{
    unsigned char entry[160];
    size_t n = put_bytes(entry, 0, 1, key, key_len);
    n = put_bytes(entry, n, 2, value, value_len);
    return put_bytes(e, at, 6, entry, n);
}

/* A Timestamp as Event field @field: seconds and nanos (an int32), each only when asked for. */
static size_t put_time(unsigned char *e, size_t at, uint32_t field, int64_t seconds, int64_t nanos,
                       int with_seconds, int with_nanos)
{
    unsigned char ts[32];
    size_t n = 0;
    if (with_seconds)
        n = put_uint(ts, n, 1, (uint64_t)seconds);
    if (with_nanos)
        n = put_uint(ts, n, 2, (uint64_t)(int64_t)(int32_t)nanos); /* int32: sign-extended */
    return put_bytes(e, at, field, ts, n);
}

/* The reason shardq_pb_accept() gives the one Event e[0, n). */
static uint32_t verdict(const struct shardq_accept_limits *lim, const unsigned char *e, size_t n)
{
    unsigned char req[4096], bodies[8300];
    struct shardq_accepted rows[1];
    size_t len = put_bytes(req, 0, 1, e, n), count = 0, used = 0;
    uint32_t counts[3];
    uint64_t seq;
    if (shardq_pb_accept(req, len, 1, 0, lim, rows, 1, &count, bodies, sizeof bodies, &used, counts,
                         &seq) != 0 || count != 1)
        return 999;
    return rows[0].reason;
}

/* Everything a client decodes is checked: headers, publish_time, the size. */
static void decodable_fields(void)
{
    struct shardq_accept_limits lim = {sizeof lim, 255, 1024, 64, 64, 8, 200};
    unsigned char e[512];
    size_t n, base = put_bytes(e, 0, 2, "a/b", 3);

    n = put_header(e, base, "k", 1, "v", 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    n = put_header(e, base, "k", 1, "\xff", 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_HEADER_NOT_UTF8);
    n = put_header(e, base, "\xc3", 1, "v", 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_HEADER_NOT_UTF8);
    /* A bad header after a malformed field: the first problem in field order. */
    n = put_uint(e, base, 1, 5);                           /* id as a varint */
    n = put_header(e, n, "k", 1, "\xff", 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_MALFORMED);
    static const unsigned char varint_key[] = {0x08, 0x01}; /* entry key as a varint */
    n = put_bytes(e, base, 6, varint_key, sizeof varint_key);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_MALFORMED);
    static const unsigned char extra[] = {0x0a, 0x01, 'k', 0x18, 0x05}; /* unknown field 3 */
    n = put_bytes(e, base, 6, extra, sizeof extra);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    /* A key twice is two entries, each counted. */
    n = base;
    for (int i = 0; i < 9; i++)
        n = put_header(e, n, "same", 4, "v", 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_TOO_MANY_HEADERS);

    /* publish_time: the Timestamp range, bounds included. */
    const int64_t min_s = -62135596800LL, max_s = 253402300799LL;
    n = put_time(e, base, 7, min_s, 0, 1, 0);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    n = put_time(e, base, 7, max_s, 999999999, 1, 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    n = put_time(e, base, 7, min_s - 1, 0, 1, 0);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE);
    n = put_time(e, base, 7, max_s + 1, 0, 1, 0);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE);
    n = put_time(e, base, 7, (int64_t)1 << 62, 0, 1, 0);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE);
    n = put_time(e, base, 7, 0, -1, 0, 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE);
    n = put_time(e, base, 7, 0, 1000000000, 0, 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE);
    /* nanos is an int32: 2^32 + 5 reads as 5. */
    unsigned char ts[16];
    size_t t = put_uint(ts, 0, 2, ((uint64_t)1 << 32) + 5);
    n = put_bytes(e, base, 7, ts, t);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    /* Occurrences merge: a later one without seconds keeps the earlier seconds. */
    n = put_time(e, base, 7, max_s + 1, 0, 1, 0);
    n = put_time(e, n, 7, 0, 7, 0, 1);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE);
    n = put_time(e, base, 7, max_s + 1, 0, 1, 0);
    n = put_time(e, n, 7, 12, 0, 1, 0);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    /* Seconds as fixed64: malformed. The server's ingest_time is not range-checked (dropped). */
    static const unsigned char fixed_seconds[] = {0x09, 1, 2, 3, 4, 5, 6, 7, 8};
    n = put_bytes(e, base, 7, fixed_seconds, sizeof fixed_seconds);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_MALFORMED);
    n = put_time(e, base, 8, (int64_t)1 << 62, 0, 1, 0);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    /* The range is checked before the topic. */
    unsigned char no_topic[32];
    n = put_time(no_topic, 0, 7, max_s + 1, 0, 1, 0);
    CHECK_EQ(verdict(&lim, no_topic, n), SHARDQ_EVENT_PUBLISH_TIME_OUT_OF_RANGE);

    /* Size: the Event as sent, headers included; after every other check. */
    char big[150];
    memset(big, 'h', sizeof big);
    n = put_header(e, base, "k", 1, big, 60);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    n = put_header(e, n, "l", 1, big, 60);
    n = put_header(e, n, "m", 1, big, 60);
    CHECK(n > 200);
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_TOO_LARGE);
    lim.max_event = 0;   /* no limit */
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    lim.max_event = 200;
    lim.size = offsetof(struct shardq_accept_limits, max_event);   /* a caller without the field */
    CHECK_EQ(verdict(&lim, e, n), SHARDQ_EVENT_OK);
    lim.size -= 1;
    CHECK_EQ(verdict(&lim, e, n), 999);
}

int main(void)
{
    decodable_fields();
    unsigned char req[512];
    size_t len = 0;
    len = put_event(req, len, NULL, "a/b", 1);   /* BATCH */
    len = put_event(req, len, "x", "a/c", 5);    /* CRITICAL */
    len = put_event(req, len, NULL, "", 3);      /* refused: empty topic */
    len = put_event(req, len, NULL, "a/d", 9);   /* refused: unknown priority */
    len = put_event(req, len, "y", "a/e", -1);   /* unspecified: MEDIUM */

    struct shardq_accept_limits lim = {sizeof lim, 255, 1024, 64, 64, 8, 0};
    struct shardq_accepted rows[8];
    unsigned char bodies[1200];
    size_t n = 0, used = 0;
    uint32_t counts[3];
    uint64_t seq = 0;
    CHECK_EQ(shardq_pb_accept(req, len, 1, 0, &lim, rows, 8, &n, bodies, sizeof bodies, &used, counts,
                              &seq), 0);
    CHECK_EQ(n, 5);
    CHECK_EQ(counts[0], 1);
    CHECK_EQ(counts[1], 2);
    CHECK_EQ(counts[2], 2);
    /* Realtime first, then batch, then refused; request order inside each. */
    CHECK_EQ(rows[0].index, 1);
    CHECK_EQ(rows[0].priority, 4);
    CHECK_EQ(rows[1].index, 0);
    CHECK_EQ(rows[2].index, 4);
    CHECK_EQ(rows[2].priority, 2);
    CHECK_EQ(rows[3].reason, SHARDQ_EVENT_TOPIC_EMPTY);
    CHECK_EQ(rows[4].reason, SHARDQ_EVENT_PRIORITY_UNKNOWN);
    CHECK(memcmp(bodies + rows[0].body_off + rows[0].id_off, "x", 1) == 0);
    CHECK(memcmp(bodies + rows[2].body_off + rows[2].topic_off, "a/e", 3) == 0);
    /* The cleaned body ends with the effective priority and lost the offset. */
    CHECK_EQ(bodies[rows[2].body_off + rows[2].body_len - 2], 0x28);
    CHECK_EQ(bodies[rows[2].body_off + rows[2].body_len - 1], 3);
    CHECK_EQ(rows[2].hash, shardq_hash("", 0, "a/e", 3));

    /* Buffers too small: the count needed comes back. A cut request is malformed. */
    struct shardq_accepted spare[8];
    unsigned char spare_bodies[1200];
    size_t spare_n = 0, spare_used = 0;
    CHECK_EQ(shardq_pb_accept(req, len, 1, 0, &lim, spare, 2, &spare_n, spare_bodies,
                              sizeof spare_bodies, &spare_used, counts, &seq), SHARDQ_ENOBUFS);
    CHECK_EQ(spare_n, 5);
    CHECK_EQ(shardq_pb_accept(req, 3, 1, 0, &lim, spare, 8, &spare_n, spare_bodies,
                              sizeof spare_bodies, &spare_used, counts, &seq), SHARDQ_EBADMSG);

    /* Stage the three accepted rows; row 2 (id "y") repeats row 0's id verdict-wise. */
    struct shardq_stage_args a = {.size = sizeof a, .partitions = 2, .time_ns = 1000000001,
                                  .durability = 3, .result_tag = 0x0a, .id_prefix_len = 2,
                                  .id_prefix = "s-"};
    struct shardq_dup dups[3] = {{-1, 0, 0}, {-1, 0, 0}, {-2, 0, 0}};
    uint64_t next[2] = {10, 20};
    unsigned char records[1024], results[1024], prio[3];
    uint32_t ends[3], topics[6], part_counts[2];
    uint64_t positions[6];
    struct shardq_staged out = {.size = sizeof out, .records = records, .records_cap = sizeof records,
                                .record_ends = ends, .record_topics = topics,
                                .record_priorities = prio, .part_counts = part_counts,
                                .row_positions = positions, .results = results,
                                .results_cap = sizeof results};
    CHECK_EQ(shardq_stage(&a, bodies, used, rows, 3, dups, next, &out), 0);
    CHECK_EQ(out.record_count, 2);
    CHECK_EQ(part_counts[0] + part_counts[1], 2);
    CHECK_EQ(next[0] + next[1], 32);
    CHECK_EQ(a.id_counter, 1);
    CHECK_EQ(positions[4], positions[0]); /* the duplicate gets row 0's place */
    CHECK_EQ(positions[5], positions[1]);
    for (size_t k = 0; k < 2; k++)
        CHECK(topics[2 * k] + topics[2 * k + 1] <= ends[k]);
    CHECK_EQ(records[0], 0x0a);
    CHECK_EQ(results[0], 0x0a);
    /* A duplicate may only point back at a new row. */
    struct shardq_dup bad[3] = {{-2, 0, 0}, {-1, 0, 0}, {-1, 0, 0}};
    CHECK_EQ(shardq_stage(&a, bodies, used, rows, 3, bad, next, &out), SHARDQ_EINVAL);
    out.records_cap = 8;
    CHECK_EQ(shardq_stage(&a, bodies, used, rows, 3, NULL, next, &out), SHARDQ_ENOBUFS);
    CHECK(out.records_len > 8); /* the room needed */
    out.records_cap = sizeof records;

    /* Records staged in their stored form make the same entry, byte for byte,
     * as the plain records encoded by shardq_entry_encode(). */
    unsigned char entries[2][2048];
    size_t entry_len[2];
    for (int stored = 0; stored < 2; stored++) {
        struct shardq_stage_args s = a;
        s.id_counter = 0;
        s.flags = stored ? SHARDQ_RECORDS_STORED : 0;
        uint64_t placed[2] = {10, 20}, offsets[2] = {10, 20};
        CHECK_EQ(shardq_stage(&s, bodies, used, rows, 3, dups, placed, &out), 0);
        struct shardq_entry_source es = {records, out.records_len, ends, topics, prio, part_counts,
                                         out.record_count, s.flags};
        int64_t blocks[2 * SHARDQ_ENTRY_BLOCK_FIELDS];
        struct shardq_entry_args e = {.size = sizeof e, .partitions = 2, .index = 7, .term = 2,
                                      .time_ns = s.time_ns, .sources = &es, .source_count = 1,
                                      .next_offsets = offsets, .out = entries[stored],
                                      .out_cap = sizeof entries[stored], .blocks = blocks,
                                      .blocks_cap = 2};
        if (stored) { /* records sealed with other offsets, or another time, are refused */
            uint64_t other[2] = {11, 20};
            e.next_offsets = other;
            CHECK_EQ(shardq_entry_encode(&e), SHARDQ_EINVAL);
            CHECK_EQ(other[0], 11);
            e.next_offsets = offsets;
            e.time_ns = s.time_ns + 1;
            CHECK_EQ(shardq_entry_encode(&e), SHARDQ_EINVAL);
            e.time_ns = s.time_ns;
        }
        CHECK_EQ(shardq_entry_encode(&e), 0);
        CHECK_EQ(offsets[0], placed[0]);
        CHECK_EQ(offsets[1], placed[1]);
        entry_len[stored] = e.out_len;
    }
    CHECK_EQ(entry_len[0], entry_len[1]);
    CHECK(memcmp(entries[0], entries[1], entry_len[0]) == 0);

    /* Frames: one good (CRITICAL), one with an empty topic, then a cut tail. */
    static const unsigned char frames[] = {0, 0, 0, 6, 4, 0, 1, 't', 'h', 'i', /* topic t, "hi" */
                                           0, 0, 0, 4, 0, 0, 0, 'x',           /* empty topic */
                                           0, 0, 0, 9, 1};                     /* cut */
    size_t consumed = 0;
    uint32_t fatal = 99;
    CHECK_EQ(shardq_frames_accept(frames, sizeof frames, 64, 0, &lim, rows, 8, &n, bodies, sizeof bodies,
                                  &used, counts, &consumed, &fatal), 0);
    CHECK_EQ(n, 2);
    CHECK_EQ(counts[0], 1);
    CHECK_EQ(counts[2], 1);
    CHECK_EQ(consumed, 18);
    CHECK_EQ(fatal, SHARDQ_FRAME_OK);
    CHECK_EQ(rows[0].priority, 4);
    CHECK_EQ(rows[1].reason, SHARDQ_EVENT_FRAME_BASE + SHARDQ_FRAME_TOPIC_EMPTY);
    static const unsigned char event[] = {0x12, 1, 't', 0x22, 2, 'h', 'i', 0x28, 5};
    CHECK_EQ(rows[0].body_len, sizeof event);
    CHECK(memcmp(bodies + rows[0].body_off, event, sizeof event) == 0);
    CHECK_EQ(shardq_frames_accept(frames, sizeof frames, 64, SHARDQ_FRAME_FINAL, &lim, rows, 8, &n, bodies,
                                  sizeof bodies, &used, counts, &consumed, &fatal), 0);
    CHECK_EQ(fatal, SHARDQ_FRAME_TRUNCATED);

    /* Datagrams, each whole or not at all: [good CRITICAL + good BATCH],
     * [good, empty topic], [cut frame], [] and [good BATCH]. */
    static const unsigned char dgrams[] = {
        0, 0, 0, 20, 0, 0, 0, 6, 4, 0, 1, 't', 'h', 'i', 0, 0, 0, 6, 0, 0, 1, 'u', 'h', 'o',
        0, 0, 0, 18, 0, 0, 0, 6, 4, 0, 1, 't', 'h', 'i', 0, 0, 0, 4, 0, 0, 0, 'x',
        0, 0, 0, 5, 0, 0, 0, 9, 1,
        0, 0, 0, 0,
        0, 0, 0, 10, 0, 0, 0, 6, 1, 0, 1, 'v', 'o', 'k'};
    struct shardq_accepted drows[32];
    CHECK_EQ(shardq_datagrams_accept(dgrams, sizeof dgrams, 64, &lim, drows, 32, &n, bodies,
                                     sizeof bodies, &used, counts), 0);
    CHECK_EQ(n, 5);
    CHECK_EQ(counts[0], 1);   /* realtime: t */
    CHECK_EQ(counts[1], 2);   /* batch: u, v */
    CHECK_EQ(counts[2], 2);   /* the 2nd and 3rd datagrams */
    CHECK_EQ(drows[0].index, 0);
    CHECK_EQ(drows[0].body_len, sizeof event);
    CHECK(memcmp(bodies + drows[0].body_off, event, sizeof event) == 0);
    CHECK_EQ(drows[1].index, 0);
    CHECK_EQ(drows[2].index, 4);
    CHECK_EQ(drows[2].priority, 1);
    CHECK_EQ(drows[3].index, 1);
    CHECK_EQ(drows[3].reason, SHARDQ_EVENT_FRAME_BASE + SHARDQ_FRAME_TOPIC_EMPTY);
    CHECK_EQ(drows[3].body_off, 38);   /* the bad frame, in the batch */
    CHECK_EQ(drows[3].id_off, 1);      /* one good frame went with it */
    CHECK_EQ(drows[4].index, 2);
    CHECK_EQ(drows[4].reason, SHARDQ_EVENT_FRAME_BASE + SHARDQ_FRAME_TRUNCATED);
    CHECK_EQ(drows[4].id_off, 0);
    /* Not a record batch; too little room. */
    CHECK_EQ(shardq_datagrams_accept(dgrams, 3, 64, &lim, drows, 32, &n, bodies, sizeof bodies,
                                     &used, counts), SHARDQ_EBADMSG);
    CHECK_EQ(shardq_datagrams_accept(dgrams, sizeof dgrams - 1, 64, &lim, drows, 32, &n, bodies,
                                     sizeof bodies, &used, counts), SHARDQ_EBADMSG);
    CHECK_EQ(shardq_datagrams_accept(dgrams, sizeof dgrams, 64, &lim, drows, 4, &n, bodies,
                                     sizeof bodies, &used, counts), SHARDQ_ENOBUFS);
    return CHECK_DONE();
}
