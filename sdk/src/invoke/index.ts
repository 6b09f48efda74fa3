// Second half of the SDK, loaded at the first invocation rather than during init: building
// records, reading package versions, sending. Keeping it out of the init bundle keeps the SDK's
// own load (parse + compile) small.

export { beginInvocation, finishInvocation, prepare, sendAtDeadline, sendEarly } from './invocation';
export { moduleTimings } from './report';
export { profileSnapshot } from './snapshot';
