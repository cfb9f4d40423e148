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

/* Little-endian reads of the segment record header. */
static uint64_t le_get(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* 1 when the patterns buffer holds exactly n valid length-prefixed patterns. */
static int patterns_valid(const unsigned char *p, size_t len, uint32_t n)
{
    size_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (len - at < 2)
            return 0;
        size_t plen = (size_t)le_get(p + at, 2);
        at += 2;
        if (plen > len - at || !pattern_valid(p + at, plen))
            return 0;
        at += plen;
    }
    return at == len;
}

static int matches_any(const unsigned char *p, size_t len, const unsigned char *topic, size_t tlen)
{
    size_t at = 0;
    while (at < len) {
        size_t plen = (size_t)le_get(p + at, 2);
        if (match_valid(p + at + 2, plen, topic, tlen))
            return 1;
        at += 2 + plen;
    }
    return 0;
}

#define SELECT_MEMO 64 /* remembered topic answers per call (direct-mapped by hash) */

struct memo {
    uint32_t at;  /* topic position in the block + 1 (0: empty) */
    uint16_t len;
    uint8_t hit;
};

int shardq_records_select(const void *block, size_t len, struct shardq_select_args *a, void *out,
                          size_t cap)
{
    if (a == NULL || a->size < sizeof(*a) || (block == NULL && len != 0) ||
        (out == NULL && cap != 0) || len > UINT32_MAX)
        return SHARDQ_EINVAL;
    if (!a->match_all && a->n_patterns != 0 &&
        (a->patterns == NULL || !patterns_valid(a->patterns, a->patterns_len, a->n_patterns)))
        return SHARDQ_EINVAL;
    const unsigned char *b = block, *pats = a->patterns;
    unsigned char *o = out;
    size_t pos = 0, used = 0;
    uint32_t skipped = 0, examined = 0, matched = 0;
    struct memo memo[SELECT_MEMO];
    memset(memo, 0, sizeof memo);
    a->examined = a->matched = a->full = 0;
    a->out_len = 0;
    int rc = 0;
    while (pos < len && skipped < a->skip) {
        if (len - pos < 4 || le_get(b + pos, 4) > len - pos - 4) {
            rc = SHARDQ_EBADMSG;
            break;
        }
        pos += 4 + (size_t)le_get(b + pos, 4);
        skipped++;
    }
    while (rc == 0 && pos < len && examined < a->limit) {
        if (len - pos < SHARDQ_SEGMENT_HEADER) {
            rc = SHARDQ_EBADMSG;
            break;
        }
        size_t length = (size_t)le_get(b + pos, 4);
        size_t tlen = (size_t)le_get(b + pos + 25, 2);
        if (length > len - pos - 4 || length < SHARDQ_SEGMENT_HEADER - 4 ||
            tlen > length + 4 - SHARDQ_SEGMENT_HEADER) {
            rc = SHARDQ_EBADMSG;
            break;
        }
        const unsigned char *topic = b + pos + SHARDQ_SEGMENT_HEADER;
        size_t event = pos + SHARDQ_SEGMENT_HEADER + tlen, next = pos + 4 + length;
        int hit = b[pos + 24] >= a->min_priority;
        if (hit && !a->match_all) {
            uint32_t h = 2166136261u; /* FNV-1a */
            for (size_t i = 0; i < tlen; i++)
                h = (h ^ topic[i]) * 16777619u;
            struct memo *m = &memo[h % SELECT_MEMO];
            if (m->at && m->len == tlen && memcmp(b + m->at - 1, topic, tlen) == 0) {
                hit = m->hit;
            } else {
                hit = a->n_patterns != 0 && matches_any(pats, a->patterns_len, topic, tlen);
                m->at = (uint32_t)(topic - b) + 1;
                m->len = (uint16_t)tlen;
                m->hit = (uint8_t)hit;
            }
        }
        if (hit) {
            size_t size = next - event;
            if ((a->held_any || matched) && a->held + used + size > a->budget) {
                a->full = 1;
                break;
            }
            if (size > cap - used) {
                rc = SHARDQ_ENOBUFS;
                break;
            }
            memcpy(o + used, b + event, size);
            used += size;
            matched++;
        }
        examined++;
        pos = next;
    }
    a->examined = examined;
    a->matched = matched;
    a->out_len = used;
    a->end = pos;
    return rc;
}
