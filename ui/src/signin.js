// signin.js: the sign-in form. The key is checked against the API before it is kept.
import { ApiError, KEY_PATTERN, get, storeKey } from './api.js';
import { h, mount } from './dom.js';

export function signIn(main, { message, done }) {
  const input = h('input', {
    id: 'api-key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'off',
    required: true,
    'aria-describedby': 'api-key-help api-key-error',
  });
  const error = h('p', { id: 'api-key-error', class: 'error', role: 'alert' }, message || '');
  error.hidden = !message;
  const button = h('button', { type: 'submit' }, 'Sign in');
  const show = (text) => {
    error.textContent = text;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  };
  // no action and no name on the input: nothing is ever submitted as a form (the page's CSP has
  // form-action 'none' as well), so the key cannot end up in a URL
  const form = h(
    'form',
    { class: 'card sign-in', 'aria-labelledby': 'sign-in-title', novalidate: true },
    h('h1', { id: 'sign-in-title' }, 'Sign in'),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h(
      'p',
      { id: 'api-key-help', class: 'help' },
      'A key of your project: csa_ and 32 letters and digits. ',
      h('code', {}, 'make run'),
      ' prints one and keeps it in ',
      h('code', {}, '.data/demo-key'),
      '; ',
      h('code', {}, 'coldstartd create-key --project SLUG'),
      ' makes another. It stays in this tab only (sessionStorage) and is sent in the X-API-Key header.',
    ),
    error,
    button,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!KEY_PATTERN.test(key)) {
      show('That is not an API key: a key is csa_ followed by 32 letters and digits.');
      return;
    }
    button.disabled = true;
    button.textContent = 'Checking…';
    try {
      await get('/api/v1/functions?limit=1', { key });
      storeKey(key);
      input.value = '';
      done();
    } catch (e) {
      button.disabled = false;
      button.textContent = 'Sign in';
      if (e instanceof ApiError && e.status === 401)
        show('This key was not accepted: it is unknown or revoked. Check that it belongs to a project of this server.');
      else if (e instanceof ApiError && e.status === 403) show('This key may not read: use a key with the read scope.');
      else if (e instanceof ApiError && e.status === 429) show(`Too many requests with this key: try again in ${e.retryAfter || 60} s.`);
      else show(e.message || 'The server did not answer.');
    }
  });
  mount(main, form);
  input.focus();
}
