import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KnobError, parseFaultFile, readFaultFile, readFaultKnobs } from '../../../src/sandbox/standin-cloudflared/fault-knobs.ts';

const dir = mkdtempSync(join(tmpdir(), 'tm-fault-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('TM_STANDIN_FAULT_FILE', () => {
  it('is named by the environment, and no file means no fault', () => {
    expect(readFaultKnobs({ TM_STANDIN_FAULT_FILE: join(dir, 'faults') }).faultFile).toBe(join(dir, 'faults'));
    expect(readFaultKnobs({}).faultFile).toBeNull();
    expect(readFaultFile(join(dir, 'absent'))).toEqual({ refuseStart: false, refuseHostnames: [], slowStartMs: null });
    expect(readFaultFile(null)).toEqual({ refuseStart: false, refuseHostnames: [], slowStartMs: null });
  });

  it('reads one directive a line, with comments and blank lines', () => {
    const path = join(dir, 'faults');
    writeFileSync(path, '# reload tests\nrefuse-hostname App.153.se\n\nslow-start 2.5  # seconds\nrefuse-hostname b.153.se\n');
    expect(readFaultFile(path)).toEqual({ refuseStart: false, refuseHostnames: ['app.153.se', 'b.153.se'], slowStartMs: 2500 });
    expect(parseFaultFile('refuse-start')).toMatchObject({ refuseStart: true });
  });

  it('names the line of a directive it does not know', () => {
    expect(() => parseFaultFile('slow-start\n', '/tmp/f')).toThrow(KnobError);
    expect(() => parseFaultFile('refuse-start\nrefuse-everything\n', '/tmp/f')).toThrow(/\/tmp\/f:2: "refuse-everything" is not a fault/);
    expect(() => parseFaultFile('slow-start -1')).toThrow(/expected "refuse-start", "refuse-hostname HOST" or "slow-start SECONDS"/);
  });
});
