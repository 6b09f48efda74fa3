"""Where records go: the backend over HTTP(S), the coldstart extension's stream, or stdout.

Each sink takes a cold-start record with cold(record), which returns a threading.Event set once
the record's bytes have left the process (written to a socket or to stdout) or it was given up,
and warm records with warm(record). Nothing here raises into the caller.

Direct (DirectSender), as sdk/src/shared/sender.ts: a cold-start record is kept until the backend
acknowledges it (2xx), retried with backoff (1 s, doubling, at most 30 s apart) for as long as the
process lives, with the same body, hence the same invocation_id (the backend stores it once). At
most 32 records or 4 MiB wait (the oldest are dropped). 400/401/403/413/422 are not retried (one
line on stderr). Warm records are batched (100 per request, or 2 s after the first waiting),
each batch tried 3 times, at most 5,000 waiting.

Stream (StreamSink), the protocol of extension/src/stream.h without the warm-record offer (the
hello does not ask for it, so the extension makes none and this SDK writes every record): one
loopback connection, a hello line with the API key, one JSON line per record, "ack <n>" answers
(cumulative) release the kept records, "rej <n> <reason>" drops one. When the connection fails,
every record not yet acknowledged goes to the backend directly, and so does every later one.

Logs (LogsSink): one line {"coldstart_record": {...}} on stdout, written and flushed at once.
"""

from __future__ import annotations  # annotations are never evaluated: no typing import at run time

import json
import sys
import threading
import time
from collections import deque

from . import _constants as C
from ._config import Config
from ._warn import warn_once
from ._worker import Worker

MAX_KEPT = 32
MAX_KEPT_BYTES = 4 * 1024 * 1024
MAX_BACKOFF_S = 30.0
FIRST_BACKOFF_S = 1.0
BATCH_SIZE = 100
BATCH_DELAY_S = 2.0
BATCH_ATTEMPTS = 3
MAX_QUEUE = 5000
NOT_RETRIED = (400, 401, 403, 404, 413, 422)


def dumps(record: Any) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _done() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


class DirectSender:
    def __init__(self, config: Config, worker: Worker, endpoint: Optional[str] = None) -> None:
        self.config = config
        self.worker = worker
        self.endpoint = endpoint or config.endpoint
        # http.client and urllib.parse are imported by the first request, on the background
        # thread: a sink is created as the first invocation starts, on the response's path
        self._url = None  # (https, host, port, base path)
        self._conn: Optional[http.client.HTTPConnection] = None
        self._kept: Deque[list] = deque()  # [body, event, attempts, delay]
        self._kept_bytes = 0
        self._warm: List[dict] = []
        self._warm_timer = False
        self._lock = threading.Lock()
        # one request at a time on the one connection: the worker's, or the last try at exit
        self._io = threading.RLock()
        self.stored = 0  # records acknowledged (tests, benchmarks)

    # -- the HTTP request (worker thread only) ------------------------------------------------
    def _post(self, path: str, body: bytes, sent: Optional[threading.Event]) -> Tuple[Optional[int], str]:
        with self._io:
            return self._post_locked(path, body, sent)

    def _post_locked(self, path: str, body: bytes, sent: Optional[threading.Event]) -> Tuple[Optional[int], str]:
        for attempt in (0, 1):  # a kept-alive connection the server closed is retried once at once
            import http.client

            if self._url is None:
                import urllib.parse

                url = urllib.parse.urlsplit(self.endpoint)
                self._url = (url.scheme == "https", url.hostname or "localhost", url.port, url.path.rstrip("/"))
            https, host, port, base = self._url
            conn = self._conn
            fresh = conn is None
            if conn is None:
                timeout = self.config.timeout_ms / 1000.0
                if https:
                    conn = http.client.HTTPSConnection(host, port, timeout=timeout)
                else:
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                self._conn = conn
            try:
                headers = {"Content-Type": "application/json", "User-Agent": "coldstart-analyzer-python/" + C.SDK_VERSION}
                if self.config.api_key:
                    headers["X-API-Key"] = self.config.api_key
                conn.request("POST", base + path, body=body, headers=headers)
                if sent is not None:
                    sent.set()  # the bytes are in the kernel, on their way
                response = conn.getresponse()
                detail = response.read(2048).decode("utf-8", "replace")
                if response.getheader("connection", "").lower() == "close":
                    self._close()
                return response.status, detail
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                self._close()
                if fresh or attempt == 1:
                    return None, str(error) or type(error).__name__
            except Exception as error:
                self._close()
                return None, str(error) or type(error).__name__
        return None, "unreachable"

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _report(self, status: Optional[int], detail: str) -> None:
        if status is None:
            warn_once("unreachable", "cannot reach %s (%s); retrying" % (self.endpoint, detail[:200]))
        elif status in (401, 403):
            warn_once("auth-%d" % status, "the backend refused the API key (HTTP %d); records are not sent again" % status)
        else:
            warn_once("http-%d" % status, "the backend answered HTTP %d: %s" % (status, detail[:200].replace("\n", " ")))

    # -- cold-start records ------------------------------------------------------------------
    def cold(self, record: dict) -> threading.Event:
        try:
            body = dumps(record).encode("utf-8")
        except Exception:
            return _done()
        sent = threading.Event()
        entry = [body, sent, 0, FIRST_BACKOFF_S]
        with self._lock:
            self._kept.append(entry)
            self._kept_bytes += len(body)
            while len(self._kept) > MAX_KEPT or (self._kept_bytes > MAX_KEPT_BYTES and len(self._kept) > 1):
                old = self._kept.popleft()
                self._kept_bytes -= len(old[0])
                old[1].set()
        self.worker.call_soon(lambda: self._attempt(entry))
        return sent

    def _attempt(self, entry: list) -> None:
        with self._io:
            with self._lock:
                if entry not in self._kept:
                    return  # delivered meanwhile (the last try at exit), or dropped for room
            status, detail = self._post(C.INGEST_PATH, entry[0], entry[1])
            entry[2] += 1
            self._outcome(entry, status, detail)

    def _outcome(self, entry: list, status: Optional[int], detail: str) -> None:
        if status is not None and (200 <= status < 300 or status in NOT_RETRIED):
            if 200 <= status < 300:
                self.stored += 1
            else:
                self._report(status, detail)
            self._forget(entry)
            return
        self._report(status, detail)
        delay = entry[3]
        entry[3] = min(delay * 2, MAX_BACKOFF_S)
        self.worker.call_later(delay, lambda: self._attempt(entry))

    def _forget(self, entry: list) -> None:
        with self._lock:
            try:
                self._kept.remove(entry)
                self._kept_bytes -= len(entry[0])
            except ValueError:
                pass
        entry[1].set()

    # -- warm records ----------------------------------------------------------------------------
    def warm(self, record: dict) -> None:
        with self._lock:
            if len(self._warm) >= MAX_QUEUE:
                return
            self._warm.append(record)
            full = len(self._warm) >= BATCH_SIZE
            arm = not self._warm_timer
            self._warm_timer = True
        if full:
            self.worker.call_soon(self._flush)
        elif arm:
            self.worker.call_later(BATCH_DELAY_S, self._flush)

    def _flush(self) -> None:
        with self._lock:
            batch, self._warm = self._warm[:BATCH_SIZE], self._warm[BATCH_SIZE:]
            self._warm_timer = bool(self._warm)
        if self._warm_timer:
            self.worker.call_later(BATCH_DELAY_S, self._flush)
        if not batch:
            return
        body = dumps({"invocations": batch}).encode("utf-8")
        for attempt in range(BATCH_ATTEMPTS):
            status, detail = self._post(C.BATCH_PATH, body, None)
            if status is not None and 200 <= status < 300:
                self.stored += len(batch)
                return
            self._report(status, detail)
            if status in NOT_RETRIED:
                return
            if attempt + 1 < BATCH_ATTEMPTS:
                time.sleep(min(0.5 * (attempt + 1), 2.0))

    def pending(self) -> int:
        with self._lock:
            return len(self._kept) + len(self._warm)

    def flush_now(self, deadline: float) -> None:
        """Outside Lambda, at exit: one last try for what waits, until `deadline` (monotonic)."""
        with self._lock:
            kept = list(self._kept)
        for entry in kept:
            if time.monotonic() >= deadline:
                return
            with self._io:
                with self._lock:
                    if entry not in self._kept:
                        continue
                status, _ = self._post(C.INGEST_PATH, entry[0], entry[1])
                if status is not None and (200 <= status < 300 or status in NOT_RETRIED):
                    if 200 <= status < 300:
                        self.stored += 1
                    self._forget(entry)
        if time.monotonic() < deadline:
            self._flush()


class LogsSink:
    """One line per record on stdout, for CloudWatch Logs -> Firehose (docs/logs-transport.md)."""

    def __init__(self, out: Any = None) -> None:
        self.out = out

    def _write(self, record: dict) -> None:
        line = dumps({C.LOG_RECORD_KEY: record})
        if len(line.encode("utf-8")) > C.MAX_LOG_LINE_BYTES and "module_tree" in record:
            record = {k: v for k, v in record.items() if k != "module_tree"}
            line = dumps({C.LOG_RECORD_KEY: record})
        out = self.out or sys.stdout
        try:
            out.write(line + "\n")
            out.flush()
        except Exception:
            pass

    def cold(self, record: dict) -> threading.Event:
        self._write(record)
        return _done()

    def warm(self, record: dict) -> None:
        self._write(record)

    def pending(self) -> int:
        return 0

    def flush_now(self, deadline: float) -> None:
        pass


class LocalSink:
    """The extension's HTTP endpoint (127.0.0.1:7242, its copy of the ingest API, answering 202 at
    once): an extension layer older than the stream. One POST per record from the background
    thread. An answer other than 2xx, 400, 413 or 422 (or none) means it is not there: that record
    and every later one go to the backend directly (one line on stderr)."""

    def __init__(self, config: Config, worker: Worker, direct: DirectSender) -> None:
        self.direct = direct
        self.worker = worker
        self.local = DirectSender(config, worker, "http://%s:%d" % (config.extension_host, config.extension_port))
        self.down = False

    def _post(self, record: dict, cold: bool, sent: Optional[threading.Event]) -> None:
        if not self.down:
            try:
                body = dumps(record).encode("utf-8")
            except Exception:
                if sent is not None:
                    sent.set()
                return
            status, detail = self.local._post(C.INGEST_PATH, body, sent)
            if status is not None and (200 <= status < 300 or status in (400, 413, 422)):
                return
            self.down = True
            warn_once("local-down", "the coldstart extension did not answer (%s); sending records to the backend directly" % ("HTTP %d" % status if status is not None else detail[:200]))
        if cold:
            self.direct.cold(record)
        else:
            self.direct.warm(record)
        if sent is not None:
            sent.set()  # handed to the direct sender, which keeps it until acknowledged

    def cold(self, record: dict) -> threading.Event:
        if self.down:
            return self.direct.cold(record)
        sent = threading.Event()
        self.worker.call_soon(lambda: self._post(record, True, sent))
        return sent

    def warm(self, record: dict) -> None:
        if self.down:
            self.direct.warm(record)
        else:
            self.worker.call_soon(lambda: self._post(record, False, None))

    def pending(self) -> int:
        return self.direct.pending()

    def flush_now(self, deadline: float) -> None:
        self.direct.flush_now(deadline)


class StreamSink:
    """The coldstart extension's stream endpoint (extension/src/stream.h).

    The hello asks whether the extension builds warm records from Lambda's own reports ("warm":
    "platform"); when it offers to ("offer platform"), leave_warm() leaves each warm invocation to it:
    the first time a template of the record's constant fields goes in a "delegate" line, and from
    then on a warm invocation writes nothing. What is needed to build such a record here is kept
    until the extension says "done <request id>" (every 64 invocations, or within 10 s).

    When the connection fails, the records not yet acknowledged and the invocations left to it and
    not yet done go to the backend directly, and so does everything later. When the very first
    connection is refused, the extension's HTTP endpoint is tried instead (LocalSink): an older
    extension layer without the stream."""

    MAX_UNACKED = 1000
    MAX_LEFT = 1000

    def __init__(self, config: Config, worker: Worker, direct: DirectSender) -> None:
        self.config = config
        self.worker = worker
        self.direct = direct
        self.fallback: Any = direct  # where records go once the stream is down
        self._sock: Any = None
        self._down = False
        self._lock = threading.Lock()
        self._unacked: Deque[Tuple[int, dict, bool]] = deque()  # (line number, record, cold)
        self._written = 0
        self._connecting = False
        self.offered = False  # the extension builds warm records from the platform's reports
        self.delegated = False  # the template went: warm invocations are left to it
        self._left: Deque[Tuple[str, Callable[[], dict], float]] = deque()  # (request id, build, sample rate)
        self._heard = threading.Event()  # a first line came from the extension (its offer, or an ack)

    def connect(self) -> None:
        """Opens the connection on the worker thread (at the first invocation's start)."""
        with self._lock:
            if self._sock is not None or self._down or self._connecting:
                return
            self._connecting = True
        self.worker.call_soon(self._open)

    def _open(self) -> None:
        try:
            import socket

            sock = socket.create_connection((self.config.extension_host, self.config.extension_stream_port), timeout=0.5)
            sock.settimeout(None)
            hello = dumps({"coldstart": "hello", "api_key": self.config.api_key or "", "warm": "platform"}) + "\n"
            sock.sendall(hello.encode("utf-8"))
        except ConnectionRefusedError:
            # nothing listens on the stream port: an extension layer older than the stream, or none
            self.fallback = LocalSink(self.config, self.worker, self.direct)
            self._fail(None)
            return
        except Exception as error:
            self._fail("cannot connect to the coldstart extension's stream (%s)" % (error,))
            return
        with self._lock:
            self._sock = sock
            self._connecting = False
        threading.Thread(target=self._read, args=(sock,), name="coldstart-analyzer-stream", daemon=True).start()

    def _read(self, sock: Any) -> None:
        buffer = b""
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("the extension closed the stream")
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    self._answer(line.decode("utf-8", "replace").strip())
                if len(buffer) > 4096:
                    raise ConnectionError("an answer that is not the protocol")
        except Exception as error:
            self._fail("the coldstart extension's stream failed (%s); sending to the backend directly" % (error,))

    def _answer(self, line: str) -> None:
        self._heard.set()
        parts = line.split(" ", 2)
        if parts[0] == "ack" and len(parts) >= 2 and parts[1].isdigit():
            n = int(parts[1])
            with self._lock:
                while self._unacked and self._unacked[0][0] <= n:
                    self._unacked.popleft()
        elif parts[0] == "rej" and len(parts) >= 2 and parts[1].isdigit():
            n = int(parts[1])
            with self._lock:
                self._unacked = deque(e for e in self._unacked if e[0] != n)
            warn_once("stream-rej", "the coldstart extension refused a record: %s" % (parts[2] if len(parts) > 2 else ""))
        elif parts[0] == "offer" and len(parts) >= 2 and parts[1] == "platform":
            with self._lock:
                self.offered = True
        elif parts[0] == "done" and len(parts) >= 2:
            request_id = line[len("done ") :]
            with self._lock:
                if any(entry[0] == request_id for entry in self._left):
                    while self._left:
                        if self._left.popleft()[0] == request_id:
                            break

    def _fail(self, why: Optional[str]) -> None:
        with self._lock:
            if self._down:
                return
            self._down = True
            self._connecting = False
            sock, self._sock = self._sock, None
            unacked, self._unacked = list(self._unacked), deque()
            left, self._left = list(self._left), deque()
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass
        if why is not None:
            warn_once("stream-down", why)
        fallback = self.fallback
        for _, record, cold in unacked:
            if cold:
                fallback.cold(record)
            else:
                fallback.warm(record)
        # the invocations left to the extension that it has not said "done" for: built here now
        import random

        for _, build, rate in left:
            try:
                if rate >= 1.0 or random.random() < rate:
                    fallback.warm(build())
            except Exception:
                pass

    def _write(self, line: bytes, entry: Optional[Tuple[dict, bool]]) -> bool:
        """Writes one line; False when the stream is not (or no longer) usable."""
        with self._lock:
            sock = None if self._down else self._sock
            if sock is None or (entry is not None and len(self._unacked) >= self.MAX_UNACKED):
                return False
            try:
                sock.sendall(line)
            except Exception:
                sock = None
            if sock is not None:
                if entry is not None:
                    self._written += 1
                    self._unacked.append((self._written, entry[0], entry[1]))
                return True
        self._fail("cannot write to the coldstart extension's stream; sending to the backend directly")
        return False

    def _send(self, record: dict, cold: bool) -> bool:
        try:
            line = (dumps(record) + "\n").encode("utf-8")
        except Exception:
            return True  # not JSON: nothing anyone could send
        return self._write(line, (record, cold))

    def leave_warm(self, request_id: str, describe: Callable[[], dict], build: Callable[[], dict], sample_rate: float) -> bool:
        """True when this warm invocation is left to the extension (it offered, the stream is up);
        `build` makes its record here if the stream fails before the extension is done with it.

        An extension that offers does so at once, in answer to the hello, before anything else. If
        nothing has been read from it yet, the reader thread is given up to 50 ms to read what may
        be waiting (after a thaw, the answer can be in the socket while the reader thread waits for
        the interpreter): this is after the response, and only until the first line."""
        if not self._heard.is_set() and self._sock is not None and not self._down:
            self._heard.wait(0.05)
        with self._lock:
            if self._down or self._sock is None or not (self.offered or self.delegated):
                return False
            self._left.append((request_id, build, sample_rate))
            too_many = len(self._left) > self.MAX_LEFT
            first = not self.delegated
            self.delegated = True
        if too_many:
            self._fail("%d invocations left to the coldstart extension and not done; sending to the backend directly" % self.MAX_LEFT)
            return True
        if first:
            try:
                line = (dumps({"coldstart": "delegate", "record": describe(), "sample_rate": sample_rate}) + "\n").encode("utf-8")
            except Exception:
                line = None
            if line is None or not self._write(line, None):
                self._fail("cannot leave the warm records to the coldstart extension; sending to the backend directly")
        return True

    def cold(self, record: dict) -> threading.Event:
        self._wait_connected(0.5)
        if self._send(record, True):
            return _done()
        return self.fallback.cold(record)

    def warm(self, record: dict) -> None:
        if not self._send(record, False):
            self.fallback.warm(record)

    def _wait_connected(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if self._sock is not None or self._down or not self._connecting:
                    return
            time.sleep(0.002)

    def pending(self) -> int:
        with self._lock:
            return len(self._unacked) + self.direct.pending()

    def flush_now(self, deadline: float) -> None:
        self.direct.flush_now(deadline)
