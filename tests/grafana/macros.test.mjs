// Unit tests of the Grafana model in lib/grafana-sql.mjs. The expected strings are Grafana's own:
// the PostgreSQL macro engine's tests (pkg/tsdb/grafana-postgresql-datasource/macros_test.go), the
// SQL datasource's variable interpolation, the variable format docs, and rangeutil.
import assert from 'node:assert/strict';
import { test } from './lib/harness.mjs';
import * as g from './lib/grafana-sql.mjs';

const from = Date.UTC(2018, 3, 12, 18, 0, 0);
const to = from + 5 * 60 * 1000;
const ex = (sql, f = from, t = to, o) => g.expandMacros(sql, f, t, o);

test('macros: $__time and $__timeEpoch', () => {
  assert.equal(ex('select $__time(time_column)'), 'select time_column AS "time"');
  assert.equal(ex('select min($__time(time_column))'), 'select min(time_column AS "time")');
  assert.equal(ex('select $__timeEpoch(time_column)'), 'select extract(epoch from time_column) as "time"');
});

test('macros: $__timeFilter, $__timeFrom, $__timeTo', () => {
  assert.equal(ex('WHERE $__timeFilter(time_column)'), "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'");
  assert.equal(ex('select $__timeFrom()'), "select '2018-04-12T18:00:00Z'");
  assert.equal(ex('select $__timeTo()'), "select '2018-04-12T18:05:00Z'");
  const f2 = Date.UTC(1960, 1, 1, 7, 0, 0, 500), t2 = Date.UTC(1980, 1, 3, 8, 0, 0, 500);
  assert.equal(ex('WHERE $__timeFilter(time_column)', f2, t2), "WHERE time_column BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'");
  const f3 = Date.UTC(1960, 1, 1, 7), t3 = Date.UTC(1965, 1, 3, 8);
  assert.equal(ex('WHERE $__timeFilter(time_column)', f3, t3), "WHERE time_column BETWEEN '1960-02-01T07:00:00Z' AND '1965-02-03T08:00:00Z'");
});

test('macros: $__timeGroup, $__timeGroupAlias and the pre-5.3 comma rule', () => {
  assert.equal(ex("SELECT $__timeGroup(time_column,'5m')"), 'SELECT floor(extract(epoch from time_column)/300)*300');
  assert.equal(ex("SELECT $__timeGroupAlias(time_column,'5m')"), 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"');
  assert.equal(ex("SELECT $__timeGroup(time_column,'5m'), value"), 'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value');
  assert.equal(ex("SELECT $__timeGroup(time_column,'5m') as time, value"), 'SELECT floor(extract(epoch from time_column)/300)*300 as time, value');
  assert.equal(ex("$__timeGroup(time_column , '5m')"), 'floor(extract(epoch from time_column)/300)*300');
  assert.equal(ex("$__timeGroupAlias(time_column , '5m')"), 'floor(extract(epoch from time_column)/300)*300 AS "time"');
  assert.equal(ex("$__timeGroupAlias(t, 1h, NULL)"), 'floor(extract(epoch from t)/3600)*3600 AS "time"');
  assert.equal(ex("$__timeGroup(t, '20ms')"), 'floor(extract(epoch from t)/0.02)*0.02');
  // Go prints float64 seconds with %v: exponent form from 1e6 up
  assert.equal(ex("$__timeGroup(t, '12d')"), 'floor(extract(epoch from t)/1.0368e+06)*1.0368e+06');
  assert.throws(() => ex("$__timeGroup(t)"), /needs time column and interval/);
  assert.throws(() => ex("$__timeGroup(t, 'soon')"), /error parsing interval/);
});

test('macros: TimescaleDB variant (documented, not used by our datasource)', () => {
  const ts = { timescaledb: true };
  assert.equal(ex("GROUP BY $__timeGroup(time_column,'5m')", from, to, ts), "GROUP BY time_bucket('300.000s',time_column)");
  assert.equal(ex("GROUP BY $__timeGroup(time_column , '12d')", from, to, ts), "GROUP BY time_bucket('1036800.000s',time_column)");
  assert.equal(ex("GROUP BY $__timeGroup(time_column , '20ms')", from, to, ts), "GROUP BY time_bucket('0.020s',time_column)");
});

test('macros: unix epoch family', () => {
  assert.equal(ex('select $__unixEpochFilter(time)'), 'select time >= 1523556000 AND time <= 1523556300');
  assert.equal(ex('select $__unixEpochNanoFilter(time)'), 'select time >= 1523556000000000000 AND time <= 1523556300000000000');
  assert.equal(ex('select $__unixEpochNanoFrom()'), 'select 1523556000000000000');
  assert.equal(ex('select $__unixEpochNanoTo()'), 'select 1523556300000000000');
  assert.equal(ex("SELECT $__unixEpochGroup(time_column+time_adjustment,'5m')"), 'SELECT floor((time_column+time_adjustment)/300)*300');
  assert.equal(ex("SELECT $__unixEpochGroupAlias(time_column+time_adjustment,'5m')"), 'SELECT floor((time_column+time_adjustment)/300)*300 AS "time"');
  assert.equal(g.sqlengInterpolate('a $__unixEpochFrom() b $__unixEpochTo()', from, to, 60000), 'a 1523556000 b 1523556300');
});

test('macros: unknown macro and missing column are errors', () => {
  assert.throws(() => ex('select $__timeBucket(t)'), /unknown macro/);
  assert.throws(() => ex('WHERE $__timeFilter()'), /missing time column/);
});

test('interval: rangeutil.calculateInterval and secondsToHms', () => {
  const H = 3600000;
  assert.deepEqual(g.calculateInterval(0, H, 200, '1m'), { intervalMs: 60000, interval: '1m' }); // 18 s rounds to 20 s, raised to 1m
  assert.deepEqual(g.calculateInterval(0, 24 * H, 200, '1m'), { intervalMs: 300000, interval: '5m' });
  assert.deepEqual(g.calculateInterval(0, 7 * 24 * H, 200, '1m'), { intervalMs: 3600000, interval: '1h' });
  assert.deepEqual(g.calculateInterval(0, 90 * 24 * H, 200, '1m'), { intervalMs: 43200000, interval: '12h' });
  assert.deepEqual(g.calculateInterval(0, 5 * 60000, 1000, undefined), { intervalMs: 200, interval: '200ms' });
  assert.equal(g.secondsToHms(2592000), '30d');
  assert.equal(g.secondsToHms(604800), '7d');
  assert.equal(g.secondsToHms(0.5), '500ms');
  assert.equal(g.roundInterval(1814400000 - 1), 604800000);
});

test('interval: $__interval and $__interval_ms reach the macro engine', () => {
  const r = g.renderQuery('SELECT $__timeGroupAlias(t, $__interval), $__interval_ms', { fromMs: from, toMs: from + 24 * 3600000, maxDataPoints: 200 });
  assert.equal(r.sql, 'SELECT floor(extract(epoch from t)/300)*300 AS "time", 300000');
  assert.equal(r.interval, '5m');
});

const opts = [{ value: 'a', text: 'a' }, { value: "b'c", text: "b'c" }, { value: 'd', text: 'd' }];
const vars = {
  plain: { multi: false, includeAll: false, current: { value: "O'Brien", text: "O'Brien" }, options: [] },
  multiOne: { multi: true, includeAll: true, current: { value: ['a'], text: ['a'] }, options: opts },
  multiOneString: { multi: true, includeAll: false, current: { value: 'a', text: 'a' }, options: opts },
  multiMany: { multi: true, includeAll: true, current: { value: ['a', "b'c"], text: ['a', "b'c"] }, options: opts },
  all: { multi: true, includeAll: true, current: { value: ['$__all'], text: ['All'] }, options: [{ value: '$__all', text: 'All' }, ...opts] },
  allCustom: { multi: true, includeAll: true, allValue: '.*', current: { value: '$__all', text: 'All' }, options: opts },
  none: { multi: true, includeAll: true, current: { value: [], text: [] }, options: [] },
  num: { multi: false, includeAll: false, current: { value: 42, text: '42' }, options: [] },
};

test('variables: SQL datasource quoting for plain, multi, All and empty', () => {
  const r = (s) => g.replaceVariables(s, vars);
  assert.equal(r("name = '$plain'"), "name = 'O''Brien'");
  assert.equal(r('x IN ($multiOne)'), "x IN ('a')");
  assert.equal(r('x IN ($multiOneString)'), "x IN ('a')");
  assert.equal(r('x IN ($multiMany)'), "x IN ('a','b''c')");
  assert.equal(r('x IN (${all})'), "x IN ('a','b''c','d')");
  assert.equal(r('x ~ [[allCustom]]'), 'x ~ .*');
  assert.equal(r('ARRAY[$none]::text[]'), 'ARRAY[]::text[]');
  assert.equal(r('n = $num'), 'n = 42');
  assert.equal(r('$unknown and $__timeFilter(t)'), '$unknown and $__timeFilter(t)');
  assert.deepEqual(g.interpolateVariable(['value1', 'value2', 'value3'], { multi: true }), "'value1','value2','value3'");
  assert.deepEqual(g.interpolateVariable([], { multi: true }), '');
});

test('variables: documented format options', () => {
  const servers = { multi: true, includeAll: false, current: { value: ['test1', 'test2'], text: ['test1', 'test2'] }, options: [] };
  const quoted = { multi: true, includeAll: false, current: { value: ["test'1", 'test2'] }, options: [] };
  const r = (s, v = { servers }) => g.replaceVariables(s, v);
  assert.equal(r('${servers:csv}'), 'test1,test2');
  assert.equal(r('${servers:doublequote}'), '"test1","test2"');
  assert.equal(r('${servers:singlequote}'), "'test1','test2'");
  assert.equal(r('${servers:sqlstring}', { servers: quoted }), "'test''1','test2'");
  assert.equal(r('${servers:text}'), 'test1 + test2');
  assert.throws(() => r('${servers:nosuchformat}'), /unknown variable format/);
});

test('go formatting helpers', () => {
  assert.equal(g.goFloat(300), '300');
  assert.equal(g.goFloat(86400), '86400');
  assert.equal(g.goFloat(604800), '604800');
  assert.equal(g.goFloat(2592000), '2.592e+06');
  assert.equal(g.goFloat(0.0001), '0.0001');
  assert.equal(g.goFloat(0.00001), '1e-05');
  assert.equal(g.goParseDuration('1h30m'), 5400000);
  assert.equal(g.goParseDuration('1.5s'), 1500);
  assert.equal(g.rfc3339Nano(Date.UTC(2018, 3, 12, 18, 0, 0, 120)), '2018-04-12T18:00:00.12Z');
});
