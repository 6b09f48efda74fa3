// states.js: what the user sees while loading, when there is nothing, and when something failed:
// each says what happened and what to do.
import { ApiError } from './api.js';
import { h } from './dom.js';

export function loading(what) {
  return h('p', { class: 'loading', role: 'status' }, `Loading ${what}…`);
}

/** An error panel for an ApiError (or anything thrown), with a retry button when retrying can help. */
export function errorPanel(e, { retry, what = 'this page' } = {}) {
  let title = `Could not load ${what}`;
  let text = e?.message || 'Something went wrong.';
  let canRetry = true;
  if (e instanceof ApiError) {
    if (e.status === 0) {
      title = 'coldstartd does not answer';
      text = `${e.message} Start it again (make run), then retry.`;
    } else if (e.status === 404) {
      title = 'Not found';
      text = 'This function does not exist in the project of your key (or it was deleted).';
      canRetry = false;
    } else if (e.status === 429) {
      title = 'Too many requests';
      text = `This key has used up its read limit for now: retry in ${e.retryAfter || 60} s (RATE_LIMIT_QUERY sets the limit).`;
    } else if (e.status === 503) {
      title = 'The database is unavailable';
      text = `${e.detail || ''} coldstartd cannot reach PostgreSQL right now; retry in a moment.`.trim();
    } else if (e.status === 403) {
      title = 'Not allowed';
      text = 'Your key may not read this: sign in with a key that has the read scope.';
      canRetry = false;
    } else {
      text = `${e.detail || e.message} (HTTP ${e.status}${e.code ? `, ${e.code}` : ''})`;
    }
  }
  return h(
    'div',
    { class: 'card error-panel', role: 'alert' },
    h('h2', {}, title),
    h('p', {}, text),
    canRetry && retry ? h('button', { type: 'button', onclick: retry }, 'Retry') : null,
    h('p', {}, h('a', { href: '#/' }, 'Back to the functions')),
  );
}

/** How to send data: for the empty states. */
export function howToSend() {
  const origin = location.origin;
  return h(
    'div',
    { class: 'how-to' },
    h('p', {}, 'Instrument a Node.js Lambda function with the SDK, then invoke it:'),
    h(
      'pre',
      {},
      h(
        'code',
        {},
        `const { analyze } = require('@coldstart/analyzer');\nexports.handler = analyze(async (event) => ({ statusCode: 200 }));`,
      ),
    ),
    h(
      'p',
      {},
      'with the environment variables ',
      h('code', {}, `COLDSTART_ENDPOINT=${origin}`),
      ' and ',
      h('code', {}, 'COLDSTART_API_KEY=<your key>'),
      ' (or no code change: ',
      h('code', {}, 'NODE_OPTIONS="--require @coldstart/analyzer/register"'),
      '). ',
      h('code', {}, 'make run'),
      ' sends two example functions; README.md, “Send one record”, sends one with curl.',
    ),
  );
}
