// api.js: the JSON API with the signed-in key. The key lives in sessionStorage only (gone when the
// tab closes) and travels in the X-API-Key header only: never in a URL, a cookie or a log line.

const STORAGE = 'coldstart.apiKey';
export const KEY_PATTERN = /^csa_[A-Za-z0-9]{32}$/;

export function storedKey() {
  try {
    return sessionStorage.getItem(STORAGE);
  } catch {
    return null;
  }
}

export function storeKey(key) {
  sessionStorage.setItem(STORAGE, key);
}

export function forgetKey() {
  try {
    sessionStorage.removeItem(STORAGE);
  } catch {}
}

/** An answer other than 2xx, or no answer: status 0 for a network failure. */
export class ApiError extends Error {
  constructor(status, code, detail, retryAfter) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

/** GET path with key (default: the stored one); resolves the JSON body, rejects with ApiError. */
export async function get(path, { key = storedKey(), signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      headers: { 'X-API-Key': key || '', Accept: 'application/json' },
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'NETWORK', `No answer from ${location.origin}: is coldstartd running?`);
  }
  let body = null;
  try {
    body = await res.json();
  } catch {}
  if (!res.ok) {
    throw new ApiError(res.status, body?.error_code, body?.detail, res.headers.get('Retry-After'));
  }
  return body;
}
