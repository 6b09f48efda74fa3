import { describe, expect, test } from 'vitest';
import { resolveConfig } from '../../src/runtime/config';
import {
  DEFAULT_ENDPOINT,
  ENV_API_KEY,
  ENV_ENABLED,
  ENV_ENDPOINT,
  ENV_EXTENSION,
  ENV_SAMPLE_RATE,
  ENV_TIMEOUT,
  ENV_TRANSPORT,
} from '../../src/shared/constants';

function resolve(options: object | undefined, env: Record<string, string>) {
  const warnings: string[] = [];
  const config = resolveConfig(options as never, env, (m) => warnings.push(m));
  return { config, warnings };
}

describe('resolveConfig', () => {
  test('defaults', () => {
    const { config, warnings } = resolve(undefined, { [ENV_API_KEY]: 'csa_k' });
    expect(config).toEqual({
      apiKey: 'csa_k',
      endpoint: DEFAULT_ENDPOINT,
      enabled: true,
      sampleRate: 1,
      timeout: 1000,
      extension: 'auto',
      transport: 'auto',
    });
    expect(warnings).toEqual([]);
  });

  test('option beats environment, environment beats default', () => {
    const env = {
      [ENV_API_KEY]: 'env-key',
      [ENV_ENDPOINT]: 'http://env:1/',
      [ENV_SAMPLE_RATE]: '0.25',
      [ENV_ENABLED]: 'off',
      [ENV_TIMEOUT]: '300',
    };
    expect(resolve({}, env).config).toEqual({
      apiKey: 'env-key',
      endpoint: 'http://env:1',
      enabled: false,
      sampleRate: 0.25,
      timeout: 300,
      extension: 'auto',
      transport: 'auto',
    });
    const { config } = resolve({ apiKey: 'opt', endpoint: 'https://opt.example', enabled: true, sampleRate: 0.5, timeout: 50 }, env);
    // an endpoint given in code is where records go: the extension (which forwards to
    // COLDSTART_ENDPOINT) is not used then
    expect(config).toEqual({
      apiKey: 'opt',
      endpoint: 'https://opt.example',
      enabled: true,
      sampleRate: 0.5,
      timeout: 50,
      extension: 'off',
      transport: 'auto',
    });
  });

  test('the result is frozen and a new object each time', () => {
    const a = resolve({}, { [ENV_API_KEY]: 'k' }).config;
    const b = resolve({}, { [ENV_API_KEY]: 'k' }).config;
    expect(Object.isFrozen(a)).toBe(true);
    expect(a).not.toBe(b);
  });

  test.each([
    [{ sampleRate: 2 }, 'sampleRate'],
    [{ sampleRate: Number.NaN }, 'sampleRate'],
    [{ timeout: -1 }, 'timeout'],
    [{ endpoint: 'ftp://x' }, 'endpoint'],
    [{ endpoint: 'not a url' }, 'endpoint'],
    [{ enabled: 'yes' }, 'enabled'],
    [{ apiKey: '' }, 'apiKey'],
  ])('bad option %j falls back and is reported, never thrown', (options, name) => {
    const { config, warnings } = resolve(options, { [ENV_API_KEY]: 'k' });
    expect(warnings.some((w) => w.includes(name))).toBe(true);
    expect(config.sampleRate).toBe(1);
    expect(config.timeout).toBe(1000);
    expect(config.endpoint).toBe(DEFAULT_ENDPOINT);
    expect(config.enabled).toBe(true);
    expect(config.apiKey).toBe('k');
  });

  test('bad environment values fall back to the default', () => {
    const { config, warnings } = resolve(
      {},
      { [ENV_API_KEY]: 'k', [ENV_SAMPLE_RATE]: 'half', [ENV_ENABLED]: 'maybe', [ENV_ENDPOINT]: 'x' },
    );
    expect(config.sampleRate).toBe(1);
    expect(config.enabled).toBe(true);
    expect(config.endpoint).toBe(DEFAULT_ENDPOINT);
    expect(warnings).toHaveLength(3);
  });

  test('a bad option falls back to the environment', () => {
    expect(resolve({ sampleRate: -3 }, { [ENV_API_KEY]: 'k', [ENV_SAMPLE_RATE]: '0.1' }).config.sampleRate).toBe(0.1);
  });

  test('missing API key is reported', () => {
    const { config, warnings } = resolve({}, {});
    expect(config.apiKey).toBeUndefined();
    expect(warnings.join()).toContain('no API key');
  });

  test.each(['true', 'TRUE', '1', 'yes', 'on'])('enabled accepts %s', (text) => {
    expect(resolve({}, { [ENV_API_KEY]: 'k', [ENV_ENABLED]: text }).config.enabled).toBe(true);
  });

  test.each([
    ['auto', 'auto'],
    ['off', 'off'],
    ['OFF', 'off'],
    ['false', 'off'],
    ['0', 'off'],
    ['on', 'auto'],
  ])('COLDSTART_EXTENSION=%s: %s', (text, mode) => {
    const { config, warnings } = resolve({}, { [ENV_API_KEY]: 'k', [ENV_EXTENSION]: text });
    expect(config.extension).toBe(mode);
    expect(warnings).toEqual([]);
  });

  test('a bad COLDSTART_EXTENSION is reported and detection stays on', () => {
    const { config, warnings } = resolve({}, { [ENV_API_KEY]: 'k', [ENV_EXTENSION]: 'sometimes' });
    expect(config.extension).toBe('auto');
    expect(warnings.join()).toContain(ENV_EXTENSION);
  });

  test('COLDSTART_ENDPOINT does not turn extension detection off; an invalid endpoint option does not either', () => {
    expect(resolve({}, { [ENV_API_KEY]: 'k', [ENV_ENDPOINT]: 'http://env:1' }).config.extension).toBe('auto');
    expect(resolve({ endpoint: 'ftp://x' }, { [ENV_API_KEY]: 'k' }).config.extension).toBe('auto');
  });

  test('a key with a trailing newline is trimmed; a rejected key is never printed', () => {
    expect(resolve(undefined, { [ENV_API_KEY]: 'csa_pasted\n' }).config.apiKey).toBe('csa_pasted');
    const { config, warnings } = resolve({ apiKey: 'csa_secret\nvalue' }, { [ENV_API_KEY]: 'csa_other\r\nsecret' });
    expect(config.apiKey).toBeUndefined();
    expect(warnings.length).toBeGreaterThan(0);
    for (const warning of warnings) expect(warning).not.toMatch(/secret|csa_/);
  });

  test('COLDSTART_TRANSPORT: direct turns the extension off; logs needs no key; a bad value is reported', () => {
    expect(resolve(undefined, { [ENV_API_KEY]: 'k', [ENV_TRANSPORT]: 'direct' }).config).toMatchObject({
      transport: 'direct',
      extension: 'off',
    });
    const logs = resolve(undefined, { [ENV_TRANSPORT]: ' LOGS ' });
    expect(logs.config).toMatchObject({ transport: 'logs', apiKey: undefined });
    expect(logs.warnings).toEqual([]);
    const bad = resolve({ transport: 'carrier-pigeon' }, { [ENV_API_KEY]: 'k' });
    expect(bad.config.transport).toBe('auto');
    expect(bad.warnings.join('\n')).toContain('transport');
  });

  test('null or non-object options are treated as none', () => {
    expect(resolve(null as never, { [ENV_API_KEY]: 'k' }).config.apiKey).toBe('k');
  });
});
