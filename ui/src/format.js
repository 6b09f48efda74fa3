// format.js: numbers and times as the UI shows them.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** Milliseconds: "1,234 ms", "12.3 ms", "0.42 ms"; "–" when unknown. */
export function ms(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Math.abs(v) >= 100) return `${integer.format(v)} ms`;
  if (Math.abs(v) >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}

export function count(v) {
  return v === null || v === undefined ? '–' : integer.format(v);
}

/** A share 0..1 as a percentage. */
export function pct(v, digits = 1) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return `${(v * 100).toFixed(digits)} %`;
}

/** "3 min ago", "5 h ago", "2 d ago" for an RFC 3339 time. */
export function ago(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '–';
  const s = Math.max(0, (now - t) / 1000);
  if (s < 90) return 'just now';
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** An RFC 3339 time in the reader's time zone. */
export function when(iso) {
  const t = new Date(iso);
  return Number.isFinite(t.getTime()) ? t.toLocaleString() : '–';
}

/** Dollars: "$12.34", "$0.000123" below a cent; "–" when unknown. */
export function usd(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return `$${v < 0.01 && v > 0 ? v.toFixed(6) : v.toFixed(2)}`;
}
