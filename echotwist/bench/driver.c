/*
 * The native load driver of python -m echotwist.bench: the same loads as the
 * Python driver (echotwist/bench/load.py and storm.py), from one epoll loop
 * in C, so that on a small machine the load generator costs far less CPU
 * than the server it measures and can drive it to saturation.
 *
 * The bench compiles this file with the system compiler (cc) into a cache
 * folder and talks to it over its standard input and output, one line at a
 * time; see echotwist/bench/native.py.  Traffic goes only where the bench
 * says (it only says loopback addresses and UNIX paths).
 *
 *   driver pingpong tcp|unix ADDRESS PORT CONNECTIONS SIZE DURATION FILE
 *     Connect CONNECTIONS connections, print "ready" (or "failed REASON"),
 *     wait for a line on standard input, then for DURATION seconds send SIZE
 *     bytes on each, wait for all of them back, check them byte for byte
 *     and send again.  Prints "tick ECHOES BYTES ERRORS" every 0.25 s,
 *     writes each echo's latency in seconds (float64) to FILE, then prints
 *     "result ECHOES BYTES CPU WALL", an "error TEXT" line per error (at
 *     most 5, then "errors N"), and "end".
 *
 *   driver conn tcp|unix ADDRESS PORT COUNT RATE SIZE HOLD FILE TIMEOUT IN_FLIGHT
 *     Open COUNT connections without waiting for the server to accept or
 *     echo (non-blocking connect: only the kernel's handshake), back to back
 *     when RATE is 0 -- the next as soon as fewer than IN_FLIGHT handshakes
 *     are under way (1: one at a time, as a loop of blocking connects; 0: no
 *     limit, all at once) -- else RATE per second; send SIZE bytes on each
 *     once connected and wait for them back.  HOLD 1 keeps every connection open until all are
 *     done (a storm), HOLD 0 closes each after its echo.  Writes for each
 *     connection three float64s to FILE: seconds from the first connect to
 *     its connect call, to its handshake's end, to its echo (NaN if never;
 *     -1 for the handshake of a UNIX connect refused with a full queue).
 *     Prints "tick CONNECTED ECHOED ERRORS" lines, "done" once every
 *     connection is done (then waits for a line on standard input before it
 *     closes the held ones), then "result STARTED CONNECTED ECHOED CPU
 *     WALL", error lines and "end".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Seconds without a byte back (or a handshake) before giving up. */
#define NO_ECHO 3.0
/* Seconds without a handshake or echo, all connects made, before giving up
   on a storm: longer than a SYN's first two retransmissions (1 s, then 3). */
#define NO_PROGRESS 10.0
#define TICK 0.25
#define MAX_ERRORS 5

static struct sockaddr_storage address;
static socklen_t address_length;
static int address_family;

static char *error_lines[MAX_ERRORS];
static long error_count;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu_seconds(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
           u.ru_stime.tv_usec / 1e6;
}

static void error(const char *format, ...) {
    if (error_count < MAX_ERRORS) {
        char line[256];
        va_list args;
        va_start(args, format);
        vsnprintf(line, sizeof line, format, args);
        va_end(args);
        error_lines[error_count] = strdup(line);
    }
    error_count++;
}

static void print_errors(void) {
    for (long i = 0; i < error_count && i < MAX_ERRORS; i++)
        printf("error %s\n", error_lines[i]);
    printf("errors %ld\nend\n", error_count);
    fflush(stdout);
}

static int resolve(const char *kind, const char *where, const char *port) {
    memset(&address, 0, sizeof address);
    if (strcmp(kind, "unix") == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&address;
        if (strlen(where) >= sizeof un->sun_path) return -1;
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, where);
        address_length = sizeof *un;
        address_family = AF_UNIX;
        return 0;
    }
    struct addrinfo hints = {0}, *found;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(where, port, &hints, &found) != 0) return -1;
    memcpy(&address, found->ai_addr, found->ai_addrlen);
    address_length = found->ai_addrlen;
    address_family = found->ai_family;
    freeaddrinfo(found);
    return 0;
}

static int new_socket(int nonblocking) {
    int fd = socket(address_family, SOCK_STREAM | SOCK_CLOEXEC |
                                        (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd >= 0 && address_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static void more_descriptors(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

static void fill(unsigned char *payload, long size) {
    unsigned char pattern[16];
    for (int i = 0; i < 16; i++) pattern[i] = (unsigned char)(rand() & 0xff);
    for (long i = 0; i < size; i++) payload[i] = pattern[i % 16];
}

/* ---- ping-pong ---------------------------------------------------------- */

struct pinger {
    int fd;
    long sent, got;
    double sent_at;
    unsigned char *payload;
    int open;
    int writing; /* waiting for EPOLLOUT to send the rest */
};

static int epoll_fd;
static unsigned char buffer[1 << 16];

static void watch(int op, struct pinger *p, uint32_t events) {
    struct epoll_event e = {.events = events, .data.ptr = p};
    epoll_ctl(epoll_fd, op, p->fd, &e);
}

static void drop(struct pinger *p, long *open) {
    if (p->open) {
        p->open = 0;
        close(p->fd);
        (*open)--;
    }
}

/* Send what is left of the message; 0, or -1 if the connection failed. */
static int push(struct pinger *p, long size) {
    while (p->sent < size) {
        ssize_t n = send(p->fd, p->payload + p->sent, size - p->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) {
                if (!p->writing) watch(EPOLL_CTL_MOD, p, EPOLLIN | EPOLLOUT);
                p->writing = 1;
                return 0;
            }
            error("connection lost early: %s", strerror(errno));
            return -1;
        }
        p->sent += n;
    }
    if (p->writing) watch(EPOLL_CTL_MOD, p, EPOLLIN);
    p->writing = 0;
    return 0;
}

static int start(struct pinger *p, long size) {
    p->sent = p->got = 0;
    p->sent_at = now();
    return push(p, size);
}

static int pingpong(long connections, long size, double duration, const char *file) {
    more_descriptors();
    struct pinger *pingers = calloc(connections, sizeof *pingers);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    for (long i = 0; i < connections; i++) {
        struct pinger *p = &pingers[i];
        p->fd = new_socket(0);
        if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&address, address_length) < 0) {
            printf("failed connect failed after %ld connections: %s\n", i, strerror(errno));
            fflush(stdout);
            return 1;
        }
        fcntl(p->fd, F_SETFL, O_NONBLOCK);
        p->payload = malloc(size);
        fill(p->payload, size);
        p->open = 1;
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = p};
        epoll_ctl(epoll_fd, EPOLL_CTL_ADD, p->fd, &e);
    }
    printf("ready\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 1;

    long capacity = 1 << 20, count = 0, echoes = 0, echoed_bytes = 0, open = connections;
    double *latencies = malloc(capacity * sizeof *latencies);
    double cpu0 = cpu_seconds(), t0 = now(), stop_at = t0 + duration, next_tick = t0 + TICK;
    double last_progress = t0, cpu = 0, wall = 0;
    long kept = -1, kept_echoes = 0, kept_bytes = 0;
    int stopping = 0;
    for (long i = 0; i < connections; i++)
        if (start(&pingers[i], size) < 0) drop(&pingers[i], &open);
    struct epoll_event events[256];
    while (open > 0) {
        double t = now();
        if (!stopping && t >= stop_at) {
            stopping = 1;
            kept = count;
            kept_echoes = echoes;
            kept_bytes = echoed_bytes;
            cpu = cpu_seconds() - cpu0;
            wall = t - t0;
            printf("stop\n");
            fflush(stdout);
        }
        if (t - last_progress >= NO_ECHO) {
            for (long i = 0; i < connections; i++)
                if (pingers[i].open) {
                    error("no echo from the server within %g s", NO_ECHO);
                    drop(&pingers[i], &open);
                }
            break;
        }
        if (t >= next_tick) {
            printf("tick %ld %ld %ld\n", echoes, echoed_bytes, error_count);
            fflush(stdout);
            next_tick += TICK;
        }
        double until = stopping ? next_tick : (stop_at < next_tick ? stop_at : next_tick);
        int wait_ms = (int)ceil((until - t) * 1000);
        int n = epoll_wait(epoll_fd, events, 256, wait_ms < 0 ? 0 : wait_ms);
        for (int k = 0; k < n; k++) {
            struct pinger *p = events[k].data.ptr;
            if (!p->open) continue;
            if (events[k].events & EPOLLOUT && p->sent < size) {
                if (push(p, size) < 0) {
                    drop(p, &open);
                    continue;
                }
            }
            if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t got = recv(p->fd, buffer, sizeof buffer, 0);
            if (got < 0 && errno == EAGAIN) continue;
            if (got <= 0) {
                error("connection lost early: %s", got < 0 ? strerror(errno) : "closed");
                drop(p, &open);
                continue;
            }
            last_progress = now();
            if (p->got + got > size || memcmp(buffer, p->payload + p->got, got) != 0) {
                error("echo differs from what was sent");
                drop(p, &open);
                continue;
            }
            p->got += got;
            if (p->got < size) continue;
            double done = now();
            if (count == capacity) {
                capacity *= 2;
                latencies = realloc(latencies, capacity * sizeof *latencies);
            }
            latencies[count++] = done - p->sent_at;
            echoes++;
            echoed_bytes += size;
            if (stopping)
                drop(p, &open);
            else if (start(p, size) < 0)
                drop(p, &open);
        }
    }
    if (kept < 0) {
        /* Every connection ended before the window did. */
        kept = count;
        kept_echoes = echoes;
        kept_bytes = echoed_bytes;
        cpu = cpu_seconds() - cpu0;
        wall = now() - t0;
        printf("stop\n");
    }
    FILE *out = fopen(file, "wb");
    if (out) {
        fwrite(latencies, sizeof *latencies, kept, out);
        fclose(out);
    }
    printf("result %ld %ld %.6f %.6f\n", kept_echoes, kept_bytes, cpu, wall);
    print_errors();
    return 0;
}

/* ---- connection storms and rates --------------------------------------- */

struct caller {
    int fd;
    int state; /* 0 not started, 1 connecting, 2 echoing, 3 done */
    long got;
    double started, connected, echoed;
};

static unsigned char *conn_payload;
static long conn_size;

static void conn_send(struct caller *c) {
    ssize_t n = send(c->fd, conn_payload, conn_size, MSG_NOSIGNAL);
    if (n != conn_size) {
        error("send failed: %s", n < 0 ? strerror(errno) : "short");
        close(c->fd);
        c->fd = -1;
        c->state = 3;
        return;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &e);
    c->state = 2;
}

static int conn(long total, double rate, long size, int hold, const char *file,
                double timeout, long in_flight) {
    more_descriptors();
    struct caller *callers = calloc(total, sizeof *callers);
    conn_size = size;
    conn_payload = malloc(size);
    fill(conn_payload, size);
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    long started = 0, connected = 0, echoed = 0, finished = 0, connecting = 0;
    double cpu0 = cpu_seconds(), t0 = now(), next_tick = t0 + TICK, last_progress = t0;
    struct epoll_event events[256];
    while (finished < total) {
        double t = now();
        /* Start every connection whose time has come: at RATE a second, or
           with rate 0 back to back, as soon as fewer than IN_FLIGHT
           handshakes are under way (0: no limit), harvesting finished
           handshakes and echoes between them. */
        while (started < total &&
               (rate > 0 ? t0 + started / rate <= t
                         : (in_flight <= 0 || connecting < in_flight))) {
            struct caller *c = &callers[started++];
            c->echoed = c->connected = NAN;
            c->fd = new_socket(1);
            c->started = now() - t0;
            if (c->fd < 0) {
                error("socket failed: %s", strerror(errno));
                c->state = 3;
                finished++;
                continue;
            }
            int r = connect(c->fd, (struct sockaddr *)&address, address_length);
            if (r < 0 && errno != EINPROGRESS) {
                /* A UNIX socket whose listen queue is full refuses at once
                   (EAGAIN) where TCP would drop the SYN: mark it so. */
                if (errno == EAGAIN) c->connected = -1.0;
                error("connect failed: %s", strerror(errno));
                close(c->fd);
                c->fd = -1;
                c->state = 3;
                finished++;
                continue;
            }
            struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
            epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &e);
            c->state = 1;
            connecting++;
            if (rate <= 0) break; /* harvest, then the next one */
            t = now();
        }
        t = now();
        if (t >= next_tick) {
            printf("tick %ld %ld %ld\n", connected, echoed, error_count);
            fflush(stdout);
            next_tick += TICK;
        }
        int wait_ms = 0;
        if (!(started < total && rate <= 0 && (in_flight <= 0 || connecting < in_flight))) {
            double until = next_tick;
            if (started < total && rate > 0 && t0 + started / rate < until)
                until = t0 + started / rate;
            wait_ms = (int)ceil((until - t) * 1000);
            if (wait_ms < 0) wait_ms = 0;
        }
        int n = epoll_wait(epoll_fd, events, 256, wait_ms);
        double at = now();
        for (int k = 0; k < n; k++) {
            struct caller *c = events[k].data.ptr;
            if (c->state == 1) {
                connecting--;
                int problem = 0;
                socklen_t length = sizeof problem;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &problem, &length);
                if (problem) {
                    error("connect failed: %s", strerror(problem));
                    close(c->fd);
                    c->fd = -1;
                    c->state = 3;
                    finished++;
                    continue;
                }
                c->connected = at - t0;
                connected++;
                last_progress = at;
                conn_send(c);
                if (c->state == 3) finished++;
            } else if (c->state == 2) {
                ssize_t got = recv(c->fd, buffer, sizeof buffer, 0);
                if (got < 0 && errno == EAGAIN) continue;
                if (got <= 0) {
                    error("connection lost early: %s", got < 0 ? strerror(errno) : "closed");
                } else if (c->got + got > size ||
                           memcmp(buffer, conn_payload + c->got, got) != 0) {
                    error("echo differs from what was sent");
                } else {
                    c->got += got;
                    last_progress = at;
                    if (c->got < size) continue;
                    c->echoed = at - t0;
                    echoed++;
                }
                c->state = 3;
                finished++;
                if (hold && c->echoed == c->echoed) {
                    struct epoll_event e = {0};
                    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, &e);
                } else {
                    close(c->fd);
                    c->fd = -1;
                }
            }
        }
        if (at - t0 > timeout || (started == total && at - last_progress > NO_PROGRESS)) {
            error("%ld connections not done within %g s", total - finished, timeout);
            break;
        }
    }
    double cpu = cpu_seconds() - cpu0, wall = now() - t0;
    /* Every connection is done: let the bench read the server's CPU time
       before the held ones close. */
    printf("done\n");
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) line[0] = 0;
    FILE *out = fopen(file, "wb");
    for (long i = 0; i < total; i++) {
        struct caller *c = &callers[i];
        if (i >= started) c->started = c->connected = c->echoed = NAN;
        if (out) {
            fwrite(&c->started, sizeof(double), 1, out);
            fwrite(&c->connected, sizeof(double), 1, out);
            fwrite(&c->echoed, sizeof(double), 1, out);
        }
        if (i < started && c->fd >= 0) close(c->fd);
    }
    if (out) fclose(out);
    printf("result %ld %ld %ld %.6f %.6f\n", started, connected, echoed, cpu, wall);
    print_errors();
    return 0;
}

int main(int argc, char **argv) {
    srand((unsigned)(now() * 1e6) ^ (unsigned)getpid());
    if (argc == 9 && strcmp(argv[1], "pingpong") == 0) {
        if (resolve(argv[2], argv[3], argv[4]) < 0) {
            printf("failed cannot resolve %s\n", argv[3]);
            return 1;
        }
        return pingpong(atol(argv[5]), atol(argv[6]), atof(argv[7]), argv[8]);
    }
    if (argc == 12 && strcmp(argv[1], "conn") == 0) {
        if (resolve(argv[2], argv[3], argv[4]) < 0) {
            printf("failed cannot resolve %s\n", argv[3]);
            return 1;
        }
        return conn(atol(argv[5]), atof(argv[6]), atol(argv[7]), atoi(argv[8]), argv[9],
                    atof(argv[10]), atol(argv[11]));
    }
    fprintf(stderr,
            "usage: driver pingpong tcp|unix ADDRESS PORT CONNECTIONS SIZE DURATION FILE\n"
            "       driver conn tcp|unix ADDRESS PORT COUNT RATE SIZE HOLD FILE TIMEOUT "
            "IN_FLIGHT\n");
    return 2;
}
