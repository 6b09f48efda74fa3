// cloudwatch-firehose.mjs: an emulator of the path Lambda stdout -> CloudWatch Logs -> subscription
// filter -> Amazon Data Firehose -> HTTP endpoint destination, built from AWS's published formats
// (no AWS SDK, Node's real zlib):
//
// * Lambda's log lines for Node.js: the text format's console prefix
//   "<ISO time>\t<request id>\t<LEVEL>\t<text>\n", the platform's START/END/REPORT lines, and the
//   JSON log format {"timestamp", "level", "requestId", "message"}.
// * CloudWatch Logs subscription data (Logs User Guide, "Subscription filters: data format"): each
//   record is gzip of {"messageType": "DATA_MESSAGE" | "CONTROL_MESSAGE", "owner", "logGroup",
//   "logStream", "subscriptionFilters", "logEvents": [{"id", "timestamp", "message"}]}, event ids
//   56-digit decimal strings; a filter pattern of one term keeps the events that contain it.
// * The Firehose HTTP endpoint request (Firehose Developer Guide, "HTTP endpoint delivery request
//   and response specifications"): POST, Content-Type application/json, X-Amz-Firehose-Protocol-
//   Version 1.0, X-Amz-Firehose-Request-Id (the same on every retry), X-Amz-Firehose-Source-Arn,
//   X-Amz-Firehose-Access-Key, optional X-Amz-Firehose-Common-Attributes, Content-Encoding gzip when
//   configured; body {"requestId", "timestamp", "records": [{"data": base64}]}. Each record's data is
//   the CloudWatch Logs record as delivered (gzip), or plain JSON when the stream's decompression
//   of CloudWatch Logs records is on.
// * Its response rules: only 200 is success; 413 is a permanent failure (the batch is not even sent
//   to the S3 backup); anything else is retried with backoff until the retry duration is spent,
//   then the batch goes to the S3 backup. A response that does not conform (JSON, Content-Length,
//   requestId echoed, integer timestamp, body <= 1 MiB) counts as a 500.
import { randomInt, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export const OWNER = '123456789012';

/** A CloudWatch Logs event id: 56 decimal digits. */
export function eventId() {
  let s = String(randomInt(1, 10));
  while (s.length < 56) s += String(randomInt(0, 10));
  return s;
}

// ---- what the function writes ------------------------------------------------------------------

/** The logs transport's line: one JSON object with one key (the SDK adds the newline). */
export const recordLine = (record) => JSON.stringify({ coldstart_record: record });

/** The Node.js runtime's text-format console line for console.log / console.warn / ... */
export function nodeConsoleLine(text, { requestId = randomUUID(), level = 'INFO', at = new Date() } = {}) {
  return `${at.toISOString()}\t${requestId}\t${level}\t${text}\n`;
}

/** The JSON log format's line: `message` a string (console.log of a string) or an object. */
export function jsonFormatLine(message, { requestId = randomUUID(), level = 'INFO', at = new Date() } = {}) {
  return JSON.stringify({ timestamp: at.toISOString(), level, requestId, message });
}

/** What else a Node.js function's log group holds. */
export function platformLines(requestId = randomUUID()) {
  return [
    'INIT_START Runtime Version: nodejs:20.v48\tRuntime Version ARN: arn:aws:lambda:eu-west-1::runtime:0123abcd\n',
    `START RequestId: ${requestId} Version: $LATEST\n`,
    nodeConsoleLine('handling the order; our coldstart_record goes out later', { requestId }),
    `END RequestId: ${requestId}\n`,
    `REPORT RequestId: ${requestId}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\tMax Memory Used: 80 MB\tInit Duration: 250.00 ms\t\n`,
  ];
}

// ---- CloudWatch Logs ----------------------------------------------------------------------------

/** Log events as CloudWatch Logs stores them. */
export function logEvents(messages, start = Date.now()) {
  return messages.map((message, i) => ({ id: eventId(), timestamp: start + i, message }));
}

/** A subscription filter of one term: keeps the events that contain it. */
export const filterTerm = (term, events) => events.filter((e) => e.message.includes(term));

/** A DATA_MESSAGE of one log stream's events. */
export function dataMessage(
  events,
  { logGroup = '/aws/lambda/checkout', logStream = '2026/12/06/[$LATEST]0123456789abcdef', filterName = 'coldstart' } = {},
) {
  return { messageType: 'DATA_MESSAGE', owner: OWNER, logGroup, logStream, subscriptionFilters: [filterName], logEvents: events };
}

/** The message CloudWatch Logs sends when a subscription is created. */
export function controlMessage() {
  return {
    messageType: 'CONTROL_MESSAGE',
    owner: 'CloudwatchLogs',
    logGroup: '',
    logStream: '',
    subscriptionFilters: [],
    logEvents: [{ id: '', timestamp: Date.now(), message: 'CWL CONTROL MESSAGE: Checking health of destination Firehose.' }],
  };
}

/** A Firehose record's data: base64 of gzip of the subscription JSON (plain with decompression on). */
export function recordData(message, { decompressed = false } = {}) {
  const json = Buffer.from(JSON.stringify(message));
  return (decompressed ? json : gzipSync(json)).toString('base64');
}

// ---- Firehose -----------------------------------------------------------------------------------

/**
 * The HTTP request Firehose sends for `records` (each {data}): {headers, body (Buffer), requestId}.
 * requestId stays the same across retries of one batch.
 */
export function deliveryRequest(
  records,
  { accessKey, requestId = randomUUID(), gzip = false, commonAttributes, at = Date.now(), stream = 'coldstart-logs' } = {},
) {
  const json = Buffer.from(JSON.stringify({ requestId, timestamp: at, records }));
  const headers = {
    'Content-Type': 'application/json',
    'X-Amz-Firehose-Protocol-Version': '1.0',
    'X-Amz-Firehose-Request-Id': requestId,
    'X-Amz-Firehose-Source-Arn': `arn:aws:firehose:eu-west-1:${OWNER}:deliverystream/${stream}`,
  };
  if (accessKey !== undefined) headers['X-Amz-Firehose-Access-Key'] = accessKey;
  if (commonAttributes) headers['X-Amz-Firehose-Common-Attributes'] = JSON.stringify({ commonAttributes });
  if (gzip) headers['Content-Encoding'] = 'gzip';
  return { requestId, headers, body: gzip ? gzipSync(json) : json };
}

/**
 * Does a response conform to what Firehose requires? Returns the reasons it does not ([] if it
 * does). Firehose treats a non-conforming response as a 500 without a body.
 */
export function nonConformities(res, requestId) {
  const why = [];
  if (![2, 4, 5].includes(Math.floor(res.status / 100))) why.push(`status ${res.status}`);
  if (!/^application\/json/.test(res.headers.get('content-type') || '')) why.push('Content-Type is not application/json');
  if (res.headers.get('content-encoding')) why.push('Content-Encoding used');
  if (res.text.length > 0 && res.headers.get('content-length') === null) why.push('no Content-Length');
  if (Buffer.byteLength(res.text) > 1024 * 1024) why.push('body over 1 MiB');
  const b = res.json;
  if (!b || typeof b !== 'object') why.push('body is not a JSON object');
  else {
    if (b.requestId !== requestId) why.push(`requestId ${JSON.stringify(b.requestId)} is not ${requestId}`);
    if (!Number.isInteger(b.timestamp)) why.push('timestamp is not an integer');
    if (b.errorMessage !== undefined && (typeof b.errorMessage !== 'string' || b.errorMessage.length > 8192)) why.push('errorMessage');
  }
  return why;
}

/**
 * Delivers one batch the way Firehose does: `send(request)` resolves a harness response; retried
 * on anything but 200 and 413 after 1 s * 2^n (scaled by backoffScale), until retryDurationMs is
 * spent. Resolves {outcome: 'delivered' | 'dropped' (413) | 's3-backup', attempts, last}.
 */
export async function deliverLikeFirehose(send, request, { retryDurationMs = 0, backoffScale = 0.01 } = {}) {
  const t0 = Date.now();
  let attempts = 0;
  for (;;) {
    attempts++;
    const res = await send(request);
    const status = nonConformities(res, request.requestId).length ? 500 : res.status;
    if (status === 200) return { outcome: 'delivered', attempts, last: res };
    if (status === 413) return { outcome: 'dropped', attempts, last: res };
    const wait = Math.min(120000, 1000 * 2 ** (attempts - 1)) * backoffScale;
    if (Date.now() + wait - t0 > retryDurationMs) return { outcome: 's3-backup', attempts, last: res };
    await new Promise((r) => setTimeout(r, wait));
  }
}
