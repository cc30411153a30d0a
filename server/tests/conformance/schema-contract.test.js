// The schema a client sees through introspection (HERALD_URL) is valid and equals the
// committed contract, schema.graphql: what GraphiQL and codegen read is what we review.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  lexicographicSortSchema,
  printSchema,
  validateSchema,
} from 'graphql';

const base = process.env.HERALD_URL;
const committedPath = new URL('../../../schema.graphql', import.meta.url);

test('introspection is valid and equals schema.graphql', { skip: !base && 'HERALD_URL is not set' }, async () => {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query: getIntrospectionQuery({ descriptions: true, specifiedByUrl: true, inputValueDeprecation: true }) }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  const served = buildClientSchema(body.data);
  assert.deepEqual(validateSchema(served).map(String), []);
  const committed = buildSchema(await readFile(committedPath, 'utf8'));
  assert.deepEqual(validateSchema(committed).map(String), []);
  const servedLines = printSchema(lexicographicSortSchema(served)).split('\n');
  const committedLines = printSchema(lexicographicSortSchema(committed)).split('\n');
  const differences = [];
  for (let i = 0; i < Math.max(servedLines.length, committedLines.length); i += 1) {
    if (servedLines[i] !== committedLines[i]) {
      differences.push(`line ${i + 1}:\n  served:    ${servedLines[i]}\n  committed: ${committedLines[i]}`);
    }
  }
  assert.equal(differences.length, 0, `introspection differs from schema.graphql:\n${differences.slice(0, 10).join('\n')}`);
});
