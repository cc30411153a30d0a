// GraphiQL as a person uses it, in headless Chromium driven through the DevTools protocol
// (the `ws` package; no browser download): the page loads from Herald's own assets, a
// query is typed into the query editor, the bearer token into the headers editor, the run
// button is pressed, and the result pane must show the caller's data. A refused token or
// a failing query leaves other text in the pane, and the test fails.
//
// Environment: HERALD_URL, HERALD_TOKEN (user "conformance", tenant "user:conformance"),
// HERALD_CHROMIUM.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

const url = process.env.HERALD_URL;
const token = process.env.HERALD_TOKEN;
const chromium = process.env.HERALD_CHROMIUM;

/** Starts headless Chromium with a DevTools endpoint; resolves to its browser WebSocket URL. */
function launch(profile) {
  const child = spawn(
    chromium,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--remote-debugging-port=0',
      `--user-data-dir=${profile}`,
      'about:blank',
    ],
    // Its own process group, so that its helper processes are stopped with it.
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  const endpoint = new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`no DevTools endpoint:\n${stderr}`)), 30_000);
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const found = /DevTools listening on (ws:\/\/\S+)/.exec(stderr);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`chromium exited (${code}):\n${stderr}`)));
  });
  return { child, endpoint };
}

/** A minimal DevTools protocol client over one browser connection (flat sessions). */
async function devtools(endpoint) {
  const socket = new WebSocket(endpoint, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  let nextId = 0;
  const pending = new Map();
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString());
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`));
    else waiter.resolve(message.result);
  });
  const send = (method, params = {}, sessionId) =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve, reject, method });
      socket.send(JSON.stringify({ id, method, params, sessionId }));
    });
  return { send, close: () => socket.close() };
}

/** Polls `expression` in the page until it is truthy; returns its value. */
async function waitFor(page, expression, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await page.evaluate(expression);
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last value: ${JSON.stringify(last)})`);
}

/** Replaces the text of the CodeMirror editor under `selector` by typing `text` into it. */
async function type(page, selector, text) {
  await page.evaluate(`(() => {
    const editor = document.querySelector(${JSON.stringify(selector)}).CodeMirror;
    editor.focus();
    editor.execCommand('selectAll');
  })()`);
  await page.send('Input.insertText', { text });
  const typed = await page.evaluate(
    `document.querySelector(${JSON.stringify(selector)}).CodeMirror.getValue()`,
  );
  assert.equal(typed, text, `the editor ${selector} holds what was typed`);
}

async function createPost(content) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: 'mutation($c: String!) { createPost(input: {content: $c, platforms: ["x"]}) { id } }',
      variables: { c: content },
    }),
  });
  const body = await response.json();
  assert.ok(body.data?.createPost?.id, `createPost failed: ${JSON.stringify(body)}`);
}

test('GraphiQL runs a query with a bearer token and shows the result', async () => {
  assert.ok(url && token, 'HERALD_URL and HERALD_TOKEN must be set');
  assert.ok(chromium, 'HERALD_CHROMIUM must be set (scripts/test installs chromium)');
  const content = `typed in GraphiQL ${Date.now()}`;
  await createPost(content);

  const profile = mkdtempSync(join(tmpdir(), 'herald-graphiql-'));
  const { child, endpoint } = launch(profile);
  let browser;
  try {
    browser = await devtools(await endpoint);
    const { targetId } = await browser.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await browser.send('Target.attachToTarget', { targetId, flatten: true });
    const page = {
      send: (method, params) => browser.send(method, params, sessionId),
      async evaluate(expression) {
        const { result, exceptionDetails } = await browser.send(
          'Runtime.evaluate',
          { expression, returnByValue: true, awaitPromise: true },
          sessionId,
        );
        if (exceptionDetails) throw new Error(`${expression}: ${exceptionDetails.text}`);
        return result.value;
      },
    };
    await page.send('Page.enable');
    await page.send('Page.navigate', { url: `${url}/graphql` });

    const query = '.graphiql-query-editor .CodeMirror';
    await waitFor(page, `!!document.querySelector(${JSON.stringify(query)})`, 'GraphiQL to render');

    await type(page, query, '{ me { userId tenantId } posts(first: 5) { edges { node { content } } } }');

    // The headers editor sits behind the "Headers" tab of the editor tools.
    await page.evaluate(`[...document.querySelectorAll('.graphiql-editor-tools button')]
      .find((b) => b.textContent.trim() === 'Headers').click()`);
    const headers = '.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror';
    await waitFor(page, `!!document.querySelector(${JSON.stringify(headers)})`, 'the headers editor');
    await type(page, headers, JSON.stringify({ Authorization: `Bearer ${token}` }));

    await page.evaluate(`document.querySelector('.graphiql-execute-button').click()`);
    const shown = await waitFor(
      page,
      `(() => {
        const pane = document.querySelector('.result-window .CodeMirror-code');
        const text = pane ? pane.innerText : '';
        return text.includes('"data"') || text.includes('"errors"') ? text : '';
      })()`,
      'the result pane',
    );
    assert.match(shown, /"tenantId": "user:conformance"/, `result pane:\n${shown}`);
    assert.ok(shown.includes(content), `the post is listed; result pane:\n${shown}`);
    assert.doesNotMatch(shown, /"errors"/, `result pane:\n${shown}`);
  } finally {
    browser?.close();
    const exited = new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r()));
    // The whole group: helpers (renderer, utility processes) may still write into the
    // profile after the browser process is gone.
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch (error) {
      if (error.code !== 'ESRCH') throw error;
    }
    await exited;
    rmSync(profile, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  }
});
