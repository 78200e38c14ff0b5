import { configKeys, envNameOf } from './load.js';

/** The configuration reference as a Markdown table, generated from the schema (README embeds it). */
export function configReference(): string {
  const rows = configKeys().map(([key, leaf]) => {
    const def = JSON.stringify(leaf.default);
    return `| \`${key}\` | \`${envNameOf(key)}\` | \`${def}\` | ${leaf.doc} Allowed: ${leaf.allowed}. |`;
  });
  return ['| key | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
