// A model of what Grafana 10.2 does to a PostgreSQL panel or variable query before PostgreSQL sees
// it, so that the dashboard's SQL can be executed here without a Grafana server. Three steps, in
// Grafana's order:
//   1. the browser computes the panel interval (calculateInterval in @grafana/data rangeutil.ts)
//      and replaces template variables ($var, ${var}, ${var:format}, [[var]]) with the SQL
//      datasource's interpolateVariable (public/app/features/plugins/sql/datasource/SqlDatasource.ts);
//   2. the server replaces $__interval_ms, $__interval, $__unixEpochFrom(), $__unixEpochTo()
//      (sqleng.Interpolate);
//   3. the server expands $__macro(args) (pkg/tsdb/grafana-postgresql-datasource/macros.go), with
//      timescaledb off as in our datasource.
// Anything this model does not know (an unknown macro, an unknown format) is an error, so a
// dashboard cannot rely on behaviour nobody checked.

// ---- time ---------------------------------------------------------------------------------

// Go's time.Format(time.RFC3339Nano) of a UTC instant given in epoch milliseconds: fraction
// without trailing zeros, "Z" for UTC.
export function rfc3339Nano(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw new Error(`bad time ${ms}`);
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return iso.slice(0, 19) + (frac ? '.' + frac : '') + 'Z';
}

// Go's %v of a float64 (strconv 'g', shortest): exponent form when exp < -4 or exp >= 21 is JS,
// but Go switches at exp >= 6 ("1e+06", "2.592e+06").
export function goFloat(x) {
  if (!Number.isFinite(x)) throw new Error(`not finite: ${x}`);
  if (x === 0) return '0';
  const [mant, e] = Math.abs(x).toExponential().split('e');
  const exp = Number(e);
  const sign = x < 0 ? '-' : '';
  const digits = mant.replace('.', '');
  if (exp < -4 || exp >= 6) {
    const m = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
    const ee = Math.abs(exp) < 10 ? '0' + Math.abs(exp) : String(Math.abs(exp));
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${ee}`;
  }
  if (exp < 0) return sign + '0.' + '0'.repeat(-exp - 1) + digits;
  if (digits.length <= exp + 1) return sign + digits + '0'.repeat(exp + 1 - digits.length);
  return sign + digits.slice(0, exp + 1) + '.' + digits.slice(exp + 1);
}

const GO_UNITS = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };

// Go's time.ParseDuration, in milliseconds.
export function goParseDuration(s) {
  const orig = s;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') { neg = s[0] === '-'; s = s.slice(1); }
  if (s === '0') return 0;
  if (s === '') throw new Error(`time: invalid duration "${orig}"`);
  let total = 0;
  const re = /^([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/;
  while (s.length) {
    const m = re.exec(s);
    if (!m || m[1] === '' || m[1] === '.') throw new Error(`time: invalid duration "${orig}"`);
    total += Number(m[1]) * GO_UNITS[m[2]];
    s = s.slice(m[0].length);
  }
  return neg ? -total : total;
}

// grafana-plugin-sdk-go gtime.ParseInterval, in milliseconds: "<n>d|w|M|y" counted on the UTC
// calendar from now (so "1M" and "1y" vary), anything else by time.ParseDuration.
export function gtimeParseInterval(s, nowMs = Date.now()) {
  const m = /^(\d+)([dwMy])$/.exec(s);
  if (!m) return goParseDuration(s);
  const n = Number(m[1]);
  const now = new Date(nowMs);
  const t = new Date(nowMs);
  if (m[2] === 'd') t.setUTCDate(now.getUTCDate() + n);
  if (m[2] === 'w') t.setUTCDate(now.getUTCDate() + 7 * n);
  if (m[2] === 'M') t.setUTCMonth(now.getUTCMonth() + n);
  if (m[2] === 'y') t.setUTCFullYear(now.getUTCFullYear() + n);
  return t.getTime() - nowMs;
}

// grafana-plugin-sdk-go gtime.FormatInterval (used by sqleng.Interpolate for $__interval).
export function gtimeFormatInterval(ms) {
  const year = 31536000000, day = 86400000, hour = 3600000, minute = 60000, second = 1000;
  if (ms >= year) return Math.floor(ms / year) + 'y';
  if (ms >= day) return Math.floor(ms / day) + 'd';
  if (ms >= hour) return Math.floor(ms / hour) + 'h';
  if (ms >= minute) return Math.floor(ms / minute) + 'm';
  if (ms >= second) return Math.floor(ms / second) + 's';
  return ms + 'ms';
}

// @grafana/data rangeutil.roundInterval.
export function roundInterval(interval) {
  const steps = [
    [10, 1], [15, 10], [35, 20], [75, 50], [150, 100], [350, 200], [750, 500], [1500, 1000],
    [3500, 2000], [7500, 5000], [12500, 10000], [17500, 15000], [25000, 20000], [45000, 30000],
    [90000, 60000], [210000, 120000], [450000, 300000], [750000, 600000], [1050000, 900000],
    [1500000, 1200000], [2700000, 1800000], [5400000, 3600000], [9000000, 7200000],
    [16200000, 10800000], [32400000, 21600000], [86400000, 43200000], [604800000, 86400000],
    [1814400000, 604800000], [3628800000, 2592000000],
  ];
  for (const [limit, value] of steps) if (interval < limit) return value;
  return 31536000000;
}

// @grafana/data rangeutil.secondsToHms.
export function secondsToHms(seconds) {
  const y = Math.floor(seconds / 31536000);
  if (y) return y + 'y';
  const d = Math.floor((seconds % 31536000) / 86400);
  if (d) return d + 'd';
  const h = Math.floor(((seconds % 31536000) % 86400) / 3600);
  if (h) return h + 'h';
  const m = Math.floor((((seconds % 31536000) % 86400) % 3600) / 60);
  if (m) return m + 'm';
  const s = Math.floor((((seconds % 31536000) % 86400) % 3600) % 60);
  if (s) return s + 's';
  const ms = Math.floor(seconds * 1000.0);
  if (ms) return ms + 'ms';
  return 'less than a millisecond';
}

// @grafana/data rangeutil.intervalToMs ("1m", "30s", "1h"; a bare number is seconds).
export function intervalToMs(str) {
  const secs = { y: 31536000, M: 2592000, w: 604800, d: 86400, h: 3600, m: 60, s: 1, ms: 0.001 };
  if (Number(str)) return parseInt(str, 10) * 1000;
  const m = /^(-?\d+(?:\.\d+)?)(ms|[Mwdhmsy])/.exec(str);
  if (!m) throw new Error(`invalid interval "${str}"`);
  return secs[m[2]] * 1000 * parseInt(m[1], 10);
}

// @grafana/data rangeutil.calculateInterval: the panel's $__interval for a time range, the panel's
// maxDataPoints (Grafana uses the panel width in pixels when the panel does not set it) and the
// lower limit (the panel's "min interval", else the datasource's jsonData.timeInterval, else 1m).
export function calculateInterval(fromMs, toMs, resolution, lowLimitInterval) {
  let lowLimitMs = 1;
  if (lowLimitInterval) lowLimitMs = intervalToMs(lowLimitInterval);
  let intervalMs = roundInterval((toMs - fromMs) / resolution);
  if (lowLimitMs > intervalMs) intervalMs = lowLimitMs;
  return { intervalMs, interval: secondsToHms(intervalMs / 1000) };
}

// ---- template variables -------------------------------------------------------------------

// The same expression Grafana's TemplateSrv uses to find variables.
const VARIABLE_RE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^}]+))?(?::([^}]+))?}/g;

const quoteLiteral = (v) => "'" + String(v).replace(/'/g, "''") + "'";

// SqlDatasource.interpolateVariable (Grafana 10.2): a string of a multi-value or include-All
// variable is quoted, a string of a plain variable only has its quotes doubled, numbers are
// inserted as they are, arrays become a comma-separated list of quoted literals.
export function interpolateVariable(value, variable) {
  if (typeof value === 'string') {
    if (variable.multi || variable.includeAll) return quoteLiteral(value);
    return String(value).replace(/'/g, "''");
  }
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return value.map(quoteLiteral).join(',');
  return value;
}

// The ${var:format} options a dashboard here may use (Grafana's formatRegistry).
const FORMATS = {
  csv: (v) => (Array.isArray(v) ? v.join(',') : String(v)),
  raw: (v) => String(v),
  sqlstring: (v) => (Array.isArray(v) ? v : [v]).map((x) => "'" + String(x).replace(/'/g, "''") + "'").join(','),
  singlequote: (v) => (Array.isArray(v) ? v : [v]).map((x) => "'" + String(x).replace(/'/g, "\\'") + "'").join(','),
  doublequote: (v) => (Array.isArray(v) ? v : [v]).map((x) => '"' + String(x).replace(/"/g, '\\"') + '"').join(','),
};

const isAll = (v) => v === '$__all' || (Array.isArray(v) && v[0] === '$__all');

// Replaces template variables the way TemplateSrv.replace does with the SQL datasource's
// formatter. `variables` maps a name to {multi, includeAll, allValue, current: {value, text},
// options: [{value, text}]}; `scoped` maps a name to {value} ($__interval, $__interval_ms).
// Names that are neither are left as they are (macros such as $__timeFilter pass through).
export function replaceVariables(sql, variables, scoped = {}) {
  return sql.replace(VARIABLE_RE, (match, v1, v2, fmt2, v3, fieldPath, fmt3) => {
    const name = v1 || v2 || v3;
    const fmt = fmt2 || fmt3;
    if (fmt && !(fmt in FORMATS) && fmt !== 'text') throw new Error(`unknown variable format ${fmt} in ${match}`);
    if (fieldPath) throw new Error(`variable field paths are not modelled: ${match}`);
    if (Object.prototype.hasOwnProperty.call(scoped, name)) {
      const value = scoped[name].value;
      if (fmt === 'text') return String(scoped[name].text ?? value);
      return fmt ? FORMATS[fmt](value) : interpolateVariable(value, {});
    }
    const variable = variables[name];
    if (!variable) return match;
    let value = variable.current.value;
    let text = variable.current.text;
    if (isAll(value)) {
      if (variable.allValue && fmt !== 'text') return variable.allValue;
      value = variable.options.filter((o) => o.value !== '$__all').map((o) => o.value);
      text = 'All';
    }
    if (fmt === 'text') return Array.isArray(text) ? text.join(' + ') : String(text);
    return fmt ? FORMATS[fmt](value) : interpolateVariable(value, variable);
  });
}

// ---- server side ---------------------------------------------------------------------------

// sqleng.Interpolate: the plain replacements done before the macro engine.
export function sqlengInterpolate(sql, fromMs, toMs, intervalMs) {
  return sql
    .split('$__interval_ms').join(String(Math.trunc(intervalMs)))
    .split('$__interval').join(gtimeFormatInterval(intervalMs))
    .split('$__unixEpochFrom()').join(String(Math.floor(fromMs / 1000)))
    .split('$__unixEpochTo()').join(String(Math.floor(toMs / 1000)));
}

const MACRO_RE = /\$([_a-zA-Z0-9]+)\(([^)]*)\)/g;

function evaluateMacro(name, args, fromMs, toMs, opts) {
  const needColumn = () => {
    if (args.length === 0 || (args.length === 1 && args[0] === '')) throw new Error(`missing time column argument for macro ${name}`);
  };
  const fromS = Math.floor(fromMs / 1000), toS = Math.floor(toMs / 1000);
  switch (name) {
    case '__time': needColumn(); return `${args[0]} AS "time"`;
    case '__timeEpoch': needColumn(); return `extract(epoch from ${args[0]}) as "time"`;
    case '__timeFilter': needColumn();
      return `${args[0]} BETWEEN '${rfc3339Nano(fromMs)}' AND '${rfc3339Nano(toMs)}'`;
    case '__timeFrom': return `'${rfc3339Nano(fromMs)}'`;
    case '__timeTo': return `'${rfc3339Nano(toMs)}'`;
    case '__timeGroup':
    case '__unixEpochGroup': {
      if (args.length < 2) throw new Error(`macro ${name} needs time column and interval and optional fill value`);
      let ms;
      try { ms = gtimeParseInterval(args[1].replace(/^'+|'+$/g, ''), opts.now); } catch { throw new Error(`error parsing interval ${args[1]}`); }
      if (args.length === 3 && !/^(NULL|previous|-?[0-9]+(\.[0-9]+)?)$/.test(args[2])) throw new Error(`error parsing fill value ${args[2]}`);
      const secs = ms / 1000;
      if (name === '__unixEpochGroup') return `floor((${args[0]})/${goFloat(secs)})*${goFloat(secs)}`;
      if (opts.timescaledb) return `time_bucket('${secs.toFixed(3)}s',${args[0]})`;
      return `floor(extract(epoch from ${args[0]})/${goFloat(secs)})*${goFloat(secs)}`;
    }
    case '__timeGroupAlias': return evaluateMacro('__timeGroup', args, fromMs, toMs, opts) + ' AS "time"';
    case '__unixEpochGroupAlias': return evaluateMacro('__unixEpochGroup', args, fromMs, toMs, opts) + ' AS "time"';
    case '__unixEpochFilter': needColumn(); return `${args[0]} >= ${fromS} AND ${args[0]} <= ${toS}`;
    case '__unixEpochNanoFilter': needColumn();
      return `${args[0]} >= ${BigInt(fromMs) * 1000000n} AND ${args[0]} <= ${BigInt(toMs) * 1000000n}`;
    case '__unixEpochNanoFrom': return String(BigInt(fromMs) * 1000000n);
    case '__unixEpochNanoTo': return String(BigInt(toMs) * 1000000n);
    default: throw new Error(`unknown macro "${name}"`);
  }
}

// postgresMacroEngine.Interpolate, including its pre-5.3 rule: "$__timeGroup(...)" directly
// followed by a comma is read as $__timeGroupAlias.
export function expandMacros(sql, fromMs, toMs, opts = {}) {
  const o = { timescaledb: false, now: Date.now(), ...opts };
  return sql.replace(MACRO_RE, (whole, name, argText) => {
    if (name === '__timeGroup') {
      const at = sql.indexOf(whole);
      if (at >= 0 && sql[at + whole.length] === ',') name = '__timeGroupAlias';
    }
    const args = argText.split(',').map((a) => a.replace(/^ +| +$/g, ''));
    return evaluateMacro(name, args, fromMs, toMs, o);
  });
}

// The whole path for one query: what PostgreSQL receives.
export function renderQuery(rawSql, { fromMs, toMs, variables = {}, maxDataPoints = 1000, minInterval, datasourceInterval = '1m', now }) {
  const { interval, intervalMs } = calculateInterval(fromMs, toMs, maxDataPoints, minInterval || datasourceInterval);
  const scoped = { __interval: { value: interval, text: interval }, __interval_ms: { value: intervalMs, text: String(intervalMs) } };
  let sql = replaceVariables(rawSql, variables, scoped);
  sql = sqlengInterpolate(sql, fromMs, toMs, intervalMs);
  sql = expandMacros(sql, fromMs, toMs, { now });
  return { sql, interval, intervalMs };
}

// The macro names a query uses (for the static check).
export function macrosIn(sql) {
  return [...sql.matchAll(/\$(__\w+)/g)].map((m) => m[1]);
}
export const KNOWN_MACROS = new Set(['__time', '__timeEpoch', '__timeFilter', '__timeFrom', '__timeTo', '__timeGroup',
  '__timeGroupAlias', '__unixEpochFilter', '__unixEpochNanoFilter', '__unixEpochNanoFrom', '__unixEpochNanoTo',
  '__unixEpochGroup', '__unixEpochGroupAlias', '__unixEpochFrom', '__unixEpochTo', '__interval', '__interval_ms']);
