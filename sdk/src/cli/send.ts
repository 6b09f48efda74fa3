// --send: the profile's runs as deploy-time records (init_type "coldstart-profile"), built by the
// SDK's record builder (shared/record.ts) and posted by its HTTP client (shared/sender.ts) to the
// backend's batch endpoint: one attempt, answered within SEND_TIMEOUT_MS.

import { randomUUID } from 'node:crypto';
import { moduleSourceOf } from '../shared/bundle';
import { architecture, runtimeVersion } from '../shared/classify';
import { BATCH_PATH } from '../shared/constants';
import { buildRecord, type InvocationRecord } from '../shared/record';
import { holdOpen, Sender } from '../shared/sender';
import { PROFILE_INIT_TYPE, type Profile } from './profile';

const SEND_TIMEOUT_MS = 15_000;

export function recordsFor(profile: Profile, functionName: string): InvocationRecord[] {
  const runtime = runtimeVersion(`AWS_Lambda_nodejs${profile.node_version.replace(/^v/, '').split('.')[0]}.x`, profile.node_version);
  return profile.runs_detail.map((run) => {
    const id = randomUUID();
    return buildRecord({
      functionName,
      invocationId: id,
      requestId: id,
      timestamp: run.started_at,
      startKind: 'cold',
      runtimeVersion: runtime,
      architecture: architecture(process.arch),
      // a profiled run ends with its init: no execution, nothing billed
      end: { executionMs: 0, billed: false, memoryUsedMb: run.memory_used_mb },
      memoryAllocatedMb: profile.memory_mb,
      region: process.env.AWS_REGION || 'us-east-1',
      moduleSource: moduleSourceOf(profile.bundle?.kind),
      initType: PROFILE_INIT_TYPE,
      // the profile runs the code as $LATEST (lambdaEnvironment); code_id tells its versions apart
      functionVersion: '$LATEST',
      codeId: run.code_id,
      init: {
        initMs: run.init_ms,
        moduleTimings: run.module_timings,
        sdkOverheadMs: run.sdk_overhead_ms,
        esmTiming: run.esm_timing,
        moduleTree: run.module_tree,
      },
    });
  });
}

/** Posts the records in one batch; throws an Error saying why when the backend did not store them. */
export async function sendRecords(endpoint: string, apiKey: string, records: InvocationRecord[]): Promise<void> {
  const sender = new Sender(endpoint, apiKey, { maxAttempts: 1, silent: true });
  const result = sender.send(BATCH_PATH, JSON.stringify({ invocations: records }), performance.now() + SEND_TIMEOUT_MS);
  // the sender's sockets and timers never keep a process alive (inside a function they must not):
  // the command waits for its answer
  await holdOpen(result, SEND_TIMEOUT_MS + 1000);
  const answer = await result;
  if (answer.ok) return;
  if (answer.status !== undefined) throw new Error(`HTTP ${answer.status}: ${answer.detail ?? ''}`);
  throw new Error(answer.error === 'no answer in time' ? `timed out after ${SEND_TIMEOUT_MS / 1000} s` : (answer.error ?? 'not sent'));
}
