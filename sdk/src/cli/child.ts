// The script each profiled process runs (run.ts): loads the handler as Lambda's runtime would
// (require, or import for an ES module), then asks the SDK for its snapshot, writes it to
// COLDSTART_PROFILE_OUT and exits, as Lambda freezes the process after init. The SDK itself is
// preloaded with --require.
// With --cpu-profile (COLDSTART_PROFILE_CPU, the interval in µs), V8's sampling profiler runs from
// before the handler's loading to its end (node:inspector's in-process session answers
// synchronously); the snapshot then carries the raw profile (cpu_profile), which the CLI attributes.
//
// The script is profileChild's source text, run with `node -e` (childScript): a script given with
// -e is not a module, so the SDK's hooks neither time it nor count it as the SDK's own overhead,
// and the handler sees no require.main, as under Lambda's runtime. So profileChild must stand
// alone: it uses only what it requires itself and nothing imported by this file.

interface ProfiledCore {
  __profileSnapshot(): Record<string, unknown> | undefined;
}

/** Runs in the profiled process (never in the CLI's): `process.argv[1]` is the handler file. */
export function profileChild(): void {
  const fs = require('node:fs') as typeof import('node:fs');
  const core = require(process.env.COLDSTART_PROFILE_CORE!) as ProfiledCore;
  const handler = process.argv[1]!;
  let session: import('node:inspector').Session | undefined;
  if (process.env.COLDSTART_PROFILE_CPU) {
    session = new (require('node:inspector') as typeof import('node:inspector')).Session();
    session.connect();
    session.post('Profiler.enable');
    session.post('Profiler.setSamplingInterval', { interval: Number(process.env.COLDSTART_PROFILE_CPU) });
    session.post('Profiler.start');
  }
  const done = (error?: unknown): void => {
    let cpu: import('node:inspector').Profiler.Profile | undefined;
    if (session)
      session.post('Profiler.stop', (_error, result) => {
        cpu = result?.profile;
      });
    const snapshot = core.__profileSnapshot() || {};
    if (error !== undefined) snapshot.error = String((error && (error as { stack?: unknown }).stack) || error).slice(0, 4000);
    if (cpu)
      snapshot.cpu_profile = {
        nodes: cpu.nodes.map((n) => ({ id: n.id, url: n.callFrame.url, fn: n.callFrame.functionName, children: n.children })),
        samples: cpu.samples,
        deltas: cpu.timeDeltas,
        interval_us: Number(process.env.COLDSTART_PROFILE_CPU),
      };
    fs.writeFileSync(process.env.COLDSTART_PROFILE_OUT!, JSON.stringify(snapshot));
    process.exit(0);
  };
  if (process.env.COLDSTART_PROFILE_ESM === '1') {
    const url = (require('node:url') as typeof import('node:url')).pathToFileURL(handler).href;
    import(url).then(
      () => done(),
      (error: unknown) => done(error || 'error'),
    );
  } else {
    let failure: unknown;
    try {
      require(handler);
    } catch (error) {
      failure = error || 'error';
    }
    done(failure);
  }
}

/** The `node -e` script: profileChild's source, called. */
export function childScript(): string {
  return `(${profileChild.toString()})();\n`;
}
