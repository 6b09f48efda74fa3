/*
 * main.c: coldstart-extension, a Lambda external extension.
 *
 * Start-up: register first, listen locally (the SDK's HTTP endpoint and stream, telemetry) while
 * the answer is on its way, subscribe to platform telemetry, ask for the next event.
 * By default the extension registers for SHUTDOWN only: Lambda then neither sends it an event per
 * invocation nor waits for it to ask for the next one, so an invocation costs it nothing unless
 * there is something to do. What it needs to know of invocations comes from the telemetry
 * (platform.start, platform.report) and from the SDK's records; each of those settles what can be
 * joined and starts shipping. COLDSTART_EXTENSION_EVENTS=INVOKE,SHUTDOWN registers for INVOKE too:
 * each INVOKE then asks for the next event straight away (the function's response never waits for
 * us) and settles likewise. SHUTDOWN: wait briefly for the last reports,
 * ship everything, and exit before Lambda's deadline; what could not be delivered is counted as
 * lost.
 * One thread, one event loop, under SCHED_IDLE once ready (set_idle_policy). Configuration is
 * environment variables only (see README.md).
 */
#include <event2/event.h>
#include <event2/http.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>

#include "http_client.h"
#include "ingest.h"
#include "lambda_api.h"
#include "log.h"
#include "records.h"
#include "shipper.h"
#include "stream.h"
#include "telemetry.h"

#define SHUTDOWN_MARGIN_MS 300   /* exit this long before Lambda's deadline: teardown, a loaded host */
#define SHUTDOWN_REPORT_WAIT 300 /* wait for the last platform.report: this, or the buffering timeout + 150 ms */
/*
 * Telemetry buffering timeout. Every delivery costs the environment a little CPU (Lambda's request,
 * our parse) while the function may be running: 250 ms rather than the minimum 25 means a busy
 * function gets one delivery per quarter second instead of one per invocation (in the emulator,
 * 0.01 to 0.02 ms less per invocation; BENCHMARKS.md). Records join at most that much later; a
 * longer timeout holds more records at once (at 1000 ms the https peak RSS went over 4 MiB).
 */
#define TELEMETRY_TIMEOUT_MS 250

typedef struct app {
    struct event_base *base;
    csa_lambda *lambda;
    csa_ingest *ingest;
    csa_stream *stream; /* the SDK's persistent connection (stream.h) */
    struct evhttp *telemetry;
    csa_records *records;
    csa_shipper *shipper;
    csa_platform platform;
    unsigned long long invokes;
    int shutting_down;
    long long deadline_mono; /* SHUTDOWN deadline on the monotonic clock, minus the margin */
    struct event *shutdown_timer;
    struct event *final_timer;
    struct event *check_timer;
    long long started_mono_us;
    long long started_unix_us; /* wall clock at main(): lets a benchmark measure exec() to main() */
    long long registered_mono_us;
    int sched_idle;           /* COLDSTART_EXTENSION_SCHED_IDLE: SCHED_IDLE once ready (set_idle_policy) */
    int telemetry_timeout_ms; /* the subscription's buffering timeoutMs */
    int warm_from_sdk;        /* COLDSTART_EXTENSION_WARM_RECORDS=sdk: never offer to build warm records */
    json_t *warm_template;    /* the delegating SDK's template (stream.h), or NULL */
    double warm_sample_rate;
    const void *warm_owner;        /* its connection */
    char warm_until[CSA_TIME_MAX]; /* when that connection closed (UTC, as in the telemetry), or "" */
    int telemetry_after_shutdown;  /* a telemetry delivery has come since SHUTDOWN */
    int exit_code;
} app;

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int env_int(const char *name, int def, int lo, int hi)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n < lo || n > hi) {
        csa_logf(CSA_LOG_WARN, "%s=%s is not an integer in [%d, %d]; using %d", name, v, lo, hi, def);
        return def;
    }
    return (int)n;
}

static const char *env_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* COLDSTART_EXTENSION_EVENTS: "SHUTDOWN" (the default) or "INVOKE,SHUTDOWN". */
static int invoke_events(void)
{
    const char *v = getenv("COLDSTART_EXTENSION_EVENTS");
    if (!v || !*v || strcmp(v, "SHUTDOWN") == 0)
        return 0;
    if (strcmp(v, "INVOKE,SHUTDOWN") == 0 || strcmp(v, "SHUTDOWN,INVOKE") == 0)
        return 1;
    csa_logf(CSA_LOG_WARN, "COLDSTART_EXTENSION_EVENTS=%s is neither SHUTDOWN nor INVOKE,SHUTDOWN; using SHUTDOWN", v);
    return 0;
}

static long long g_cpu_at_main_us;

/*
 * CPU time (user + system) since main(), in microseconds, and peak RSS in KiB. getrusage's
 * counters survive execve (time spent in the parent's forked copy would count, and ru_maxrss would
 * be the parent's size): CPU is taken relative to main(), the peak from VmHWM, which exec resets.
 */
static long long cpu_us(long *max_rss_kb)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (max_rss_kb) {
        *max_rss_kb = 0;
        FILE *f = fopen("/proc/self/status", "r");
        char line[128];
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", max_rss_kb) == 1)
                break;
        if (f)
            fclose(f);
    }
    long long total =
        (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    return total - g_cpu_at_main_us;
}

/* Minor page faults since exec (each one costs microseconds in a microVM such as Lambda's). */
static long page_faults(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

/* Invocations begun so far: INVOKE events when registered for them, else platform.start events. */
static unsigned long long invocations(const app *a)
{
    return a->invokes > a->platform.stats.starts ? a->invokes : a->platform.stats.starts;
}

static json_t *status_json(void *arg)
{
    app *a = arg;
    long max_rss_kb = 0;
    long long cpu = cpu_us(&max_rss_kb);
    const csa_records_stats *r = csa_records_stats_get(a->records);
    const csa_shipper_stats *s = csa_shipper_stats_get(a->shipper);
    json_t *st = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "version", CSA_EXT_VERSION,
        "invokes", (json_int_t)invocations(a), "records_received", (json_int_t)r->received, "records_joined",
        (json_int_t)r->joined, "records_unjoined", (json_int_t)r->unjoined, "records_dropped", (json_int_t)r->dropped,
        "records_pending", (json_int_t)csa_records_pending(a->records), "records_ready",
        (json_int_t)csa_records_ready(a->records), "records_in_flight", (json_int_t)csa_shipper_in_flight(a->shipper),
        "records_shipped", (json_int_t)s->shipped, "records_rejected", (json_int_t)s->rejected, "batches",
        (json_int_t)s->batches, "attempts", (json_int_t)s->attempts, "retries", (json_int_t)s->retries,
        "telemetry_events", (json_int_t)a->platform.stats.events, "telemetry_malformed",
        (json_int_t)a->platform.stats.malformed);
    json_object_set_new(st, "records_merged", json_integer((json_int_t)r->merged));
    json_object_set_new(st, "records_completed", json_integer((json_int_t)r->completed));
    json_object_set_new(st, "records_incomplete_shipped", json_integer((json_int_t)r->incomplete_out));
    json_object_set_new(st, "records_from_platform", json_integer((json_int_t)r->from_platform));
    json_object_set_new(st, "records_sampled_out", json_integer((json_int_t)r->sampled_out));
    json_object_set_new(st, "cpu_us", json_integer((json_int_t)cpu));
    json_object_set_new(st, "max_rss_kb", json_integer((json_int_t)max_rss_kb));
    return st;
}

/*
 * Without telemetry no report will come: records go out as they are, at once. The SDK's records
 * are joined first: a report whose request had one gets no record built from the platform.
 */
static void settle(app *a, int everything)
{
    csa_records_settle(a->records, &a->platform, invocations(a), csa_now_ms(),
                       everything || !csa_lambda_telemetry_active(a->lambda));
    if (a->warm_template) {
        char last[CSA_ID_MAX];
        size_t n = csa_records_from_platform(a->records, &a->platform, a->warm_template, a->warm_sample_rate,
                                             a->warm_until[0] ? a->warm_until : NULL, last);
        csa_stream_done(a->stream, a->warm_owner, last, n);
    }
    csa_shipper_kick(a->shipper);
}

static void finish(app *a)
{
    json_t *st = status_json(a);
    size_t lost = csa_records_pending(a->records) + csa_records_ready(a->records) + csa_shipper_in_flight(a->shipper);
    json_object_set_new(st, "records_lost", json_integer((json_int_t)lost));
    json_object_set_new(st, "uptime_ms", json_integer((json_int_t)((mono_us() - a->started_mono_us) / 1000)));
    csa_log(lost ? CSA_LOG_WARN : CSA_LOG_INFO, "shutdown", st);
    event_base_loopbreak(a->base);
}

/* After SHUTDOWN: done as soon as nothing is left. */
static void on_check(evutil_socket_t fd, short what, void *arg)
{
    app *a = arg;
    if (csa_records_pending(a->records) == 0 && csa_records_ready(a->records) == 0 && csa_shipper_idle(a->shipper)) {
        finish(a);
        return;
    }
    struct timeval tv = {0, 5000};
    evtimer_add(a->check_timer, &tv);
}

static void on_final(evutil_socket_t fd, short what, void *arg)
{
    finish(arg);
}

/* The wait for the last reports is over: everything goes out, joined or not. */
static void on_report_wait_over(evutil_socket_t fd, short what, void *arg)
{
    app *a = arg;
    settle(a, 1);
    on_check(-1, 0, a);
}

/*
 * Once ready, the extension runs under SCHED_IDLE: it gets a CPU only when nothing else in the
 * environment wants one. Lambda's environment shares its CPU (a fraction of a vCPU below 1,769 MB)
 * between the runtime and the extensions, and everything the extension does after start-up (reading
 * the SDK's records, joining, shipping) can wait for the function to stop running: records of
 * invocation N are then taken and shipped once the function's response has gone out, or in the
 * idle moments of invocation N+1, never in its way. Going back to the normal policy needs
 * CAP_SYS_NICE or an RLIMIT_NICE above 0; at SHUTDOWN it is tried (the runtime is being stopped
 * then, so nothing is taken from the function either way). COLDSTART_EXTENSION_SCHED_IDLE=0 keeps
 * the normal policy throughout.
 */
static void set_idle_policy(app *a, int idle)
{
    if (!a->sched_idle)
        return;
    struct sched_param sp = {0};
    if (sched_setscheduler(0, idle ? SCHED_IDLE : SCHED_OTHER, &sp) != 0)
        csa_log(idle ? CSA_LOG_WARN : CSA_LOG_DEBUG,
                idle ? "cannot run under SCHED_IDLE" : "SCHED_IDLE kept at SHUTDOWN",
                json_pack("{s:s}", "error", strerror(errno)));
}

/*
 * At SHUTDOWN: reports still to come that a record waits for: an SDK record's, or, with warm
 * records built from the platform, any invocation's. Those of the last invocations may still be in
 * Lambda's telemetry buffer, unseen: until a delivery has come after SHUTDOWN (it holds every
 * event buffered until then), and while a platform.start has no report yet.
 */
static int waiting_for_reports(const app *a)
{
    return csa_records_pending(a->records) > 0 ||
           (a->warm_template && (!a->telemetry_after_shutdown || a->platform.stats.starts > a->platform.stats.reports));
}

static void start_shutdown(app *a, const csa_lambda_event *ev)
{
    a->shutting_down = 1;
    set_idle_policy(a, 0);
    long long now_wall = 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    now_wall = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    long long left = ev->deadline_ms > now_wall ? ev->deadline_ms - now_wall : 2000;
    left = left > SHUTDOWN_MARGIN_MS * 2 ? left - SHUTDOWN_MARGIN_MS : left / 2;
    a->deadline_mono = csa_now_ms() + left;
    csa_log(CSA_LOG_INFO, "SHUTDOWN", json_pack("{s:s, s:I}", "reason", ev->reason, "budget_ms", (json_int_t)left));
    csa_shipper_hurry(a->shipper, a->deadline_mono);
    settle(a, 0);
    long long wait =
        a->telemetry_timeout_ms + 150 > SHUTDOWN_REPORT_WAIT ? a->telemetry_timeout_ms + 150 : SHUTDOWN_REPORT_WAIT;
    if (wait > left / 4)
        wait = left / 4;
    if (!waiting_for_reports(a))
        wait = 0;
    struct timeval w = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(a->shutdown_timer, &w);
    struct timeval f = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    evtimer_add(a->final_timer, &f);
}

static void on_event(const csa_lambda_event *ev, void *arg)
{
    app *a = arg;
    if (ev->type == CSA_EVENT_SHUTDOWN) {
        start_shutdown(a, ev);
        return;
    }
    a->invokes++;
    csa_logf(CSA_LOG_DEBUG, "INVOKE %s", ev->request_id);
    /* Ask for the next event first: until we do, Lambda holds the invocation open. */
    csa_lambda_next(a->lambda);
    settle(a, 0);
}

static void on_registered(void *arg)
{
    app *a = arg;
    a->registered_mono_us = mono_us();
}

static void on_ready(void *arg)
{
    app *a = arg;
    /* register_ms: main() to the register answer; ready_ms: to subscribed and waiting for events */
    long max_rss_kb = 0;
    long long cpu = cpu_us(&max_rss_kb);
    csa_log(CSA_LOG_INFO, "registered",
            json_pack("{s:f, s:f, s:I, s:I, s:I, s:I}", "register_ms",
                      (double)(a->registered_mono_us - a->started_mono_us) / 1000.0, "ready_ms",
                      (double)(mono_us() - a->started_mono_us) / 1000.0, "cpu_us", (json_int_t)cpu, "max_rss_kb",
                      (json_int_t)max_rss_kb, "page_faults", (json_int_t)page_faults(), "main_unix_us",
                      (json_int_t)a->started_unix_us));
    set_idle_policy(a, 1);
    csa_lambda_next(a->lambda);
}

static void on_fatal(const char *what, void *arg)
{
    app *a = arg;
    csa_log(CSA_LOG_ERROR, "extension stops", json_pack("{s:s}", "reason", what));
    a->exit_code = 1;
    event_base_loopbreak(a->base);
}

static void on_add(json_t *record, void *arg)
{
    app *a = arg;
    csa_records_add(a->records, record, invocations(a), csa_now_ms());
}

static void on_added(void *arg)
{
    app *a = arg;
    settle(a, a->shutting_down && !evtimer_pending(a->shutdown_timer, NULL));
}

static void on_api_key(const char *key, void *arg)
{
    app *a = arg;
    csa_shipper_offer_api_key(a->shipper, key);
}

/*
 * A hello asks whether warm records can be left to us. A template whose SDK has gone is dropped
 * then: the new SDK process's cold-start record must be read before its reports are considered,
 * and it delegates again after that record (stream.h).
 */
static int on_offer(void *arg)
{
    app *a = arg;
    if (a->warm_template && !a->warm_owner) {
        json_decref(a->warm_template);
        a->warm_template = NULL;
    }
    return !a->warm_from_sdk && csa_lambda_telemetry_active(a->lambda);
}

static void on_delegate(json_t *record, double sample_rate, const void *owner, void *arg)
{
    app *a = arg;
    json_decref(a->warm_template);
    a->warm_template = json_incref(record);
    a->warm_sample_rate = sample_rate;
    a->warm_owner = owner;
    a->warm_until[0] = '\0';
    csa_log(CSA_LOG_INFO, "warm records from the platform", json_pack("{s:f}", "sample_rate", sample_rate));
}

/*
 * The delegating SDK's connection has ended: its process is gone (at SHUTDOWN Lambda stops the
 * runtime first), or it gave up on the stream and sends its records to the backend itself. The
 * reports of the invocations that started before are still to come and get their records; those
 * that start later are not the extension's (until another SDK delegates: on_offer).
 */
static void on_closed(const void *owner, void *arg)
{
    app *a = arg;
    if (owner != a->warm_owner)
        return;
    a->warm_owner = NULL;
    csa_format_now(a->warm_until, sizeof a->warm_until); /* the log's "ts": as the telemetry's times */
}

static int on_telemetry(const char *body, size_t len, void *arg)
{
    app *a = arg;
    int n = csa_telemetry_ingest(&a->platform, body, len);
    if (a->shutting_down)
        a->telemetry_after_shutdown = 1;
    if (n < 0)
        csa_log(CSA_LOG_WARN, "malformed telemetry body", json_pack("{s:I}", "bytes", (json_int_t)len));
    settle(a, 0);
    if (a->shutting_down && !waiting_for_reports(a) && evtimer_pending(a->shutdown_timer, NULL)) {
        evtimer_del(a->shutdown_timer);
        on_report_wait_over(-1, 0, a);
    }
    return n < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    /* static: zeroed without touching its pages (the telemetry ring is ~120 KiB, mostly unused) */
    static app a;
    a.started_mono_us = mono_us();
    struct timeval now_tv;
    gettimeofday(&now_tv, NULL);
    a.started_unix_us = (long long)now_tv.tv_sec * 1000000 + now_tv.tv_usec;
    g_cpu_at_main_us = cpu_us(NULL);
    signal(SIGPIPE, SIG_IGN);
    csa_log_level level = CSA_LOG_WARN;
    if (getenv("COLDSTART_EXTENSION_LOG_LEVEL"))
        (void)csa_log_parse_level(getenv("COLDSTART_EXTENSION_LOG_LEVEL"), &level);
    csa_log_set_level(level);
    csa_platform_init(&a.platform);

    const char *runtime_api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!runtime_api || !*runtime_api) {
        csa_log(CSA_LOG_ERROR, "AWS_LAMBDA_RUNTIME_API is not set: not running inside Lambda", NULL);
        return 2;
    }
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    /* Not 2772/2773: AWS's AppConfig and Parameters-and-Secrets extensions listen there by default. */
    int port = env_int("COLDSTART_EXTENSION_PORT", 7242, 1, 65535);
    int telemetry_port = env_int("COLDSTART_TELEMETRY_PORT", 7243, 1, 65535);
    int stream_port = env_int("COLDSTART_EXTENSION_STREAM_PORT", 7244, 1, 65535);
    char telemetry_uri[300];
    snprintf(telemetry_uri, sizeof telemetry_uri, "http://%s:%d",
             env_str("COLDSTART_TELEMETRY_HOST", "sandbox.localdomain"), telemetry_port);

    /*
     * Register first. Lambda's init phase waits for every extension's register call (and the
     * function's init runs alongside ours): the request leaves after one non-blocking pass of
     * the loop, and everything else is set up while the answer is on its way. The answer is read
     * only once the listeners exist, so the telemetry subscription never precedes its listener.
     */
    a.base = event_base_new();
    if (!a.base)
        return 1;
    a.telemetry_timeout_ms = env_int("COLDSTART_TELEMETRY_TIMEOUT_MS", TELEMETRY_TIMEOUT_MS, 25, 30000);
    csa_lambda_config cfg = {
        .runtime_api = runtime_api,
        .name = name,
        .telemetry_uri = telemetry_uri,
        .buffer_max_items = env_int("COLDSTART_TELEMETRY_MAX_ITEMS", 1000, 25, 10000),
        .buffer_max_bytes = env_int("COLDSTART_TELEMETRY_MAX_BYTES", 262144, 262144, 1048576),
        .buffer_timeout_ms = a.telemetry_timeout_ms,
        .invoke_events = invoke_events(),
    };
    csa_lambda_handlers handlers = {on_registered, on_ready, on_event, on_fatal, &a};
    a.lambda = csa_lambda_create(a.base, &cfg, &handlers);
    if (!a.lambda || csa_lambda_start(a.lambda) != 0) {
        csa_log(CSA_LOG_ERROR, "cannot send register", NULL);
        return 1;
    }
    event_base_loop(a.base, EVLOOP_NONBLOCK);

    csa_url endpoint;
    const char *endpoint_text = env_str("COLDSTART_ENDPOINT", "https://api.coldstart.dev");
    int url_rc = csa_url_parse(endpoint_text, 0, &endpoint);
    if (url_rc != 0)
        csa_log(CSA_LOG_ERROR,
                url_rc == -2 ? "https endpoints need a TLS build (CSA_TLS): records will not be shipped"
                             : "COLDSTART_ENDPOINT is not a valid http URL: records will not be shipped",
                json_pack("{s:s}", "endpoint", endpoint_text));
    a.sched_idle = env_int("COLDSTART_EXTENSION_SCHED_IDLE", 1, 0, 1);
    a.records = csa_records_create((size_t)env_int("COLDSTART_EXTENSION_MAX_RECORDS", 10000, 10, 1000000),
                                   env_int("COLDSTART_EXTENSION_JOIN_WAIT_MS", 10000, 0, 3600000));
    if (!a.records)
        return 1;
    a.shipper = csa_shipper_create(a.base, url_rc == 0 ? &endpoint : NULL, getenv("COLDSTART_API_KEY"), a.records,
                                   (size_t)env_int("COLDSTART_EXTENSION_BATCH_SIZE", 200, 1, 1000));
    a.shutdown_timer = evtimer_new(a.base, on_report_wait_over, &a);
    a.final_timer = evtimer_new(a.base, on_final, &a);
    a.check_timer = evtimer_new(a.base, on_check, &a);
    const char *warm = env_str("COLDSTART_EXTENSION_WARM_RECORDS", "platform");
    a.warm_from_sdk = strcmp(warm, "sdk") == 0;
    if (!a.warm_from_sdk && strcmp(warm, "platform") != 0)
        csa_logf(CSA_LOG_WARN, "COLDSTART_EXTENSION_WARM_RECORDS=%s is neither platform nor sdk; using platform", warm);
    csa_ingest_hooks hooks = {on_add, on_added, status_json, on_api_key, &a, on_offer, on_delegate, on_closed};
    a.ingest = csa_ingest_create(a.base, env_str("COLDSTART_EXTENSION_HOST", "127.0.0.1"), port, &hooks);
    a.stream = csa_stream_create(a.base, env_str("COLDSTART_EXTENSION_HOST", "127.0.0.1"), stream_port, &hooks);
    a.telemetry = csa_telemetry_listen(a.base, "0.0.0.0", telemetry_port, on_telemetry, &a);
    if (!a.telemetry)
        csa_lambda_skip_telemetry(a.lambda);
    if (!a.shipper || !a.shutdown_timer || !a.final_timer || !a.check_timer) {
        csa_log(CSA_LOG_ERROR, "cannot start", NULL);
        return 1;
    }
    /* Without the local endpoint the SDK falls back to sending directly: keep going, but say so. */
    if (!a.ingest)
        csa_log(CSA_LOG_WARN, "local endpoint unavailable", NULL);
    if (!a.stream)
        csa_log(CSA_LOG_WARN, "stream endpoint unavailable: the SDK uses the local HTTP endpoint", NULL);

    event_base_dispatch(a.base);

    csa_lambda_destroy(a.lambda);
    csa_ingest_destroy(a.ingest);
    csa_stream_destroy(a.stream);
    if (a.telemetry)
        evhttp_free(a.telemetry);
    csa_shipper_destroy(a.shipper);
    csa_records_destroy(a.records);
    json_decref(a.warm_template);
    event_free(a.shutdown_timer);
    event_free(a.final_timer);
    event_free(a.check_timer);
    event_base_free(a.base);
    return a.exit_code;
}
