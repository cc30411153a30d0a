// The graphql-ws client (what Apollo, urql and Relay use for subscriptions) against a
// running Herald (HERALD_URL, HERALD_TOKEN): postUpdated delivers a post's transitions in
// order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const base = process.env.HERALD_URL;
const token = process.env.HERALD_TOKEN;

async function graphql(query, variables) {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

test('postUpdated over graphql-ws delivers create, schedule, unschedule in order', { skip: !base && 'HERALD_URL is not set' }, async () => {
  const client = createClient({
    url: `${base.replace(/^http/, 'ws')}/graphql/ws`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  const acked = new Promise((resolve) => client.on('connected', resolve));
  const seen = [];
  let done;
  const threeEvents = new Promise((resolve, reject) => {
    done = { resolve, reject };
  });
  const unsubscribe = client.subscribe(
    { query: 'subscription { postUpdated { content status version } }' },
    {
      next: (result) => {
        if (result.errors) return done.reject(new Error(JSON.stringify(result.errors)));
        seen.push(result.data.postUpdated);
        if (seen.length === 3) done.resolve();
      },
      error: (err) => done.reject(err instanceof Error ? err : new Error(JSON.stringify(err))),
      complete: () => {},
    },
  );
  try {
    await acked;
    // Let the server register the subscription before the changes happen.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { createPost } = await graphql(
      'mutation($input: CreatePostInput!) { createPost(input: $input) { id } }',
      { input: { content: 'from graphql-ws', platforms: ['x'] } },
    );
    const at = new Date(Date.now() + 86_400_000).toISOString();
    await graphql('mutation($id: ID!, $at: String!) { schedulePost(id: $id, scheduledAt: $at) { id } }', { id: createPost.id, at });
    await graphql('mutation($id: ID!) { unschedulePost(id: $id) { id } }', { id: createPost.id });
    const timeout = setTimeout(() => done.reject(new Error(`timed out; seen ${JSON.stringify(seen)}`)), 10_000);
    await threeEvents;
    clearTimeout(timeout);
    assert.deepEqual(seen, [
      { content: 'from graphql-ws', status: 'DRAFT', version: 1 },
      { content: 'from graphql-ws', status: 'SCHEDULED', version: 2 },
      { content: 'from graphql-ws', status: 'DRAFT', version: 3 },
    ]);
  } finally {
    unsubscribe();
    await client.dispose();
  }
});

test('a forged token is refused with 4403', { skip: !base && 'HERALD_URL is not set' }, async () => {
  const client = createClient({
    url: `${base.replace(/^http/, 'ws')}/graphql/ws`,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: 'Bearer forged' },
    retryAttempts: 0,
    lazy: false,
  });
  const event = await new Promise((resolve) => client.on('closed', resolve));
  assert.equal(event.code, 4403);
  await client.dispose();
});
