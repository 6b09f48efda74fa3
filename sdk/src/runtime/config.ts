// Configuration: option > environment variable > default, resolved once into a frozen object.
// A bad value is reported once on stderr and the next source is used; nothing here throws.

import {
  DEFAULT_ENDPOINT,
  DEFAULT_SAMPLE_RATE,
  DEFAULT_TIMEOUT_MS,
  ENV_API_KEY,
  ENV_ENABLED,
  ENV_ENDPOINT,
  ENV_EXTENSION,
  ENV_SAMPLE_RATE,
  ENV_TIMEOUT,
  ENV_TRANSPORT,
} from '../shared/constants';
import { warnOnce } from '../shared/warn';

export interface AnalyzeOptions {
  /** API key of the project (`csa_...`). Default: `COLDSTART_API_KEY`. Without a key nothing is sent. */
  apiKey?: string;
  /** Base URL of the backend. Default: `COLDSTART_ENDPOINT`, else `https://api.coldstart.dev`. */
  endpoint?: string;
  /** Turn the SDK off (the handler is then returned unwrapped). Default: `COLDSTART_ENABLED`, else true. */
  enabled?: boolean;
  /** Fraction of warm invocations recorded (0..1). Cold starts are always recorded. Default 1. */
  sampleRate?: number;
  /**
   * How long one delivery attempt waits for the backend's answer, in ms (in the background: the
   * function never waits for it); outside Lambda, also how long a process about to exit is kept
   * alive for records not yet delivered. Default: `COLDSTART_TIMEOUT`, else 1000.
   */
  timeout?: number;
  /**
   * Where records go: `auto` (the coldstart extension when installed, else the backend), `direct`
   * (the backend) or `logs` (a line per record on stdout, for CloudWatch Logs -> Firehose -> the
   * backend; needs no API key in the function). Default: `COLDSTART_TRANSPORT`, else `auto`.
   */
  transport?: Transport;
}

export type Transport = 'auto' | 'direct' | 'logs';

/**
 * `auto`: records go to the coldstart Lambda extension's local endpoint when the extension is
 * installed (the layer's /opt/extensions/coldstart exists), else to `endpoint`. `off`: always to
 * `endpoint`. From COLDSTART_EXTENSION; an `endpoint` option passed in code makes it `off`
 * (the extension forwards to COLDSTART_ENDPOINT, which the option may contradict).
 */
export type ExtensionMode = 'auto' | 'off';

export interface ResolvedConfig {
  readonly apiKey: string | undefined;
  readonly endpoint: string;
  readonly enabled: boolean;
  readonly sampleRate: number;
  readonly timeout: number;
  readonly extension: ExtensionMode;
  readonly transport: Transport;
}

type Env = Readonly<Record<string, string | undefined>>;
type Warn = (message: string) => void;

function parseBoolean(text: string): boolean | undefined {
  switch (text.trim().toLowerCase()) {
    case 'true':
    case '1':
    case 'yes':
    case 'on':
      return true;
    case 'false':
    case '0':
    case 'no':
    case 'off':
      return false;
    default:
      return undefined;
  }
}

function parseExtensionMode(text: string): ExtensionMode | undefined {
  const mode = text.trim().toLowerCase();
  if (mode === 'auto') return 'auto';
  const flag = parseBoolean(mode);
  return flag === undefined ? undefined : flag ? 'auto' : 'off';
}

function parseTransport(text: unknown): Transport | undefined {
  if (typeof text !== 'string') return undefined;
  const value = text.trim().toLowerCase();
  return value === 'auto' || value === 'direct' || value === 'logs' ? value : undefined;
}

function validEndpoint(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  try {
    const url = new URL(value.trim());
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    if (url.search || url.hash) return undefined;
    return url.href.replace(/\/+$/, '');
  } catch {
    return undefined;
  }
}

function validRate(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1 ? value : undefined;
}

function validTimeout(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 60_000 ? value : undefined;
}

/** A key pasted with a trailing newline is taken trimmed; one with a line break inside is not a key. */
function validKey(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const key = value.trim();
  return key !== '' && !/[\r\n]/.test(key) ? key : undefined;
}

/** How a rejected secret is named in a warning: never its value (stderr goes to CloudWatch). */
function redacted(text: unknown): string {
  return typeof text === 'string' ? `(a value of ${text.length} characters, not shown)` : `(a ${typeof text}, not shown)`;
}

/**
 * Picks the first acceptable value: the option, then the environment variable, then the default.
 * Each rejected value is reported once.
 */
function pick<T>(
  name: string,
  option: unknown,
  envName: string | undefined,
  env: Env,
  fromOption: (v: unknown) => T | undefined,
  fromEnv: (text: string) => T | undefined,
  fallback: T,
  warn: Warn,
  secret = false,
): T {
  if (option !== undefined) {
    const value = fromOption(option);
    if (value !== undefined) return value;
    warn(`ignoring invalid option ${name}: ${secret ? redacted(option) : JSON.stringify(option)}`);
  }
  const text = envName ? env[envName] : undefined;
  if (text !== undefined && text !== '') {
    const value = fromEnv(text);
    if (value !== undefined) return value;
    warn(`ignoring invalid ${envName}=${secret ? redacted(text) : JSON.stringify(text)}`);
  }
  return fallback;
}

const numberFrom = (text: string): number | undefined => (/^\s*[0-9.eE+-]+\s*$/.test(text) ? Number(text) : undefined);

export function resolveConfig(options: AnalyzeOptions = {}, env: Env = process.env, warn: Warn = warnOnce): ResolvedConfig {
  const opts: AnalyzeOptions = options !== null && typeof options === 'object' ? options : {};
  const apiKey = pick('apiKey', opts.apiKey, ENV_API_KEY, env, validKey, validKey, undefined as string | undefined, warn, true);
  const endpoint = pick('endpoint', opts.endpoint, ENV_ENDPOINT, env, validEndpoint, validEndpoint, DEFAULT_ENDPOINT, warn);
  const enabled = pick(
    'enabled',
    opts.enabled,
    ENV_ENABLED,
    env,
    (v) => (typeof v === 'boolean' ? v : undefined),
    parseBoolean,
    true,
    warn,
  );
  const sampleRate = pick(
    'sampleRate',
    opts.sampleRate,
    ENV_SAMPLE_RATE,
    env,
    validRate,
    (t) => validRate(numberFrom(t)),
    DEFAULT_SAMPLE_RATE,
    warn,
  );
  const timeout = pick(
    'timeout',
    opts.timeout,
    ENV_TIMEOUT,
    env,
    validTimeout,
    (t) => validTimeout(numberFrom(t)),
    DEFAULT_TIMEOUT_MS,
    warn,
  );
  let extension = pick<ExtensionMode>('extension', undefined, ENV_EXTENSION, env, () => undefined, parseExtensionMode, 'auto', warn);
  if (opts.endpoint !== undefined && validEndpoint(opts.endpoint) !== undefined) extension = 'off';
  const transport = pick<Transport>('transport', opts.transport, ENV_TRANSPORT, env, parseTransport, parseTransport, 'auto', warn);
  if (transport === 'direct') extension = 'off';
  // The logs transport needs no key in the function: Firehose sends it with each delivery.
  if (enabled && apiKey === undefined && transport !== 'logs') {
    warn(`no API key (option apiKey or ${ENV_API_KEY}): nothing will be sent`);
  }
  return Object.freeze({ apiKey, endpoint, enabled, sampleRate, timeout, extension, transport });
}
