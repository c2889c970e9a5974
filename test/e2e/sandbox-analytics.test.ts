import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { SandboxFile } from '../../src/app/config/sandbox-mode.ts';
import { sandboxFileOf, startCli, waitUntil } from '../helpers/cli.ts';
import { reservedProjects, viaEdge } from '../helpers/service.ts';

/**
 * The sandbox wires one traffic log to its edge and its Cloudflare API emulator (issue 24, item 2): requests sent through
 * the edge of a running `serve` come back from the emulator's GraphQL Analytics, per host and status.
 */
const dir = mkdtempSync(join(tmpdir(), 'tm-sandbox-analytics-'));
const dataDir = join(dir, 'data');
let serve: ReturnType<typeof startCli> | null = null;

afterAll(async () => {
  if (serve?.child.exitCode === null) {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

const QUERY = `query($zoneTag: string!, $f: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!) { viewer { zones(filter: { zoneTag: $zoneTag }) {
  httpRequestsAdaptiveGroups(limit: 100, filter: $f) { count sum { edgeResponseBytes } dimensions { clientRequestHTTPHost edgeResponseStatus } } } } }`;

describe('sandbox: GraphQL Analytics from the edge', () => {
  it('answers the requests sent through the edge of a running serve', async () => {
    const configFile = join(dir, 'projects.yml');
    writeFileSync(configFile, stringify({ projects: await reservedProjects() }));
    serve = startCli(['serve', '--config', configFile, '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--edge-listen', '127.0.0.1:0']);
    const info = await sandboxFileOf<SandboxFile>(serve, dataDir);
    const zones = (await (await fetch(`${info.cloudflareApiUrl}/zones?name=153.se`, { headers: { authorization: `Bearer ${info.cloudflareApiToken}` } })).json()) as {
      result: { id: string }[];
    };
    const zoneTag = zones.result[0]?.id;
    // A name of the zone that nothing routes: the edge relays it and the tunnel's catch-all (or the edge) answers.
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await viaEdge(info.edgeUrl, 'analytics-probe.153.se')).status);

    const now = Date.now();
    const rows = await waitUntil(
      async () => {
        const response = await fetch(`${info.cloudflareApiUrl}/graphql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${info.cloudflareApiToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            query: QUERY,
            variables: { zoneTag, f: { datetime_geq: new Date(now - 3_600_000).toISOString(), datetime_lt: new Date(now + 60_000).toISOString(), clientRequestHTTPHost: 'analytics-probe.153.se' } },
          }),
        });
        const json = (await response.json()) as { data: { viewer: { zones: { httpRequestsAdaptiveGroups: { count: number; sum: { edgeResponseBytes: number }; dimensions: { edgeResponseStatus: number } }[] }[] } }; errors: unknown };
        expect(json.errors).toBeNull();
        const groups = json.data.viewer.zones[0]?.httpRequestsAdaptiveGroups ?? [];
        return groups.reduce((sum, group) => sum + group.count, 0) >= 5 ? groups : undefined;
      },
      20_000,
      'the five requests in GraphQL Analytics',
    );
    expect(rows.map((row) => row.dimensions.edgeResponseStatus).sort()).toEqual([...new Set(statuses)].sort());
    expect(rows.reduce((sum, row) => sum + row.sum.edgeResponseBytes, 0)).toBeGreaterThan(0);
  });
});
