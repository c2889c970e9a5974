import type { Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SandboxFile } from '../../src/app/config/sandbox-mode.ts';
import { isProcessRunning } from '../../src/cloudflared/process-identity.ts';
import { runCli, sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { realCloudflaredForTests } from '../helpers/real-cloudflared.ts';
import { portOf, projectPorts, reservedProjects, startOriginInRange, viaEdge } from '../helpers/service.ts';
import { cloudflaredPidsFor } from '../helpers/standin-cloudflared.ts';

/**
 * The README's quick start and walkthrough on the real cloudflared: `serve` (what `npm start` runs) finds it through
 * TM_CLOUDFLARED, says so, reaches ready with four registered connections, and the walkthrough's commands work as
 * written (`tunnel-manager call … --as consilio`, a visitor through the edge with the Host header, status, delete).
 */
const binary = realCloudflaredForTests("the README's walkthrough on the real cloudflared");
const dataDir = mkdtempSync(join(tmpdir(), 'tm-real-walkthrough-'));
let origin: Server | undefined;
let green: Server | undefined;

afterAll(async () => {
  for (const pid of cloudflaredPidsFor(join(dataDir, 'cloudflared', 'config.yml'))) process.kill(pid, 'SIGKILL');
  for (const server of [origin, green]) await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(binary === null)("the README's walkthrough on the real cloudflared", () => {
  it('serve runs the real cloudflared with four connections, and the walkthrough publishes, serves, lists and deletes a route', async () => {
    // The embedded projects, with port ranges of this run's own (another copy of the suite may run beside it).
    const projects = await reservedProjects();
    const config = join(dataDir, 'projects.yml');
    writeFileSync(config, stringify({ projects }));
    const serve = startCli(['serve', '--config', config, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0'], { env: { TM_CLOUDFLARED: binary as string } });
    try {
      const info = await sandboxFileOf<SandboxFile>(serve, dataDir);
      expect(info.cloudflared).toMatchObject({ kind: 'real', version: '2026.3.0', chosenBy: 'TM_CLOUDFLARED' });
      await waitUntil(() => serve.output().includes('cloudflared: the real one, 2026.3.0') || undefined, 10_000, 'the banner to name the real cloudflared');
      const status = await waitUntil(async () => {
        const result = await runCli(['status', '--config', config, '--data-dir', dataDir, '--json']);
        if (result.code !== 0) return undefined;
        const parsed = JSON.parse(result.stdout) as { state: string; readyConnections: number | null; pid: number | null };
        return parsed.state === 'running.up' && parsed.readyConnections === 4 ? parsed : undefined;
      }, 60_000, 'the real cloudflared to be up with 4 connections');

      origin = await startOriginInRange(...projectPorts({ projects }, 'consilio', [0.5, 1]), 'walkthrough');
      const port = portOf(origin);
      const as = (tool: string, ...args: string[]) => runCli(['call', tool, ...args, '--as', 'consilio', '--config', config, '--data-dir', dataDir]);
      const allocated = await as('port_allocate', `port=${port}`, 'purpose=web');
      expect(allocated.code, allocated.stderr).toBe(0);
      const requested = await as('tunnel_request_cname', 'subdomain=app', `targetPort=${port}`);
      expect(requested.code, requested.stderr).toBe(0);
      expect(requested.stdout).toContain('https://app.153.se');
      const visit = await viaEdge(info.edgeUrl, 'app.153.se');
      expect(visit).toMatchObject({ status: 200, body: expect.stringContaining('hello from walkthrough') });
      expect((await as('tunnel_list_cnames')).stdout).toContain('app.153.se');
      expect((await runCli(['status', '--config', config, '--data-dir', dataDir])).code).toBe(0);

      // The blue-green walkthrough: green on another port, the name moved in place, its traffic read, blue released.
      green = await startOriginInRange(...projectPorts({ projects }, 'consilio', [0.5, 1]), 'green');
      expect((await as('port_allocate', `port=${portOf(green)}`, 'purpose=green')).code).toBe(0);
      const moved = await as('tunnel_update_cname', 'hostname=app.153.se', `targetPort=${portOf(green)}`);
      expect(moved.code, moved.stderr).toBe(0);
      expect(await viaEdge(info.edgeUrl, 'app.153.se')).toMatchObject({ status: 200, body: expect.stringContaining('hello from green') });
      const traffic = await as('tunnel_get_traffic', 'hostname=app.153.se', 'window=1h');
      expect(traffic.code, traffic.stderr).toBe(0);
      expect(traffic.stdout).toContain('"available": true');
      expect(traffic.stdout).toMatch(/"requests": [2-9]/);
      const released = await as('port_release', `port=${port}`);
      expect(released.code, released.stderr).toBe(0);
      const deleted = await as('tunnel_delete_cname', 'hostname=app.153.se');
      expect(deleted.code, deleted.stderr).toBe(0);
      expect((await viaEdge(info.edgeUrl, 'app.153.se')).status).toBe(404);

      // Ctrl-C / SIGTERM: the sandbox stops its cloudflared with it.
      serve.child.kill('SIGTERM');
      expect(await serve.exited).toBe(0);
      await waitUntil(() => !isProcessRunning(status.pid as number) || undefined, 10_000, 'the real cloudflared to stop');
    } finally {
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    }
  }, 120_000);
});
