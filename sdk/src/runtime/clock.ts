// First module of the bundle: the clock when the SDK started loading, to report its own cost.
export const LOAD_START: bigint = process.hrtime.bigint();
