// Breaking changes to the GraphQL contract: schema.graphql (as in the working tree) against
// the previous commit's (HERALD_SCHEMA_BASE, default HEAD~1), with @graphql-inspector/core.
// A deliberate break passes when the last commit carries the trailer
// `Schema-Breaking-Change: <why>` (or HERALD_ALLOW_BREAKING_SCHEMA=1 is set, for local work).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { CriticalityLevel, diff } from '@graphql-inspector/core';

const root = new URL('../../../', import.meta.url);
const base = process.env.HERALD_SCHEMA_BASE || 'HEAD~1';

function git(...args) {
  return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

function previousSchema() {
  try {
    return git('show', `${base}:schema.graphql`);
  } catch {
    return null; // not a git checkout, or no such commit/file yet
  }
}

const previous = previousSchema();

test('schema.graphql has no unannounced breaking change', { skip: previous === null && `no schema.graphql at ${base}` }, async () => {
  const current = readFileSync(new URL('schema.graphql', root), 'utf8');
  const changes = await diff(buildSchema(previous), buildSchema(current));
  const breaking = changes.filter((c) => c.criticality.level === CriticalityLevel.Breaking);
  for (const change of changes) console.log(`${change.criticality.level}: ${change.message}`);
  if (breaking.length === 0) return;
  const trailer = git('log', '-1', '--format=%(trailers:key=Schema-Breaking-Change,valueonly)').trim();
  if (trailer || process.env.HERALD_ALLOW_BREAKING_SCHEMA === '1') {
    console.log(`breaking changes accepted: ${trailer || 'HERALD_ALLOW_BREAKING_SCHEMA=1'}`);
    return;
  }
  assert.fail(
    `schema.graphql breaks clients compared with ${base}:\n` +
      breaking.map((c) => `  - ${c.message}`).join('\n') +
      '\nIf this is deliberate, add the trailer `Schema-Breaking-Change: <why>` to the commit.',
  );
});
