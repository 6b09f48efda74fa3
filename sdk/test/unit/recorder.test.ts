import { describe, expect, test } from 'vitest';
import { Recorder } from '../../src/runtime/recorder';
import { COUNTED, LOAD, LoadingBuffer, OWN } from '../../src/runtime/loading-buffer';
import { moduleTimings, moduleTree, MAX_TIMINGS, OTHER, TREE_MAX_CHILDREN } from '../../src/invoke/report';

const root = '/var/task';
const busy = (ms: number): void => {
  const until = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  while (process.hrtime.bigint() < until);
};

describe('Recorder', () => {
  test('self time excludes children; the tree folds files of one package', () => {
    const r = new Recorder(root);
    const handler = r.enterFile('/var/task/index.js');
    busy(4);
    const a = r.enterFile('/var/task/node_modules/a/index.js');
    busy(6);
    const aInner = r.enterFile('/var/task/node_modules/a/lib/x.js'); // same package: same node
    busy(3);
    const b = r.enterFile('/var/task/node_modules/a/node_modules/b/index.js');
    busy(5);
    r.exit(b);
    r.exit(aInner);
    r.exit(a);
    busy(2);
    r.exit(handler);
    r.close();

    const self = Object.fromEntries([...r.selfNs].map(([k, v]) => [k, v / 1e6]));
    expect(self['./index']).toBeGreaterThanOrEqual(6);
    expect(self.a).toBeGreaterThanOrEqual(9);
    expect(self.b).toBeGreaterThanOrEqual(5);
    const sum = [...r.selfNs.values()].reduce((x, y) => x + y, 0);
    // self times add up to the load time, minus the recorder's own cost
    expect(Math.abs(r.loadNs - sum - r.overheadNs)).toBeLessThan(0.2e6);

    const tree = moduleTree(r, new Map(), 'on', 'preload');
    expect(tree.children).toHaveLength(1);
    const index = tree.children[0]!;
    expect(index.name).toBe('./index');
    expect(index.total_ms).toBeCloseTo(r.loadNs / 1e6, 3);
    const pkgA = index.children![0]!;
    expect(pkgA.name).toBe('a');
    expect(pkgA.children![0]!.name).toBe('b');
    // inclusive time of a counts its nested file once
    expect(pkgA.total_ms).toBeGreaterThanOrEqual(14);
    expect(pkgA.total_ms).toBeLessThan(index.total_ms);
  });

  test('deferred CommonJS notes give the same timeline, built only when read after close()', () => {
    // the same loads, noted (deferCommonJs, no ES module hooks) and recorded directly
    const run = (deferred: boolean): { r: Recorder; lastLoad: bigint } => {
      const r = new Recorder(root);
      r.deferCommonJs = deferred;
      const enter = (file: string, requiredAt?: bigint): unknown =>
        deferred ? r.noteEnter(file, requiredAt) : r.enterFile(file, requiredAt);
      const exit = (id: unknown): void => (deferred ? r.noteExit(id as number) : r.exit(id as ReturnType<Recorder['enterFile']>));
      const handler = enter('/var/task/index.js');
      busy(3);
      const requiredAt = process.hrtime.bigint();
      busy(2); // resolving a's path: a's time, not index's
      const a = enter('/var/task/node_modules/a/index.js', requiredAt);
      busy(4);
      const sdkStart = process.hrtime.bigint();
      busy(2); // the SDK's own time (a require of the SDK, analyze()): overhead
      r.exclude(sdkStart);
      const b = enter('/var/task/node_modules/b/index.js');
      busy(3);
      exit(b);
      exit(a);
      exit(handler);
      const lastLoad = process.hrtime.bigint();
      busy(1);
      const runtimeFile = enter('/var/runtime/helper.js'); // not the function's: its end is no load's end
      busy(1);
      exit(runtimeFile);
      if (deferred) {
        // the end of init as the first invocation reads it, without replaying the notes
        expect(r.lastExit).toBeLessThan(lastLoad);
        expect((r as unknown as { notes: unknown[] }).notes.length).toBeGreaterThan(0);
      }
      r.close();
      if (deferred) expect((r as unknown as { notes: unknown[] }).notes.length).toBeGreaterThan(0); // still noted
      return { r, lastLoad };
    };
    const direct = run(false);
    const noted = run(true);
    const ms = (r: Recorder, k: string): number => (r.selfNs.get(k) ?? 0) / 1e6;
    for (const { r, lastLoad } of [direct, noted]) {
      expect(r.lastExit).toBeLessThan(lastLoad);
      expect(ms(r, './index')).toBeGreaterThanOrEqual(3);
      expect(ms(r, 'a')).toBeGreaterThanOrEqual(2 + 4);
      expect(ms(r, 'b')).toBeGreaterThanOrEqual(3);
      expect(r.overheadNs / 1e6).toBeGreaterThanOrEqual(2);
      expect(r.modules).toBe(3);
      expect(r.active).toBe(false);
      const sum = [...r.selfNs.values()].reduce((x, y) => x + y, 0);
      expect(Math.abs(r.loadNs - sum - r.overheadNs)).toBeLessThan(0.3e6);
      expect(r.root.children?.get('./index')?.children?.get('a')?.children?.has('b')).toBe(true);
      expect(r.selfNs.has('/var/runtime/helper')).toBe(false);
    }
    // the notes' replay is not the SDK's init time: the deferred recorder's overhead is the excluded span
    expect(noted.r.overheadNs / 1e6).toBeLessThan(direct.r.overheadNs / 1e6 + 0.5);
    expect(noted.r.loadNs / 1e6).toBeGreaterThanOrEqual(14);
    // both recorders timed the same waits (wide margin: a loaded machine stretches any of them)
    expect(Math.abs(noted.r.loadNs - direct.r.loadNs) / 1e6).toBeLessThan(5);
  });

  test('an ES module that never reports its end is closed by its parent end', () => {
    const r = new Recorder(root);
    r.enterUrl('file:///var/task/index.mjs');
    r.enterUrl('file:///var/task/node_modules/broken/index.js'); // throws: no end marker
    busy(2);
    r.exitUrl('file:///var/task/index.mjs');
    expect(r.selfNs.get('broken')! / 1e6).toBeGreaterThanOrEqual(2);
    r.enterUrl('file:///var/task/other.mjs');
    r.exitUrl('file:///var/task/other.mjs');
    r.close();
    expect(r.modules).toBe(3);
  });

  test('a CommonJS module evaluated by the ESM loader keeps the time after its load() up to the next event (its exports copied)', async () => {
    const r = new Recorder(root);
    const cjs = r.enterFile('/var/task/node_modules/c/index.js');
    busy(2);
    r.exit(cjs, true);
    busy(3); // Node copies its exports into the module namespace
    r.enterUrl('file:///var/task/node_modules/d/index.js'); // the next module's body: the tail ends
    busy(1);
    r.exitUrl('file:///var/task/node_modules/d/index.js');
    const c2 = r.enterFile('/var/task/node_modules/c2/index.js');
    r.exit(c2, true);
    busy(2);
    await Promise.resolve(); // nothing else: a microtask ends it once the graph's evaluation is over
    await Promise.resolve();
    busy(200); // not c2's
    r.close();
    const ms = (k: string): number => r.selfNs.get(k)! / 1e6;
    expect(ms('c')).toBeGreaterThanOrEqual(5);
    expect(ms('d')).toBeGreaterThanOrEqual(1);
    expect(ms('c2')).toBeGreaterThanOrEqual(2);
    expect(ms('c2')).toBeLessThan(150);
    // the tail is no second load of the module, and its time is in the module-load time
    const tree = moduleTree(r, new Map(), 'on', 'preload');
    const c = tree.children.find((n) => n.name === 'c')!;
    expect(c.loads).toBeUndefined(); // one load (the field is left out for 1)
    expect(c.total_ms).toBeGreaterThanOrEqual(c.self_ms); // inclusive: with the recorder's own time inside
    const sum = [...r.selfNs.values()].reduce((x, y) => x + y, 0);
    expect(Math.abs(r.loadNs - sum - r.overheadNs)).toBeLessThan(2e6);
    expect(r.modules).toBe(3);
  });

  test('runtime files (outside the task root and node_modules) are not recorded', () => {
    const r = new Recorder(root);
    const frame = r.enterFile('/var/runtime/index.js');
    expect(frame).toBeUndefined();
    r.enterUrl('file:///var/runtime/index.mjs');
    r.exitUrl('file:///var/runtime/index.mjs');
    expect(r.modules).toBe(0);
  });

  test('ES module loading: each module charged from its hook call to the next event, linking apart', async () => {
    const r = new Recorder(root);
    const t = (): bigint => process.hrtime.bigint();
    const began = t();
    // the loader resolves and loads a's index, then compiles it (the time up to the next event)
    r.loading('file:///var/task/node_modules/a/index.js', t(), undefined);
    busy(2);
    r.loading('file:///var/task/node_modules/a/index.js', t(), false);
    busy(3); // "compiling" a's index
    // a's index imports b: its resolve and load, then compiling b
    let started = t();
    busy(1); // inside Node's resolve
    r.loading('file:///var/task/node_modules/b/index.js', started, undefined);
    r.loading('file:///var/task/node_modules/b/lib.json', t(), true); // a JSON module: counted here
    busy(4);
    // a hook's own work before it called Node's is overhead
    const entered = t();
    busy(1);
    started = t();
    r.loading('file:///var/task/node_modules/a/other.js', started, false, false, entered);
    busy(2);
    // the SDK's own file: overhead (then back to b)
    started = t();
    busy(1);
    r.loading('file:///var/task/node_modules/@coldstart/analyzer/handler.mjs', started, false, true);
    r.loading('file:///var/task/node_modules/b/index.js', t(), false);
    // the loader goes quiet (microtask): linking until the first body runs
    await Promise.resolve();
    await Promise.resolve();
    busy(2);
    r.enterUrl('file:///var/task/node_modules/b/index.js');
    busy(1);
    r.exitUrl('file:///var/task/node_modules/b/index.js');
    // A loaded machine deschedules the process inside whichever segment it is in, and a busy-wait
    // then overshoots: the upper bounds (3 ms over each nominal figure, 2.5 ms for linking) also
    // get the time the whole sequence took beyond its 17 ms of busy-waits, and no more. Unloaded,
    // that is about 0 and a 3 ms segment charged to the wrong module still fails them.
    const stretch = Math.max(0, Number(t() - began) / 1e6 - 17);
    r.close();
    const ms = (key: string): number => (r.selfNs.get(key) ?? 0) / 1e6;
    expect(ms('a')).toBeGreaterThanOrEqual(7);
    expect(ms('a')).toBeLessThan(10 + stretch);
    expect(ms('b')).toBeGreaterThanOrEqual(6);
    expect(ms('b')).toBeLessThan(9 + stretch);
    expect(ms('@coldstart/analyzer')).toBe(0);
    expect(r.overheadNs / 1e6).toBeGreaterThanOrEqual(2);
    expect(r.linkNs / 1e6).toBeGreaterThanOrEqual(2);
    expect(r.linkNs / 1e6).toBeLessThan(4.5 + stretch);
    expect(r.modules).toBe(2); // b/lib.json (load) and b's body (marker); the others' bodies never ran
    const tree = moduleTree(r, new Map(), 'on', 'preload');
    const b = tree.children.find((c) => c.name === 'b')!;
    expect(b.loading_ms).toBeGreaterThanOrEqual(5);
    expect(b.evaluation_ms).toBeGreaterThanOrEqual(1);
    expect(b.loading_ms! + b.evaluation_ms!).toBeCloseTo(b.self_ms, 2);
    expect(tree.link_ms).toBeGreaterThanOrEqual(2);
    // every segment of the load time is someone's self time, linking, or overhead (some of the
    // overhead, the SDK's own file here, falls outside any load)
    const sum = [...r.selfNs.values()].reduce((x, y) => x + y, 0);
    expect(r.loadNs).toBeGreaterThanOrEqual(sum + r.linkNs);
    expect(r.loadNs - sum - r.linkNs - r.overheadNs).toBeLessThan(0.3e6);
  });

  test('a loading frame with nothing after it ends when the event loop turns', async () => {
    const r = new Recorder(root);
    const began = process.hrtime.bigint();
    r.loading('file:///var/task/node_modules/json-only/data.json', began, true);
    busy(2);
    await new Promise((resolve) => setImmediate(resolve));
    // a loaded machine stretches the busy-wait and the wait for the event loop's turn: the upper
    // bound also gets what they took beyond 2 ms, measured before the 5 ms that must not count
    const stretch = Math.max(0, Number(process.hrtime.bigint() - began) / 1e6 - 2);
    busy(5); // not the package's: the loader was done
    r.close();
    expect(r.selfNs.get('json-only')! / 1e6).toBeGreaterThanOrEqual(2);
    expect(r.selfNs.get('json-only')! / 1e6).toBeLessThan(4 + stretch);
  });

  test('nothing is recorded after close', () => {
    const r = new Recorder(root);
    r.close();
    expect(r.enterFile('/var/task/late.js')).toBeUndefined();
    expect(r.modules).toBe(0);
  });
});

describe('report caps', () => {
  test('module_timings keeps the largest entries and folds the rest', () => {
    const self = new Map<string, number>();
    for (let i = 0; i < MAX_TIMINGS + 50; i++) self.set(`pkg-${i}`, (i + 1) * 1000);
    const out = moduleTimings(self);
    expect(Object.keys(out)).toHaveLength(MAX_TIMINGS);
    expect(out[OTHER]).toBeGreaterThan(0);
    const total = [...self.values()].reduce((a, b) => a + b, 0) / 1e6;
    expect(Object.values(out).reduce((a, b) => a + b, 0)).toBeCloseTo(total, 2);
  });

  test('module_tree keeps the top children and an "(other)" bucket', () => {
    const r = new Recorder(root);
    const top = r.enterFile('/var/task/index.js');
    for (let i = 0; i < TREE_MAX_CHILDREN + 5; i++) {
      const f = r.enterFile(`/var/task/node_modules/p${i}/index.js`);
      busy(0.05 * (i + 1));
      r.exit(f);
    }
    r.exit(top);
    r.close();
    const tree = moduleTree(r, new Map(), 'off', 'require');
    const children = tree.children[0]!.children!;
    expect(children).toHaveLength(TREE_MAX_CHILDREN + 1);
    expect(children.at(-1)!.name).toBe(OTHER);
    expect(children.at(-1)!.packages).toBe(5);
    expect(tree.truncated).toBe(true);
    expect(JSON.stringify(tree).length).toBeLessThan(4000);
  });
});

describe('Recorder: loading from the hooks thread (module.register), replayed from the shared buffer', () => {
  const ms = (x: number): bigint => BigInt(Math.round(x * 1e6));
  const url = (pkg: string, file = 'index.js'): string => `file:///var/task/node_modules/${pkg}/${file}`;

  test('each module charged with its resolve and load, and the wait before them; bookkeeping and markers are overhead', () => {
    const r = new Recorder(root);
    const buffer = LoadingBuffer.create();
    r.attachOffThread(buffer);
    // clock readings as the hooks thread takes them, 100 ms ago (the same clock in both threads)
    const base = process.hrtime.bigint() - ms(100);
    const a = buffer.storeUrl(url('pkg-a'));
    const b = buffer.storeUrl(url('pkg-b'));
    const own = buffer.storeUrl('file:///var/task/node_modules/@coldstart/analyzer/handler.mjs');
    // the SDK's redirect: overhead, nobody's time
    buffer.write(OWN, own, base - ms(3), base - ms(2), base - ms(2));
    buffer.write(0, a, base, base + ms(5), base + ms(5.1)); // resolve; 0.1 ms of bookkeeping after Node's answer
    buffer.write(LOAD, a, base + ms(6), base + ms(10), base + ms(11)); // load; 1 ms of markers
    buffer.write(0, b, base + ms(20), base + ms(22), base + ms(22)); // resolve, after 9 ms of waiting on the main thread
    buffer.write(LOAD | COUNTED, b, base + ms(23), base + ms(30), base + ms(30));
    expect(buffer.pending).toBe(true);
    // the first module body (a main-thread event) reads them: b's loading runs up to it
    r.enterUrl(url('pkg-b'));
    expect(buffer.pending).toBe(false);
    r.exitUrl(url('pkg-b'));
    r.close();
    const self = (key: string): number => (r.selfNs.get(key) ?? 0) / 1e6;
    // a: 0 to 11 ms, less 0.1 + 1 ms of the hooks' own work; the hooks thread's wait from 11 to
    // 20 ms (the main thread working toward b: answering, compiling its importer) is b's
    expect(self('pkg-a')).toBeCloseTo(9.9, 6);
    expect(self('pkg-b')).toBeGreaterThan(79);
    expect(self('pkg-b')).toBeLessThan(200);
    expect(r.selfNs.has('@coldstart/analyzer')).toBe(false);
    expect(r.overheadNs / 1e6).toBeGreaterThanOrEqual(2.1);
    // a's time is all loading; b's is loading up to its body
    const [nodeA, nodeB] = [r.root.children!.get('pkg-a')!, r.root.children!.get('pkg-b')!];
    expect(nodeA.loadingNs).toBe(nodeA.selfNs);
    expect(nodeB.loadingNs / 1e6).toBeGreaterThan(79);
    expect(r.loadingNs).toBe(nodeA.loadingNs + nodeB.loadingNs);
    // b's load counted (not an ES module body), and b's body
    expect(r.modules).toBe(2);
    expect(buffer.recording).toBe(false); // closed: the hooks thread stops writing
  });

  test('a load with no main-thread event after it ends at its load, not at close; a full buffer says so', () => {
    const r = new Recorder(root);
    const buffer = LoadingBuffer.create();
    r.attachOffThread(buffer);
    const base = process.hrtime.bigint() - ms(50);
    const json = buffer.storeUrl(url('pkg-json', 'data.json'));
    buffer.write(0, json, base, base + ms(1), base + ms(1));
    buffer.write(LOAD | COUNTED, json, base + ms(1), base + ms(4), base + ms(4));
    expect(buffer.write(LOAD, undefined, base, base, base)).toBe(false); // no room for its URL
    r.close();
    expect((r.selfNs.get('pkg-json') ?? 0) / 1e6).toBeCloseTo(4, 6);
    expect(r.offThreadOverflow).toBe(true);
  });
});
