/*
 * dedup.c - the de-duplication table: recent producer ids, one table per node.
 *
 * One hash table keyed by the id bytes (SipHash-1-3 with a random key, so
 * ids chosen by clients cannot pile up in one chain). Each id has up to two
 * parts:
 *
 *   - its *window* part (partition, offset, time), set by the entries a node
 *     applies, kept on the window list in the order they were remembered
 *     (oldest first) and forgotten oldest first, by count and by age;
 *   - its *in-flight* part (partition, offset, time, entry index), set by the
 *     leader's sequencer for rounds not applied yet, kept on the in-flight
 *     list in entry order.
 *
 * A node is freed when it has neither part. Nothing here reads a clock:
 * times are passed in, so every node that applied the same entries holds the
 * same window (the in-flight part never reaches the encoding).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

#define ITEM_HEAD 22 /* encoded item: u16 id length, u32 partition, u64 offset, i64 time */
#define MIN_BUCKETS 64

enum { WINDOW, FLIGHT }; /* a node's two lists */

struct links {
    struct node *prev, *next;
};

struct node {
    struct node *chain;              /* next in the bucket */
    struct links link[2];            /* on the window list, on the in-flight list */
    uint64_t hash;
    int64_t w_partition, w_offset, w_time;
    int64_t f_partition, f_offset, f_time;
    uint64_t f_index;
    uint8_t on[2];                   /* on the window list, on the in-flight list */
    uint16_t len;
    unsigned char id[];
};

struct list {
    struct node *head, *tail;
    uint64_t count;
};

struct shardq_dedup {
    int64_t window_ns;
    uint64_t max_ids;
    uint64_t key[2];
    struct node **buckets;
    size_t bucket_count;             /* a power of two */
    size_t nodes;
    struct list list[2];             /* the window, the ids in flight */
    uint64_t window_bytes;           /* what the window's items take encoded */
    uint32_t *scratch;               /* check(): open-addressed rows seen in this call */
    size_t scratch_cap;
    uint64_t *hashes;                /* check(), hold(): each row's hash */
    size_t hashes_cap;
    struct node **sorted;            /* promote(): the entry's nodes to sort */
    size_t sorted_cap;
};

/* ---- SipHash-1-3 ------------------------------------------------------- */

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                   \
    do {                                                                           \
        v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);                  \
        v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;                                     \
        v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;                                     \
        v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);                  \
    } while (0)

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t siphash13(const uint64_t key[2], const unsigned char *p, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ key[0], v1 = 0x646f72616e646f6dULL ^ key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ key[0], v3 = 0x7465646279746573ULL ^ key[1];
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(p + i);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table --------------------------------------------------------- */

static struct node *find(const struct shardq_dedup *t, uint64_t hash, const unsigned char *id,
                         size_t len)
{
    for (struct node *n = t->buckets[hash & (t->bucket_count - 1)]; n; n = n->chain)
        if (n->hash == hash && n->len == len && memcmp(n->id, id, len) == 0)
            return n;
    return NULL;
}

static int resize(struct shardq_dedup *t, size_t count)
{
    struct node **b = calloc(count, sizeof *b);
    if (!b)
        return SHARDQ_ENOMEM;
    for (size_t i = 0; i < t->bucket_count; i++) {
        struct node *n = t->buckets[i];
        while (n) {
            struct node *next = n->chain;
            size_t at = n->hash & (count - 1);
            n->chain = b[at];
            b[at] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->bucket_count = count;
    return SHARDQ_OK;
}

/* The node of @id, made (with neither part) when missing; NULL when out of memory. */
static struct node *find_or_add(struct shardq_dedup *t, uint64_t hash, const unsigned char *id,
                                size_t len)
{
    struct node *n = find(t, hash, id, len);
    if (n)
        return n;
    if (t->nodes >= t->bucket_count && resize(t, t->bucket_count * 2))
        return NULL;
    n = malloc(sizeof *n + len);
    if (!n)
        return NULL;
    memset(n, 0, sizeof *n);
    n->hash = hash;
    n->len = (uint16_t)len;
    memcpy(n->id, id, len);
    size_t at = hash & (t->bucket_count - 1);
    n->chain = t->buckets[at];
    t->buckets[at] = n;
    t->nodes++;
    return n;
}

/* Free @n once it has neither part. */
static void drop_if_unused(struct shardq_dedup *t, struct node *n)
{
    if (n->on[WINDOW] || n->on[FLIGHT])
        return;
    struct node **link = &t->buckets[n->hash & (t->bucket_count - 1)];
    while (*link != n)
        link = &(*link)->chain;
    *link = n->chain;
    free(n);
    t->nodes--;
    if (t->bucket_count > MIN_BUCKETS && t->nodes < t->bucket_count / 8)
        resize(t, t->bucket_count / 2); /* on failure the table just stays larger */
}

static void list_unlink(struct shardq_dedup *t, struct node *n, int which)
{
    struct list *l = &t->list[which];
    struct links *k = &n->link[which];
    if (k->prev) k->prev->link[which].next = k->next; else l->head = k->next;
    if (k->next) k->next->link[which].prev = k->prev; else l->tail = k->prev;
    k->prev = k->next = NULL;
    n->on[which] = 0;
    l->count--;
    if (which == WINDOW)
        t->window_bytes -= ITEM_HEAD + n->len;
}

/* Put @n last on list @which (first taking it off if it is on it). */
static void list_append(struct shardq_dedup *t, struct node *n, int which)
{
    if (n->on[which])
        list_unlink(t, n, which);
    struct list *l = &t->list[which];
    n->link[which].prev = l->tail;
    if (l->tail) l->tail->link[which].next = n; else l->head = n;
    l->tail = n;
    n->on[which] = 1;
    l->count++;
    if (which == WINDOW)
        t->window_bytes += ITEM_HEAD + n->len;
}

/* Set the window part of @n and make it the youngest (an OrderedDict's assign + move_to_end). */
static void window_set(struct shardq_dedup *t, struct node *n, int64_t partition, int64_t offset,
                       int64_t time_ns)
{
    n->w_partition = partition;
    n->w_offset = offset;
    n->w_time = time_ns;
    list_append(t, n, WINDOW);
}

static void flight_set(struct shardq_dedup *t, struct node *n, int64_t partition, int64_t offset,
                       int64_t time_ns, uint64_t index)
{
    n->f_partition = partition;
    n->f_offset = offset;
    n->f_time = time_ns;
    n->f_index = index;
    list_append(t, n, FLIGHT);
}

/* The oldest time still inside the window at @now_ns (saturating, never overflowing). */
static int64_t horizon(const struct shardq_dedup *t, int64_t now_ns)
{
    return now_ns < INT64_MIN + t->window_ns ? INT64_MIN : now_ns - t->window_ns;
}

static int enabled(const struct shardq_dedup *t)
{
    return t->max_ids > 0 && t->window_ns > 0;
}

int shardq_dedup_create(int64_t window_ns, uint64_t max_ids, shardq_dedup_t **out)
{
    if (!out || window_ns < 0)
        return SHARDQ_EINVAL;
    struct shardq_dedup *t = calloc(1, sizeof *t);
    if (!t)
        return SHARDQ_ENOMEM;
    t->window_ns = window_ns;
    t->max_ids = max_ids;
    t->bucket_count = MIN_BUCKETS;
    t->buckets = calloc(t->bucket_count, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return SHARDQ_ENOMEM;
    }
    if (getrandom(t->key, sizeof t->key, GRND_NONBLOCK) != (ssize_t)sizeof t->key) {
        struct timespec ts; /* no entropy yet: still a key no client can guess ahead */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)t;
        t->key[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
    }
    *out = t;
    return SHARDQ_OK;
}

static void clear_all(struct shardq_dedup *t)
{
    for (size_t i = 0; i < t->bucket_count; i++) {
        struct node *n = t->buckets[i];
        while (n) {
            struct node *next = n->chain;
            free(n);
            n = next;
        }
        t->buckets[i] = NULL;
    }
    t->nodes = 0;
    memset(t->list, 0, sizeof t->list);
    t->window_bytes = 0;
}

void shardq_dedup_destroy(shardq_dedup_t *t)
{
    if (!t)
        return;
    clear_all(t);
    free(t->buckets);
    free(t->scratch);
    free(t->hashes);
    free(t->sorted);
    free(t);
}

int shardq_dedup_counts(const shardq_dedup_t *t, uint64_t counts[3])
{
    if (!t || !counts)
        return SHARDQ_EINVAL;
    counts[0] = t->list[WINDOW].count;
    counts[1] = t->list[FLIGHT].count;
    counts[2] = 4 + t->window_bytes;
    return SHARDQ_OK;
}

int shardq_dedup_lookup(const shardq_dedup_t *t, const void *id, size_t len, int64_t now_ns,
                        int64_t hit[3])
{
    if (!t || !hit || (!id && len) || len > SHARDQ_DEDUP_ID_MAX)
        return SHARDQ_EINVAL;
    const struct node *n = find(t, siphash13(t->key, id, len), id, len);
    if (!n || !n->on[WINDOW] || n->w_time < horizon(t, now_ns))
        return 0;
    hit[0] = n->w_partition;
    hit[1] = n->w_offset;
    hit[2] = n->w_time;
    return 1;
}

/* ---- the sequencer's side ---------------------------------------------- */

/* 0 when every accepted row's id lies inside @bodies and is not too long. */
static int rows_valid(size_t bodies_len, const struct shardq_accepted *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t start = (uint64_t)rows[i].body_off + rows[i].id_off;
        if (rows[i].id_len > SHARDQ_DEDUP_ID_MAX || start + rows[i].id_len > bodies_len)
            return SHARDQ_EINVAL;
    }
    return SHARDQ_OK;
}

/* Hash every row's id into t->hashes, prefetching the buckets and then the
 * nodes they lead to: a large table misses the cache on nearly every id, and
 * this way the misses of a submission overlap instead of following each other. */
static int hash_rows(struct shardq_dedup *t, const unsigned char *b,
                     const struct shardq_accepted *rows, size_t n)
{
    if (n > t->hashes_cap) {
        uint64_t *h = realloc(t->hashes, n * sizeof *h);
        if (!h)
            return SHARDQ_ENOMEM;
        t->hashes = h;
        t->hashes_cap = n;
    }
    size_t mask = t->bucket_count - 1;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].id_len)
            continue;
        t->hashes[i] = siphash13(t->key, b + rows[i].body_off + rows[i].id_off, rows[i].id_len);
        __builtin_prefetch(&t->buckets[t->hashes[i] & mask]);
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].id_len)
            __builtin_prefetch(t->buckets[t->hashes[i] & mask]);
    return SHARDQ_OK;
}

int shardq_dedup_check(shardq_dedup_t *t, const void *bodies, size_t bodies_len,
                       const struct shardq_accepted *rows, size_t n, int64_t now_ns,
                       struct shardq_dup *verdicts, size_t counts[2])
{
    if (!t || !counts || (n && (!rows || !verdicts || !bodies)) || n > UINT32_MAX / 4)
        return SHARDQ_EINVAL;
    if (rows_valid(bodies_len, rows, n))
        return SHARDQ_EINVAL;
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    if (cap > t->scratch_cap) {
        uint32_t *s = realloc(t->scratch, cap * sizeof *s);
        if (!s)
            return SHARDQ_ENOMEM;
        t->scratch = s;
        t->scratch_cap = cap;
    }
    memset(t->scratch, 0, cap * sizeof *t->scratch);
    const unsigned char *b = bodies;
    if (hash_rows(t, b, rows, n))
        return SHARDQ_ENOMEM;
    int64_t oldest = horizon(t, now_ns);
    size_t dups = 0, with_id = 0;
    for (size_t i = 0; i < n; i++) {
        struct shardq_dup *v = &verdicts[i];
        v->partition = -1;
        v->offset = v->time_ns = 0;
        size_t len = rows[i].id_len;
        if (!len)
            continue;
        with_id++;
        const unsigned char *id = b + rows[i].body_off + rows[i].id_off;
        uint64_t hash = t->hashes[i];
        const struct node *held = find(t, hash, id, len);
        if (held && held->on[FLIGHT]) {
            v->partition = held->f_partition;
            v->offset = held->f_offset;
            v->time_ns = held->f_time;
            dups++;
            continue;
        }
        if (held && held->on[WINDOW] && held->w_time >= oldest) {
            v->partition = held->w_partition;
            v->offset = held->w_offset;
            v->time_ns = held->w_time;
            dups++;
            continue;
        }
        /* New so far: the first row of this call with the same id, if any. */
        size_t at = hash & (cap - 1);
        for (;;) {
            uint32_t slot = t->scratch[at];
            if (!slot) {
                t->scratch[at] = (uint32_t)i + 1;
                break;
            }
            const struct shardq_accepted *r = &rows[slot - 1];
            if (r->id_len == len && memcmp(b + r->body_off + r->id_off, id, len) == 0) {
                v->partition = -2 - (int64_t)(slot - 1);
                dups++;
                break;
            }
            at = (at + 1) & (cap - 1);
        }
    }
    counts[0] = dups;
    counts[1] = with_id;
    return SHARDQ_OK;
}

int shardq_dedup_hold(shardq_dedup_t *t, const void *bodies, size_t bodies_len,
                      const struct shardq_accepted *rows, size_t n, const struct shardq_dup *verdicts,
                      const uint64_t *positions, int64_t time_ns, uint64_t index)
{
    if (!t || (n && (!rows || !positions || !bodies)))
        return SHARDQ_EINVAL;
    if (rows_valid(bodies_len, rows, n) || (t->list[FLIGHT].tail && t->list[FLIGHT].tail->f_index > index))
        return SHARDQ_EINVAL;
    for (size_t i = 0; i < 2 * n; i++)
        if (positions[i] > INT64_MAX)
            return SHARDQ_EINVAL;
    const unsigned char *b = bodies;
    if (hash_rows(t, b, rows, n))
        return SHARDQ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t len = rows[i].id_len;
        if (!len || (verdicts && verdicts[i].partition != -1))
            continue;
        const unsigned char *id = b + rows[i].body_off + rows[i].id_off;
        struct node *node = find_or_add(t, t->hashes[i], id, len);
        if (!node)
            return SHARDQ_ENOMEM;
        flight_set(t, node, (int64_t)positions[2 * i], (int64_t)positions[2 * i + 1], time_ns,
                   index);
    }
    return SHARDQ_OK;
}

/* 0 when every id row (partition, offset, position, length) lies inside
 * @len bytes and has no negative partition or offset (a verdict's sentinels). */
static int id_rows_valid(size_t len, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const int64_t *row = ids + SHARDQ_ENTRY_ID_FIELDS * i;
        if (row[0] < 0 || row[1] < 0 || row[2] < 0 || row[3] < 0 ||
            row[3] > (int64_t)SHARDQ_DEDUP_ID_MAX || (uint64_t)row[2] > len || (uint64_t)row[3] > len - (uint64_t)row[2])
            return SHARDQ_EINVAL;
    }
    return SHARDQ_OK;
}

/* The node of an id row (partition, offset, id start, id length) over buf, added if new. */
static struct node *node_of_row(struct shardq_dedup *t, const void *buf, const int64_t *row)
{
    const unsigned char *id = (const unsigned char *)buf + row[2];
    return find_or_add(t, siphash13(t->key, id, (size_t)row[3]), id, (size_t)row[3]);
}

int shardq_dedup_hold_ids(shardq_dedup_t *t, const void *buf, size_t len, const int64_t *ids,
                          size_t n, int64_t time_ns, uint64_t index)
{
    if (!t || (n && (!ids || !buf)))
        return SHARDQ_EINVAL;
    if (id_rows_valid(len, ids, n) || (t->list[FLIGHT].tail && t->list[FLIGHT].tail->f_index > index))
        return SHARDQ_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const int64_t *row = ids + SHARDQ_ENTRY_ID_FIELDS * i;
        struct node *node = node_of_row(t, buf, row);
        if (!node)
            return SHARDQ_ENOMEM;
        flight_set(t, node, row[0], row[1], time_ns, index);
    }
    return SHARDQ_OK;
}

int shardq_dedup_release(shardq_dedup_t *t, uint64_t through, uint64_t from)
{
    if (!t)
        return SHARDQ_EINVAL;
    while (t->list[FLIGHT].head && t->list[FLIGHT].head->f_index <= through) {
        struct node *n = t->list[FLIGHT].head;
        list_unlink(t, n, FLIGHT);
        drop_if_unused(t, n);
    }
    while (t->list[FLIGHT].tail && t->list[FLIGHT].tail->f_index >= from) {
        struct node *n = t->list[FLIGHT].tail;
        list_unlink(t, n, FLIGHT);
        drop_if_unused(t, n);
    }
    return SHARDQ_OK;
}

/* ---- the applier's side ------------------------------------------------- */

static int by_position(const void *a, const void *b)
{
    const struct node *x = *(struct node *const *)a, *y = *(struct node *const *)b;
    if (x->f_partition != y->f_partition)
        return x->f_partition < y->f_partition ? -1 : 1;
    return x->f_offset < y->f_offset ? -1 : x->f_offset > y->f_offset;
}

int shardq_dedup_promote(shardq_dedup_t *t, uint64_t index, int64_t time_ns)
{
    if (!t)
        return SHARDQ_EINVAL;
    size_t count = 0;
    struct node *n = t->list[FLIGHT].head;
    while (n && n->f_index < index)
        n = n->link[FLIGHT].next;
    for (struct node *m = n; m && m->f_index == index; m = m->link[FLIGHT].next)
        count++;
    if (count > t->sorted_cap) {
        struct node **s = realloc(t->sorted, count * sizeof *s);
        if (!s)
            return SHARDQ_ENOMEM;
        t->sorted = s;
        t->sorted_cap = count;
    }
    for (size_t i = 0; i < count; i++, n = n->link[FLIGHT].next)
        t->sorted[i] = n;
    /* The entry's order (partition, then offset), as a scan of it lists its ids. */
    if (count > 1)
        qsort(t->sorted, count, sizeof *t->sorted, by_position);
    int keep = enabled(t);
    for (size_t i = 0; i < count; i++) {
        struct node *m = t->sorted[i];
        list_unlink(t, m, FLIGHT);
        if (keep && !_shardq_server_made_id(m->id, m->len))
            window_set(t, m, m->f_partition, m->f_offset, time_ns);
        drop_if_unused(t, m);
    }
    return SHARDQ_OK;
}

int shardq_dedup_remember(shardq_dedup_t *t, const void *buf, size_t len, const int64_t *ids,
                          size_t n, int64_t time_ns)
{
    if (!t || (n && (!ids || !buf)))
        return SHARDQ_EINVAL;
    if (id_rows_valid(len, ids, n))
        return SHARDQ_EINVAL;
    if (!enabled(t))
        return SHARDQ_OK;
    for (size_t i = 0; i < n; i++) {
        const int64_t *row = ids + SHARDQ_ENTRY_ID_FIELDS * i;
        struct node *node = node_of_row(t, buf, row);
        if (!node)
            return SHARDQ_ENOMEM;
        window_set(t, node, row[0], row[1], time_ns);
    }
    return SHARDQ_OK;
}

static void forget_oldest(struct shardq_dedup *t)
{
    struct node *n = t->list[WINDOW].head;
    if (n->link[WINDOW].next) /* the next one is likely forgotten too */
        __builtin_prefetch(n->link[WINDOW].next->link[WINDOW].next);
    list_unlink(t, n, WINDOW);
    drop_if_unused(t, n);
}

int shardq_dedup_expire(shardq_dedup_t *t, int64_t now_ns)
{
    if (!t)
        return SHARDQ_EINVAL;
    while (t->list[WINDOW].count > t->max_ids)
        forget_oldest(t);
    int64_t oldest = horizon(t, now_ns);
    while (t->list[WINDOW].head && t->list[WINDOW].head->w_time < oldest)
        forget_oldest(t);
    return SHARDQ_OK;
}

/* ---- snapshots ----------------------------------------------------------- */

int shardq_dedup_encode(const shardq_dedup_t *t, void *out, size_t cap, size_t *out_len)
{
    if (!t || !out_len || (!out && cap))
        return SHARDQ_EINVAL;
    size_t need = 4 + t->window_bytes;
    *out_len = need;
    if (cap < need)
        return SHARDQ_ENOBUFS;
    if (t->list[WINDOW].count > UINT32_MAX)
        return SHARDQ_EINVAL;
    unsigned char *p = out;
    _shardq_put_le(p, t->list[WINDOW].count, 4);
    p += 4;
    for (const struct node *n = t->list[WINDOW].head; n; n = n->link[WINDOW].next) {
        _shardq_put_le(p, n->len, 2);
        _shardq_put_le(p + 2, (uint64_t)n->w_partition, 4);
        _shardq_put_le(p + 6, (uint64_t)n->w_offset, 8);
        _shardq_put_le(p + 14, (uint64_t)n->w_time, 8);
        memcpy(p + ITEM_HEAD, n->id, n->len);
        p += ITEM_HEAD + n->len;
    }
    return SHARDQ_OK;
}

int shardq_dedup_restore(shardq_dedup_t *t, const void *data, size_t len)
{
    if (!t || (!data && len))
        return SHARDQ_EINVAL;
    const unsigned char *p = data;
    if (len < 4)
        return SHARDQ_EBADMSG;
    uint64_t count = _shardq_get_le(p, 4);
    size_t at = 4;
    for (uint64_t i = 0; i < count; i++) { /* the structure first: nothing changes on refusal */
        if (len - at < ITEM_HEAD)
            return SHARDQ_EBADMSG;
        size_t id_len = (size_t)_shardq_get_le(p + at, 2);
        if (len - at - ITEM_HEAD < id_len)
            return SHARDQ_EBADMSG;
        at += ITEM_HEAD + id_len;
    }
    if (at != len)
        return SHARDQ_EBADMSG;
    while (t->list[WINDOW].head)
        forget_oldest(t);
    at = 4;
    for (uint64_t i = 0; i < count; i++) {
        size_t id_len = (size_t)_shardq_get_le(p + at, 2);
        const unsigned char *id = p + at + ITEM_HEAD;
        struct node *n = find_or_add(t, siphash13(t->key, id, id_len), id, id_len);
        if (!n) {
            while (t->list[WINDOW].head)
                forget_oldest(t);
            return SHARDQ_ENOMEM;
        }
        int64_t partition = (int64_t)_shardq_get_le(p + at + 2, 4), offset = (int64_t)_shardq_get_le(p + at + 6, 8);
        int64_t time_ns = (int64_t)_shardq_get_le(p + at + 14, 8);
        if (n->on[WINDOW]) { /* an id twice: the last value, the first place (as a dict) */
            n->w_partition = partition;
            n->w_offset = offset;
            n->w_time = time_ns;
        } else {
            window_set(t, n, partition, offset, time_ns);
        }
        at += ITEM_HEAD + id_len;
    }
    return SHARDQ_OK;
}
