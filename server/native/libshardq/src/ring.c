/*
 * ring.c - sharded bounded MPMC queues of variable-length records.
 *
 * Each shard is a power-of-two byte ring holding records exactly as they
 * arrive (u32 big-endian length + bytes), so a batch push is one memcpy of a
 * prefix of the caller's buffer and a batch pop is one memcpy out (two when
 * the range wraps). A shard is guarded by its own mutex, taken once per
 * batch; producers spread over shards by choosing them (by hash), so the
 * mutex is rarely contended. docs/design.md explains the wake-up protocol.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MAX_SHARDS 1024u
#define MPOL_PREFERRED_ 1
#define NODEMASK_WORDS 16 /* 1024 nodes */

struct shard {
    pthread_mutex_t lock;
    uint64_t head;   /* byte position of the oldest record (monotonic) */
    uint64_t tail;   /* byte position after the newest record (monotonic) */
    uint64_t count;  /* records held */
    uint64_t cap_records;
    uint64_t cap_bytes; /* power of two */
    uint64_t pushes, pops, full_rejections, too_large_rejections;
    int64_t numa_node;
    int64_t numa_errno;
    unsigned char *data;
    void *map;
    size_t map_len;
} __attribute__((aligned(64)));

struct shardq {
    uint32_t nshards;
    uint32_t max_record;
    int efd;
    _Atomic uint64_t depth;     /* records over all shards; see design.md */
    _Atomic uint32_t sleepers;  /* 1 while a consumer may be asleep */
    _Atomic uint32_t closed;
    _Atomic uint32_t push_cursor;
    _Atomic uint32_t pop_cursor;
    _Atomic uint64_t wakeups;
    struct shard *shards[];
};

uint32_t shardq_abi_version(void)
{
    return SHARDQ_ABI_VERSION;
}

uint32_t shardq_features(void)
{
    return _shardq_crc32c_hw_available() ? SHARDQ_FEATURE_CRC32C_HW : 0u;
}

static uint64_t next_pow2(uint64_t v)
{
    uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* Copy len bytes into the ring at byte position pos (wrapping). */
static void ring_put(struct shard *s, uint64_t pos, const unsigned char *src, size_t len)
{
    size_t at = (size_t)(pos & (s->cap_bytes - 1));
    size_t first = (size_t)s->cap_bytes - at;
    if (first >= len) {
        memcpy(s->data + at, src, len);
    } else {
        memcpy(s->data + at, src, first);
        memcpy(s->data, src + first, len - first);
    }
}

static void ring_get(const struct shard *s, uint64_t pos, unsigned char *dst, size_t len)
{
    size_t at = (size_t)(pos & (s->cap_bytes - 1));
    size_t first = (size_t)s->cap_bytes - at;
    if (first >= len) {
        memcpy(dst, s->data + at, len);
    } else {
        memcpy(dst, s->data + at, first);
        memcpy(dst + first, s->data, len - first);
    }
}

static uint32_t ring_len_at(const struct shard *s, uint64_t pos)
{
    unsigned char h[4];
    ring_get(s, pos, h, 4);
    return _shardq_be32(h);
}

static int bind_to_node(void *addr, size_t len, int node)
{
    unsigned long mask[NODEMASK_WORDS];
    memset(mask, 0, sizeof mask);
    if (node < 0 || (size_t)node >= NODEMASK_WORDS * 8 * sizeof(unsigned long))
        return EINVAL;
    mask[(size_t)node / (8 * sizeof(unsigned long))] |= 1UL << ((size_t)node % (8 * sizeof(unsigned long)));
    /* maxnode counts bits; the kernel reads maxnode - 1 of them. */
    long rc = syscall(SYS_mbind, addr, len, MPOL_PREFERRED_, mask,
                      (unsigned long)(NODEMASK_WORDS * 8 * sizeof(unsigned long) + 1), 0UL);
    return rc == 0 ? 0 : errno;
}

static void shard_free(struct shard *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->lock);
    munmap(s->map, s->map_len);
}

static int shard_new(uint64_t cap_records, uint64_t cap_bytes, int node, struct shard **out)
{
    size_t head = (sizeof(struct shard) + 63) & ~(size_t)63;
    size_t len = head + (size_t)cap_bytes;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return SHARDQ_ENOMEM;
    int bind_err = 0;
    if (node >= 0)
        bind_err = bind_to_node(map, len, node); /* before first touch */
    struct shard *s = map;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        munmap(map, len);
        return SHARDQ_ENOMEM;
    }
    s->cap_records = cap_records;
    s->cap_bytes = cap_bytes;
    s->numa_node = (node >= 0 && bind_err == 0) ? node : -1;
    s->numa_errno = bind_err;
    s->data = (unsigned char *)map + head;
    s->map = map;
    s->map_len = len;
    *out = s;
    return 0;
}

int shardq_create(const struct shardq_options *opts, shardq_t **out)
{
    if (opts == NULL || out == NULL || opts->size < sizeof(struct shardq_options))
        return SHARDQ_EINVAL;
    if (opts->shards == 0 || opts->shards > MAX_SHARDS || opts->capacity_records == 0 ||
        opts->capacity_bytes == 0 || (opts->flags & ~SHARDQ_OPT_NUMA) != 0)
        return SHARDQ_EINVAL;
    uint64_t n = opts->shards;
    uint64_t cap_records = (opts->capacity_records + n - 1) / n;
    uint64_t per_bytes = (opts->capacity_bytes + n - 1) / n;
    if (per_bytes > (UINT64_C(1) << 40))
        return SHARDQ_EINVAL;
    uint64_t cap_bytes = next_pow2(per_bytes < 8 ? 8 : per_bytes);
    uint64_t max_record = opts->max_record;
    if (max_record == 0)
        max_record = cap_bytes - 4 > UINT32_MAX ? UINT32_MAX : cap_bytes - 4;
    if (max_record + 4 > cap_bytes)
        return SHARDQ_EINVAL;

    int32_t nodes[64];
    size_t n_nodes = 0;
    if (opts->flags & SHARDQ_OPT_NUMA) {
        int rc = shardq_numa_nodes(opts->sysfs_root, nodes, 64, &n_nodes);
        if (rc == SHARDQ_ENOBUFS)
            n_nodes = 64;
        else if (rc != 0)
            return rc;
    }

    struct shardq *q = calloc(1, sizeof *q + n * sizeof q->shards[0]);
    if (q == NULL)
        return SHARDQ_ENOMEM;
    q->nshards = (uint32_t)n;
    q->max_record = (uint32_t)max_record;
    q->efd = -1;
    for (uint64_t i = 0; i < n; i++) {
        int node = n_nodes ? nodes[i % n_nodes] : -1;
        int rc = shard_new(cap_records, cap_bytes, node, &q->shards[i]);
        if (rc != 0) {
            shardq_destroy(q);
            return rc;
        }
    }
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        int rc = -errno;
        shardq_destroy(q);
        return rc;
    }
    *out = q;
    return 0;
}

void shardq_destroy(shardq_t *q)
{
    if (q == NULL)
        return;
    for (uint32_t i = 0; i < q->nshards; i++)
        shard_free(q->shards[i]);
    if (q->efd >= 0)
        close(q->efd);
    free(q);
}

static void wake(struct shardq *q)
{
    uint64_t one = 1;
    atomic_fetch_add_explicit(&q->wakeups, 1, memory_order_relaxed);
    /* EAGAIN only when the counter would overflow: the fd is readable then. */
    ssize_t w = write(q->efd, &one, sizeof one);
    (void)w;
}

/* Validate a push buffer: returns record count, or a negative code. */
static long long count_records(const unsigned char *p, size_t len, uint32_t max_record,
                               size_t *bad_index)
{
    size_t pos = 0, n = 0;
    while (pos < len) {
        if (len - pos < 4)
            return SHARDQ_EBADMSG;
        uint32_t rl = _shardq_be32(p + pos);
        if (rl > max_record) {
            *bad_index = n;
            return SHARDQ_E2BIG;
        }
        if (rl > len - pos - 4)
            return SHARDQ_EBADMSG;
        pos += 4 + (size_t)rl;
        n++;
    }
    return (long long)n;
}

int shardq_push_batch(shardq_t *q, uint32_t shard, const void *buf, size_t len, uint32_t flags,
                      size_t *pushed)
{
    if (pushed)
        *pushed = 0;
    if (q == NULL || (buf == NULL && len != 0) || (flags & ~SHARDQ_PUSH_ALL_OR_NOTHING) != 0)
        return SHARDQ_EINVAL;
    if (shard == SHARDQ_SHARD_ANY)
        shard = atomic_fetch_add_explicit(&q->push_cursor, 1, memory_order_relaxed) % q->nshards;
    else if (shard >= q->nshards)
        return SHARDQ_EINVAL;
    struct shard *s = q->shards[shard];
    if (atomic_load_explicit(&q->closed, memory_order_acquire))
        return SHARDQ_ECLOSED;
    const unsigned char *p = buf;
    size_t bad = 0;
    long long total = count_records(p, len, q->max_record, &bad);
    if (total == SHARDQ_E2BIG) {
        pthread_mutex_lock(&s->lock);
        s->too_large_rejections++;
        pthread_mutex_unlock(&s->lock);
        if (pushed)
            *pushed = bad;
        return SHARDQ_E2BIG;
    }
    if (total < 0)
        return (int)total;
    if (total == 0)
        return 0;

    size_t take_n = 0, take_bytes = 0;
    pthread_mutex_lock(&s->lock);
    uint64_t free_rec = s->cap_records - s->count;
    uint64_t free_bytes = s->cap_bytes - (s->tail - s->head);
    if ((uint64_t)total <= free_rec && len <= free_bytes) {
        take_n = (size_t)total;
        take_bytes = len;
    } else if (!(flags & SHARDQ_PUSH_ALL_OR_NOTHING)) {
        while (take_n < free_rec && take_bytes < len) {
            size_t rec = 4 + (size_t)_shardq_be32(p + take_bytes);
            if (take_bytes + rec > free_bytes)
                break;
            take_bytes += rec;
            take_n++;
        }
    }
    if (take_n > 0) {
        ring_put(s, s->tail, p, take_bytes);
        s->tail += take_bytes;
        s->count += take_n;
        s->pushes += take_n;
        /* seq_cst: pairs with the sleepers store/depth load in sleep_prepare. */
        atomic_fetch_add(&q->depth, take_n);
    }
    s->full_rejections += (uint64_t)total - take_n;
    pthread_mutex_unlock(&s->lock);

    if (take_n == 0)
        return SHARDQ_EFULL;
    if (atomic_load(&q->sleepers) && atomic_exchange(&q->sleepers, 0))
        wake(q);
    if (pushed)
        *pushed = take_n;
    return 0;
}

/*
 * Pop from one shard into dst (room bytes, up to max records).
 * Returns records taken; sets *bytes; *need = size of the first record that
 * did not fit (0 if the shard ran empty or max was reached).
 */
static size_t shard_pop(struct shardq *q, struct shard *s, size_t max, unsigned char *dst,
                        size_t room, size_t *bytes, size_t *need)
{
    size_t n = 0, b = 0;
    *need = 0;
    pthread_mutex_lock(&s->lock);
    uint64_t pos = s->head;
    while (n < max && n < s->count) {
        size_t rec = 4 + (size_t)ring_len_at(s, pos);
        if (b + rec > room) {
            *need = rec;
            break;
        }
        b += rec;
        pos += rec;
        n++;
    }
    if (n > 0) {
        ring_get(s, s->head, dst, b);
        s->head = pos;
        s->count -= n;
        s->pops += n;
        atomic_fetch_sub(&q->depth, n);
    }
    pthread_mutex_unlock(&s->lock);
    *bytes = b;
    return n;
}

int shardq_pop_batch(shardq_t *q, uint32_t shard, size_t max_records, void *buf, size_t buf_len,
                     size_t *n_records, size_t *n_bytes)
{
    if (n_records)
        *n_records = 0;
    if (n_bytes)
        *n_bytes = 0;
    if (q == NULL || max_records == 0 || (buf == NULL && buf_len != 0))
        return SHARDQ_EINVAL;
    if (shard != SHARDQ_SHARD_ANY && shard >= q->nshards)
        return SHARDQ_EINVAL;
    unsigned char *dst = buf;
    size_t got = 0, used = 0, need = 0;
    if (shard != SHARDQ_SHARD_ANY) {
        got = shard_pop(q, q->shards[shard], max_records, dst, buf_len, &used, &need);
    } else {
        if (atomic_load_explicit(&q->depth, memory_order_relaxed) == 0)
            return SHARDQ_EEMPTY;
        uint32_t start =
            atomic_fetch_add_explicit(&q->pop_cursor, 1, memory_order_relaxed) % q->nshards;
        for (uint32_t i = 0; i < q->nshards && got < max_records; i++) {
            struct shard *s = q->shards[(start + i) % q->nshards];
            size_t b = 0;
            got += shard_pop(q, s, max_records - got, dst + used, buf_len - used, &b, &need);
            used += b;
            if (need != 0)
                break; /* the next record does not fit: stop here */
        }
    }
    if (got == 0) {
        if (need != 0) {
            if (n_bytes)
                *n_bytes = need;
            return SHARDQ_ENOBUFS;
        }
        return SHARDQ_EEMPTY;
    }
    if (n_records)
        *n_records = got;
    if (n_bytes)
        *n_bytes = used;
    return 0;
}

static void add_shard_stats(struct shard *s, struct shardq_stats *o, int first)
{
    pthread_mutex_lock(&s->lock);
    o->shards += 1;
    o->depth += s->count;
    o->depth_bytes += s->tail - s->head;
    o->capacity_records += s->cap_records;
    o->capacity_bytes += s->cap_bytes;
    o->pushes += s->pushes;
    o->pops += s->pops;
    o->full_rejections += s->full_rejections;
    o->too_large_rejections += s->too_large_rejections;
    if (first)
        o->numa_node = s->numa_node;
    else if (o->numa_node != s->numa_node)
        o->numa_node = -1;
    if (o->numa_errno == 0)
        o->numa_errno = s->numa_errno;
    pthread_mutex_unlock(&s->lock);
}

int shardq_stats(shardq_t *q, uint32_t shard, struct shardq_stats *out)
{
    if (q == NULL || out == NULL || out->size < sizeof(struct shardq_stats))
        return SHARDQ_EINVAL;
    if (shard != SHARDQ_SHARD_ANY && shard >= q->nshards)
        return SHARDQ_EINVAL;
    uint64_t size = out->size;
    memset(out, 0, sizeof *out);
    out->size = size;
    if (shard != SHARDQ_SHARD_ANY) {
        add_shard_stats(q->shards[shard], out, 1);
    } else {
        for (uint32_t i = 0; i < q->nshards; i++)
            add_shard_stats(q->shards[i], out, i == 0);
    }
    out->wakeups = atomic_load_explicit(&q->wakeups, memory_order_relaxed);
    return 0;
}

int shardq_eventfd(shardq_t *q, int32_t *fd_out)
{
    if (q == NULL || fd_out == NULL)
        return SHARDQ_EINVAL;
    *fd_out = q->efd;
    return 0;
}

int shardq_sleep_prepare(shardq_t *q)
{
    if (q == NULL)
        return SHARDQ_EINVAL;
    /* seq_cst store then seq_cst load: see the Dekker argument in design.md. */
    atomic_store(&q->sleepers, 1);
    if (atomic_load(&q->depth) != 0)
        return SHARDQ_ENOTEMPTY; /* leave the flag: another consumer may sleep */
    if (atomic_load(&q->closed))
        return SHARDQ_ECLOSED;
    return 0;
}

int shardq_wakeup_clear(shardq_t *q)
{
    if (q == NULL)
        return SHARDQ_EINVAL;
    uint64_t v;
    ssize_t r = read(q->efd, &v, sizeof v);
    (void)r; /* EAGAIN: nothing pending */
    return 0;
}

int shardq_wait(shardq_t *q, int32_t timeout_ms)
{
    if (q == NULL)
        return SHARDQ_EINVAL;
    int rc = shardq_sleep_prepare(q);
    if (rc == SHARDQ_ENOTEMPTY)
        return 0;
    if (rc != 0)
        return rc;
    struct pollfd pfd = {.fd = q->efd, .events = POLLIN};
    struct timespec now, deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    int left = timeout_ms;
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms < 0 ? -1 : left);
        if (r > 0)
            break;
        if (r == 0)
            return SHARDQ_ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
        if (timeout_ms >= 0) { /* EINTR: wait out what is left of the timeout */
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long ms = (long long)(deadline.tv_sec - now.tv_sec) * 1000 +
                           (deadline.tv_nsec - now.tv_nsec) / 1000000L;
            if (ms <= 0)
                return SHARDQ_ETIMEDOUT;
            left = (int)ms;
        }
    }
    shardq_wakeup_clear(q);
    if (atomic_load(&q->depth) == 0 && atomic_load(&q->closed))
        return SHARDQ_ECLOSED;
    return 0;
}

int shardq_close(shardq_t *q)
{
    if (q == NULL)
        return SHARDQ_EINVAL;
    if (atomic_exchange(&q->closed, 1) == 0)
        wake(q);
    return 0;
}
