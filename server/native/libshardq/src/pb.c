/*
 * pb.c - walking protobuf wire data without decoding it.
 *
 * Pure. Only the wire format is interpreted: tags, varints, fixed32/64 and
 * length-delimited fields. Groups (wire types 3 and 4) are rejected: proto3
 * messages never contain them.
 */
#include "internal.h"

#define EVENT_LEN_FIELDS ((1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 6) | (1u << 7) | (1u << 8))
#define EVENT_VARINT_FIELDS ((1u << 5) | (1u << 9) | (1u << 10))

int _shardq_pb_varint(const unsigned char *p, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos >= len)
            return SHARDQ_EBADMSG;
        unsigned char b = p[(*pos)++];
        r |= (uint64_t)(b & 0x7F) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = r;
            return 0;
        }
    }
    return SHARDQ_EBADMSG; /* more than 10 bytes */
}

int _shardq_pb_field(const unsigned char *p, size_t len, size_t *pos, uint32_t *field, uint32_t *wt,
                     size_t *off, size_t *flen, uint64_t *value)
{
    uint64_t tag;
    int rc = _shardq_pb_varint(p, len, pos, &tag);
    if (rc)
        return rc;
    if (tag > UINT32_MAX || (tag >> 3) == 0)
        return SHARDQ_EBADMSG;
    *field = (uint32_t)(tag >> 3);
    *wt = (uint32_t)(tag & 7);
    *off = *pos;
    *flen = 0;
    *value = 0;
    switch (*wt) {
    case 0:
        return _shardq_pb_varint(p, len, pos, value);
    case 1:
        if (len - *pos < 8)
            return SHARDQ_EBADMSG;
        *pos += 8;
        return 0;
    case 5:
        if (len - *pos < 4)
            return SHARDQ_EBADMSG;
        *pos += 4;
        return 0;
    case 2:
        rc = _shardq_pb_varint(p, len, pos, value);
        if (rc)
            return rc;
        if (*value > len - *pos)
            return SHARDQ_EBADMSG;
        *off = *pos;
        *flen = (size_t)*value;
        *pos += (size_t)*value;
        return 0;
    default:
        return SHARDQ_EBADMSG;
    }
}

static int next_field(const unsigned char *p, size_t len, size_t *pos, uint32_t *field, uint32_t *wt,
                      size_t *off, size_t *flen)
{
    uint64_t value;
    return _shardq_pb_field(p, len, pos, field, wt, off, flen, &value);
}

/* Check that [p, p+len) is a well-formed sequence of fields (one level). */
int _shardq_pb_wire_check(const unsigned char *p, size_t len)
{
    size_t pos = 0, off, flen;
    uint32_t field, wt;
    while (pos < len) {
        int rc = next_field(p, len, &pos, &field, &wt, &off, &flen);
        if (rc)
            return rc;
    }
    return 0;
}

int _shardq_pb_string_entry(const unsigned char *p, size_t len)
{
    size_t pos = 0, off, flen;
    uint32_t field, wt;
    while (pos < len) {
        int rc = next_field(p, len, &pos, &field, &wt, &off, &flen);
        if (rc)
            return rc;
        if (field != 1 && field != 2)
            continue;
        if (wt != 2)
            return SHARDQ_EBADMSG;
        if (!_shardq_utf8_valid(p + off, flen))
            return SHARDQ_EILSEQ;
    }
    return 0;
}

int _shardq_pb_timestamp(const unsigned char *p, size_t len, int64_t *seconds, int64_t *nanos)
{
    size_t pos = 0, off, flen;
    uint32_t field, wt;
    uint64_t v;
    while (pos < len) {
        int rc = _shardq_pb_field(p, len, &pos, &field, &wt, &off, &flen, &v);
        if (rc)
            return rc;
        if (field != 1 && field != 2)
            continue;
        if (wt != 0)
            return SHARDQ_EBADMSG;
        if (field == 1)
            *seconds = (int64_t)v;
        else
            *nanos = (int64_t)(int32_t)(uint32_t)v;
    }
    return 0;
}

int shardq_pb_fields(const void *msg, size_t len, uint32_t field, uint32_t *spans, size_t max_spans,
                     size_t *n_spans)
{
    if (n_spans)
        *n_spans = 0;
    if ((msg == NULL && len != 0) || n_spans == NULL || (spans == NULL && max_spans != 0) ||
        field == 0 || field > 0x1FFFFFFFu || len > UINT32_MAX)
        return SHARDQ_EINVAL;
    const unsigned char *p = msg;
    size_t pos = 0, n = 0, off, flen;
    uint32_t f, wt;
    while (pos < len) {
        int rc = next_field(p, len, &pos, &f, &wt, &off, &flen);
        if (rc)
            return rc;
        if (f != field)
            continue;
        if (wt != 2)
            return SHARDQ_EBADMSG;
        if (n < max_spans) {
            spans[2 * n] = (uint32_t)off;
            spans[2 * n + 1] = (uint32_t)flen;
        }
        n++;
    }
    *n_spans = n;
    return n > max_spans ? SHARDQ_ENOBUFS : 0;
}

/* Describe the Event in base[off, off+len). */
static int event_parse(const unsigned char *base, size_t off, size_t len, struct shardq_event_spans *e)
{
    memset(e, 0, sizeof *e);
    e->event_off = (uint32_t)off;
    e->event_len = (uint32_t)len;
    const unsigned char *p = base + off;
    size_t pos = 0, foff, flen;
    uint32_t field, wt;
    while (pos < len) {
        int rc = next_field(p, len, &pos, &field, &wt, &foff, &flen);
        if (rc)
            return rc;
        if (field <= 10) {
            uint32_t bit = 1u << field;
            if ((EVENT_LEN_FIELDS & bit) && wt != 2)
                return SHARDQ_EBADMSG;
            if ((EVENT_VARINT_FIELDS & bit) && wt != 0)
                return SHARDQ_EBADMSG;
            e->seen |= (uint64_t)1 << field;
        }
        uint32_t abs = (uint32_t)(off + foff);
        switch (field) {
        case 1:
        case 2:
        case 3:
            if (!_shardq_utf8_valid(p + foff, flen))
                return SHARDQ_EILSEQ;
            if (field == 1) {
                e->id_off = abs;
                e->id_len = (uint32_t)flen;
            } else if (field == 2) {
                e->topic_off = abs;
                e->topic_len = (uint32_t)flen;
            } else {
                e->key_off = abs;
                e->key_len = (uint32_t)flen;
            }
            break;
        case 4:
            e->payload_off = abs;
            e->payload_len = (uint32_t)flen;
            break;
        case 5: {
            uint64_t v = 0;
            size_t vp = foff;
            _shardq_pb_varint(p, len, &vp, &v); /* already checked by next_field */
            e->priority = (int64_t)(int32_t)(uint32_t)v;
            break;
        }
        case 6:
        case 7:
        case 8:
            rc = _shardq_pb_wire_check(p + foff, flen);
            if (rc)
                return rc;
            break;
        default:
            break;
        }
    }
    e->hash = shardq_hash(base + e->key_off, e->key_len, base + e->topic_off, e->topic_len);
    return 0;
}

int shardq_pb_event(const void *msg, size_t len, struct shardq_event_spans *out)
{
    if ((msg == NULL && len != 0) || out == NULL || len > UINT32_MAX)
        return SHARDQ_EINVAL;
    return event_parse(msg ? msg : (const void *)"", 0, len, out);
}

int shardq_pb_events(const void *msg, size_t len, uint32_t field, struct shardq_event_spans *out,
                     size_t max_out, size_t *n_out)
{
    if (n_out)
        *n_out = 0;
    if ((msg == NULL && len != 0) || n_out == NULL || (out == NULL && max_out != 0) || field == 0 ||
        field > 0x1FFFFFFFu || len > UINT32_MAX)
        return SHARDQ_EINVAL;
    const unsigned char *p = msg;
    size_t pos = 0, n = 0, off, flen;
    uint32_t f, wt;
    while (pos < len) {
        int rc = next_field(p, len, &pos, &f, &wt, &off, &flen);
        if (rc) {
            *n_out = n;
            return rc;
        }
        if (f != field)
            continue;
        if (wt != 2) {
            *n_out = n;
            return SHARDQ_EBADMSG;
        }
        if (n < max_out) {
            rc = event_parse(p, off, flen, &out[n]);
            if (rc) {
                *n_out = n;
                return rc;
            }
        }
        n++;
    }
    *n_out = n;
    return n > max_out ? SHARDQ_ENOBUFS : 0;
}
