// Breaking changes to the GraphQL contract: schema.graphql (as in the working tree) against
// a base commit's, with @graphql-inspector/core. The base is HERALD_SCHEMA_BASE when set
// (it must exist: a missing base fails), else the previous commit (HEAD~1). Where HEAD has
// no parent to read (a shallow clone such as `git clone --depth 1`, or the first commit),
// the test says so loudly on stderr and compares against HEAD's committed schema.graphql,
// so uncommitted edits are still checked; it never skips. Outside a git checkout it fails.
// A deliberate break passes when the last commit carries the trailer
// `Schema-Breaking-Change: <why>` (or HERALD_ALLOW_BREAKING_SCHEMA=1 is set, for local work).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { CriticalityLevel, diff } from '@graphql-inspector/core';

const root = new URL('../../../', import.meta.url);

function git(...args) {
  return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryGit(...args) {
  try {
    return git(...args);
  } catch {
    return null;
  }
}

function loud(message) {
  const bar = '!'.repeat(78);
  console.error(`${bar}\n${message}\n${bar}`);
}

// The base to compare with and its schema.graphql: { base, previous } or a thrown error
// that says why there is none.
function resolveBase(env = process.env) {
  if (tryGit('rev-parse', '--is-inside-work-tree')?.trim() !== 'true') {
    throw new Error('not a git checkout: cannot find a base schema.graphql to compare with');
  }
  const wanted = env.HERALD_SCHEMA_BASE;
  if (wanted) {
    const previous = tryGit('show', `${wanted}:schema.graphql`);
    if (previous === null) {
      throw new Error(`HERALD_SCHEMA_BASE=${wanted}: no such commit, or no schema.graphql in it`);
    }
    return { base: wanted, previous };
  }
  const parent = tryGit('show', 'HEAD~1:schema.graphql');
  if (parent !== null) return { base: 'HEAD~1', previous: parent };
  const shallow = tryGit('rev-parse', '--is-shallow-repository')?.trim() === 'true';
  const hasParent = tryGit('rev-parse', '--verify', '--quiet', 'HEAD~1^{commit}') !== null;
  const why = shallow
    ? 'this clone is shallow: HEAD~1 is not in it'
    : hasParent
      ? 'HEAD~1 has no schema.graphql'
      : 'HEAD is the first commit';
  const committed = tryGit('show', 'HEAD:schema.graphql');
  if (committed === null) {
    throw new Error(`${why}, and HEAD has no committed schema.graphql to compare with`);
  }
  loud(
    `schema-breaking: ${why}; comparing schema.graphql with HEAD's committed copy instead.\n` +
      'The last commit itself is NOT checked for breaking changes. Fetch its parent ' +
      '(`git fetch --deepen=1`) or set HERALD_SCHEMA_BASE to check it.',
  );
  return { base: 'HEAD', previous: committed };
}

test('schema.graphql has no unannounced breaking change', async () => {
  const { base, previous } = resolveBase();
  console.log(`comparing schema.graphql with ${base}:schema.graphql`);
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

test('a HERALD_SCHEMA_BASE that does not exist fails instead of skipping', () => {
  assert.throws(
    () => resolveBase({ HERALD_SCHEMA_BASE: 'no-such-ref-of-herald' }),
    /HERALD_SCHEMA_BASE=no-such-ref-of-herald: no such commit/,
  );
});
