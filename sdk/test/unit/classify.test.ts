import { describe, expect, test } from 'vitest';
import { architecture, classifyStart, clip, positiveInteger, runtimeVersion } from '../../src/shared/classify';

describe('classifyStart', () => {
  test('later invocations are warm', () => expect(classifyStart(false, 'provisioned-concurrency', 99_999)).toBe('warm'));
  test('first on-demand invocation is cold', () => expect(classifyStart(true, 'on-demand', 5)).toBe('cold'));
  test('a gap above 10 s is a proactive init', () => {
    expect(classifyStart(true, 'on-demand', 10_001)).toBe('proactive');
    expect(classifyStart(true, undefined, 10_000)).toBe('cold');
  });
  test('provisioned concurrency', () => expect(classifyStart(true, 'provisioned-concurrency', 60_000)).toBe('provisioned'));
  test('snap-start restores are cold starts', () => expect(classifyStart(true, 'snap-start', 1)).toBe('cold'));
  test('no gap known', () => expect(classifyStart(true, undefined, undefined)).toBe('cold'));
});

describe('environment fields', () => {
  test('runtime version', () => {
    expect(runtimeVersion('AWS_Lambda_nodejs20.x', 'v20.1.0')).toBe('nodejs20.x');
    expect(runtimeVersion(undefined, 'v22.3.0')).toBe('node22.3.0');
    expect(runtimeVersion('something-else', 'v18.0.0')).toBe('node18.0.0');
  });
  test('architecture', () => {
    expect(architecture('x64')).toBe('x86_64');
    expect(architecture('arm64')).toBe('arm64');
  });
  test('positive integers only', () => {
    expect(positiveInteger('512')).toBe(512);
    expect(positiveInteger('1.5')).toBeUndefined();
    expect(positiveInteger('-1')).toBeUndefined();
    expect(positiveInteger(undefined)).toBeUndefined();
  });
  test('clip', () => {
    expect(clip('x'.repeat(300))).toHaveLength(255);
    expect(clip('short')).toBe('short');
  });
});
