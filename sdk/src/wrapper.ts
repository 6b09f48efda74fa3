// analyze(): wraps a Lambda handler of any shape without changing what it does.
//
// Shapes: async/promise (event, context), callback (event, context, callback) and response
// streaming (event, responseStream, context) marked by awslambda.streamifyResponse. The wrapper
// keeps the handler's arity and own symbol properties (the streaming marker among them), marks
// itself so it is never wrapped twice, passes the result and the error through untouched, and
// catches every error of its own.

import { resolveConfig, type AnalyzeOptions } from './config';
import { STREAMING_SYMBOL, WRAPPED_SYMBOL } from './constants';
import type { ContextLike, Invocation } from './invocation';
import { invocationHalf } from './lazy';
import type { Runtime } from './runtime';

/** Minimal Lambda context type (no dependency on @types/aws-lambda). */
export interface Context extends ContextLike {
  functionName: string;
  functionVersion?: string;
  invokedFunctionArn?: string;
  memoryLimitInMB?: string;
  awsRequestId: string;
  logGroupName?: string;
  logStreamName?: string;
  callbackWaitsForEmptyEventLoop?: boolean;
  getRemainingTimeInMillis(): number;
}

export type Callback<TResult = unknown> = (error?: Error | string | null, result?: TResult) => void;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler<TEvent = any, TResult = any> = (
  event: TEvent,
  context: Context,
  callback: Callback<TResult>,
) => void | Promise<TResult>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFunction = (...args: any[]) => any;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as PromiseLike<unknown>).then === 'function';
}

// beginInvocation/finishInvocation, loading the invocation half of the SDK on first use.
const lazyCalls = {
  beginInvocation: (...args: Parameters<typeof import('./invocation').beginInvocation>) => invocationHalf().beginInvocation(...args),
  finishInvocation: (...args: Parameters<typeof import('./invocation').finishInvocation>) => invocationHalf().finishInvocation(...args),
};

export function wrapHandler<H extends AnyFunction>(handler: H, options: AnalyzeOptions | undefined, runtime: Runtime): H {
  if (typeof handler !== 'function') return handler;
  if ((handler as unknown as Record<symbol, unknown>)[WRAPPED_SYMBOL] !== undefined) return handler;
  const config = resolveConfig(options);
  if (!config.enabled || config.apiKey === undefined) {
    if (!runtime.started) runtime.uninstall();
    return handler;
  }
  const { beginInvocation, finishInvocation } = lazyCalls;
  const streaming = (handler as unknown as Record<symbol, unknown>)[STREAMING_SYMBOL] !== undefined;
  const contextIndex = streaming ? 2 : 1;

  /** Runs the handler; `args` may have had its callback replaced. */
  const run = (self: unknown, args: unknown[], invocation: Invocation | undefined): unknown => {
    let result: unknown;
    try {
      result = handler.apply(self, args);
    } catch (error) {
      void finishInvocation(runtime, invocation); // record goes out in the background
      throw error;
    }
    if (!isThenable(result)) return result;
    return Promise.resolve(result).then(
      (value) => {
        const wait = finishInvocation(runtime, invocation);
        return wait === undefined ? value : wait.then(() => value);
      },
      (error: unknown) => {
        const wait = finishInvocation(runtime, invocation);
        if (wait === undefined) throw error;
        return wait.then(() => {
          throw error;
        });
      },
    );
  };

  let wrapped: AnyFunction;
  if (!streaming && handler.length >= 3) {
    wrapped = function (this: unknown, event: unknown, context: unknown, callback: unknown) {
      const invocation = beginInvocation(runtime, config, context as ContextLike);
      const args = Array.prototype.slice.call(arguments) as unknown[];
      if (typeof callback === 'function') {
        args[2] = function (this: unknown) {
          const callbackArgs = arguments;
          const self = this;
          const wait = finishInvocation(runtime, invocation);
          if (wait === undefined) return (callback as AnyFunction).apply(self, callbackArgs as unknown as unknown[]);
          void wait.then(() => (callback as AnyFunction).apply(self, callbackArgs as unknown as unknown[]));
          return undefined;
        };
      }
      return run(this, args, invocation);
    };
  } else {
    wrapped = function (this: unknown) {
      const invocation = beginInvocation(runtime, config, arguments[contextIndex] as ContextLike);
      const result = run(this, Array.prototype.slice.call(arguments) as unknown[], invocation);
      if (!isThenable(result)) void finishInvocation(runtime, invocation);
      return result;
    };
  }
  try {
    Object.defineProperty(wrapped, 'length', { value: handler.length });
    Object.defineProperty(wrapped, 'name', { value: handler.name });
  } catch {
    // not essential
  }
  for (const symbol of Object.getOwnPropertySymbols(handler)) {
    try {
      (wrapped as unknown as Record<symbol, unknown>)[symbol] = (handler as unknown as Record<symbol, unknown>)[symbol];
    } catch {
      // not essential
    }
  }
  (wrapped as unknown as Record<symbol, unknown>)[WRAPPED_SYMBOL] = handler;
  return wrapped as H;
}
