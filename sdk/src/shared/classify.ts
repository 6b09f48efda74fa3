// Pure functions that describe the start and the environment. No I/O, easy to test.

import { PROACTIVE_GAP_MS } from './constants';

export type StartKind = 'cold' | 'warm' | 'proactive' | 'provisioned';

/**
 * cold: the first invocation of an environment, whose init delayed a request.
 * proactive: Lambda initialized the environment ahead of time (more than 10 s passed between
 * the end of init and the first invocation), so the init delayed nobody.
 * provisioned: provisioned concurrency (init ran before any request, by configuration).
 * warm: every later invocation.
 */
export function classifyStart(firstInvocation: boolean, initType: string | undefined, gapMs: number | undefined): StartKind {
  if (!firstInvocation) return 'warm';
  if (initType === 'provisioned-concurrency') return 'provisioned';
  if (gapMs !== undefined && gapMs > PROACTIVE_GAP_MS) return 'proactive';
  return 'cold';
}

/** `AWS_Lambda_nodejs20.x` -> `nodejs20.x`; outside Lambda `node` + the Node.js version. */
export function runtimeVersion(executionEnv: string | undefined, nodeVersion: string): string {
  const match = executionEnv !== undefined ? /^AWS_Lambda_(.+)$/.exec(executionEnv) : null;
  if (match !== null) return match[1]!;
  return `node${nodeVersion.replace(/^v/, '')}`;
}

export function architecture(arch: string): string {
  if (arch === 'x64') return 'x86_64';
  return arch; // arm64 is already Lambda's name
}

export function positiveInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^\s*\d+\s*$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** Strings in the payload are capped at 255 characters (the backend's column limit). */
export function clip(text: string, max = 255): string {
  return text.length <= max ? text : text.slice(0, max);
}
