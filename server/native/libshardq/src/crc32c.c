/*
 * crc32c.c - CRC32C (Castagnoli) and the partition hash.
 *
 * Two implementations with identical results: the SSE4.2 crc32 instruction,
 * chosen at load time when cpuid reports it, and a slicing-by-8 table.
 * The tables and the choice are set once by a load-time constructor and
 * only read afterwards.
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
__attribute__((target("sse4.2"))) uint32_t _shardq_crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint32_t c = ~crc;
#ifdef __x86_64__
    uint64_t c64 = c;
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
