/*
 * startup_bench.c: the extension's start-up, timed the way Lambda starts it.
 *
 * Lambda's init process (a Go program) starts each file in /opt/extensions with fork+exec and
 * answers the Extensions API from the same process. This program does the same on one machine:
 * it serves a minimal Extensions/Telemetry API (register, telemetry subscription, event/next
 * answered with SHUTDOWN) from a poll() loop in C, and starts the extension with posix_spawn()
 * (vfork+exec, as Go's os/exec does). So the figures contain no shell and no Node.js event loop:
 * only the kernel's exec, the dynamic loader, libc and the extension itself.
 *
 * Usage: startup_bench <starts> <floor-program> <extension> [<extension>...]
 * With several extensions the starts alternate between them (one of each per round), so that
 * builds are compared side by side under the same machine load; each row names its binary.
 * The environment is passed on (set AWS_LAMBDA_RUNTIME_API's port with STARTUP_BENCH_API_PORT or
 * let it pick one, COLDSTART_* as wanted). Prints one JSON object per start on stdout:
 *   spawn_to_main_ms      posix_spawn() called to the extension's main() (its "registered" log line)
 *   spawn_to_request_ms   to the whole register request read by the API
 *   spawn_to_registered_ms to the register answer read by the extension (its clock)
 *   spawn_to_ready_ms     to the first event/next request read by the API (subscribed, waiting)
 *   floor_ms              posix_spawn() to main() of <floor-program>, which prints only the time
 *   register_ms, ready_ms, cpu_us, max_rss_kb, page_faults: the extension's own figures
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_CONN 8
#define REQ_MAX 65536
#define LOG_MAX 65536

typedef struct conn {
    int fd;
    size_t len;
    char buf[REQ_MAX];
} conn;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, const char *extra_headers, const char *body)
{
    char out[1024];
    int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\n%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     extra_headers, strlen(body), body);
    if (n > 0 && (size_t)n < sizeof out)
        write_all(fd, out, (size_t)n);
}

/* One complete request at the front of c->buf: its total length, or 0 when more bytes are needed. */
static size_t complete_request(const conn *c)
{
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->buf) + 4;
    size_t body = 0;
    for (const char *p = c->buf; p < end; p = memchr(p, '\n', (size_t)(end - p)) + 1) {
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            body = strtoul(p + 15, NULL, 10);
        if (!memchr(p, '\n', (size_t)(end - p)))
            break;
    }
    return c->len >= head + body ? head + body : 0;
}

/* Reads a number after "key": in a JSON log line; NaN when absent. */
static double field(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : 0.0 / 0.0;
}

static pid_t spawn_with_stderr(const char *path, int *err_fd, double *at)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    char *argv[] = {(char *)path, NULL};
    pid_t pid;
    *at = now_ms();
    int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        return -1;
    }
    *err_fd = p[0];
    return pid;
}

static double floor_once(const char *program)
{
    int fd;
    double at;
    pid_t pid = spawn_with_stderr(program, &fd, &at);
    if (pid < 0)
        return 0.0 / 0.0;
    char out[256];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof out - 1 && (n = read(fd, out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = 0;
    close(fd);
    waitpid(pid, NULL, 0);
    return field(out, "main_unix_us") / 1000.0 - at;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s <starts> <floor-program> <extension> [<extension>...]\n", argv[0]);
        return 2;
    }
    int starts = atoi(argv[1]);
    int builds = argc - 3;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    const char *want = getenv("STARTUP_BENCH_API_PORT");
    sa.sin_port = htons((unsigned short)(want ? atoi(want) : 0));
    socklen_t salen = sizeof sa;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 16) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
        perror("listen");
        return 1;
    }
    char api[64];
    snprintf(api, sizeof api, "127.0.0.1:%d", ntohs(sa.sin_port));
    setenv("AWS_LAMBDA_RUNTIME_API", api, 1);

    static conn conns[MAX_CONN];
    static char log[LOG_MAX];
    for (int i = 0; i < starts * builds; i++) {
        const char *extension = argv[3 + i % builds];
        for (int k = 0; k < MAX_CONN; k++)
            conns[k].fd = -1;
        size_t log_len = 0;
        int err_fd;
        double spawned, t_request = 0, t_ready = 0;
        pid_t pid = spawn_with_stderr(extension, &err_fd, &spawned);
        if (pid < 0) {
            perror("posix_spawn");
            return 1;
        }
        int exited = 0, log_open = 1;
        double give_up = spawned + 10000;
        while ((!exited || log_open) && now_ms() < give_up) {
            struct pollfd pfd[MAX_CONN + 2];
            int map[MAX_CONN + 2];
            int n = 0;
            pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
            map[n++] = -1;
            if (log_open) {
                pfd[n] = (struct pollfd){.fd = err_fd, .events = POLLIN};
                map[n++] = -2;
            }
            for (int k = 0; k < MAX_CONN; k++)
                if (conns[k].fd >= 0) {
                    pfd[n] = (struct pollfd){.fd = conns[k].fd, .events = POLLIN};
                    map[n++] = k;
                }
            if (poll(pfd, (nfds_t)n, 20) < 0 && errno != EINTR)
                break;
            for (int j = 0; j < n; j++) {
                if (!pfd[j].revents)
                    continue;
                if (map[j] == -1) {
                    int fd = accept(lfd, NULL, NULL);
                    int slot = 0;
                    while (slot < MAX_CONN && conns[slot].fd >= 0)
                        slot++;
                    if (fd >= 0 && slot < MAX_CONN) {
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                        conns[slot].fd = fd;
                        conns[slot].len = 0;
                    } else if (fd >= 0)
                        close(fd);
                    continue;
                }
                if (map[j] == -2) {
                    ssize_t r = read(err_fd, log + log_len, LOG_MAX - 1 - log_len);
                    if (r <= 0)
                        log_open = 0;
                    else
                        log_len += (size_t)r;
                    continue;
                }
                conn *c = &conns[map[j]];
                ssize_t r = read(c->fd, c->buf + c->len, REQ_MAX - c->len);
                if (r <= 0) {
                    close(c->fd);
                    c->fd = -1;
                    continue;
                }
                c->len += (size_t)r;
                size_t used;
                while ((used = complete_request(c)) > 0) {
                    double t = now_ms();
                    if (memmem(c->buf, used, "/extension/register", 19) && !t_request) {
                        t_request = t;
                        reply(c->fd, "Lambda-Extension-Identifier: bench-id\r\n",
                              "{\"functionName\":\"bench\",\"functionVersion\":\"$LATEST\",\"handler\":\"index.handler\"}");
                    } else if (memmem(c->buf, used, "/telemetry", 10)) {
                        reply(c->fd, "", "\"OK\"");
                    } else if (memmem(c->buf, used, "/event/next", 11)) {
                        if (!t_ready)
                            t_ready = t;
                        char ev[160];
                        snprintf(ev, sizeof ev, "{\"eventType\":\"SHUTDOWN\",\"shutdownReason\":\"spindown\",\"deadlineMs\":%.0f}",
                                 t + 2000);
                        reply(c->fd, "", ev);
                    } else {
                        write_all(c->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 45);
                    }
                    memmove(c->buf, c->buf + used, c->len - used);
                    c->len -= used;
                }
                if (c->len == REQ_MAX) { /* not HTTP as we know it */
                    close(c->fd);
                    c->fd = -1;
                }
            }
            if (!exited && waitpid(pid, NULL, WNOHANG) == pid)
                exited = 1;
        }
        if (!exited) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        close(err_fd);
        for (int k = 0; k < MAX_CONN; k++)
            if (conns[k].fd >= 0)
                close(conns[k].fd);
        log[log_len] = 0;
        const char *line = strstr(log, "\"registered\"");
        if (!line || !t_request) {
            fprintf(stderr, "start %d: no register (extension said: %.500s)\n", i, log);
            return 1;
        }
        double main_ms = field(line, "main_unix_us") / 1000.0;
        double floor = floor_once(argv[2]);
        printf("{\"binary\":\"%s\",", extension);
        printf("\"spawn_to_main_ms\":%.3f,\"spawn_to_request_ms\":%.3f,\"spawn_to_registered_ms\":%.3f,"
               "\"spawn_to_ready_ms\":%.3f,\"floor_ms\":%.3f,\"register_ms\":%.3f,\"ready_ms\":%.3f,\"cpu_us\":%.0f,"
               "\"max_rss_kb\":%.0f,\"page_faults\":%.0f}\n",
               main_ms - spawned, t_request - spawned, main_ms + field(line, "register_ms") - spawned,
               t_ready ? t_ready - spawned : 0.0 / 0.0, floor, field(line, "register_ms"), field(line, "ready_ms"),
               field(line, "cpu_us"), field(line, "max_rss_kb"), field(line, "page_faults"));
        fflush(stdout);
    }
    return 0;
}
