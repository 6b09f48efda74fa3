// The record the SDK sends for one invocation (an item of POST /api/v1/invocations/batch, the
// spec's InvocationRecord), built in one place for both senders: the function's runtime
// (invoke/invocation.ts, from the process and Lambda's context) and `coldstart profile --send`
// (cli/send.ts, from a profiled run). The rules live here: which fields every record has, which
// only a cold start has (cold_start is true exactly when `init` is given), what the early copy of
// a cold-start record leaves out (`end` undefined: `complete: false`), and the rounding.

import { SDK_VERSION } from './constants';
import { clip, type StartKind } from './classify';
import type { ModuleSource } from './bundle';
import type { ModuleTree } from '../invoke/report';

export interface InvocationRecord {
  function_name: string;
  invocation_id: string;
  request_id: string;
  timestamp: string;
  cold_start: boolean;
  init_duration_ms?: number;
  /** absent only in the early copy of a cold-start record (`complete: false`) */
  execution_duration_ms?: number;
  billed_duration_ms?: number;
  memory_used_mb?: number;
  memory_allocated_mb?: number;
  module_timings?: Record<string, number>;
  runtime_version: string;
  architecture: string;
  region?: string;
  init_type?: string;
  start_kind: StartKind;
  module_tree?: ModuleTree;
  sdk_version: string;
  sdk_overhead_ms?: number;
  esm_timing?: string;
  /** "hooks", "esbuild-plugin" or "bundled-no-plugin" (bundle.ts), decided at the cold start */
  module_source?: ModuleSource;
  /** Lambda's version ($LATEST or a number): fingerprint.ts */
  function_version?: string;
  /** fingerprint of the code and dependencies (the deployment identity): fingerprint.ts */
  code_id?: string;
  /**
   * `false` on the early copy of a cold-start record, sent at the start of the first invocation;
   * the complete record (same invocation_id and timestamp) follows at its end. Absent otherwise.
   */
  complete?: false;
}

/** What a record is built from; optional facts left undefined are left out of the record. */
export interface RecordFacts {
  functionName: string;
  invocationId: string;
  requestId: string;
  /** when the invocation started (ISO 8601) */
  timestamp: string;
  startKind: StartKind;
  runtimeVersion: string;
  architecture: string;
  /**
   * What only the end of the invocation knows; undefined for the early copy of a cold-start record.
   * billed_duration_ms is sent only when `billed` (a profiled run is not billed).
   */
  end: { executionMs: number; billed: boolean; memoryUsedMb: number } | undefined;
  memoryAllocatedMb?: number;
  region?: string;
  moduleSource?: ModuleSource;
  initType?: string;
  functionVersion?: string;
  codeId?: string;
  /** a cold start's init: given exactly for cold-start records */
  init?: { initMs: number; moduleTimings: Record<string, number>; sdkOverheadMs: number; esmTiming: string; moduleTree?: ModuleTree };
}

export function buildRecord(facts: RecordFacts): InvocationRecord {
  const record: InvocationRecord = {
    function_name: clip(facts.functionName),
    invocation_id: facts.invocationId,
    request_id: facts.requestId,
    timestamp: facts.timestamp,
    cold_start: facts.init !== undefined,
    runtime_version: facts.runtimeVersion,
    architecture: facts.architecture,
    start_kind: facts.startKind,
    sdk_version: SDK_VERSION,
  };
  const end = facts.end;
  if (end !== undefined) {
    record.execution_duration_ms = Math.round(end.executionMs);
    if (end.billed) record.billed_duration_ms = Math.max(1, Math.ceil(end.executionMs));
    record.memory_used_mb = end.memoryUsedMb;
  } else {
    record.complete = false;
  }
  if (facts.memoryAllocatedMb !== undefined) record.memory_allocated_mb = facts.memoryAllocatedMb;
  if (facts.region !== undefined) record.region = facts.region;
  if (facts.moduleSource !== undefined) record.module_source = facts.moduleSource;
  if (facts.initType !== undefined) record.init_type = facts.initType;
  if (facts.functionVersion !== undefined) record.function_version = facts.functionVersion;
  if (facts.codeId !== undefined) record.code_id = facts.codeId;
  const init = facts.init;
  if (init !== undefined) {
    record.init_duration_ms = Math.round(init.initMs);
    record.module_timings = init.moduleTimings;
    record.sdk_overhead_ms = init.sdkOverheadMs;
    record.esm_timing = init.esmTiming;
    if (init.moduleTree !== undefined) record.module_tree = init.moduleTree;
  }
  return record;
}
