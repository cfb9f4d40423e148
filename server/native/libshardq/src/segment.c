/*
 * segment.c - encoding log records in the durable log's segment format,
 * and a commit round as one EVENTS entry of the entry log.
 *
 * One call per staged batch (or per round): the per-record header, copy and
 * CRC that the Python staging loop would otherwise do record by record.
 */
#include <stdlib.h>

#include "internal.h"

void _shardq_record_head(unsigned char *p, size_t length, uint64_t offset, int64_t time_ns,
                         uint8_t priority, const uint8_t *topic, size_t topic_len)
{
    _shardq_put_le(p, length - 4, 4);
    _shardq_put_le(p + 8, offset, 8);
    _shardq_put_le(p + 16, (uint64_t)time_ns, 8);
    p[24] = priority;
    _shardq_put_le(p + 25, topic_len, 2);
    if (topic_len)
        memcpy(p + SHARDQ_SEGMENT_HEADER, topic, topic_len);
}

void _shardq_record_seal(unsigned char *p, size_t length, uint64_t offset, int64_t time_ns,
                         uint8_t priority, const uint8_t *topic, size_t topic_len)
{
    _shardq_record_head(p, length, offset, time_ns, priority, topic, topic_len);
    _shardq_put_le(p + 4, shardq_crc32c(0, p + 8, length - 8), 4);
}

/* Writes one segment record at @p (room and spans checked by the caller). */
static void put_record(unsigned char *p, size_t length, uint64_t offset, int64_t time_ns,
                       uint8_t priority, const uint8_t *topic, size_t topic_len,
                       const uint8_t *body, size_t body_len)
{
    if (body_len)
        memcpy(p + SHARDQ_SEGMENT_HEADER + topic_len, body, body_len);
    _shardq_record_seal(p, length, offset, time_ns, priority, topic, topic_len);
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
        put_record(a->out + out_len, length, offset, a->time_ns, a->record_priorities[i],
                   a->topic_data + topic_off, topic_len, a->records + start, end - start);
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


/* Bytes of the segment records of one source's records, or 0 when one is bad. */
static uint64_t source_bytes(const struct shardq_entry_source *src, uint32_t partitions)
{
    uint64_t counted = 0, total = 0;
    for (uint32_t p = 0; p < partitions; p++)
        counted += src->part_counts[p];
    if (counted != src->record_count)
        return 0;
    int stored = (src->flags & SHARDQ_RECORDS_STORED) != 0;
    for (size_t i = 0; i < src->record_count; i++) {
        size_t start = i ? src->record_ends[i - 1] : 0, end = src->record_ends[i];
        size_t topic_off = src->record_topics[2 * i], topic_len = src->record_topics[2 * i + 1];
        if (end < start || end > src->records_len || topic_len > 0xFFFF ||
            topic_off > src->records_len || topic_len > src->records_len - topic_off)
            return 0;
        if (stored && (end - start < SHARDQ_SEGMENT_HEADER + topic_len ||
                       _shardq_get_le(src->records + start, 4) != end - start - 4 ||
                       _shardq_get_le(src->records + start + 25, 2) != topic_len))
            return 0;
        total += stored ? end - start : SHARDQ_SEGMENT_HEADER + topic_len + (end - start);
    }
    return total ? total : 1; /* 1: valid and empty (never a real size) */
}

/* 1 when every stored source's records carry the offsets and the time that
 * shardq_entry_encode() gives them: from next_offsets[p] on, in source order. */
static int stored_records_fit(const struct shardq_entry_args *a)
{
    for (uint32_t p = 0; p < a->partitions; p++) {
        uint64_t offset = a->next_offsets[p];
        for (size_t s = 0; s < a->source_count; s++) {
            const struct shardq_entry_source *src = &a->sources[s];
            size_t first = 0;
            for (uint32_t q = 0; q < p; q++)
                first += src->part_counts[q];
            size_t stop = first + src->part_counts[p];
            if (!(src->flags & SHARDQ_RECORDS_STORED)) {
                offset += stop - first;
                continue;
            }
            for (size_t i = first; i < stop; i++, offset++) {
                const uint8_t *r = src->records + (i ? src->record_ends[i - 1] : 0);
                if (_shardq_get_le(r + 8, 8) != offset || (int64_t)_shardq_get_le(r + 16, 8) != a->time_ns)
                    return 0;
            }
        }
    }
    return 1;
}

int shardq_entry_encode(struct shardq_entry_args *a)
{
    if (a == NULL || a->size < sizeof *a || a->partitions == 0 || a->next_offsets == NULL ||
        (a->source_count && a->sources == NULL) || (a->out == NULL && a->out_cap) ||
        (a->blocks == NULL && a->blocks_cap))
        return SHARDQ_EINVAL;
    uint64_t size = SHARDQ_ENTRY_HEADER;
    int any_stored = 0;
    for (size_t s = 0; s < a->source_count; s++) {
        const struct shardq_entry_source *src = &a->sources[s];
        if (src->record_count && (src->records == NULL || src->record_ends == NULL ||
                                  src->record_topics == NULL || src->record_priorities == NULL))
            return SHARDQ_EINVAL;
        if (src->part_counts == NULL)
            return SHARDQ_EINVAL;
        uint64_t bytes = source_bytes(src, a->partitions);
        if (bytes == 0)
            return SHARDQ_EINVAL;
        if (src->record_count)
            size += bytes;
        any_stored |= (src->flags & SHARDQ_RECORDS_STORED) != 0;
    }
    if (any_stored && !stored_records_fit(a))
        return SHARDQ_EINVAL;
    size_t groups = 0;
    for (uint32_t p = 0; p < a->partitions; p++) {
        for (size_t s = 0; s < a->source_count; s++) {
            if (a->sources[s].part_counts[p]) {
                groups++;
                break;
            }
        }
    }
    size += groups * SHARDQ_ENTRY_GROUP_HEADER;
    if (size - 4 > UINT32_MAX)
        return SHARDQ_EINVAL;
    a->out_len = (size_t)size;
    a->block_count = 0;
    if (a->out_cap < size || a->blocks_cap < groups)
        return SHARDQ_ENOBUFS;
    size_t *cursor = calloc(a->source_count ? a->source_count : 1, sizeof *cursor);
    if (cursor == NULL)
        return SHARDQ_ENOMEM;
    unsigned char *out = a->out;
    size_t at = SHARDQ_ENTRY_HEADER;
    for (uint32_t p = 0; p < a->partitions; p++) {
        size_t head = at, count = 0;
        uint64_t first = a->next_offsets[p];
        at += SHARDQ_ENTRY_GROUP_HEADER;
        for (size_t s = 0; s < a->source_count; s++) {
            const struct shardq_entry_source *src = &a->sources[s];
            size_t stop = cursor[s] + src->part_counts[p];
            if (src->flags & SHARDQ_RECORDS_STORED) {
                if (stop > cursor[s]) { /* the run, sealed by shardq_stage(), copied whole */
                    size_t from = cursor[s] ? src->record_ends[cursor[s] - 1] : 0;
                    size_t bytes = src->record_ends[stop - 1] - from;
                    memcpy(out + at, src->records + from, bytes);
                    at += bytes;
                    count += stop - cursor[s];
                }
                cursor[s] = stop;
                continue;
            }
            for (size_t i = cursor[s]; i < stop; i++) {
                size_t start = i ? src->record_ends[i - 1] : 0, end = src->record_ends[i];
                size_t topic_len = src->record_topics[2 * i + 1];
                size_t length = SHARDQ_SEGMENT_HEADER + topic_len + (end - start);
                put_record(out + at, length, first + count, a->time_ns,
                           src->record_priorities[i], src->records + src->record_topics[2 * i],
                           topic_len, src->records + start, end - start);
                at += length;
                count++;
            }
            cursor[s] = stop;
        }
        if (!count) {
            at = head;
            continue;
        }
        _shardq_put_le(out + head, p, 4);
        _shardq_put_le(out + head + 4, count, 4);
        _shardq_put_le(out + head + 8, at - head - SHARDQ_ENTRY_GROUP_HEADER, 4);
        int64_t *row = a->blocks + SHARDQ_ENTRY_BLOCK_FIELDS * a->block_count++;
        row[0] = p;
        row[1] = (int64_t)first;
        row[2] = (int64_t)count;
        row[3] = (int64_t)(head + SHARDQ_ENTRY_GROUP_HEADER);
        row[4] = (int64_t)(at - head - SHARDQ_ENTRY_GROUP_HEADER);
        row[5] = a->time_ns;
        a->next_offsets[p] = first + count;
    }
    free(cursor);
    _shardq_put_le(out, at - 4, 4);
    _shardq_put_le(out + 8, a->index, 8);
    _shardq_put_le(out + 16, a->term, 8);
    out[24] = SHARDQ_ENTRY_EVENTS;
    _shardq_put_le(out + 4, shardq_crc32c(0, out + 8, at - 8), 4);
    return SHARDQ_OK;
}

int _shardq_server_made_id(const unsigned char *s, size_t len)
{
    if (len < 18 || s[16] != '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (i == 16)
            continue;
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return 1;
}

/* The last id (field 1) of the framed event at [p, p+len): tag 0x0a, a length
 * covering the rest, the Event's fields. 0 with *id_len 0 when it has none;
 * SHARDQ_EBADMSG when the framing or the wire data is bad. */
static int framed_event_id(const unsigned char *p, size_t len, size_t *id_off, size_t *id_len)
{
    size_t pos = 1, off, flen;
    uint64_t body_len, value;
    uint32_t field, wt;
    if (len < 2 || p[0] != 0x0a || _shardq_pb_varint(p, len, &pos, &body_len) ||
        body_len != len - pos)
        return SHARDQ_EBADMSG;
    *id_len = 0;
    while (pos < len) {
        if (_shardq_pb_field(p, len, &pos, &field, &wt, &off, &flen, &value))
            return SHARDQ_EBADMSG;
        if (field == 1) {
            if (wt != 2)
                return SHARDQ_EBADMSG;
            *id_off = off;
            *id_len = flen;
        }
    }
    return 0;
}

/* shardq_entry_scan(), and with @check_crc each record's CRC32C checked too. */
static int entry_scan(const void *payload, size_t len, uint32_t partitions, int64_t *blocks,
                      size_t max_blocks, size_t *n_blocks, int64_t *ids, size_t max_ids,
                      size_t *n_ids, int check_crc)
{
    if ((payload == NULL && len) || n_blocks == NULL || n_ids == NULL ||
        (blocks == NULL && max_blocks) || (ids == NULL && max_ids))
        return SHARDQ_EINVAL;
    const unsigned char *p = payload;
    size_t at = 0, nb = 0, ni = 0;
    int64_t previous = -1;
    while (at < len) {
        if (len - at < SHARDQ_ENTRY_GROUP_HEADER)
            return SHARDQ_EBADMSG;
        uint64_t partition = _shardq_get_le(p + at, 4), count = _shardq_get_le(p + at + 4, 4);
        uint64_t bytes = _shardq_get_le(p + at + 8, 4);
        size_t start = at + SHARDQ_ENTRY_GROUP_HEADER;
        if ((int64_t)partition <= previous || (partitions && partition >= partitions) ||
            count == 0 || bytes > len - start)
            return SHARDQ_EBADMSG;
        size_t end = start + (size_t)bytes, r = start;
        uint64_t first = 0, records = 0;
        int64_t time_ns = 0;
        while (r < end) {
            if (end - r < SHARDQ_SEGMENT_HEADER)
                return SHARDQ_EBADMSG;
            uint64_t length = _shardq_get_le(p + r, 4);
            size_t topic_len = (size_t)_shardq_get_le(p + r + 25, 2);
            uint64_t offset = _shardq_get_le(p + r + 8, 8);
            if (length < SHARDQ_SEGMENT_HEADER - 4 || length > end - r - 4 ||
                topic_len > length + 4 - SHARDQ_SEGMENT_HEADER)
                return SHARDQ_EBADMSG;
            if (check_crc && shardq_crc32c(0, p + r + 8, (size_t)length - 4) !=
                                 (uint32_t)_shardq_get_le(p + r + 4, 4))
                return SHARDQ_EBADMSG;
            if (records == 0) {
                first = offset;
                time_ns = (int64_t)_shardq_get_le(p + r + 16, 8);
            } else if (offset != first + records) {
                return SHARDQ_EBADMSG;
            }
            size_t event = r + SHARDQ_SEGMENT_HEADER + topic_len;
            size_t event_len = r + 4 + (size_t)length - event, id_off = 0, id_len = 0;
            if (framed_event_id(p + event, event_len, &id_off, &id_len))
                return SHARDQ_EBADMSG;
            if (id_len && !_shardq_server_made_id(p + event + id_off, id_len)) {
                if (ni < max_ids) {
                    int64_t *row = ids + 4 * ni;
                    row[0] = (int64_t)partition;
                    row[1] = (int64_t)offset;
                    row[2] = (int64_t)(event + id_off);
                    row[3] = (int64_t)id_len;
                }
                ni++;
            }
            records++;
            r += 4 + (size_t)length;
        }
        if (records != count)
            return SHARDQ_EBADMSG;
        if (nb < max_blocks) {
            int64_t *row = blocks + SHARDQ_ENTRY_BLOCK_FIELDS * nb;
            row[0] = (int64_t)partition;
            row[1] = (int64_t)first;
            row[2] = (int64_t)count;
            row[3] = (int64_t)start;
            row[4] = (int64_t)bytes;
            row[5] = time_ns;
        }
        nb++;
        previous = (int64_t)partition;
        at = end;
    }
    *n_blocks = nb;
    *n_ids = ni;
    return nb > max_blocks || ni > max_ids ? SHARDQ_ENOBUFS : SHARDQ_OK;
}

int shardq_entry_scan(const void *payload, size_t len, uint32_t partitions, int64_t *blocks,
                      size_t max_blocks, size_t *n_blocks, int64_t *ids, size_t max_ids,
                      size_t *n_ids)
{
    return entry_scan(payload, len, partitions, blocks, max_blocks, n_blocks, ids, max_ids,
                      n_ids, 0);
}

int shardq_entry_check(const void *payload, size_t len, uint32_t partitions, int64_t *blocks,
                       size_t max_blocks, size_t *n_blocks, int64_t *ids, size_t max_ids,
                       size_t *n_ids)
{
    return entry_scan(payload, len, partitions, blocks, max_blocks, n_blocks, ids, max_ids,
                      n_ids, 1);
}
