/*
 * loadgen - load generator for EventStream's raw frame ingest (TCP and UDP).
 *
 * Sends frames (u32 length | u8 priority | u16 topic_len | topic | payload,
 * big-endian) as fast as it can or at a given rate, bounded by a frame or
 * datagram count and by a time limit, and prints one JSON line of results.
 *
 *   loadgen tcp [--acked --batch N --window N] --port P [--host H] [--connections N]
 *               [--count N] [--seconds S] [--payload B] [--rate FRAMES_PER_S] [--topic T]
 *               [--priority 0..4]
 *   loadgen udp --port P [--host H] [--count DATAGRAMS] [--frames-per-datagram N]
 *               [--seconds S] [--payload B] [--rate DATAGRAMS_PER_S] [--topic T]
 *               [--priority 0..4]
 *
 * TCP fire-and-forget: each connection writes its share of frames, then
 * shuts down its sending side and waits for the server to close, so the
 * time includes the server reading everything. TCP acknowledged: the ESA1
 * handshake, then batches of --batch frames with up to --window batches
 * unanswered; every ACK is checked. UDP: sendmmsg() bursts of datagrams.
 * Every frame has the priority byte of --priority (default 2, MEDIUM).
 * Exit status 0 on success, 1 on an error (an ERROR message included).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct options {
    const char *mode, *host, *topic;
    int port, connections, acked, batch, window, frames_per_datagram, payload, priority;
    long long count;
    double seconds, rate;
};

struct worker {
    const struct options *opt;
    long long share;          /* frames (TCP) or datagrams (UDP) to send */
    long long sent, acked, datagrams;
    int failed;
    pthread_t thread;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pace(double start, long long done, double rate)
{
    if (rate <= 0)
        return;
    double due = start + done / rate, wait = due - now_s();
    if (wait > 0) {
        struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
        nanosleep(&ts, NULL);
    }
}

static size_t put_frame(unsigned char *out, const char *topic, int priority, int payload,
                        long long seq)
{
    size_t tlen = strlen(topic);
    uint32_t length = htonl((uint32_t)(3 + tlen + payload));
    uint16_t topic_len = htons((uint16_t)tlen);
    memcpy(out, &length, 4);
    out[4] = (unsigned char)priority;
    memcpy(out + 5, &topic_len, 2);
    memcpy(out + 7, topic, tlen);
    memset(out + 7 + tlen, 'x', payload);
    if (payload >= 8) /* a sequence number up front, for eyes reading the log */
        snprintf((char *)out + 7 + tlen, 9, "%08llx", seq & 0xffffffffLL);
    return 7 + tlen + payload;
}

static int open_socket(const struct options *opt, int type)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = type }, *res;
    char port[16];
    snprintf(port, sizeof port, "%d", opt->port);
    if (getaddrinfo(opt->host, port, &hints, &res) != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s\n", opt->host);
        return -1;
    }
    int fd = socket(res->ai_family, type, 0);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        perror("loadgen: connect");
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    freeaddrinfo(res);
    if (type == SOCK_STREAM) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("loadgen: send");
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, unsigned char *buf, size_t len)
{
    while (len) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n == 0)
            return 1;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("loadgen: recv");
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one server message; returns frames acknowledged, or -1 on ERROR / failure. */
static long long read_ack(int fd)
{
    static __thread unsigned char body[1 << 20];
    unsigned char head[4];
    if (read_all(fd, head, 4) != 0)
        return -1;
    uint32_t len;
    memcpy(&len, head, 4);
    len = ntohl(len);
    if (len > sizeof body || read_all(fd, body, len) != 0)
        return -1;
    if (body[0] != 1) {
        fprintf(stderr, "loadgen: server ERROR: %.*s\n", (int)len - 10, body + 10);
        return -1;
    }
    uint32_t count;
    memcpy(&count, body + 9, 4);
    return ntohl(count);
}

static void *tcp_worker(void *arg)
{
    struct worker *w = arg;
    const struct options *opt = w->opt;
    int frame_size = 7 + (int)strlen(opt->topic) + opt->payload;
    int per_chunk = opt->acked ? opt->batch : 1024;
    unsigned char *chunk = malloc(4 + (size_t)per_chunk * frame_size);
    int fd = open_socket(opt, SOCK_STREAM);
    if (fd < 0 || !chunk) {
        w->failed = 1;
        free(chunk);
        return NULL;
    }
    if (opt->acked && write_all(fd, (const unsigned char *)"ESA1", 4) != 0)
        w->failed = 1;
    double start = now_s(), deadline = start + opt->seconds;
    long long outstanding = 0;
    while (!w->failed && w->sent < w->share && now_s() < deadline) {
        long long n = w->share - w->sent < per_chunk ? w->share - w->sent : per_chunk;
        size_t off = opt->acked ? 4 : 0;
        for (long long i = 0; i < n; i++)
            off += put_frame(chunk + off, opt->topic, opt->priority, opt->payload, w->sent + i);
        if (opt->acked) {
            uint32_t blen = htonl((uint32_t)(off - 4));
            memcpy(chunk, &blen, 4);
        }
        pace(start, w->sent, opt->rate / opt->connections);
        if (write_all(fd, chunk, off) != 0) {
            w->failed = 1;
            break;
        }
        w->sent += n;
        if (opt->acked && ++outstanding >= opt->window) {
            long long got = read_ack(fd);
            if (got < 0)
                w->failed = 1;
            else
                w->acked += got;
            outstanding--;
        }
    }
    while (!w->failed && outstanding-- > 0) {
        long long got = read_ack(fd);
        if (got < 0)
            w->failed = 1;
        else
            w->acked += got;
    }
    /* End the stream and wait for the server to close: it has read everything. */
    shutdown(fd, SHUT_WR);
    unsigned char rest[4096];
    ssize_t n;
    while ((n = recv(fd, rest, sizeof rest, 0)) > 0) {
        if (!opt->acked) {
            fprintf(stderr, "loadgen: server ERROR: %.*s\n", (int)n > 14 ? (int)n - 14 : 0, rest + 14);
            w->failed = 1;
        }
    }
    close(fd);
    free(chunk);
    return NULL;
}

static void *udp_worker(void *arg)
{
    struct worker *w = arg;
    const struct options *opt = w->opt;
    enum { BURST = 64 };
    int frame_size = 7 + (int)strlen(opt->topic) + opt->payload;
    size_t dgram = (size_t)frame_size * opt->frames_per_datagram;
    unsigned char *bufs = malloc(dgram * BURST);
    struct mmsghdr msgs[BURST];
    struct iovec iov[BURST];
    int fd = open_socket(opt, SOCK_DGRAM);
    if (fd < 0 || !bufs) {
        w->failed = 1;
        free(bufs);
        return NULL;
    }
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BURST; i++) {
        size_t off = 0;
        for (int f = 0; f < opt->frames_per_datagram; f++)
            off += put_frame(bufs + i * dgram + off, opt->topic, opt->priority, opt->payload, f);
        iov[i].iov_base = bufs + i * dgram;
        iov[i].iov_len = dgram;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    double start = now_s(), deadline = start + opt->seconds;
    while (w->datagrams < w->share && now_s() < deadline) {
        long long left = w->share - w->datagrams;
        int burst = left < BURST ? (int)left : BURST;
        if (opt->rate > 0 && opt->rate < 100000 && burst > 8)
            burst = 8; /* smaller bursts keep a modest rate smooth */
        pace(start, w->datagrams, opt->rate);
        int n = sendmmsg(fd, msgs, burst, 0);
        if (n < 0) {
            if (errno == EINTR || errno == ENOBUFS || errno == ECONNREFUSED)
                continue;
            perror("loadgen: sendmmsg");
            w->failed = 1;
            break;
        }
        w->datagrams += n;
    }
    w->sent = w->datagrams * opt->frames_per_datagram;
    close(fd);
    free(bufs);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen tcp|udp --port P [--host H] [--count N] [--seconds S] "
                    "[--payload B] [--rate R] [--topic T] [--connections N] [--acked] "
                    "[--batch N] [--window N] [--frames-per-datagram N] [--priority 0..4]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct options opt = { .host = "127.0.0.1", .topic = "bench/ingest", .connections = 1,
                           .batch = 1000, .window = 8, .frames_per_datagram = 10,
                           .payload = 100, .count = 1000000, .seconds = 30,
                           .priority = 2 };
    static const struct option longs[] = {
        { "host", 1, 0, 'h' }, { "port", 1, 0, 'p' }, { "count", 1, 0, 'n' },
        { "seconds", 1, 0, 's' }, { "payload", 1, 0, 'b' }, { "rate", 1, 0, 'r' },
        { "topic", 1, 0, 't' }, { "connections", 1, 0, 'c' }, { "acked", 0, 0, 'a' },
        { "batch", 1, 0, 'B' }, { "window", 1, 0, 'w' }, { "frames-per-datagram", 1, 0, 'f' },
        { "priority", 1, 0, 'P' }, { 0, 0, 0, 0 } };
    if (argc < 2)
        usage();
    opt.mode = argv[1];
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'n': opt.count = atoll(optarg); break;
        case 's': opt.seconds = atof(optarg); break;
        case 'b': opt.payload = atoi(optarg); break;
        case 'r': opt.rate = atof(optarg); break;
        case 't': opt.topic = optarg; break;
        case 'c': opt.connections = atoi(optarg); break;
        case 'a': opt.acked = 1; break;
        case 'B': opt.batch = atoi(optarg); break;
        case 'w': opt.window = atoi(optarg); break;
        case 'f': opt.frames_per_datagram = atoi(optarg); break;
        case 'P': opt.priority = atoi(optarg); break;
        default: usage();
        }
    }
    int udp = strcmp(opt.mode, "udp") == 0;
    if ((!udp && strcmp(opt.mode, "tcp") != 0) || opt.port <= 0 || opt.connections < 1 ||
        opt.batch < 1 || opt.window < 1 || opt.frames_per_datagram < 1 || opt.payload < 0 ||
        opt.count < 1 || opt.seconds <= 0 || strlen(opt.topic) > 255 || opt.priority < 0 ||
        opt.priority > 4)
        usage();
    if (udp)
        opt.connections = 1;
    struct worker *workers = calloc(opt.connections, sizeof *workers);
    double start = now_s();
    for (int i = 0; i < opt.connections; i++) {
        workers[i].opt = &opt;
        workers[i].share = opt.count / opt.connections + (i < opt.count % opt.connections);
        pthread_create(&workers[i].thread, NULL, udp ? udp_worker : tcp_worker, &workers[i]);
    }
    long long sent = 0, acked = 0, datagrams = 0;
    int failed = 0;
    for (int i = 0; i < opt.connections; i++) {
        pthread_join(workers[i].thread, NULL);
        sent += workers[i].sent;
        acked += workers[i].acked;
        datagrams += workers[i].datagrams;
        failed |= workers[i].failed;
    }
    double elapsed = now_s() - start;
    int frame_size = 7 + (int)strlen(opt.topic) + opt.payload;
    printf("{\"mode\": \"%s%s\", \"frames\": %lld, \"acked\": %lld, \"datagrams\": %lld, "
           "\"seconds\": %.4f, \"frames_per_s\": %.0f, \"mb_per_s\": %.2f, "
           "\"datagrams_per_s\": %.0f, \"failed\": %s}\n",
           opt.mode, opt.acked ? "-acked" : "", sent, acked, datagrams, elapsed, sent / elapsed,
           sent * (double)frame_size / elapsed / 1e6, datagrams / elapsed,
           failed ? "true" : "false");
    free(workers);
    return failed;
}
