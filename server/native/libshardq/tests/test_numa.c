/* NUMA discovery on fixture sysfs trees, placement and pinning on this machine. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "shardq.h"

static char root[512];

static void put(const char *rel, const char *text)
{
    char path[1024], dir[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    /* mkdir -p of the parent */
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
    }
    if (text == NULL) {
        mkdir(path, 0755);
        return;
    }
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void tree(const char *name)
{
    snprintf(root, sizeof root, "%s/%s", getenv("SHARDQ_TMP"), name);
    mkdir(root, 0755);
}

int main(void)
{
    char tmpl[256];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/shardq-numa-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    CHECK(mkdtemp(tmpl) != NULL);
    setenv("SHARDQ_TMP", tmpl, 1);
    int32_t ids[64];
    size_t n;

    /* Two nodes. */
    tree("two");
    put("devices/system/node/online", "0-1\n");
    put("devices/system/node/node0/cpulist", "0-1\n");
    put("devices/system/node/node1/cpulist", "2-3,6\n");
    char two[512];
    snprintf(two, sizeof two, "%s", root);
    CHECK_EQ(shardq_numa_nodes(two, ids, 64, &n), 0);
    CHECK_EQ(n, 2);
    CHECK(ids[0] == 0 && ids[1] == 1);
    CHECK_EQ(shardq_numa_nodes(two, ids, 1, &n), SHARDQ_ENOBUFS);
    CHECK_EQ(n, 2);
    CHECK_EQ(shardq_numa_node_cpus(two, 1, ids, 64, &n), 0);
    CHECK_EQ(n, 3);
    CHECK(ids[0] == 2 && ids[1] == 3 && ids[2] == 6);
    CHECK_EQ(shardq_numa_node_cpus(two, 7, ids, 64, &n), SHARDQ_ENOENT);

    /* No "online" file: node directories are listed. */
    tree("dirs");
    put("devices/system/node/node2", NULL);
    put("devices/system/node/node0", NULL);
    put("devices/system/node/power", NULL);
    CHECK_EQ(shardq_numa_nodes(root, ids, 64, &n), 0);
    CHECK_EQ(n, 2);
    CHECK(ids[0] == 0 && ids[1] == 2);

    /* No NUMA in the kernel: one node holding every online CPU. */
    tree("flat");
    put("devices/system/cpu/online", "0-3\n");
    CHECK_EQ(shardq_numa_nodes(root, ids, 64, &n), 0);
    CHECK_EQ(n, 1);
    CHECK_EQ(ids[0], 0);
    CHECK_EQ(shardq_numa_node_cpus(root, 0, ids, 64, &n), 0);
    CHECK_EQ(n, 4);

    /* Unparsable lists. */
    tree("bad");
    put("devices/system/node/online", "0-x\n");
    put("devices/system/node/node0/cpulist", "3-1\n");
    CHECK_EQ(shardq_numa_nodes(root, ids, 64, &n), SHARDQ_EBADMSG);
    CHECK_EQ(shardq_numa_node_cpus(root, 0, ids, 64, &n), SHARDQ_EBADMSG);
    /* Empty cpulist (memory-only node): zero CPUs; pinning refused. */
    tree("memonly");
    put("devices/system/node/online", "0\n");
    put("devices/system/node/node0/cpulist", "\n");
    CHECK_EQ(shardq_numa_node_cpus(root, 0, ids, 64, &n), 0);
    CHECK_EQ(n, 0);
    CHECK_EQ(shardq_numa_pin_thread(root, 0), SHARDQ_EINVAL);

    /* Placement with the fixture: shard i on node i % 2. Node 1 does not
       exist on a one-node machine, so mbind fails there and says so. */
    struct shardq_options o = {sizeof o, 2, 8, 8192, 0, SHARDQ_OPT_NUMA, two};
    shardq_t *q = NULL;
    CHECK_EQ(shardq_create(&o, &q), 0);
    struct shardq_stats s;
    s.size = sizeof s;
    CHECK_EQ(shardq_stats(q, 0, &s), 0);
    int real_nodes = 0;
    size_t real_n = 0;
    if (shardq_numa_nodes(NULL, ids, 64, &real_n) == 0)
        real_nodes = (int)real_n;
    CHECK_EQ(s.numa_node, 0);
    CHECK_EQ(s.numa_errno, 0);
    CHECK_EQ(shardq_stats(q, 1, &s), 0);
    if (real_nodes == 1) {
        CHECK_EQ(s.numa_node, -1);
        CHECK_EQ(s.numa_errno, EINVAL);
        CHECK_EQ(shardq_stats(q, SHARDQ_SHARD_ANY, &s), 0);
        CHECK_EQ(s.numa_node, -1);
        CHECK_EQ(s.numa_errno, EINVAL);
    }
    shardq_destroy(q);

    /* This machine: at least one node; placement and pinning work on node 0. */
    CHECK(real_nodes >= 1);
    o.sysfs_root = NULL;
    CHECK_EQ(shardq_create(&o, &q), 0);
    CHECK_EQ(shardq_stats(q, SHARDQ_SHARD_ANY, &s), 0);
    if (real_nodes == 1) {
        CHECK_EQ(s.numa_node, 0);
        CHECK_EQ(s.numa_errno, 0);
    }
    shardq_destroy(q);
    cpu_set_t before;
    CHECK_EQ(sched_getaffinity(0, sizeof before, &before), 0);
    CHECK_EQ(shardq_numa_pin_thread(NULL, ids[0]), 0);
    CHECK_EQ(sched_setaffinity(0, sizeof before, &before), 0);
    /* A node whose CPUs this machine does not have. */
    tree("far");
    put("devices/system/node/online", "0\n");
    put("devices/system/node/node0/cpulist", "5000\n");
    CHECK_EQ(shardq_numa_pin_thread(root, 0), SHARDQ_EINVAL);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    CHECK_EQ(system(cmd), 0);
    return CHECK_DONE();
}
