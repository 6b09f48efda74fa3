// The command line of `coldstart profile`: its options, their defaults and the usage text.

export interface Options {
  handler: string;
  runs: number;
  json: boolean;
  budget: number | undefined;
  compare: string | undefined;
  send: boolean;
  memory: number;
  threshold: number | undefined;
  taskRoot: string | undefined;
  functionName: string | undefined;
  timeout: number;
  rules: string | undefined;
  cpuProfile: boolean;
  cpuInterval: number;
}

export class UsageError extends Error {}

export const USAGE = `Usage: coldstart profile <handler file> [options]

Loads the handler in fresh Node.js processes with the SDK's timing hooks and Lambda's
environment simulated, and reports where its module-load time goes.

Options:
  --runs N            processes to run (default 10)
  --json              print the profile as JSON (schema "coldstart-profile", version 1)
  --budget MS         exit 1 when the median module-load time exceeds MS
  --compare FILE      compare with an earlier --json output
  --send              post the runs to COLDSTART_ENDPOINT with COLDSTART_API_KEY
                      (init_type "coldstart-profile")
  --memory MB         simulated memory size (default 1024)
  --threshold MS      fold tree entries whose median total is below MS
                      (default: 1 % of the module-load time, at least 0.5 ms)
  --task-root DIR     the function's root (default: nearest package.json above the handler)
  --function-name N   name sent with --send (default: AWS_LAMBDA_FUNCTION_NAME or the package name)
  --timeout MS        per-run limit (default 60000)
  --rules FILE        rule table (default: the copy shipped with the SDK)
  --cpu-profile       also record a V8 CPU profile of each run's init (node:inspector) and
                      attribute its samples to packages by script URL (its overhead is in
                      the runs' times)
  --cpu-interval US   sampling interval of --cpu-profile in microseconds (default 100)

Exit status: 0 ok, 1 over budget, 2 usage error, handler failed to load, or --send failed.
`;

export function parseArgs(argv: string[]): Options {
  const options: Options = {
    handler: '',
    runs: 10,
    json: false,
    budget: undefined,
    compare: undefined,
    send: false,
    memory: 1024,
    threshold: undefined,
    taskRoot: undefined,
    functionName: undefined,
    timeout: 60_000,
    rules: undefined,
    cpuProfile: false,
    cpuInterval: 100,
  };
  const number = (name: string, text: string | undefined, min: number, integer = false): number => {
    const value = Number(text);
    if (text === undefined || text.trim() === '' || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value)))
      throw new UsageError(
        `${name} needs a ${integer ? 'whole ' : ''}number >= ${min}, got ${text === undefined ? 'nothing' : JSON.stringify(text)}`,
      );
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inline = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = (): string | undefined => (inline !== undefined ? inline : argv[++i]);
    switch (arg) {
      case '--runs':
        options.runs = number('--runs', value(), 1, true);
        break;
      case '--json':
        options.json = true;
        break;
      case '--budget':
        options.budget = number('--budget', value(), 0);
        break;
      case '--compare':
        options.compare = value();
        if (!options.compare) throw new UsageError('--compare needs a file');
        break;
      case '--send':
        options.send = true;
        break;
      case '--memory':
        options.memory = number('--memory', value(), 128, true);
        break;
      case '--threshold':
        options.threshold = number('--threshold', value(), 0);
        break;
      case '--task-root':
        options.taskRoot = value();
        break;
      case '--function-name':
        options.functionName = value();
        break;
      case '--timeout':
        options.timeout = number('--timeout', value(), 1, true);
        break;
      case '--rules':
        options.rules = value();
        break;
      case '--cpu-profile':
        options.cpuProfile = true;
        break;
      case '--cpu-interval':
        options.cpuInterval = number('--cpu-interval', value(), 10, true);
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
        if (options.handler !== '') throw new UsageError(`one handler file only (got ${options.handler} and ${arg})`);
        options.handler = arg;
    }
  }
  if (options.handler === '') throw new UsageError('no handler file given');
  return options;
}
