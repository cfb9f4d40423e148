/* Encoding log records as segment records: layout, CRC, index, stops. */
#include <string.h>

#include "check.h"
#include "shardq.h"

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int main(void)
{
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
