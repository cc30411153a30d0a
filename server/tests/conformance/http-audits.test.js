// graphql-http's server audits against a running Herald (HERALD_URL, e.g.
// http://127.0.0.1:8080): no error and no warning allowed; notices are printed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverAudits } from 'graphql-http';

const base = process.env.HERALD_URL;

test('graphql-http server audits: 0 error, 0 warn', { skip: !base && 'HERALD_URL is not set' }, async () => {
  const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
  const problems = [];
  for (const audit of serverAudits({ url: `${base}/graphql` })) {
    const result = await audit.fn();
    counts[result.status] += 1;
    if (result.status !== 'ok') {
      problems.push(`${result.status} ${audit.id} ${audit.name}: ${result.reason}`);
    }
  }
  console.log(`graphql-http audits: ${JSON.stringify(counts)}`);
  for (const problem of problems) console.log(problem);
  assert.equal(counts.error, 0, problems.join('\n'));
  assert.equal(counts.warn, 0, problems.join('\n'));
});
