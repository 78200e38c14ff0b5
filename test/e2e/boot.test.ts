/**
 * End to end: QEMU VMs nobody here wrote network-boot from `kiln all` alone and enlist. Each case
 * builds its own namespace (bridge + taps), runs kiln in it with the lab subnet managed, powers VMs
 * on with `-boot n` under TCG and follows each machine through the region API until it is NEW with
 * its hardware inventory and has powered itself off. Needs root, QEMU, OVMF and Debian's iPXE
 * (scripts/test-deps.sh installs them). On failure it prints the serial consoles and kiln's log.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { ensureImage, type Kiln, manageLabSubnet, startKiln, until } from '../../scripts/e2e/kiln.js';
import { createLab, type Lab, removeStaleLabs } from '../../scripts/e2e/lab.js';
import { bootVm, type Firmware, type Vm } from '../../scripts/e2e/qemu.js';

interface MachineView {
  system_id: string;
  status: string;
  hardware: Record<string, unknown> | null;
  boot_mac: string | null;
}
interface EventView {
  type: string;
  text: string;
  created_at: string;
}

before(() => {
  assert.equal(process.getuid?.(), 0, 'the e2e test needs root (network namespaces, tap devices)');
  execFileSync('bash', ['scripts/test-deps.sh'], { stdio: 'inherit' });
  removeStaleLabs();
  ensureImage();
});

const clean = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

async function bootAndEnlist(name: string, firmwares: Firmware[], octet: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `kiln-e2e-${name}-`));
  let lab: Lab | undefined;
  let kiln: Kiln | undefined;
  const vms: Vm[] = [];
  try {
    lab = createLab({ octet });
    kiln = await startKiln({ lab, dir });
    await manageLabSubnet(kiln, lab);
    const k = kiln;
    firmwares.forEach((firmware, i) => {
      const mac = `52:54:00:e2:${octet.toString(16).padStart(2, '0')}:${(i + 1).toString(16).padStart(2, '0')}`;
      vms.push(bootVm({ lab: lab!, mac, firmware, dir }));
    });
    await Promise.all(
      vms.map(async (vm) => {
        const m = await until(
          `${vm.firmware} VM ${vm.mac} to be NEW with its hardware`,
          300_000,
          async () => {
            if (vm.exitedEarly) throw new Error(`QEMU for ${vm.mac} exited before enlisting`);
            const r = await k.api<{ items: MachineView[] }>('GET', `/api/v1/machines?mac=${vm.mac}`);
            const machine = r.body?.items?.[0];
            return machine && machine.status === 'NEW' && machine.hardware ? machine : false;
          },
        );
        const seconds = ((Date.now() - vm.startedAt) / 1000).toFixed(1);
        process.stdout.write(
          `# ${name}: ${vm.firmware} ${vm.mac} power-on → NEW with hardware in ${seconds} s\n`,
        );
        assert.equal(m.boot_mac, vm.mac);
        assert.equal(m.hardware!.boot_mac, vm.mac);
        assert.equal(m.hardware!.firmware, vm.firmware === 'bios' ? 'bios' : 'uefi');
        await until(`${vm.mac} to power itself off`, 120_000, async () => vm.hasExited());

        const ev = await k.api<{ items: EventView[] }>(
          'GET',
          `/api/v1/machines/${m.system_id}/events?limit=1000`,
        );
        const types = ev.body.items.map((e) => e.type);
        // When each hop happened, in order, as seconds after power-on: where the boot time went.
        const hops = [...ev.body.items].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
        const offset = (e: EventView) =>
          ((Date.parse(e.created_at) - vm.startedAt) / 1000).toFixed(2).padStart(6);
        process.stdout.write(
          `# boot timeline of ${vm.mac} (seconds after power-on):\n${hops.map((e) => `#   +${offset(e)} ${e.type}: ${e.text}`).join('\n')}\n`,
        );
        for (const t of ['enlist.created', 'boot.config', 'http.script', 'http.image', 'metadata.hardware']) {
          assert.ok(types.includes(t), `timeline of ${vm.mac} lacks ${t}: ${types.join(', ')}`);
        }
      }),
    );
  } catch (err) {
    for (const vm of vms) {
      process.stdout.write(
        `\n===== serial console of ${vm.firmware} ${vm.mac} =====\n${clean(vm.serial()).slice(-6000)}\n`,
      );
    }
    if (kiln) process.stdout.write(`\n===== kiln log (tail) =====\n${kiln.log().slice(-12000)}\n`);
    throw err;
  } finally {
    for (const vm of vms) vm.kill();
    await Promise.all(vms.map((vm) => vm.exited));
    await kiln?.stop();
    lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('BIOS: QEMU iPXE ROM boots from kiln and enlists', { timeout: 600_000 }, () =>
  bootAndEnlist('bios', ['bios'], 81),
);

test('UEFI PXE: OVMF (virtio, ROM off) loads iPXE over TFTP and enlists', { timeout: 600_000 }, () =>
  bootAndEnlist('uefi-pxe', ['uefi-pxe'], 82),
);

test('UEFI HTTP boot: OVMF HTTPClient boots from kiln and enlists', { timeout: 600_000 }, () =>
  bootAndEnlist('uefi-http', ['uefi-http'], 83),
);

test('two VMs booting at once both enlist', { timeout: 600_000 }, () =>
  bootAndEnlist('two', ['bios', 'bios'], 84),
);
