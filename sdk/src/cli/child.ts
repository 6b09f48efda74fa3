// The script each profiled process runs (run.ts): loads the handler as Lambda's runtime would
// (require, or import for an ES module), then asks the SDK for its snapshot, writes it to
// COLDSTART_PROFILE_OUT and exits, as Lambda freezes the process after init. The SDK itself is
// preloaded with --require.
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
  const done = (error?: unknown): void => {
    const snapshot = core.__profileSnapshot() || {};
    if (error !== undefined) snapshot.error = String((error && (error as { stack?: unknown }).stack) || error).slice(0, 4000);
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
