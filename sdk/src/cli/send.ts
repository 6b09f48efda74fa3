// --send: the profile's runs as deploy-time records (init_type "coldstart-profile"), posted to the
// backend's batch endpoint.

import { randomUUID } from 'node:crypto';
import { moduleSourceOf } from '../shared/bundle';
import { architecture, runtimeVersion } from '../shared/classify';
import { BATCH_PATH, SDK_VERSION } from '../shared/constants';
import { PROFILE_INIT_TYPE, type Profile } from './profile';

export function recordsFor(profile: Profile, functionName: string): object[] {
  const runtime = runtimeVersion(`AWS_Lambda_nodejs${profile.node_version.replace(/^v/, '').split('.')[0]}.x`, profile.node_version);
  return profile.runs_detail.map((run) => {
    const id = randomUUID();
    return {
      function_name: functionName.slice(0, 255),
      invocation_id: id,
      request_id: id,
      timestamp: run.started_at,
      cold_start: true,
      init_duration_ms: Math.round(run.init_ms),
      execution_duration_ms: 0,
      memory_used_mb: run.memory_used_mb,
      memory_allocated_mb: profile.memory_mb,
      module_timings: run.module_timings,
      runtime_version: runtime,
      architecture: architecture(process.arch),
      region: process.env.AWS_REGION || 'us-east-1',
      init_type: PROFILE_INIT_TYPE,
      start_kind: 'cold',
      module_tree: run.module_tree,
      sdk_version: SDK_VERSION,
      sdk_overhead_ms: run.sdk_overhead_ms,
      esm_timing: run.esm_timing,
      module_source: moduleSourceOf(profile.bundle?.kind),
      // the profile runs the code as $LATEST (lambdaEnvironment); code_id tells its versions apart
      function_version: '$LATEST',
      ...(run.code_id !== undefined ? { code_id: run.code_id } : {}),
    };
  });
}

export async function post(endpoint: string, apiKey: string, body: string): Promise<{ status: number; text: string }> {
  const url = new URL(BATCH_PATH.replace(/^\//, ''), endpoint.endsWith('/') ? endpoint : endpoint + '/');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const http = (url.protocol === 'https:' ? require('node:https') : require('node:http')) as typeof import('node:http');
  return new Promise((resolvePromise, reject) => {
    const request = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': apiKey, 'content-length': Buffer.byteLength(body) }, timeout: 15_000 },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        response.on('end', () => resolvePromise({ status: response.statusCode ?? 0, text }));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timed out after 15 s')));
    request.on('error', reject);
    request.end(body);
  });
}
