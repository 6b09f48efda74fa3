import { describe, expect, test } from 'vitest';
import { attributeFile, attributeUrl } from '../../src/shared/attribution';

const root = '/var/task';

describe('attributeFile', () => {
  test.each([
    ['/var/task/node_modules/lodash/lodash.js', 'lodash', '/var/task/node_modules/lodash'],
    ['/var/task/node_modules/@aws-sdk/client-s3/dist-cjs/index.js', '@aws-sdk/client-s3', '/var/task/node_modules/@aws-sdk/client-s3'],
    // the LAST node_modules segment names the package (nested copies)
    [
      '/var/task/node_modules/@aws-sdk/client-s3/node_modules/@smithy/core/dist/index.js',
      '@smithy/core',
      '/var/task/node_modules/@aws-sdk/client-s3/node_modules/@smithy/core',
    ],
    ['/var/task/node_modules/a/node_modules/b/x.json', 'b', '/var/task/node_modules/a/node_modules/b'],
    ['/opt/nodejs/node_modules/layer-pkg/index.js', 'layer-pkg', '/opt/nodejs/node_modules/layer-pkg'],
  ])('%s belongs to %s', (file, key, dir) => {
    expect(attributeFile(file, root)).toEqual({ key, packageDir: dir });
  });

  test.each([
    ['/var/task/src/handlers/payment.js', './src/handlers/payment'],
    ['/var/task/index.mjs', './index'],
    ['/var/task/lib/db.cjs', './lib/db'],
    ['/var/task/config.json', './config.json'],
    ['/var/runtime/index.mjs', '/var/runtime/index'],
  ])('own file %s is %s', (file, key) => {
    expect(attributeFile(file, root)).toEqual({ key, packageDir: undefined });
    expect(attributeFile(file, root + '/')).toEqual({ key, packageDir: undefined });
  });

  test('a task root that is only a prefix of the directory name does not match', () => {
    expect(attributeFile('/var/task2/index.js', root).key).toBe('/var/task2/index');
  });
});

describe('attributeUrl', () => {
  test('file URLs are decoded', () => {
    expect(attributeUrl('file:///var/task/node_modules/%40scope/pkg/index.js', root).key).toBe('@scope/pkg');
    expect(attributeUrl('file:///var/task/src/my%20file.mjs?v=1', root).key).toBe('./src/my file');
  });
  test('other URLs are kept', () => {
    expect(attributeUrl('node:fs', root).key).toBe('node:fs');
  });
});
