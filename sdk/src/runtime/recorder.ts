// The module-load timeline: self and inclusive time per package, without double counting.
//
// Loads nest (a module's body requires or imports another), so the recorder keeps a stack of
// open loads. Every enter/exit event closes a segment of wall time [last event, now] and gives it
// to the load on top of the stack: that is self time. Time spent inside the recorder itself is
// measured (a second clock read at the end of each event) and kept out of every segment, so the
// self times add up to the module-load time minus the SDK's own bookkeeping, which is reported
// separately as overhead.
//
// Loads are also folded into a package-level tree: a load whose package differs from its parent's
// opens (or re-enters) a child node; a load of another file of the same package stays in the
// parent's node. A node's inclusive time counts only the loads that entered it from outside, so
// nested files of one package are not counted twice.
//
// ES modules are loaded before they are evaluated: Node.js resolves, reads and compiles the whole
// graph, links it, then runs the bodies. The load hooks report each module as it is resolved and
// loaded (loading()): from then until the next event, the time is that module's loading (its
// resolution, reading, and what Node does right after the load hook returns: compiling it and
// collecting its imports). Such a "loading frame" has no end event of its own; it closes at the
// next event of any kind, or when the loader pauses: a microtask queued at each load event runs
// once Node has compiled the graph's last module (Node.js 22 and 24 load and compile a graph
// synchronously with the in-thread hooks, measured) and before it links it. Linking (instantiating:
// binding imports to exports, creating each module's top-level functions) is one step for the
// whole graph, not per module: it is counted apart (linkNs), up to the first module body, never
// as a package's time.
//
// A CommonJS module imported from ESM is evaluated by Node's ESM loader, which calls require()'s
// loader (timed by the CommonJS hook) and then copies each of its exports, one by one, into the ES
// module namespace: a step after the CommonJS hook returns, long for a module of thousands of
// exports. That tail is the module's too: a "trailing" frame keeps it until the next event (the
// next module's body, normally), or a microtask when the graph's evaluation is over.
//
// With the hooks thread of module.register (Node.js 18.19+, 20, 22 before 22.15), the resolve and
// load hooks run in another thread: they write their clock readings into a shared buffer
// (loading-buffer.ts), which the recorder reads before each event of its own and at close, and
// replays as if the events had come then (replayOffThread()). A module's resolve and load are its
// loading; the time the hooks thread waited before a module's event (on the main thread: handling
// the last answers, compiling modules, which Node.js 20 does in batches) goes to that module, what
// the loader was working toward. Less exact than in-thread (esm_timing "hooks-thread", not "on"):
// Node.js 20 asks the hooks thread for all of a module's imports at once and compiles on the main
// thread while the hooks thread works on other modules, so overlapping work is charged to one of
// them (each event clipped to start after the previous one), and the main thread's part per module
// (compiling, detecting a CommonJS package's exports) has no event: it lands in the module whose
// event comes next. Linking, after the last module's loading, stays with the module loaded last
// (no link_ms).

import { attributeFile, attributeUrl, type Attribution } from '../shared/attribution';
import type { CpuProfileRecord } from '../shared/cpu-profile';
import { COMMONJS, COUNTED, LOAD, type LoadingBuffer, type LoadingEvent, OWN } from './loading-buffer';

const now = process.hrtime.bigint;
const NODE_MODULES = '/node_modules/';

export interface TreeNode {
  key: string;
  packageDir: string | undefined;
  selfNs: number;
  inclusiveNs: number;
  loads: number;
  children: Map<string, TreeNode> | undefined;
  /** version carried by the esbuild plugin's markers (a bundle has no package.json to read) */
  version: string | undefined;
  /** of selfNs, the part spent loading ES modules (resolve, read, compile) before evaluation */
  loadingNs: number;
}

interface Frame {
  node: TreeNode;
  start: bigint;
  /** true when this load entered `node` from another package (its time counts as inclusive) */
  entered: boolean;
  url: string | number | undefined;
  /** an ES module being loaded (no end event: closed by the next event) */
  loading: boolean;
  /** closed by the next event of any kind: a loading frame, or the tail of a CommonJS module evaluated by the ESM loader */
  trailing: boolean;
}

function newNode(key: string, packageDir: string | undefined): TreeNode {
  return { key, packageDir, selfNs: 0, inclusiveNs: 0, loads: 0, children: undefined, version: undefined, loadingNs: 0 };
}

/**
 * A file outside the task root and outside any node_modules belongs to the runtime (Lambda's
 * runtime client, /var/runtime), not to the function: its time is not the function's init, and
 * an ES module of the runtime client runs a top-level await loop that never ends. Such loads are
 * not recorded (what they load is: it appears at the top of the tree).
 */
function isRuntimeFile(who: Attribution): boolean {
  return who.packageDir === undefined && !who.key.startsWith('./');
}

export class Recorder {
  active = true;
  private readonly rootNode: TreeNode = newNode('(init)', undefined);
  /** self time per key, in ns */
  private readonly selfNsByKey = new Map<string, number>();
  /** sum of the outermost loads' durations: the module-load part of init, in ns */
  private loadNsTotal = 0;
  /** of the self times, the part spent loading ES modules (see loading()), in ns */
  private loadingNsTotal = 0;
  /** time spent linking ES module graphs (between their loading and their evaluation), in ns */
  private linkNsTotal = 0;
  /** SDK time spent in the recorder's own events, in ns */
  private overheadNsTotal = 0;
  /** number of module loads seen */
  private moduleCount = 0;
  /** of which inside bundles (esbuild plugin markers) */
  private bundledModuleCount = 0;
  /** clock at the end of the last load (end of init, as far as modules tell) */
  private lastExitAt: bigint | undefined;
  /** COLDSTART_LOADING=profile: the CPU profile of init, samples by script (set when init closes) */
  cpuProfile: CpuProfileRecord | undefined;
  /** the hooks thread's loading events (module.register), replayed before each event of our own */
  private offThread: LoadingBuffer | undefined;
  /** the hooks thread had no room for more events: later modules' loading was not timed */
  offThreadOverflow = false;

  private readonly stack: Frame[] = [];
  private readonly openUrls = new Map<string | number, Frame>();
  private last = 0n;
  /** a setImmediate that closes an open loading frame is pending */
  private closeScheduled = false;
  /** counts loading events, so that a microtask can tell it came after the last one */
  private generation = 0;
  private quietQueued = false;
  /** clock when the loader went quiet after loading a graph: linking since then */
  private linkingFrom: bigint | undefined;
  /**
   * Files of CommonJS modules the ESM loader loaded (load hook, format commonjs) and has not yet
   * evaluated: their evaluation (through require()'s loader) gets a tail, see exit().
   */
  readonly importedCommonJs = new Set<string>();

  /**
   * Deferred CommonJS events (see noteEnter): while no ES module hooks run, a CommonJS module's
   * load is only noted (clock reading, file) and the timeline is built from the notes when it is
   * next needed: at the next event of another kind, or when a result is read (after the first
   * response). The hooks then do a clock read and a few array writes per module on the function's
   * init, instead of the attribution, the tree and the self-time bookkeeping (bench/sdk: about a
   * third of the SDK's cost on the init of a 628-module handler, and allocation that brought
   * garbage collections forward). The notes' own cost (a few array writes) stays in the module's
   * time, not in overheadNs.
   */
  deferCommonJs = false;
  /**
   * per noted event, three entries: its clock; the file (an enter), the enter's number (an exit) or
   * undefined (SDK time, exclude()); require()'s start (an enter) or the SDK time's start
   */
  private readonly notes: (bigint | string | number | undefined)[] = [];
  /** number of the next noted enter */
  private noted = 0;
  /** number of the next replayed enter (the same numbers, in the same order) */
  private notedEnters = 0;
  /** clock of the last noted exit of a non-runtime file (lastExit before the notes are replayed) */
  private notedLastExit: bigint | undefined;
  /** frames of replayed enters, by their number, until their exit is replayed */
  private readonly notedFrames = new Map<number, Frame | undefined>();
  /** close() came while notes were pending: its clock, applied once they are replayed */
  private closingAt: bigint | undefined;
  /** replaying notes: events take their clock from the note, and cost no overhead of their own */
  private replaying = false;
  /** task root + '/', for the runtime-file test of noteEnter ('' when files cannot be under it) */
  private readonly rootPrefix: string;

  constructor(private readonly taskRoot: string) {
    const root = taskRoot.endsWith('/') ? taskRoot.slice(0, -1) : taskRoot;
    this.rootPrefix = root === '' ? '' : root + '/';
  }

  get root(): TreeNode {
    this.replayNotes();
    return this.rootNode;
  }
  /** self time per key, in ns */
  get selfNs(): Map<string, number> {
    this.replayNotes();
    return this.selfNsByKey;
  }
  /** sum of the outermost loads' durations: the module-load part of init, in ns */
  get loadNs(): number {
    this.replayNotes();
    return this.loadNsTotal;
  }
  /** of the self times, the part spent loading ES modules (see loading()), in ns */
  get loadingNs(): number {
    this.replayNotes();
    return this.loadingNsTotal;
  }
  /** time spent linking ES module graphs (between their loading and their evaluation), in ns */
  get linkNs(): number {
    this.replayNotes();
    return this.linkNsTotal;
  }
  /** SDK time spent in the recorder's own events, in ns */
  get overheadNs(): number {
    this.replayNotes();
    return this.overheadNsTotal;
  }
  /** number of module loads seen */
  get modules(): number {
    this.replayNotes();
    return this.moduleCount;
  }
  /** of which inside bundles (esbuild plugin markers) */
  get bundledModules(): number {
    this.replayNotes();
    return this.bundledModuleCount;
  }
  /**
   * Clock at the end of the last load (end of init, as far as modules tell). Read as the first
   * invocation starts: known without replaying the notes.
   */
  get lastExit(): bigint | undefined {
    const noted = this.notedLastExit;
    if (noted !== undefined && (this.lastExitAt === undefined || noted > this.lastExitAt)) return noted;
    return this.lastExitAt;
  }

  /**
   * A CommonJS module starts loading (deferCommonJs): notes the clock and the file; returns the
   * number to pass to noteExit(). `requiredAt`: as for enterFile().
   */
  noteEnter(filename: string, requiredAt: bigint | undefined): number {
    const t = now();
    this.notes.push(t, filename, requiredAt);
    const id = this.noted++;
    // a runtime file's exit is no load's end (enterFile records nothing for it): told apart by a
    // number below 0, with attributeFile's test done on the path as it is (Lambda's are POSIX)
    return filename.includes('\\') || filename.includes(NODE_MODULES) || (this.rootPrefix !== '' && filename.startsWith(this.rootPrefix))
      ? id
      : -1 - id;
  }

  /** The load noted by noteEnter() returned. */
  noteExit(id: number): void {
    const t = now();
    this.notes.push(t, id, undefined);
    if (id >= 0) this.notedLastExit = t;
  }

  /** Builds the timeline from the pending notes, as if their events had come at their clock. */
  private replayNotes(): void {
    const notes = this.notes;
    if (notes.length === 0 || this.replaying) return;
    const wasActive = this.active;
    this.active = true;
    this.replaying = true;
    try {
      for (let i = 0; i < notes.length; i += 3) {
        const t = notes[i] as bigint;
        const what = notes[i + 1];
        if (what === undefined) {
          this.excludeSpan(notes[i + 2] as bigint, t);
        } else if (typeof what === 'string') {
          const id = this.notedEnters++;
          this.notedFrames.set(id, this.enterFileAt(t, what, notes[i + 2] as bigint | undefined));
        } else {
          const id = (what as number) < 0 ? -1 - (what as number) : (what as number);
          const frame = this.notedFrames.get(id);
          this.notedFrames.delete(id);
          this.exitAt(t, frame, false);
        }
      }
    } finally {
      notes.length = 0;
      this.notedLastExit = undefined;
      this.replaying = false;
      this.active = wasActive;
    }
    if (this.closingAt !== undefined) {
      const at = this.closingAt;
      this.closingAt = undefined;
      this.active = true;
      this.closeAt(at);
    }
  }

  /**
   * An ES module was resolved or loaded by the ESM loader (a load hook): `startedAt` is the clock
   * when the hook called Node's own resolve or load. The time from the last event to `startedAt`
   * stays with the module on top (the previous module being loaded: Node compiling it); from
   * `startedAt` on, it is this module's loading until the next event. `counted`: undefined for a
   * resolve, else whether this load counts as one module (not when its body marker or the
   * CommonJS hook counts it). A file of the runtime or of this SDK (`own`) closes the loading
   * frame and its hook's time is overhead. `enteredAt`: when the hook started (its work before
   * calling Node's is overhead).
   */
  loading(url: string, startedAt: bigint, counted: boolean | undefined, own = false, enteredAt?: bigint): void {
    this.replayNotes();
    const t = now();
    if (!this.active) return;
    // the hook's own work before it called Node's (from enteredAt) is overhead
    if (enteredAt !== undefined && enteredAt < startedAt) this.excludeSpan(enteredAt, startedAt);
    this.endLinking(startedAt);
    this.generation++;
    if (!this.quietQueued) {
      // one microtask at a time: when it runs, it re-queues itself if events came meanwhile
      this.quietQueued = true;
      const generation = this.generation;
      queueMicrotask(() => this.quiet(generation));
    }
    const top = this.stack[this.stack.length - 1];
    const start = startedAt > this.last ? startedAt : this.last;
    const who = own ? undefined : this.attributeUrlCached(url);
    if (who === undefined || isRuntimeFile(who)) {
      if (top?.trailing === true) this.unwind(start, top);
      if (own) {
        this.overheadNsTotal += Number(t - start);
        this.last = t;
      }
      this.settle(t);
      return;
    }
    if (counted === true) this.moduleCount++;
    if (top?.loading === true && top.node.key === who.key) {
      this.addSelf(top.node, t, true);
      this.settle(t);
      return;
    }
    if (top?.trailing === true) this.unwind(start, top);
    this.push(start, who, undefined, t, true);
    if (!this.closeScheduled) {
      // A graph loads within one turn of the event loop (the in-thread hooks are synchronous);
      // one that is not followed by any event (nothing to evaluate, say) ends there.
      this.closeScheduled = true;
      setImmediate(() => {
        this.closeScheduled = false;
        const t = now();
        this.endLinking(t);
        const open = this.stack[this.stack.length - 1];
        if (open?.loading === true) this.pop(t, open);
      }).unref();
    }
  }

  /**
   * Whether the module being loaded (the loading frame on top) is `url`'s package: then its load
   * hook needs no event (the frame goes on), see hooks.ts.
   */
  continuesLoading(url: string): boolean {
    this.replayNotes();
    const top = this.stack[this.stack.length - 1];
    return this.active && top?.loading === true && top.node.key === this.attributeUrlCached(url).key;
  }

  /** A module counted without an event of its own (a JSON module whose loading frame goes on). */
  countModule(): void {
    this.replayNotes();
    if (this.active) this.moduleCount++;
  }

  /** Loading is timed in the hooks thread, whose events come through `buffer` (see the top). */
  attachOffThread(buffer: LoadingBuffer): void {
    this.offThread = buffer;
  }

  /**
   * Replays the hooks thread's events written since the last call, in the order they started. Its
   * own time is overhead, and is kept out of the segment that follows (Node compiling the module
   * loaded last).
   */
  private replayOffThread(): void {
    if (!this.active) return;
    const started = now();
    const events = this.offThread!.take();
    events.sort((a, b) => (a.started < b.started ? -1 : a.started > b.started ? 1 : 0));
    for (const event of events) this.replayLoading(event);
    this.excludeSpan(started, now());
  }

  /** One event of the hooks thread: as loading() for an event that came at `event.done`. */
  private replayLoading(event: LoadingEvent): void {
    const own = (event.flags & OWN) !== 0;
    const top = this.stack[this.stack.length - 1];
    // The hooks thread idle since the last event: it waited for the main thread, which was working
    // toward this module (answering its resolve, compiling its importer, and whatever Node.js 20
    // batches there): the time goes to it. After a main-thread event, the gap is that event's.
    const start = top?.loading === true || event.started <= this.last ? this.last : event.started;
    // clock readings clipped to the timeline so far (bigints: no Math.max)
    let done = event.done;
    if (done < start) done = start;
    // from Node's answer to the hook's return: the hook's bookkeeping and markers, overhead
    let returned = event.returned;
    if (returned < done) returned = done;
    const who = own ? undefined : this.attributeUrlCached(event.url);
    if (who === undefined || isRuntimeFile(who)) {
      if (top?.trailing === true) this.unwind(start, top);
      if (own) this.overheadNsTotal += Number(returned - start);
      if (returned > this.last) this.last = returned;
      return;
    }
    if ((event.flags & LOAD) !== 0) {
      if ((event.flags & COUNTED) !== 0) this.moduleCount++;
      if ((event.flags & COMMONJS) !== 0 && event.url.startsWith('file:')) {
        const { fileURLToPath } = require('node:url') as typeof import('node:url');
        this.importedCommonJs.add(fileURLToPath(event.url));
      }
    }
    if (top?.loading === true && top.node.key === who.key) {
      this.addSelf(top.node, done, true);
      this.last = done;
    } else {
      if (top?.trailing === true) this.unwind(start, top);
      this.push(start, who, undefined, done, true, true);
    }
    if (returned > done) this.excludeSpan(done, returned);
  }

  /** A module is resolved, loaded, then evaluated: its URL is attributed once for the three. */
  private readonly attributions = new Map<string, Attribution>();
  private attributeUrlCached(url: string): Attribution {
    let who = this.attributions.get(url);
    if (who === undefined) {
      who = attributeUrl(url, this.taskRoot);
      this.attributions.set(url, who);
    }
    return who;
  }

  /**
   * The microtask queued at a loading event (`generation`): if no event came since, loading is
   * over. A microtask runs after the synchronous work then under way, so a check that finds new
   * events looks again after them.
   */
  private quiet(generation: number): void {
    this.replayNotes();
    this.quietQueued = false;
    if (!this.active) return;
    if (generation !== this.generation) {
      // events since it was queued: look again once they are over
      this.quietQueued = true;
      const latest = this.generation;
      queueMicrotask(() => this.quiet(latest));
      return;
    }
    const t = now();
    const top = this.stack[this.stack.length - 1];
    if (top?.loading !== true) return;
    this.unwind(t, top);
    this.settle(t);
    this.linkingFrom = this.last;
  }

  /** Linking ends at the next event (normally the first module body): its time is nobody's self. */
  private endLinking(t: bigint): void {
    const from = this.linkingFrom;
    if (from === undefined) return;
    this.linkingFrom = undefined;
    if (t <= from) return;
    const ns = Number(t - from);
    this.linkNsTotal += ns;
    if (this.stack.length === 0) this.loadNsTotal += ns; // inside an importer's load, its duration has it
    if (t > this.last) this.last = t;
  }

  /** A CommonJS module starts loading. Returns the frame to pass to exit(). */
  enterFile(filename: string, requiredAt?: bigint): Frame | undefined {
    this.replayNotes();
    if (this.offThread?.pending === true) this.replayOffThread();
    return this.enterFileAt(now(), filename, requiredAt);
  }

  private enterFileAt(t: bigint, filename: string, requiredAt: bigint | undefined): Frame | undefined {
    if (!this.active) return undefined;
    this.endLinking(requiredAt !== undefined && requiredAt < t ? requiredAt : t);
    const who = attributeFile(filename, this.taskRoot);
    if (isRuntimeFile(who)) {
      this.closeTrailing(t);
      this.settle(t);
      return undefined;
    }
    // The load started when require() was called (path resolution included), if that is known
    // and later than the last event.
    const start = requiredAt !== undefined && requiredAt > this.last ? requiredAt : t;
    return this.push(start, who, undefined, t);
  }

  /** An ES module body starts evaluating (marker injected at its top). */
  enterUrl(url: string): void {
    this.replayNotes();
    if (this.offThread?.pending === true) this.replayOffThread();
    const t = now();
    if (!this.active) return;
    this.endLinking(t);
    const who = this.attributeUrlCached(url);
    if (isRuntimeFile(who)) {
      this.closeTrailing(t);
      this.settle(t);
      return;
    }
    const frame = this.push(t, who, url);
    this.openUrls.set(url, frame);
  }

  /**
   * A module inside a bundle starts (marker put there by the esbuild plugin). `key` was computed
   * at build time (package name or ./own/path); `id` (a number, per build) tells the module's two
   * markers apart; `version` is the package's, read from its package.json at build time.
   */
  enterKey(id: number, key: string, version?: string): void {
    this.replayNotes();
    if (this.offThread?.pending === true) this.replayOffThread();
    const t = now();
    if (!this.active) return;
    this.endLinking(t);
    this.bundledModuleCount++;
    const frame = this.push(t, { key, packageDir: undefined }, id);
    if (typeof version === 'string') frame.node.version ??= version;
    this.openUrls.set(id, frame);
  }

  exitUrl(url: string | number): void {
    this.replayNotes();
    const t = now();
    this.endLinking(t);
    const frame = this.openUrls.get(url);
    if (frame === undefined) return;
    this.openUrls.delete(url);
    this.pop(t, frame);
  }

  /**
   * A CommonJS module's load() returned. `tail`: the ESM loader evaluated it (imported from ESM)
   * and now copies its exports into the module namespace: that time stays the module's, until the
   * next event or, if there is none, a microtask (run once the graph's evaluation is over).
   */
  exit(frame: Frame | undefined, tail = false): void {
    this.replayNotes();
    this.exitAt(now(), frame, tail);
  }

  private exitAt(t: bigint, frame: Frame | undefined, tail: boolean): void {
    this.endLinking(t);
    if (frame === undefined) return;
    if (!tail || !this.active || this.stack[this.stack.length - 1] !== frame) {
      this.pop(t, frame);
      return;
    }
    this.unwind(t, frame);
    const trailing: Frame = { node: frame.node, start: t, entered: frame.entered, url: undefined, loading: false, trailing: true };
    this.stack.push(trailing);
    queueMicrotask(() => {
      if (this.stack[this.stack.length - 1] !== trailing) return;
      const end = now();
      this.pop(end, trailing);
    });
    this.settle(t);
  }

  /** Ends a trailing frame on top (the next event came). */
  private closeTrailing(t: bigint): void {
    const top = this.stack[this.stack.length - 1];
    if (top?.trailing === true) this.unwind(t > this.last ? t : this.last, top);
  }

  /**
   * Stops recording (called at the first invocation). Loads still open are closed now; later
   * loads (lazy requires inside the handler) are not part of init and are not recorded.
   */
  close(): void {
    if (!this.active) return;
    if (this.notes.length > 0 && this.offThread === undefined) {
      // the notes are replayed when a result is first read (after the response), then closed at this clock
      this.closingAt = now();
      this.active = false;
      return;
    }
    this.closeAt(undefined);
  }

  private closeAt(at: bigint | undefined): void {
    if (this.offThread !== undefined) {
      this.replayOffThread();
      this.offThread.stop();
      this.offThreadOverflow = this.offThread.overflowed;
      // a module loaded last, with no event after it (no body to evaluate): its loading ends with
      // its load, not with init
      const top = this.stack[this.stack.length - 1];
      if (top?.loading === true) this.pop(this.last, top);
    }
    const t = at ?? now();
    this.endLinking(t);
    while (this.stack.length > 0) this.pop(t, this.stack[this.stack.length - 1]!);
    this.active = false;
    this.attributions.clear();
  }

  /**
   * After close(): a file that loaded the SDK itself, hence was never seen loading (see
   * bundle.ts), becomes the root's only child, with `selfNs` of its own and everything seen
   * (which it loaded) below it.
   */
  adoptRoot(key: string, selfNs: number): void {
    this.replayNotes();
    if (this.active) return;
    const node = newNode(key, undefined);
    node.selfNs = selfNs;
    node.inclusiveNs = selfNs;
    node.loads = 1;
    if (this.rootNode.children !== undefined) for (const child of this.rootNode.children.values()) node.inclusiveNs += child.inclusiveNs;
    node.children = this.rootNode.children;
    this.rootNode.children = new Map([[key, node]]);
    this.selfNsByKey.set(key, (this.selfNsByKey.get(key) ?? 0) + selfNs);
    this.loadNsTotal = node.inclusiveNs;
    this.moduleCount++;
  }

  /** Time since `started` was the SDK's (e.g. injecting markers): overhead, nobody's self time. */
  exclude(started: bigint): void {
    if (!this.active) return;
    // with notes pending (init still running), noted too: replaying here would be init's work
    if (this.notes.length > 0 && !this.replaying) this.notes.push(now(), undefined, started);
    else this.excludeSpan(started, now());
  }

  private excludeSpan(started: bigint, end: bigint): void {
    const spent = end - started;
    this.overheadNsTotal += Number(spent);
    if (this.last >= started) this.last = end;
    else this.last += spent;
  }

  private push(
    t: bigint,
    who: Attribution,
    url: string | number | undefined,
    eventAt: bigint = t,
    loading = false,
    replayed = false,
  ): Frame {
    let top = this.stack[this.stack.length - 1];
    if (top?.trailing === true && !loading) {
      // the module being loaded is done with (its evaluation or another load starts), or a
      // CommonJS module's tail ends
      this.unwind(t, top);
      top = this.stack[this.stack.length - 1];
    }
    if (top !== undefined) this.addSelf(top.node, t, top.loading);
    let node: TreeNode;
    let entered = true;
    if (top !== undefined && top.node.key === who.key) {
      node = top.node;
      entered = false;
    } else {
      const parent = top !== undefined ? top.node : this.rootNode;
      const children = (parent.children ??= new Map());
      node = children.get(who.key) ?? newNode(who.key, who.packageDir);
      children.set(who.key, node);
    }
    const frame: Frame = { node, start: t, entered, url, loading, trailing: loading };
    this.stack.push(frame);
    if (!loading) this.moduleCount++;
    if (eventAt > t) {
      // resolution (from require() to load()) is the new module's own time
      this.last = t;
      this.addSelf(node, eventAt, loading);
    }
    // a replayed event (hooks thread) is in the past: no recorder time of its own to settle
    if (replayed) this.last = eventAt > this.last ? eventAt : this.last;
    else this.settle(eventAt);
    return frame;
  }

  private pop(t: bigint, frame: Frame): void {
    if (this.unwind(t, frame)) this.settle(t);
  }

  /** Ends `frame` (and any above it) at `t`; returns false if it was not open. */
  private unwind(t: bigint, frame: Frame): boolean {
    const at = this.stack.lastIndexOf(frame);
    if (at < 0) return false;
    // Frames above `frame` never reported their end (an ES module that threw): they end now.
    for (let i = this.stack.length - 1; i >= at; i--) {
      const f = this.stack[i]!;
      if (i === this.stack.length - 1) this.addSelf(f.node, t, f.loading);
      const duration = Number(t - f.start);
      if (f.entered) {
        f.node.inclusiveNs += duration;
        if (!f.trailing) f.node.loads++;
      }
      if (i === 0) this.loadNsTotal += duration;
      if (f.url !== undefined && i !== at) this.openUrls.delete(f.url);
    }
    this.stack.length = at;
    this.lastExitAt = t;
    if (t > this.last) this.last = t;
    return true;
  }

  private addSelf(node: TreeNode, t: bigint, loading: boolean): void {
    const segment = Number(t - this.last);
    if (segment <= 0) return;
    if (loading) {
      node.loadingNs += segment;
      this.loadingNsTotal += segment;
    }
    node.selfNs += segment;
    this.selfNsByKey.set(node.key, (this.selfNsByKey.get(node.key) ?? 0) + segment);
  }

  /** Ends an event: what the recorder cost since `t` is overhead, not anyone's self time. */
  private settle(t: bigint): void {
    const end = this.replaying ? t : now();
    this.overheadNsTotal += Number(end - t);
    this.last = end;
  }
}
