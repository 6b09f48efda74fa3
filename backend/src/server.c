/*
 * server.c: see server.h. The workers (one event loop and SO_REUSEPORT listener each), start-up
 * and the shared state, the METRICS_PORT listener, the timers of worker 0 (partition upkeep,
 * rollup folding), and the signals: SIGTERM or SIGINT drains in-flight requests, then stops.
 * The other jobs of the HTTP server are in the files server_internal.h lists.
 */
#include "server.h"

#include "server_internal.h"

#include "alerts.h"
#include "day_sketches.h"
#include "log.h"
#include "metrics.h"
#include "projects.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_INTERVAL_MS 100
#define ROLLUP_FOLD_INTERVAL_S 5 /* folding the rollup deltas (migrations/002) and day sketches (006) */
#define SKETCH_FOLD_BATCHES 10   /* of 2,000 queued cold starts, at most, per fold */
#define AUTH_THREADS 2           /* key lookups that miss the cache, each with its own connection */

typedef csa__worker worker;

csa__server csa__g;

/* ---- metrics ------------------------------------------------------------------------------- */

/* GET /metrics on the METRICS_PORT listener (worker 0's loop): Prometheus' text format. */
static void on_metrics(struct evhttp_request *req, void *arg)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || strcmp(path, "/metrics") != 0 || evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_send_error(req, 404, "Not Found");
        return;
    }
    char *text = csa_metrics_render(csa_writer_pending(csa__g.writer), csa_db_pool_in_use(csa__g.pool),
                                    csa__g.cfg->database_pool_size);
    struct evbuffer *buf = evbuffer_new();
    if (text)
        evbuffer_add(buf, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
}

static void name_routes_for_metrics(void)
{
    csa_metrics_set_route_name(CSA_METRICS_ROUTES - 1, "unmatched", "any");
    for (size_t i = 0; i < csa__nroutes && i < CSA_METRICS_ROUTES - 1; i++)
        csa_metrics_set_route_name((int)i, csa__routes[i].path, csa__method_name(csa__routes[i].method));
}

/* ---- workers, start and stop -------------------------------------------------------------- */

static int open_listener(const char *host, int port, char *err, size_t err_size)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_size, "HOST: cannot resolve \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        /* No Nagle: evhttp writes a response's headers and body separately, and the body would
         * wait for the client's delayed ACK of the headers (40 ms on Linux). Accepted sockets
         * inherit the option from the listener. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
            snprintf(err, err_size, "cannot listen on %s:%d: %s", host, port, strerror(errno));
            close(fd);
            fd = -1;
        }
    } else {
        snprintf(err, err_size, "socket: %s", strerror(errno));
    }
    freeaddrinfo(res);
    return fd;
}

/* Executor job: partition upkeep on a pooled connection. */
static void run_maintenance(void *arg)
{
    PGconn *conn = csa_db_pool_acquire(csa__g.pool, 5000);
    if (!conn)
        return;
    int created = 0, dropped = 0;
    char err[300];
    if (csa_db_maintain(conn, csa__g.cfg->retention_months, &created, &dropped, err, sizeof err) < 0)
        csa_logf(CSA_LOG_WARN, "partition upkeep failed: %s", err);
    else if (created || dropped)
        csa_logf(CSA_LOG_INFO, "partition upkeep: %d created, %d dropped", created, dropped);
    csa_db_pool_release(csa__g.pool, conn, 0);
}

/* Executor job: folds the rollup deltas (migrations/002) so that they stay a few rows long. */
static void run_fold(void *arg)
{
    PGconn *conn = csa_db_pool_acquire(csa__g.pool, 1000);
    if (!conn)
        return;
    char err[300];
    if (csa_db_fold_rollups(conn, err, sizeof err) < 0)
        csa_logf(CSA_LOG_WARN, "rollup fold failed: %s", err);
    /* the day sketches' queue (migrations/006): a bounded amount per tick, so that a backlog (the
     * migration queues the existing cold starts) drains in the background */
    if (csa_day_sketches_fold_all(conn, SKETCH_FOLD_BATCHES, err, sizeof err) < 0)
        csa_logf(CSA_LOG_WARN, "day sketch fold failed: %s", err);
    csa_db_pool_release(csa__g.pool, conn, 0);
}

static void no_op(void *arg) {}

static void on_fold(evutil_socket_t fd, short what, void *arg)
{
    csa_executor_submit(csa__g.executor, run_fold, no_op, NULL);
}

static void on_maintain(evutil_socket_t fd, short what, void *arg)
{
    csa_executor_submit(csa__g.executor, run_maintenance, no_op, NULL);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    if (w->bound) {
        evhttp_del_accept_socket(w->http, w->bound); /* closes the listening socket */
        w->bound = NULL;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

static int worker_init(worker *w, int index, const csa_config *cfg, char *err, size_t err_size)
{
    w->index = index;
    w->cfg = cfg;
    w->cap = cfg->max_connections / cfg->workers;
    if (w->cap < 1)
        w->cap = 1;
    w->base = event_base_new();
    w->http = w->base ? evhttp_new(w->base) : NULL;
    if (!w->http) {
        snprintf(err, err_size, "cannot create the event loop");
        return -1;
    }
    int fd = open_listener(cfg->host, cfg->port, err, err_size);
    if (fd < 0)
        return -1;
    w->bound = evhttp_accept_socket_with_handle(w->http, fd);
    if (!w->bound) {
        close(fd);
        snprintf(err, err_size, "cannot accept on %s:%d", cfg->host, cfg->port);
        return -1;
    }
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(w->http, CSA__GATE_HEAD_MAX);
    evhttp_set_max_body_size(w->http, (ev_ssize_t)(cfg->max_body_batch + CSA__HARD_BODY_CAP_EXTRA));
    evhttp_set_timeout(w->http, cfg->idle_timeout_s);
    evhttp_set_gencb(w->http, csa__on_request, w);
    evhttp_set_bevcb(w->http, csa__on_new_connection, w);
    w->sweep = event_new(w->base, -1, EV_PERSIST, csa__on_sweep, w);
    struct timeval tv = {0, SWEEP_INTERVAL_MS * 1000};
    event_add(w->sweep, &tv);
    w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
    w->done_ev = event_new(w->base, -1, 0, csa__on_work_reported, w);
    if (index == 0 && cfg->metrics_port) {
        w->metrics_http = evhttp_new(w->base);
        if (!w->metrics_http ||
            evhttp_bind_socket(w->metrics_http, cfg->metrics_host, (ev_uint16_t)cfg->metrics_port) != 0) {
            snprintf(err, err_size, "METRICS_PORT: cannot listen on %s:%d", cfg->metrics_host, cfg->metrics_port);
            return -1;
        }
        evhttp_set_gencb(w->metrics_http, on_metrics, w);
    }
    if (index == 0) {
        w->maintain_ev = event_new(w->base, -1, EV_PERSIST, on_maintain, w);
        struct timeval hour = {3600, 0};
        event_add(w->maintain_ev, &hour);
        w->fold_ev = event_new(w->base, -1, EV_PERSIST, on_fold, w);
        struct timeval fold = {ROLLUP_FOLD_INTERVAL_S, 0};
        event_add(w->fold_ev, &fold);
    }
    pthread_mutex_init(&w->done_lock, NULL);
    return 0;
}

static void worker_cleanup(worker *w)
{
    csa__gate_jobs_free(w->gate_done); /* reported after the loop ended */
    if (w->metrics_http)
        evhttp_free(w->metrics_http);
    if (w->http)
        evhttp_free(w->http);
    for (csa__conn *t = w->all, *next; t; t = next) {
        next = t->next;
        bufferevent_decref(t->bev);
        free(t);
    }
    if (w->sweep)
        event_free(w->sweep);
    if (w->stop_ev)
        event_free(w->stop_ev);
    if (w->maintain_ev)
        event_free(w->maintain_ev);
    if (w->fold_ev)
        event_free(w->fold_ev);
    if (w->done_ev) {
        event_free(w->done_ev);
        pthread_mutex_destroy(&w->done_lock);
    }
    if (w->base)
        event_base_free(w->base);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int csa_server_run(const csa_config *cfg)
{
    char err[512];
    int exit_code = 1;
    csa__g.cfg = cfg;
    csa__g.instance = randombytes_random();
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);

    /* signals are taken by sigwait() in this thread only */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    char weak[120];
    if (cfg->app_secret_key[0] && !csa_secret_strong(cfg->app_secret_key, weak, sizeof weak))
        csa_logf(CSA_LOG_WARN,
                 "APP_SECRET_KEY is %s: POST /api/v1/projects stays disabled (generate one with "
                 "openssl rand -base64 32)",
                 weak);
    csa__g.rules = csa_rules_load(cfg->rules_file, err, sizeof err);
    if (!csa__g.rules) {
        fprintf(stderr, "coldstartd: rule file error: %s\n", err);
        return 2;
    }
    csa__g.pool = csa_db_pool_create(cfg->database_url, cfg->database_pool_size);
    if (csa__g.pool) /* bounds the time (and so the work) of one read; partition upkeep included */
        csa_db_pool_set_statement_timeout(csa__g.pool, cfg->query_timeout_ms);
    csa__g.limits = csa_ratelimit_create(cfg->rate_limit_ingest, cfg->rate_limit_query, cfg->rate_limit_window_s,
                                         65536);
    if (csa__g.limits)
        csa_ratelimit_set_project_limits(csa__g.limits, cfg->rate_limit_project_ingest, cfg->rate_limit_project_query);
    csa__g.executor = csa_executor_start(cfg->query_threads, 1000);
    csa__g.auth_pool = csa_db_pool_create(cfg->database_url, AUTH_THREADS);
    csa__g.auth_executor = csa_executor_start(AUTH_THREADS, 1000);
    csa__g.health_pool = csa_db_pool_create(cfg->database_url, 1);
    csa__g.health_executor = csa_executor_start(1, 256);
    csa__g.keys = csa_keycache_create(cfg->key_cache_ttl_s, 4096);
    csa__g.authfail = csa_authfail_create(cfg->auth_fail_limit, cfg->auth_fail_window_s, 65536);
    csa__g.writer = csa_writer_start(cfg->database_url, cfg->writers, cfg->writer_batch_max, cfg->writer_batch_max * 50,
                                     cfg->writer_queue_max_bytes);
    name_routes_for_metrics();
    csa__g.nworkers = cfg->workers;
    csa__g.workers = calloc((size_t)csa__g.nworkers, sizeof *csa__g.workers);
    if (!csa__g.pool || !csa__g.keys || !csa__g.writer || !csa__g.workers || !csa__g.limits || !csa__g.executor ||
        !csa__g.auth_pool || !csa__g.auth_executor || !csa__g.health_pool || !csa__g.health_executor ||
        !csa__g.authfail) {
        csa_logf(CSA_LOG_ERROR, "out of memory at start-up");
        goto out;
    }
    for (int i = 0; i < csa__g.nworkers; i++) {
        if (worker_init(&csa__g.workers[i], i, cfg, err, sizeof err) < 0) {
            csa_logf(CSA_LOG_ERROR, "%s", err);
            for (int j = 0; j <= i; j++)
                worker_cleanup(&csa__g.workers[j]);
            goto out;
        }
    }
    /* check the database once, so a wrong DATABASE_URL is visible at start (serving continues:
     * health says unhealthy and the server reconnects by itself) */
    PGconn *probe = csa_db_pool_acquire(csa__g.pool, 1000);
    if (probe)
        csa_db_pool_release(csa__g.pool, probe, 0);
    else
        csa_logf(CSA_LOG_WARN, "database not reachable at start; serving anyway and retrying");

    csa_executor_submit(csa__g.executor, run_maintenance, no_op, NULL);
    for (int i = 0; i < csa__g.nworkers; i++)
        pthread_create(&csa__g.workers[i].thread, NULL, worker_main, &csa__g.workers[i]);
    csa_log(CSA_LOG_INFO, "listening",
            json_pack("{s:s, s:i, s:i, s:s}", "host", cfg->host, "port", cfg->port, "workers", cfg->workers, "version",
                      CSA_VERSION));

    csa_alerts *alerts = csa_alerts_start(cfg); /* the alert evaluator: a thread of its own */
    int sig = 0;
    sigwait(&sigs, &sig);
    csa_alerts_stop(alerts);
    csa_logf(CSA_LOG_INFO, "received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    atomic_store(&csa__g.stopping, 1);
    for (int i = 0; i < csa__g.nworkers; i++)
        event_active(csa__g.workers[i].stop_ev, EV_READ, 0);
    double deadline = csa__now_mono() + cfg->shutdown_timeout_s;
    while (atomic_load(&csa__g.inflight) > 0 && csa__now_mono() < deadline)
        sleep_ms(10);
    sleep_ms(200); /* let the last responses reach their sockets */
    for (int i = 0; i < csa__g.nworkers; i++)
        event_base_loopexit(csa__g.workers[i].base, NULL);
    for (int i = 0; i < csa__g.nworkers; i++)
        pthread_join(csa__g.workers[i].thread, NULL);
    int left = atomic_load(&csa__g.inflight);
    csa_writer_stop(csa__g.writer); /* commits whatever is still queued */
    csa__g.writer = NULL;
    csa_executor_stop(csa__g.executor);
    csa__g.executor = NULL;
    csa_executor_stop(csa__g.auth_executor);
    csa__g.auth_executor = NULL;
    csa_executor_stop(csa__g.health_executor);
    csa__g.health_executor = NULL;
    for (int i = 0; i < csa__g.nworkers; i++)
        worker_cleanup(&csa__g.workers[i]);
    if (left > 0)
        csa_logf(CSA_LOG_WARN, "%d requests were still waiting at the drain deadline", left);
    csa_logf(CSA_LOG_INFO, "stopped");
    exit_code = 0;
out:
    csa_writer_stop(csa__g.writer);
    csa_executor_stop(csa__g.executor);
    csa_executor_stop(csa__g.auth_executor);
    csa_executor_stop(csa__g.health_executor);
    csa_db_pool_destroy(csa__g.auth_pool);
    csa_db_pool_destroy(csa__g.health_pool);
    csa_ratelimit_destroy(csa__g.limits);
    csa_authfail_destroy(csa__g.authfail);
    csa_rules_free(csa__g.rules);
    csa_keycache_destroy(csa__g.keys);
    csa_db_pool_destroy(csa__g.pool);
    free(csa__g.workers);
    return exit_code;
}
