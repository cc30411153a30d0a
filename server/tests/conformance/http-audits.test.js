// graphql-http's server audits against a running Herald (HERALD_URL, e.g.
// http://127.0.0.1:8080). The README claims "61 of 61 pass": there must be 61 audits and
// every one must be `ok` (no error, no warn, no notice); anything else is printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';

const base = process.env.HERALD_URL;
const AUDITS = 61;

test(`graphql-http server audits: ${AUDITS} of ${AUDITS} ok`, { skip: !base && 'HERALD_URL is not set' }, async () => {
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  const problems = [];
  for (const audit of serverAudits({ url: `${base}/graphql` })) {
    const result = await audit.fn();
    assert.ok(result.status in counts, `audit ${audit.id} has an unknown status ${result.status}`);
    counts[result.status] += 1;
    if (result.status !== 'ok') {
      problems.push(`${result.status} ${audit.id} ${audit.name}: ${result.reason}`);
    }
  }
  console.log(`graphql-http audits: ${JSON.stringify(counts)}`);
  for (const problem of problems) console.log(problem);
  const total = counts.ok + counts.notice + counts.warn + counts.error;
  assert.equal(total, AUDITS, `the README counts ${AUDITS} audits; graphql-http ran ${total}`);
  assert.equal(counts.error, 0, problems.join('\n'));
  assert.equal(counts.warn, 0, problems.join('\n'));
  assert.equal(counts.notice, 0, problems.join('\n'));
  assert.equal(counts.ok, AUDITS, problems.join('\n'));
});
