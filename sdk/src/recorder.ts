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

import { attributeFile, attributeUrl, type Attribution } from './attribution';

const now = process.hrtime.bigint;

export interface TreeNode {
  key: string;
  packageDir: string | undefined;
  selfNs: number;
  inclusiveNs: number;
  loads: number;
  children: Map<string, TreeNode> | undefined;
  /** version carried by the esbuild plugin's markers (a bundle has no package.json to read) */
  version: string | undefined;
}

interface Frame {
  node: TreeNode;
  start: bigint;
  /** true when this load entered `node` from another package (its time counts as inclusive) */
  entered: boolean;
  url: string | number | undefined;
}

function newNode(key: string, packageDir: string | undefined): TreeNode {
  return { key, packageDir, selfNs: 0, inclusiveNs: 0, loads: 0, children: undefined, version: undefined };
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
  readonly root: TreeNode = newNode('(init)', undefined);
  /** self time per key, in ns */
  readonly selfNs = new Map<string, number>();
  /** sum of the outermost loads' durations: the module-load part of init, in ns */
  loadNs = 0;
  /** SDK time spent in the recorder's own events, in ns */
  overheadNs = 0;
  /** number of module loads seen */
  modules = 0;
  /** of which inside bundles (esbuild plugin markers) */
  bundledModules = 0;
  /** clock at the end of the last load (end of init, as far as modules tell) */
  lastExit: bigint | undefined;

  private readonly stack: Frame[] = [];
  private readonly openUrls = new Map<string | number, Frame>();
  private last = 0n;

  constructor(private readonly taskRoot: string) {}

  /** A CommonJS module starts loading. Returns the frame to pass to exit(). */
  enterFile(filename: string, requiredAt?: bigint): Frame | undefined {
    const t = now();
    if (!this.active) return undefined;
    const who = attributeFile(filename, this.taskRoot);
    if (isRuntimeFile(who)) {
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
    const t = now();
    if (!this.active) return;
    const who = attributeUrl(url, this.taskRoot);
    if (isRuntimeFile(who)) {
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
    const t = now();
    if (!this.active) return;
    this.bundledModules++;
    const frame = this.push(t, { key, packageDir: undefined }, id);
    if (typeof version === 'string') frame.node.version ??= version;
    this.openUrls.set(id, frame);
  }

  exitUrl(url: string | number): void {
    const t = now();
    const frame = this.openUrls.get(url);
    if (frame === undefined) return;
    this.openUrls.delete(url);
    this.pop(t, frame);
  }

  exit(frame: Frame | undefined): void {
    const t = now();
    if (frame !== undefined) this.pop(t, frame);
  }

  /**
   * Stops recording (called at the first invocation). Loads still open are closed now; later
   * loads (lazy requires inside the handler) are not part of init and are not recorded.
   */
  close(): void {
    if (!this.active) return;
    const t = now();
    while (this.stack.length > 0) this.pop(t, this.stack[this.stack.length - 1]!);
    this.active = false;
  }

  /**
   * After close(): a file that loaded the SDK itself, hence was never seen loading (see
   * bundle.ts), becomes the root's only child, with `selfNs` of its own and everything seen
   * (which it loaded) below it.
   */
  adoptRoot(key: string, selfNs: number): void {
    if (this.active) return;
    const node = newNode(key, undefined);
    node.selfNs = selfNs;
    node.inclusiveNs = selfNs;
    node.loads = 1;
    if (this.root.children !== undefined) for (const child of this.root.children.values()) node.inclusiveNs += child.inclusiveNs;
    node.children = this.root.children;
    this.root.children = new Map([[key, node]]);
    this.selfNs.set(key, (this.selfNs.get(key) ?? 0) + selfNs);
    this.loadNs = node.inclusiveNs;
    this.modules++;
  }

  /** Time since `started` was the SDK's (e.g. injecting markers): overhead, nobody's self time. */
  exclude(started: bigint): void {
    if (!this.active) return;
    const end = now();
    const spent = end - started;
    this.overheadNs += Number(spent);
    if (this.last >= started) this.last = end;
    else this.last += spent;
  }

  private push(t: bigint, who: Attribution, url: string | number | undefined, eventAt: bigint = t): Frame {
    const top = this.stack[this.stack.length - 1];
    if (top !== undefined) this.addSelf(top.node, t);
    let node: TreeNode;
    let entered = true;
    if (top !== undefined && top.node.key === who.key) {
      node = top.node;
      entered = false;
    } else {
      const parent = top !== undefined ? top.node : this.root;
      const children = (parent.children ??= new Map());
      node = children.get(who.key) ?? newNode(who.key, who.packageDir);
      children.set(who.key, node);
    }
    const frame: Frame = { node, start: t, entered, url };
    this.stack.push(frame);
    this.modules++;
    if (eventAt > t) {
      // resolution (from require() to load()) is the new module's own time
      this.last = t;
      this.addSelf(node, eventAt);
    }
    this.settle(eventAt);
    return frame;
  }

  private pop(t: bigint, frame: Frame): void {
    const at = this.stack.lastIndexOf(frame);
    if (at < 0) return;
    // Frames above `frame` never reported their end (an ES module that threw): they end now.
    for (let i = this.stack.length - 1; i >= at; i--) {
      const f = this.stack[i]!;
      if (i === this.stack.length - 1) this.addSelf(f.node, t);
      const duration = Number(t - f.start);
      if (f.entered) {
        f.node.inclusiveNs += duration;
        f.node.loads++;
      }
      if (i === 0) this.loadNs += duration;
      if (f.url !== undefined && i !== at) this.openUrls.delete(f.url);
    }
    this.stack.length = at;
    this.lastExit = t;
    this.settle(t);
  }

  private addSelf(node: TreeNode, t: bigint): void {
    const segment = Number(t - this.last);
    if (segment <= 0) return;
    node.selfNs += segment;
    this.selfNs.set(node.key, (this.selfNs.get(node.key) ?? 0) + segment);
  }

  /** Ends an event: what the recorder cost since `t` is overhead, not anyone's self time. */
  private settle(t: bigint): void {
    const end = now();
    this.overheadNs += Number(end - t);
    this.last = end;
  }
}
