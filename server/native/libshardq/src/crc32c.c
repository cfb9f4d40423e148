/*
 * crc32c.c - CRC32C (Castagnoli) and the partition hash.
 *
 * Two implementations with identical results: the SSE4.2 crc32 instruction,
 * chosen at load time when cpuid reports it, and a slicing-by-8 table.
 * The tables and the choice are set once by a load-time constructor and
 * only read afterwards.
 *
 * The instruction takes 3 cycles and a new one can start each cycle, so a
 * long buffer is taken in three lanes of LANE bytes at once, whose CRCs are
 * then joined: the CRC register is linear, so the CRC of A||B is the CRC of
 * A moved past |B| zero bytes (a fixed linear map, a table per byte of the
 * register) XOR the CRC of B started from zero.
 */
#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <nmmintrin.h>
#define HAVE_X86 1
#endif

#define POLY 0x82F63B78u /* reflected Castagnoli polynomial */

static uint32_t table[8][256];
static int use_hw;

#define LANE 1024 /* bytes of each of the three lanes (a multiple of 8) */
static uint32_t lane_shift[4][256]; /* register moved past LANE zero bytes, by byte */

__attribute__((constructor)) static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
    uint32_t bit_shift[32]; /* each register bit moved past LANE zero bytes */
    for (int b = 0; b < 32; b++) {
        uint32_t c = 1u << b;
        for (int n = 0; n < LANE; n++)
            c = (c >> 8) ^ table[0][c & 0xFF];
        bit_shift[b] = c;
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++) {
            uint32_t c = 0;
            for (int j = 0; j < 8; j++)
                if (v & (1u << j))
                    c ^= bit_shift[8 * k + j];
            lane_shift[k][v] = c;
        }
#ifdef HAVE_X86
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d))
        use_hw = (c & bit_SSE4_2) != 0;
#endif
}

uint32_t _shardq_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^
            table[4][lo >> 24] ^ table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^
            table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xFF];
    return ~c;
}

#ifdef HAVE_X86
/* The (non-inverted) register @c moved past LANE zero bytes. */
static uint32_t past_lane(uint32_t c)
{
    return lane_shift[0][c & 0xFF] ^ lane_shift[1][(c >> 8) & 0xFF] ^
           lane_shift[2][(c >> 16) & 0xFF] ^ lane_shift[3][c >> 24];
}

__attribute__((target("sse4.2"))) uint32_t _shardq_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;
#ifdef __x86_64__
    uint64_t c64 = c;
    while (len >= 3 * LANE) {
        uint64_t c1 = 0, c2 = 0;
        for (size_t i = 0; i < LANE; i += 8) {
            uint64_t v0, v1, v2;
            memcpy(&v0, p + i, 8);
            memcpy(&v1, p + LANE + i, 8);
            memcpy(&v2, p + 2 * LANE + i, 8);
            c64 = _mm_crc32_u64(c64, v0);
            c1 = _mm_crc32_u64(c1, v1);
            c2 = _mm_crc32_u64(c2, v2);
        }
        c64 = past_lane(past_lane((uint32_t)c64) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 3 * LANE;
        len -= 3 * LANE;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
#endif
    while (len >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        c = _mm_crc32_u32(c, v);
        p += 4;
        len -= 4;
    }
    while (len--)
        c = _mm_crc32_u8(c, *p++);
    return ~c;
}

int _shardq_crc32c_hw_available(void)
{
    return use_hw;
}

#ifdef __x86_64__
/* Three short buffers in lockstep: each crc32 waits 3 cycles for its
 * predecessor in the same buffer, so three independent chains keep the
 * unit busy where one buffer's chain leaves it idle two cycles of three. */
__attribute__((target("sse4.2"))) static void crc32c_three_hw(const unsigned char *const buf[3],
                                                               const size_t len[3],
                                                               uint32_t crc[3])
{
    size_t common = len[0] < len[1] ? len[0] : len[1];
    common = (common < len[2] ? common : len[2]) & ~(size_t)7;
    const unsigned char *p0 = buf[0], *p1 = buf[1], *p2 = buf[2];
    uint64_t c0 = 0xFFFFFFFFu, c1 = 0xFFFFFFFFu, c2 = 0xFFFFFFFFu;
    for (size_t i = 0; i < common; i += 8) {
        uint64_t v0, v1, v2;
        memcpy(&v0, p0 + i, 8);
        memcpy(&v1, p1 + i, 8);
        memcpy(&v2, p2 + i, 8);
        c0 = _mm_crc32_u64(c0, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
    }
    crc[0] = _shardq_crc32c_hw(~(uint32_t)c0, p0 + common, len[0] - common);
    crc[1] = _shardq_crc32c_hw(~(uint32_t)c1, p1 + common, len[1] - common);
    crc[2] = _shardq_crc32c_hw(~(uint32_t)c2, p2 + common, len[2] - common);
}
#endif
#else
uint32_t _shardq_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return _shardq_crc32c_sw(crc, buf, len);
}

int _shardq_crc32c_hw_available(void)
{
    return 0;
}
#endif

uint32_t shardq_crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (len == 0)
        return crc;
    return use_hw ? _shardq_crc32c_hw(crc, buf, len) : _shardq_crc32c_sw(crc, buf, len);
}

void _shardq_crc32c_three(const unsigned char *const buf[3], const size_t len[3], uint32_t crc[3])
{
#if defined(HAVE_X86) && defined(__x86_64__)
    if (use_hw) {
        crc32c_three_hw(buf, len, crc);
        return;
    }
#endif
    for (int i = 0; i < 3; i++)
        crc[i] = shardq_crc32c(0, buf[i], len[i]);
}

static uint32_t load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int shardq_crc32c_records(void *buf, size_t len, size_t min_len, uint32_t flags, size_t *end)
{
    if ((buf == NULL && len) || end == NULL || min_len < 4 || (flags & ~SHARDQ_CRC_FILL))
        return SHARDQ_EINVAL;
    unsigned char *p = buf;
    size_t pos = 0;
    int rc = SHARDQ_OK;
    while (len - pos >= 8) {
        uint32_t length = load_le32(p + pos);
        if (length < min_len) {
            rc = SHARDQ_EBADMSG;
            break;
        }
        if (length > len - pos - 4)
            break; /* runs past the buffer: left to the caller */
        uint32_t crc = shardq_crc32c(0, p + pos + 8, length - 4);
        if (flags & SHARDQ_CRC_FILL) {
            for (int i = 0; i < 4; i++)
                p[pos + 4 + i] = (unsigned char)(crc >> (8 * i));
        } else if (crc != load_le32(p + pos + 4)) {
            rc = SHARDQ_EBADMSG;
            break;
        }
        pos += 4 + (size_t)length;
    }
    *end = pos;
    return rc;
}

uint32_t shardq_hash(const void *key, size_t key_len, const void *topic, size_t topic_len)
{
    return key_len ? shardq_crc32c(0, key, key_len) : shardq_crc32c(0, topic, topic_len);
}
