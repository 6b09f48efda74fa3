// The smallest test runner that does what run.sh promises: tests run one after another, each
// prints "ok" or "not ok" with the reason, and the last line is "N passed, N failed".
const tests = [];

export function test(name, fn) {
  tests.push({ name, fn });
}

export async function runAll() {
  let passed = 0, failed = 0;
  for (const t of tests) {
    const started = Date.now();
    try {
      await t.fn();
      passed++;
      console.log(`ok - ${t.name} (${Date.now() - started} ms)`);
    } catch (err) {
      failed++;
      console.log(`not ok - ${t.name}`);
      const text = String(err && err.stack ? err.stack : err).split('\n').slice(0, 12).join('\n');
      console.log(text.replace(/^/gm, '    '));
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed;
}
