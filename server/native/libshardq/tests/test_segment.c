/* Encoding log records as segment records: layout, CRC, index, stops. */
#include <string.h>

#include "check.h"
#include "pbenc.h"
#include "shardq.h"

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Two submissions over three partitions become one EVENTS entry of the entry log. */
static void entry_encode(void)
{
    /* Source 0: partition 0 "x/aaa" (topic x/a inside it), partition 2 "y/b" "y/cc".
     * Source 1: partition 2 "y/dddd". Partition 1: nothing. */
    const unsigned char rec0[] = "x/aaay/by/cc";
    uint32_t ends0[3] = {5, 8, 12};
    uint32_t topics0[6] = {0, 3, 5, 3, 8, 3};
    uint8_t prio0[3] = {1, 2, 3};
    uint32_t counts0[3] = {1, 0, 2};
    const unsigned char rec1[] = "y/dddd";
    uint32_t ends1[1] = {6};
    uint32_t topics1[2] = {0, 3};
    uint8_t prio1[1] = {4};
    uint32_t counts1[3] = {0, 0, 1};
    struct shardq_entry_source sources[2] = {
        {rec0, 12, ends0, topics0, prio0, counts0, 3, 0},
        {rec1, 6, ends1, topics1, prio1, counts1, 1, 0},
    };
    uint64_t next[3] = {10, 20, 30};
    unsigned char out[512];
    int64_t blocks[3 * SHARDQ_ENTRY_BLOCK_FIELDS];
    struct shardq_entry_args a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.partitions = 3;
    a.index = 7;
    a.term = 2;
    a.time_ns = 99;
    a.sources = sources;
    a.source_count = 2;
    a.next_offsets = next;
    a.out = out;
    a.out_cap = 10;
    a.blocks = blocks;
    a.blocks_cap = 3;

    /* Too small: nothing written or advanced, the size needed said. */
    /* A segment record: its header, its topic, then the whole record (topic inside). */
    size_t records = (27 + 3 + 5) + (27 + 3 + 3) + (27 + 3 + 4) + (27 + 3 + 6);
    size_t size = SHARDQ_ENTRY_HEADER + 2 * SHARDQ_ENTRY_GROUP_HEADER + records;
    CHECK_EQ(shardq_entry_encode(&a), SHARDQ_ENOBUFS);
    CHECK_EQ(a.out_len, size);
    CHECK_EQ(next[0], 10);
    a.out_cap = sizeof out;
    CHECK_EQ(shardq_entry_encode(&a), 0);
    CHECK_EQ(a.out_len, size);
    CHECK_EQ(le(out, 4), size - 4);
    CHECK_EQ(le(out + 4, 4), shardq_crc32c(0, out + 8, size - 8));
    CHECK_EQ(le(out + 8, 8), 7);
    CHECK_EQ(le(out + 16, 8), 2);
    CHECK_EQ(out[24], SHARDQ_ENTRY_EVENTS);
    /* Partition 0's group, then partition 2's: source 0's two records, then source 1's. */
    const unsigned char *g = out + SHARDQ_ENTRY_HEADER;
    CHECK_EQ(le(g, 4), 0);
    CHECK_EQ(le(g + 4, 4), 1);
    CHECK_EQ(le(g + 8, 4), 27 + 3 + 5);
    CHECK_EQ(le(g + 12 + 8, 8), 10);
    CHECK(memcmp(g + 12 + 27, "x/ax/aaa", 8) == 0);
    g += 12 + 27 + 3 + 5;
    CHECK_EQ(le(g, 4), 2);
    CHECK_EQ(le(g + 4, 4), 3);
    CHECK_EQ(le(g + 8, 4), 3 * 27 + 9 + 3 + 4 + 6);
    const unsigned char *r = g + 12 + 2 * 27 + 6 + 3 + 4;
    CHECK_EQ(le(r + 8, 8), 32);
    CHECK_EQ((int64_t)le(r + 16, 8), 99);
    CHECK_EQ(r[24], 4);
    CHECK(memcmp(r + 27, "y/dy/dddd", 9) == 0);
    size_t end = 0;
    CHECK_EQ(shardq_crc32c_records(out + (g + 12 - out), le(g + 8, 4), 23, 0, &end), 0);
    CHECK_EQ(end, le(g + 8, 4));
    CHECK_EQ(next[0], 11);
    CHECK_EQ(next[1], 20);
    CHECK_EQ(next[2], 33);
    CHECK_EQ(a.block_count, 2);
    CHECK_EQ(blocks[0], 0);
    CHECK_EQ(blocks[1], 10);
    CHECK_EQ(blocks[2], 1);
    CHECK_EQ(blocks[3], SHARDQ_ENTRY_HEADER + 12);
    CHECK_EQ(blocks[6], 2);
    CHECK_EQ(blocks[7], 30);
    CHECK_EQ(blocks[8], 3);
    CHECK_EQ(blocks[9], (int64_t)(g + 12 - out));
    CHECK_EQ(blocks[10], 3 * 27 + 9 + 3 + 4 + 6);
    CHECK_EQ(blocks[11], 99);

    /* Counts that do not add up, spans outside the records, no room for the blocks. */
    counts1[1] = 1;
    CHECK_EQ(shardq_entry_encode(&a), SHARDQ_EINVAL);
    counts1[1] = 0;
    topics1[1] = 7;
    CHECK_EQ(shardq_entry_encode(&a), SHARDQ_EINVAL);
    topics1[1] = 3;
    a.blocks_cap = 1;
    CHECK_EQ(shardq_entry_encode(&a), SHARDQ_ENOBUFS);
    CHECK_EQ(next[2], 33);
    a.partitions = 0;
    CHECK_EQ(shardq_entry_encode(&a), SHARDQ_EINVAL);
}

/* A framed event (field 1 of a delivery message) with these fields. */
static size_t framed(unsigned char *out, const char *topic, const char *id1, const char *id2)
{
    unsigned char body[128];
    size_t n = 0;
    if (id1)
        n = put_bytes(body, n, 1, id1, strlen(id1));
    n = put_bytes(body, n, 2, topic, strlen(topic));
    if (id2)
        n = put_bytes(body, n, 1, id2, strlen(id2));
    n = put_uint(body, n, 10, 5);
    size_t at = put_varint(out, 1, n);
    out[0] = 0x0a;
    memcpy(out + at, body, n);
    return at + n;
}

/* Producer-chosen ids and blocks of an EVENTS payload; server-made ids left out. */
static void entry_scan(void)
{
    unsigned char rec[512], out[1024];
    size_t ends[4], at = 0;
    /* Partition 1: an event with the producer's id "p-1"; one whose id the
     * server made (appended after the body, last wins over an empty one);
     * partition 3: "x" then "y" (the last wins). */
    at += framed(rec + at, "a/b", "p-1", NULL);
    ends[0] = at;
    at += framed(rec + at, "a/b", "", "0123456789abcdef-1f");
    ends[1] = at;
    at += framed(rec + at, "c", NULL, NULL);
    ends[2] = at;
    at += framed(rec + at, "c", "x", "y");
    ends[3] = at;
    uint32_t e32[4] = {(uint32_t)ends[0], (uint32_t)ends[1], (uint32_t)ends[2], (uint32_t)ends[3]};
    uint32_t topics[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t prio[4] = {0, 1, 2, 3};
    uint32_t counts[4] = {0, 2, 0, 2};
    struct shardq_entry_source source = {rec, at, e32, topics, prio, counts, 4, 0};
    uint64_t next[4] = {0, 40, 0, 7};
    int64_t blocks[4 * SHARDQ_ENTRY_BLOCK_FIELDS];
    struct shardq_entry_args a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.partitions = 4;
    a.index = 3;
    a.term = 1;
    a.time_ns = 1234;
    a.sources = &source;
    a.source_count = 1;
    a.next_offsets = next;
    a.out = out;
    a.out_cap = sizeof out;
    a.blocks = blocks;
    a.blocks_cap = 4;
    CHECK_EQ(shardq_entry_encode(&a), 0);
    const unsigned char *payload = out + SHARDQ_ENTRY_HEADER;
    size_t len = a.out_len - SHARDQ_ENTRY_HEADER;

    int64_t got_blocks[4 * SHARDQ_ENTRY_BLOCK_FIELDS], ids[4 * SHARDQ_ENTRY_ID_FIELDS];
    size_t nb = 0, ni = 0;
    /* Too small: the totals are said. */
    CHECK_EQ(shardq_entry_scan(payload, len, 4, got_blocks, 1, &nb, ids, 1, &ni), SHARDQ_ENOBUFS);
    CHECK_EQ(nb, 2);
    CHECK_EQ(ni, 2);
    CHECK_EQ(shardq_entry_scan(payload, len, 4, got_blocks, 4, &nb, ids, 4, &ni), 0);
    CHECK_EQ(nb, 2);
    for (int i = 0; i < 2 * SHARDQ_ENTRY_BLOCK_FIELDS; i++) {
        int64_t want = blocks[i];
        if (i % SHARDQ_ENTRY_BLOCK_FIELDS == 3)
            want -= SHARDQ_ENTRY_HEADER; /* positions from the payload's start */
        CHECK_EQ(got_blocks[i], want);
    }
    CHECK_EQ(ni, 2);
    CHECK_EQ(ids[0], 1);
    CHECK_EQ(ids[1], 40);
    CHECK_EQ(ids[3], 3);
    CHECK(memcmp(payload + ids[2], "p-1", 3) == 0);
    CHECK_EQ(ids[4], 3);
    CHECK_EQ(ids[5], 8);
    CHECK_EQ(ids[7], 1);
    CHECK(memcmp(payload + ids[6], "y", 1) == 0);

    /* Structure checks: a partition out of range, a count that does not match, a cut. */
    CHECK_EQ(shardq_entry_scan(payload, len, 2, got_blocks, 4, &nb, ids, 4, &ni), SHARDQ_EBADMSG);
    unsigned char bad[1024];
    memcpy(bad, payload, len);
    bad[4] = 3; /* partition 1's count */
    CHECK_EQ(shardq_entry_scan(bad, len, 4, got_blocks, 4, &nb, ids, 4, &ni), SHARDQ_EBADMSG);
    CHECK_EQ(shardq_entry_scan(payload, len - 1, 4, got_blocks, 4, &nb, ids, 4, &ni),
             SHARDQ_EBADMSG);
    CHECK_EQ(shardq_entry_scan(payload, 0, 4, got_blocks, 4, &nb, ids, 4, &ni), 0);
    CHECK_EQ(nb, 0);
    CHECK_EQ(shardq_entry_scan(NULL, 1, 4, got_blocks, 4, &nb, ids, 4, &ni), SHARDQ_EINVAL);

    /* The checked scan: the same rows; a byte changed in a record's event is
     * missed by the scan and refused by the check. */
    int64_t checked_blocks[4 * SHARDQ_ENTRY_BLOCK_FIELDS], checked_ids[4 * SHARDQ_ENTRY_ID_FIELDS];
    size_t cb = 0, ci = 0;
    CHECK_EQ(shardq_entry_scan(payload, len, 4, got_blocks, 4, &nb, ids, 4, &ni), 0);
    CHECK_EQ(shardq_entry_check(payload, len, 4, checked_blocks, 4, &cb, checked_ids, 4, &ci), 0);
    CHECK_EQ(cb, nb);
    CHECK_EQ(ci, ni);
    CHECK(memcmp(checked_blocks, got_blocks, nb * SHARDQ_ENTRY_BLOCK_FIELDS * 8) == 0);
    CHECK(memcmp(checked_ids, ids, ni * SHARDQ_ENTRY_ID_FIELDS * 8) == 0);
    memcpy(bad, payload, len);
    bad[ids[2]] ^= 1; /* the first id's first byte */
    CHECK_EQ(shardq_entry_scan(bad, len, 4, got_blocks, 4, &nb, ids, 4, &ni), 0);
    CHECK_EQ(shardq_entry_check(bad, len, 4, checked_blocks, 4, &cb, checked_ids, 4, &ci),
             SHARDQ_EBADMSG);
    CHECK_EQ(shardq_entry_check(NULL, 1, 4, got_blocks, 4, &nb, ids, 4, &ni), SHARDQ_EINVAL);
}

int main(void)
{
    entry_encode();
    entry_scan();
    /* Three records "aaaa" "bb" "cccccc" at 2..14 of the buffer; topics in a second buffer. */
    const unsigned char records[] = "..aaaabbcccccc";
    const unsigned char names[] = "t/1t/22";
    uint32_t ends[3] = {6, 8, 14};
    uint32_t topics[6] = {0, 3, 3, 4, 0, 3};
    uint8_t prio[3] = {0, 4, 2};
    unsigned char out[256];
    uint32_t index[8];
    struct shardq_segment_args a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.index_interval = 40;
    a.records = records;
    a.records_len = 14;
    a.records_start = 2;
    a.record_ends = ends;
    a.topic_data = names;
    a.topic_data_len = 7;
    a.record_topics = topics;
    a.record_priorities = prio;
    a.record_count = 3;
    a.time_ns = -5;
    a.base = a.next_offset = 100;
    a.roll_at = 1000;
    a.out = out;
    a.out_cap = sizeof out;
    a.index = index;
    a.index_cap = 4;

    CHECK_EQ(shardq_segment_encode(&a), 0);
    CHECK_EQ(a.next_record, 3);
    CHECK_EQ(a.next_offset, 103);
    size_t sizes[3] = {27 + 3 + 4, 27 + 4 + 2, 27 + 3 + 6};
    CHECK_EQ(a.out_len, sizes[0] + sizes[1] + sizes[2]);
    CHECK_EQ(a.position, a.out_len);
    CHECK_EQ(a.last_position, sizes[0] + sizes[1]);
    /* Indexed: record 0 (position 0), then the first at or past 40: record 2. */
    CHECK_EQ(a.index_len, 2);
    CHECK_EQ(index[0], 0);
    CHECK_EQ(index[1], 0);
    CHECK_EQ(index[2], 2);
    CHECK_EQ(index[3], sizes[0] + sizes[1]);
    CHECK_EQ(a.sample_at, sizes[0] + sizes[1] + 40);
    const unsigned char *r = out + sizes[0];
    CHECK_EQ(le(r, 4), sizes[1] - 4);
    CHECK_EQ(le(r + 8, 8), 101);
    CHECK_EQ((int64_t)le(r + 16, 8), -5);
    CHECK_EQ(r[24], 4);
    CHECK_EQ(le(r + 25, 2), 4);
    CHECK(memcmp(r + 27, "t/22bb", 6) == 0);
    CHECK_EQ(le(r + 4, 4), shardq_crc32c(0, r + 8, sizes[1] - 8));
    size_t end = 0;
    CHECK_EQ(shardq_crc32c_records(out, a.out_len, 23, 0, &end), 0);
    CHECK_EQ(end, a.out_len);

    /* Rolling: stop once the segment reached roll_at, never before its first record. */
    a.next_record = 0;
    a.next_offset = a.base = 7;
    a.position = a.last_position = a.out_len = a.index_len = 0;
    a.sample_at = 0;
    a.roll_at = 1;
    CHECK_EQ(shardq_segment_encode(&a), 0);
    CHECK_EQ(a.next_record, 1);
    CHECK_EQ(a.next_offset, 8);
    CHECK_EQ(a.out_len, sizes[0]);

    /* No room: stop before the record that does not fit, and resume. */
    a.next_record = 0;
    a.next_offset = a.base;
    a.position = a.out_len = a.index_len = 0;
    a.sample_at = 0;
    a.roll_at = 1000;
    a.out_cap = sizes[0] + sizes[1] + 1;
    CHECK_EQ(shardq_segment_encode(&a), SHARDQ_ENOBUFS);
    CHECK_EQ(a.next_record, 2);
    CHECK_EQ(a.out_len, sizes[0] + sizes[1]);
    a.out_cap = sizeof out;
    CHECK_EQ(shardq_segment_encode(&a), 0);
    CHECK_EQ(a.next_record, 3);
    CHECK_EQ(a.out_len, sizes[0] + sizes[1] + sizes[2]);

    /* Bad spans are refused. */
    a.next_record = 0;
    topics[1] = 9;
    CHECK_EQ(shardq_segment_encode(&a), SHARDQ_EINVAL);
    CHECK_EQ(a.next_record, 0);
    topics[1] = 3;
    ends[1] = 5;
    CHECK_EQ(shardq_segment_encode(&a), SHARDQ_EINVAL);
    a.size = 4;
    CHECK_EQ(shardq_segment_encode(&a), SHARDQ_EINVAL);
    return CHECK_DONE();
}
