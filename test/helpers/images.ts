import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Upload a kernel and an initrd to a running region and import them as kiln's default image
 * (`kiln/ephemeral`, amd64/generic), through the API as `kiln images import` does.
 */
export async function importEphemeralImage(
  regionUrl: string,
  apiKey: string,
  kernel: Buffer,
  initrd: Buffer,
) {
  for (const f of [kernel, initrd]) {
    const res = await fetch(`${regionUrl}/api/v1/images?sha256=${sha256(f)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/octet-stream' },
      body: f,
    });
    assert.equal(res.status, 201);
  }
  const res = await fetch(`${regionUrl}/api/v1/boot-resources/import`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'kiln/ephemeral',
      architecture: 'amd64/generic',
      kind: 'ephemeral',
      files: [
        { name: 'vmlinuz', filetype: 'kernel', sha256: sha256(kernel) },
        { name: 'initrd.img', filetype: 'initrd', sha256: sha256(initrd) },
      ],
    }),
  });
  assert.equal(res.status, 201);
}
