/*
 * frame.c - raw frame parsing, topic validation and pattern matching.
 *
 * Pure: no allocation, no I/O, no global state.
 */
#include "internal.h"

int _shardq_utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; /* range of the first continuation byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0; /* no overlong forms */
            else if (c == 0xED)
                hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return 0;
        }
        if (len - i - 1 < need)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= need; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}

uint32_t shardq_topic_check(const void *topic, size_t len)
{
    const unsigned char *t = topic;
    if (len == 0)
        return SHARDQ_FRAME_TOPIC_EMPTY;
    if (t == NULL || !_shardq_utf8_valid(t, len))
        return SHARDQ_FRAME_TOPIC_NOT_UTF8;
    if (memchr(t, '*', len) != NULL || memchr(t, '#', len) != NULL)
        return SHARDQ_FRAME_TOPIC_WILDCARD;
    if (t[0] == '/' || t[len - 1] == '/')
        return SHARDQ_FRAME_TOPIC_EMPTY_LEVEL;
    for (size_t i = 1; i < len; i++)
        if (t[i] == '/' && t[i - 1] == '/')
            return SHARDQ_FRAME_TOPIC_EMPTY_LEVEL;
    return SHARDQ_FRAME_OK;
}

int shardq_frame_parse(const void *buf, size_t len, uint32_t max_frame, uint32_t flags,
                       struct shardq_frame *out, size_t max_out, size_t *n_out, size_t *consumed)
{
    if (n_out)
        *n_out = 0;
    if (consumed)
        *consumed = 0;
    if ((buf == NULL && len != 0) || out == NULL || max_out == 0 || n_out == NULL ||
        consumed == NULL || len > UINT32_MAX || (flags & ~SHARDQ_FRAME_FINAL) != 0)
        return SHARDQ_EINVAL;
    const unsigned char *p = buf;
    const int final = (flags & SHARDQ_FRAME_FINAL) != 0;
    size_t pos = 0, n = 0;
    while (pos < len && n < max_out) {
        size_t avail = len - pos;
        struct shardq_frame *f = &out[n];
        memset(f, 0, sizeof *f);
        f->offset = (uint32_t)pos;
        if (avail < 4) {
            if (final) {
                f->length = (uint32_t)avail;
                f->reason = SHARDQ_FRAME_TRUNCATED;
                n++;
            }
            break;
        }
        uint32_t declared = _shardq_be32(p + pos);
        if (declared > max_frame) {
            f->length = declared > UINT32_MAX - 4 ? UINT32_MAX : declared + 4;
            f->reason = SHARDQ_FRAME_TOO_LONG;
            n++;
            break;
        }
        if ((size_t)declared > avail - 4) {
            if (final) {
                f->length = (uint32_t)avail;
                f->reason = SHARDQ_FRAME_TRUNCATED;
                n++;
            }
            break;
        }
        f->length = declared + 4;
        if (declared < 3) {
            f->reason = SHARDQ_FRAME_BAD_LENGTH;
        } else {
            uint32_t prio = p[pos + 4];
            uint32_t tlen = _shardq_be16(p + pos + 5);
            f->priority = prio;
            if (prio > 4) {
                f->reason = SHARDQ_FRAME_BAD_PRIORITY;
            } else if (tlen > declared - 3) {
                f->reason = SHARDQ_FRAME_BAD_LENGTH;
            } else {
                f->topic_off = (uint32_t)(pos + 7);
                f->topic_len = tlen;
                f->payload_off = (uint32_t)(pos + 7 + tlen);
                f->payload_len = declared - 3 - tlen;
                f->reason = shardq_topic_check(p + f->topic_off, tlen);
                if (f->reason == SHARDQ_FRAME_OK)
                    f->hash = shardq_crc32c(0, p + f->topic_off, tlen);
            }
        }
        n++;
        pos += 4 + (size_t)declared;
    }
    *n_out = n;
    *consumed = pos;
    return 0;
}

/* 1 when the pattern is valid (see shardq_topic_match()). */
static int pattern_valid(const unsigned char *p, size_t len)
{
    if (len == 0)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '/')
            continue;
        size_t l = i - start;
        if (l == 0)
            return 0;
        for (size_t k = start; k < i; k++) {
            if (p[k] == '#' && (l != 1 || i != len))
                return 0;
            if (p[k] == '*' && l != 1)
                return 0;
        }
        start = i + 1;
    }
    return 1;
}

/* Cursor over '/'-separated levels; an empty string is one empty level. */
struct levels {
    const unsigned char *s;
    size_t len, pos;
    int done;
};

static int next_level(struct levels *lv, const unsigned char **lvl, size_t *lvl_len)
{
    if (lv->done)
        return 0;
    const unsigned char *slash = lv->pos < lv->len ? memchr(lv->s + lv->pos, '/', lv->len - lv->pos) : NULL;
    size_t end = slash ? (size_t)(slash - lv->s) : lv->len;
    *lvl = lv->s + lv->pos;
    *lvl_len = end - lv->pos;
    if (slash)
        lv->pos = end + 1;
    else
        lv->done = 1;
    return 1;
}

static int match_valid(const unsigned char *pat, size_t plen, const unsigned char *top, size_t tlen)
{
    struct levels pl = {pat, plen, 0, 0}, tl = {top, tlen, 0, 0};
    const unsigned char *pv, *tv;
    size_t pn, tn;
    while (next_level(&pl, &pv, &pn)) {
        if (pn == 1 && pv[0] == '#')
            return 1; /* the rest, even nothing */
        if (!next_level(&tl, &tv, &tn))
            return 0;
        if (pn == 1 && pv[0] == '*') {
            if (tn == 0)
                return 0;
        } else if (pn != tn || memcmp(pv, tv, pn) != 0) {
            return 0;
        }
    }
    return tl.done;
}

int shardq_topic_match(const void *pattern, size_t plen, const void *topic, size_t tlen)
{
    if (pattern == NULL || !pattern_valid(pattern, plen))
        return SHARDQ_EINVAL;
    if (topic == NULL && tlen != 0)
        return SHARDQ_EINVAL;
    return match_valid(pattern, plen, topic ? topic : (const void *)"", tlen);
}

int shardq_topic_match_batch(const void *pattern, size_t plen, const void *base,
                             const uint32_t *spans, size_t n, uint8_t *out)
{
    if (pattern == NULL || !pattern_valid(pattern, plen))
        return SHARDQ_EINVAL;
    if (n != 0 && (base == NULL || spans == NULL || out == NULL))
        return SHARDQ_EINVAL;
    const unsigned char *b = base;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)match_valid(pattern, plen, b + spans[2 * i], spans[2 * i + 1]);
    return 0;
}
