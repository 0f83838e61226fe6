// Runs graphql-http's GraphQL-over-HTTP server audit against a live endpoint.
// Usage: node audit.mjs <url>
// Prints one JSON line per audit: {id, name, status} plus `reason` and `httpStatus` when
// the audit did not pass. Always exits 0 when the audit ran; judging the results is the
// caller's job. A fatal error (server unreachable, bad usage) exits non-zero.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <url>');
  process.exit(2);
}

const results = await auditServer({ url });
for (const result of results) {
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    line.reason = result.reason;
    line.httpStatus = result.response?.status;
  }
  console.log(JSON.stringify(line));
}
process.exit(0);
