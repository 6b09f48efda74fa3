// main.js: the single-page UI served by coldstartd at /. Hash routes (#/, #/functions/<id>) so that
// the server only ever serves index.html and its assets; every figure comes from /api/v1.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { forgetKey, storedKey } from './api.js';
import { h, mount } from './dom.js';
import { signIn } from './signin.js';
import { functionsView } from './functions.js';
import { functionView } from './function.js';

const main = document.getElementById('main');
const signOut = document.getElementById('sign-out');
let current = null; // {abort()} of the view on screen

signOut.addEventListener('click', () => {
  forgetKey();
  location.hash = '#/';
  route();
});

/** Called by a view when the API refuses the key: back to sign-in, saying why. */
export function keyRefused() {
  forgetKey();
  route('Your key is no longer accepted (revoked, or the server has another database). Sign in again.');
}

function route(message) {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const key = storedKey();
  signOut.hidden = !key;
  if (!key) {
    document.title = 'Sign in · Cold Start Analyzer';
    signIn(main, { message, done: () => route() });
    return;
  }
  const hash = location.hash.replace(/^#/, '') || '/';
  const fn = /^\/functions\/([0-9a-fA-F-]{36})(?:\?(.*))?$/.exec(hash);
  if (hash === '/' || hash.startsWith('/?')) {
    functionsView(main, { signal: controller.signal, keyRefused });
  } else if (fn) {
    functionView(main, fn[1], { signal: controller.signal, keyRefused, query: new URLSearchParams(fn[2] || '') });
  } else {
    document.title = 'Not found · Cold Start Analyzer';
    mount(main, h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '#/' }, 'Go to the functions')));
  }
}

window.addEventListener('hashchange', () => {
  route();
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
});
route();
