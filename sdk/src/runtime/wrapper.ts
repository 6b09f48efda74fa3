// analyze(): wraps a Lambda handler of any shape without changing what it does.
//
// Shapes: async/promise (event, context), callback (event, context, callback) and response
// streaming (event, responseStream, context) marked by awslambda.streamifyResponse. The wrapper
// keeps the handler's arity and own symbol properties (the streaming marker among them), marks
// itself so it is never wrapped twice, passes the result and the error through untouched, and
// catches every error of its own.

import { resolveConfig, type AnalyzeOptions } from './config';
import { STREAMING_SYMBOL, WRAPPED_SYMBOL } from '../shared/constants';
import { heapMark, type Runtime } from './runtime';
import { afterCallbackResponse, begin, connectExtensionEarly, finish, hookRuntimeClient, type ContextLike, type Invocation } from './start';

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

// biome-ignore lint/suspicious/noExplicitAny: the event and result types are the user's (as in @types/aws-lambda)
export type Handler<TEvent = any, TResult = any> = (
  event: TEvent,
  context: Context,
  callback: Callback<TResult>,
) => void | Promise<TResult>;

// biome-ignore lint/suspicious/noExplicitAny: any handler function
type AnyFunction = (...args: any[]) => any;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

export function wrapHandler<H extends AnyFunction>(handler: H, options: AnalyzeOptions | undefined, runtime: Runtime): H {
  if (typeof handler !== 'function') return handler;
  if ((handler as unknown as Record<symbol, unknown>)[WRAPPED_SYMBOL] !== undefined) return handler;
  const config = resolveConfig(options);
  if (!config.enabled || (config.apiKey === undefined && config.transport !== 'logs')) {
    if (!runtime.started) runtime.uninstall();
    return handler;
  }
  hookRuntimeClient();
  connectExtensionEarly(runtime, config);
  // The function's modules are loaded: a major collection from now on leaves room for the record's
  // work (invoke/gc.ts).
  if (!runtime.started) runtime.heapMark = heapMark();
  const streaming = (handler as unknown as Record<symbol, unknown>)[STREAMING_SYMBOL] !== undefined;
  const contextIndex = streaming ? 2 : 1;

  /** Runs the handler; `args` may have had its callback replaced. */
  const run = (self: unknown, args: unknown[], invocation: Invocation | undefined): unknown => {
    let result: unknown;
    try {
      result = handler.apply(self, args);
    } catch (error) {
      void finish(runtime, invocation); // record goes out after the response
      throw error;
    }
    if (!isThenable(result)) return result;
    return Promise.resolve(result).then(
      (value) => {
        const wait = finish(runtime, invocation);
        return wait === undefined ? value : wait.then(() => value);
      },
      (error: unknown) => {
        const wait = finish(runtime, invocation);
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
      const invocation = begin(runtime, config, context as ContextLike);
      const args = Array.prototype.slice.call(arguments) as unknown[];
      if (typeof callback === 'function') {
        args[2] = function (this: unknown) {
          const callbackArgs = arguments;
          // Work after the response is scheduled once the runtime has seen the callback (see
          // afterCallbackResponse); what had to be awaited (rare, warm) is awaited first.
          const deferred: (() => void)[] = [];
          const later = (work: () => void): void => void deferred.push(work);
          const wait = finish(runtime, invocation, later);
          const respond = (): unknown => {
            try {
              return (callback as AnyFunction).apply(this, callbackArgs as unknown as unknown[]);
            } finally {
              if (deferred.length > 0) {
                const schedule = afterCallbackResponse(context as ContextLike);
                for (const work of deferred) schedule(work);
              }
            }
          };
          if (wait === undefined) return respond();
          void wait.then(respond);
          return undefined;
        };
      }
      return run(this, args, invocation);
    };
  } else {
    wrapped = function (this: unknown) {
      const invocation = begin(runtime, config, arguments[contextIndex] as ContextLike);
      const result = run(this, Array.prototype.slice.call(arguments) as unknown[], invocation);
      if (!isThenable(result)) void finish(runtime, invocation);
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
