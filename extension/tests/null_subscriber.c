/* null_subscriber.c: the bench's control for the telemetry delivery. A Lambda extension that does
 * the least any telemetry subscriber can do: registers for SHUTDOWN, subscribes to platform
 * telemetry with the buffering coldstart-extension asks for, and answers every delivery with 200
 * without looking at it. It runs under SCHED_IDLE, as coldstart-extension does once ready. What the
 * function's duration loses with it is what the platform's deliveries cost, whoever receives them.
 *
 * Environment: AWS_LAMBDA_RUNTIME_API, COLDSTART_TELEMETRY_PORT, COLDSTART_TELEMETRY_TIMEOUT_MS
 * (default 250, as coldstart-extension). One thread, blocking sockets, poll(). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 8
#define BUF 8192

static struct sockaddr_in api;

static int connect_api(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&api, sizeof api) != 0) {
        perror("null_subscriber: connect");
        exit(1);
    }
    return fd;
}

/* Reads one HTTP message (headers and a Content-Length body) into buf; returns its length, 0 at
 * end of stream. *header_end is set past the blank line. The body is read and dropped when it
 * does not fit. */
static ssize_t read_message(int fd, char *buf, size_t cap, size_t *header_end)
{
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n == cap - 1)
            return -1;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            return r;
        n += (size_t)r;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    *header_end = (size_t)(end + 4 - buf);
    size_t length = 0;
    for (char *h = buf; h && h < end; h = strstr(h, "\r\n"), h = h ? h + 2 : NULL)
        if (strncasecmp(h, "content-length:", 15) == 0)
            length = strtoul(h + 15, NULL, 10);
    size_t have = n - *header_end;
    while (have < length) {
        char sink[BUF];
        ssize_t r = read(fd, sink, sizeof sink < length - have ? sizeof sink : length - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return (ssize_t)n;
}

/* Writes one request to the API. */
static void request(int fd, const char *method, const char *path, const char *headers, const char *body)
{
    char req[2048];
    int len = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n\r\n%s", method, path, headers,
                       strlen(body), body);
    if (write(fd, req, (size_t)len) != len) {
        perror("null_subscriber: write");
        exit(1);
    }
}

int main(void)
{
    const char *rt = getenv("AWS_LAMBDA_RUNTIME_API");
    const char *port_s = getenv("COLDSTART_TELEMETRY_PORT");
    const char *timeout_s = getenv("COLDSTART_TELEMETRY_TIMEOUT_MS");
    if (!rt || !port_s || !strchr(rt, ':')) {
        fprintf(stderr, "null_subscriber: AWS_LAMBDA_RUNTIME_API and COLDSTART_TELEMETRY_PORT are required\n");
        return 2;
    }
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(strchr(rt, ':') - rt), rt);
    api.sin_family = AF_INET;
    api.sin_port = htons((unsigned short)atoi(strchr(rt, ':') + 1));
    if (inet_pton(AF_INET, host, &api.sin_addr) != 1)
        return 2;

    static char buf[BUF];
    size_t header_end;
    int fd = connect_api();
    request(fd, "POST", "/2020-01-01/extension/register", "Lambda-Extension-Name: null_subscriber\r\n",
            "{\"events\":[\"SHUTDOWN\"]}");
    if (read_message(fd, buf, sizeof buf, &header_end) <= 0 || !strstr(buf, " 200 "))
        return 1;
    char *idh = strcasestr(buf, "lambda-extension-identifier:");
    if (!idh)
        return 1;
    char id[128];
    if (sscanf(idh + 28, " %127[^\r\n]", id) != 1)
        return 1;
    close(fd);

    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port_s))};
    if (bind(listener, (struct sockaddr *)&local, sizeof local) != 0 || listen(listener, 16) != 0) {
        perror("null_subscriber: listen");
        return 1;
    }

    char headers[256], sub[512];
    snprintf(headers, sizeof headers, "Lambda-Extension-Identifier: %s\r\n", id);
    snprintf(sub, sizeof sub,
             "{\"schemaVersion\":\"2022-12-13\",\"destination\":{\"protocol\":\"HTTP\",\"URI\":\"http://"
             "sandbox.localdomain:%s\"},\"types\":[\"platform\"],\"buffering\":{\"maxItems\":1000,\"maxBytes\":262144,"
             "\"timeoutMs\":%s}}",
             port_s, timeout_s ? timeout_s : "250");
    fd = connect_api();
    request(fd, "PUT", "/2022-07-01/telemetry", headers, sub);
    if (read_message(fd, buf, sizeof buf, &header_end) <= 0 || !strstr(buf, " 200 "))
        return 1;
    close(fd);

    struct sched_param none = {0};
    (void)sched_setscheduler(0, SCHED_IDLE, &none);
    int next = connect_api();
    request(next, "GET", "/2020-01-01/extension/event/next", headers, "");

    struct pollfd fds[2 + MAX_CONNS];
    int nfds = 2;
    fds[0] = (struct pollfd){.fd = next, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = listener, .events = POLLIN};
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (;;) {
        if (poll(fds, (nfds_t)nfds, -1) < 0)
            continue;
        if (fds[0].revents) /* the next event: SHUTDOWN (the only one registered for) */
            return 0;
        if (fds[1].revents) {
            int c = accept(listener, NULL, NULL);
            if (c >= 0 && nfds == 2 + MAX_CONNS)
                close(c); /* full: refused, rather than the listener polled readable forever */
            else if (c >= 0) {
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fds[nfds++] = (struct pollfd){.fd = c, .events = POLLIN};
            }
        }
        for (int i = 2; i < nfds; i++) {
            if (!fds[i].revents)
                continue;
            if (read_message(fds[i].fd, buf, sizeof buf, &header_end) > 0 &&
                write(fds[i].fd, ok, sizeof ok - 1) == (ssize_t)(sizeof ok - 1))
                continue;
            close(fds[i].fd);
            fds[i--] = fds[--nfds];
        }
    }
}
