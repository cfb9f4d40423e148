/*
 * segment.c - encoding log records in the durable log's segment format.
 *
 * One call per staged batch: the per-record header, copy and CRC that the
 * Python staging loop would otherwise do record by record.
 */
#include "internal.h"

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

int shardq_segment_encode(struct shardq_segment_args *a)
{
    if (a == NULL || a->size < sizeof *a || a->next_record > a->record_count ||
        (a->record_count && (a->records == NULL || a->record_ends == NULL ||
                             a->record_topics == NULL || a->record_priorities == NULL)) ||
        (a->topic_data == NULL && a->topic_data_len) || a->out_len > a->out_cap ||
        (a->out == NULL && a->out_cap) || a->index_len > a->index_cap ||
        (a->index == NULL && a->index_cap) || a->next_offset < a->base)
        return SHARDQ_EINVAL;
    size_t i = a->next_record;
    uint64_t offset = a->next_offset, position = a->position, last = a->last_position;
    uint64_t sample_at = a->sample_at;
    size_t out_len = a->out_len, index_len = a->index_len;
    int rc = SHARDQ_OK;
    for (; i < a->record_count; i++) {
        if (position >= a->roll_at && offset > a->base)
            break;
        size_t start = i ? a->record_ends[i - 1] : a->records_start;
        size_t end = a->record_ends[i];
        size_t topic_off = a->record_topics[2 * i], topic_len = a->record_topics[2 * i + 1];
        if (end < start || end > a->records_len || topic_len > 0xFFFF ||
            topic_off > a->topic_data_len || topic_len > a->topic_data_len - topic_off) {
            rc = SHARDQ_EINVAL;
            break;
        }
        size_t length = SHARDQ_SEGMENT_HEADER + topic_len + (end - start);
        if (length - 4 > UINT32_MAX || position > UINT32_MAX || offset - a->base > UINT32_MAX) {
            rc = SHARDQ_EINVAL;
            break;
        }
        int sample = position >= sample_at;
        if (a->out_cap - out_len < length || (sample && index_len >= a->index_cap)) {
            rc = SHARDQ_ENOBUFS;
            break;
        }
        unsigned char *p = a->out + out_len;
        put_le(p, length - 4, 4);
        put_le(p + 8, offset, 8);
        put_le(p + 16, (uint64_t)a->time_ns, 8);
        p[24] = a->record_priorities[i];
        put_le(p + 25, topic_len, 2);
        if (topic_len)
            memcpy(p + SHARDQ_SEGMENT_HEADER, a->topic_data + topic_off, topic_len);
        if (end > start)
            memcpy(p + SHARDQ_SEGMENT_HEADER + topic_len, a->records + start, end - start);
        put_le(p + 4, shardq_crc32c(0, p + 8, length - 8), 4);
        if (sample) {
            a->index[2 * index_len] = (uint32_t)(offset - a->base);
            a->index[2 * index_len + 1] = (uint32_t)position;
            index_len++;
            sample_at = position + a->index_interval;
        }
        last = position;
        position += length;
        offset++;
        out_len += length;
    }
    a->next_record = i;
    a->next_offset = offset;
    a->position = position;
    a->last_position = last;
    a->sample_at = sample_at;
    a->out_len = out_len;
    a->index_len = index_len;
    return rc;
}
