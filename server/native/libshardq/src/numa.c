/*
 * numa.c - NUMA topology from sysfs and thread pinning.
 *
 * The sysfs root is a parameter so tests can point it at fixture trees.
 * Shard memory placement (mbind) lives in ring.c, next to the allocation.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define MAX_LIST_ITEMS (1u << 20)

/* Read a small sysfs file into buf (NUL-terminated). */
static int read_small(const char *root, const char *rel, char *buf, size_t cap)
{
    char path[4096];
    int w = snprintf(path, sizeof path, "%s/%s", root ? root : "/sys", rel);
    if (w < 0 || (size_t)w >= sizeof path)
        return SHARDQ_EINVAL;
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT || errno == ENOTDIR ? SHARDQ_ENOENT : -errno;
    size_t n = fread(buf, 1, cap - 1, f);
    int err = ferror(f);
    fclose(f);
    if (err)
        return SHARDQ_EBADMSG;
    buf[n] = '\0';
    return 0;
}

/* Parse a kernel list such as "0-3,8,10-11\n" (may be empty). */
static int parse_list(const char *s, int32_t *out, size_t max, size_t *n_out)
{
    size_t n = 0;
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p && *p != '\n') {
        char *end;
        errno = 0;
        long a = strtol(p, &end, 10);
        if (end == p || errno || a < 0 || a > INT32_MAX)
            return SHARDQ_EBADMSG;
        long b = a;
        p = end;
        if (*p == '-') {
            p++;
            b = strtol(p, &end, 10);
            if (end == p || errno || b < a || b > INT32_MAX)
                return SHARDQ_EBADMSG;
            p = end;
        }
        if ((unsigned long)(b - a) + n > MAX_LIST_ITEMS)
            return SHARDQ_EBADMSG;
        for (long v = a; v <= b; v++, n++)
            if (n < max)
                out[n] = (int32_t)v;
        if (*p == ',')
            p++;
        else if (*p && *p != '\n')
            return SHARDQ_EBADMSG;
    }
    *n_out = n;
    return n > max ? SHARDQ_ENOBUFS : 0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int shardq_numa_nodes(const char *sysfs_root, int32_t *nodes, size_t max, size_t *n_nodes)
{
    if (n_nodes == NULL || (nodes == NULL && max != 0))
        return SHARDQ_EINVAL;
    *n_nodes = 0;
    char buf[4096];
    int rc = read_small(sysfs_root, "devices/system/node/online", buf, sizeof buf);
    if (rc == 0)
        return parse_list(buf, nodes, max, n_nodes);
    if (rc != SHARDQ_ENOENT)
        return rc;

    char path[4096];
    int w = snprintf(path, sizeof path, "%s/devices/system/node", sysfs_root ? sysfs_root : "/sys");
    if (w < 0 || (size_t)w >= sizeof path)
        return SHARDQ_EINVAL;
    DIR *d = opendir(path);
    size_t n = 0;
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            if (e->d_name[0] != 'n' || strncmp(e->d_name, "node", 4) != 0)
                continue;
            long id = strtol(e->d_name + 4, &end, 10);
            if (end == e->d_name + 4 || *end != '\0' || id < 0 || id > INT32_MAX)
                continue;
            if (n < max)
                nodes[n] = (int32_t)id;
            n++;
        }
        closedir(d);
    }
    if (n == 0) { /* no NUMA in this kernel: one node */
        if (max > 0)
            nodes[0] = 0;
        *n_nodes = 1;
        return max > 0 ? 0 : SHARDQ_ENOBUFS;
    }
    qsort(nodes, n < max ? n : max, sizeof nodes[0], cmp_i32);
    *n_nodes = n;
    return n > max ? SHARDQ_ENOBUFS : 0;
}

int shardq_numa_node_cpus(const char *sysfs_root, int32_t node, int32_t *cpus, size_t max,
                          size_t *n_cpus)
{
    if (n_cpus == NULL || (cpus == NULL && max != 0) || node < 0)
        return SHARDQ_EINVAL;
    *n_cpus = 0;
    char rel[128], buf[8192];
    snprintf(rel, sizeof rel, "devices/system/node/node%d/cpulist", (int)node);
    int rc = read_small(sysfs_root, rel, buf, sizeof buf);
    if (rc == SHARDQ_ENOENT && node == 0) {
        /* Kernel without NUMA: node 0 is every online CPU. */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/devices/system/node", sysfs_root ? sysfs_root : "/sys");
        DIR *d = opendir(dir);
        if (d != NULL)
            closedir(d);
        else
            rc = read_small(sysfs_root, "devices/system/cpu/online", buf, sizeof buf);
    }
    if (rc)
        return rc;
    return parse_list(buf, cpus, max, n_cpus);
}

int shardq_numa_pin_thread(const char *sysfs_root, int32_t node)
{
    int32_t cpus[CPU_SETSIZE];
    size_t n = 0;
    int rc = shardq_numa_node_cpus(sysfs_root, node, cpus, CPU_SETSIZE, &n);
    if (rc == SHARDQ_ENOBUFS)
        n = CPU_SETSIZE; /* CPUs beyond CPU_SETSIZE cannot be named in a cpu_set_t */
    else if (rc)
        return rc;
    cpu_set_t set;
    CPU_ZERO(&set);
    size_t usable = 0;
    for (size_t i = 0; i < n; i++) {
        if (cpus[i] < CPU_SETSIZE) {
            CPU_SET(cpus[i], &set);
            usable++;
        }
    }
    if (usable == 0)
        return SHARDQ_EINVAL;
    if (sched_setaffinity(0, sizeof set, &set) != 0) /* 0: the calling thread */
        return -errno;
    return 0;
}
