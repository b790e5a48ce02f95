// Runs the GraphQL-over-HTTP spec's public audit suite (npm `graphql-http` serverAudits) against
// a running Cohort and fails on any error or warning. Usage: node graphql-http-audit.mjs URL
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const results = await auditServer({ url });
let errors = 0;
let warnings = 0;
let notices = 0;
for (const r of results) {
  if (r.status === 'ok') continue;
  if (r.status === 'error') errors++;
  else if (r.status === 'warn') warnings++;
  else notices++;
  console.log(`${r.status.toUpperCase()} ${r.id} ${r.name} - ${r.reason}`);
}
console.log(`graphql-http audit: ${results.length} audits, ${errors} errors, ${warnings} warnings, ${notices} notices`);
process.exit(errors + warnings > 0 ? 1 : 0);
