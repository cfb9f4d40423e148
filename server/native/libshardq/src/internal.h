/*
 * internal.h - helpers shared by the library's translation units.
 * Nothing here is exported (see shardq.map); names start with _shardq_.
 */
#ifndef SHARDQ_INTERNAL_H
#define SHARDQ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shardq.h"

static inline uint32_t _shardq_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint16_t _shardq_be16(const unsigned char *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | (unsigned)p[1]);
}

/* Little-endian integers of @bytes bytes (the entry log's and snapshots' byte order). */
static inline void _shardq_put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t _shardq_get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* 1 when [s, s+len) has the form of an id the server makes: 16 lowercase hex
 * digits, '-', then one or more lowercase hex digits (segment.c). An entry
 * scan and the de-duplication window leave such ids out. */
int _shardq_server_made_id(const unsigned char *s, size_t len);

/* 1 when [s, s+len) is well-formed UTF-8 (as Python's strict decoder). */
int _shardq_utf8_valid(const unsigned char *s, size_t len);

/* Protobuf wire walking (pb.c). _shardq_pb_field reads the field at *pos:
 * its number, wire type, for wire type 2 its payload (off, flen), and its
 * varint value (the length for wire type 2). 0 or SHARDQ_EBADMSG. */
int _shardq_pb_varint(const unsigned char *p, size_t len, size_t *pos, uint64_t *v);
int _shardq_pb_field(const unsigned char *p, size_t len, size_t *pos, uint32_t *field, uint32_t *wt,
                     size_t *off, size_t *flen, uint64_t *value);
/* 0 when [p, p+len) is a well-formed sequence of fields, else SHARDQ_EBADMSG. */
int _shardq_pb_wire_check(const unsigned char *p, size_t len);
/* Check one map<string, string> entry: 0, SHARDQ_EBADMSG (bad wire data, or
 * key/value not length-delimited) or SHARDQ_EILSEQ (key or value not UTF-8),
 * whichever comes first in field order. Other fields are skipped. */
int _shardq_pb_string_entry(const unsigned char *p, size_t len);
/* Read a google.protobuf.Timestamp into *seconds and *nanos, each kept when
 * absent (so occurrences merge as protobuf merges them); nanos is read as
 * an int32. 0 or SHARDQ_EBADMSG (bad wire data, a field not a varint). */
int _shardq_pb_timestamp(const unsigned char *p, size_t len, int64_t *seconds, int64_t *nanos);

/* Complete the segment record of @length bytes at @p whose body (the log
 * record, after the header and the topic) is in place: writes the header
 * and the topic, then the CRC32C over everything after the CRC field
 * (segment.c; room and spans checked by the caller). */
void _shardq_record_seal(unsigned char *p, size_t length, uint64_t offset, int64_t time_ns,
                         uint8_t priority, const uint8_t *topic, size_t topic_len);

/* Writes the segment record header and topic of the record of @length bytes
 * at @p, all but its CRC32C (_shardq_record_seal without the checksum). */
void _shardq_record_head(unsigned char *p, size_t length, uint64_t offset, int64_t time_ns,
                         uint8_t priority, const uint8_t *topic, size_t topic_len);

/* The CRC32C (from 0) of each of three buffers, computed together: as fast
 * as one for buffers too short for the three lanes of shardq_crc32c(). */
void _shardq_crc32c_three(const unsigned char *const buf[3], const size_t len[3], uint32_t crc[3]);

/* Both CRC32C implementations, exposed for the unit tests. */
uint32_t _shardq_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t _shardq_crc32c_hw(uint32_t crc, const void *buf, size_t len);
int _shardq_crc32c_hw_available(void);

#endif
