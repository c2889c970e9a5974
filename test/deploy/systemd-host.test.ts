import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { PACKAGE_ROOT } from '../../src/package-root.ts';
import { generateToken, hashToken } from '../../src/secrets/token.ts';
import { asScript, DEPLOY_TEST_LABEL, deployImages, docker, execScript, markedBlocks, readOperationsDoc, waitFor, workingTreeRepository, type MarkedBlock } from './support.ts';

/**
 * The shipped unit under real systemd (252, Debian 12's) as PID 1, installed the way docs/operations.md says: a
 * container made from a debootstrap root file system plays a bare VM on which cloudflared already serves the tunnel
 * (here the stand-in, registered with the stand-in edge, against the Cloudflare API emulator). The doc's marked blocks
 * run as written, in one shell; only the placeholders are filled in. Then what an operator relies on: READY, a route
 * published and answering, restarts and a crash that never take the tunnel down, a reboot, and a journal with no
 * secret in it. Before that, on the same host still without Docker, a credential or /etc/cloudflared, the unit starts
 * in sandbox mode (each of the three used to fail it: 216/GROUP, 243/CREDENTIALS, 226/NAMESPACE).
 */

const images = deployImages('the systemd host test (test/deploy/systemd-host.test.ts)');

const TUNNEL_ID = 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b';
const ACCOUNT_ID = '2d3af2bad092943b12b5e9fcde17b7a3';
const ROUTE = 'deploy-test.153.se';
const CI_DIST = '/usr/local/lib/tunnel-manager-ci/dist';
const container = `tm-deploy-systemd-${process.pid}`;
/** The secrets of this host: none may reach the journal. */
const apiToken = `cfat_${randomBytes(24).toString('hex')}`;
const projectTokens = { 'meta-supervisor': generateToken(), consilio: generateToken() };
const tunnelSecret = randomBytes(32).toString('base64');

let repository: { path: string; remove: () => void } | null = null;

/** A script in the container; its standard output. */
const sh = (script: string, options: { allowFailure?: boolean; timeoutMs?: number } = {}) => execScript(container, `set -euo pipefail\n${script}`, options);
const unitProperty = (property: string) => sh(`systemctl show tunnel-manager -p ${property} --value`).stdout.trim();
const edgeGet = (hostname: string) => sh(`curl -s -m 5 -w ' %{http_code}' -H 'Host: ${hostname}' http://127.0.0.1:8790/`, { allowFailure: true }).stdout;

const blocks = markedBlocks(readOperationsDoc());
/** The doc's `tm` helper (step 5), so that the checks run commands the way the doc tells operators to. */
const tmBlock = blocks.find((block) => block.kind === 'run' && block.body.includes('tm() {')) as MarkedBlock;
const tm = (args: string) => sh(`${tmBlock.body}\ntm ${args}`).stdout;
const tunnelStatus = () => JSON.parse(tm('status --json')) as { state: string; pid: number | null; adopted: boolean | null; readyConnections: number | null };
/** The manager's cloudflared, from the spawn driver's pidfile. */
const cloudflaredPid = () => Number((JSON.parse(sh('cat /var/lib/tunnel-manager/cloudflared/cloudflared.pid').stdout) as { pid: number }).pid);

/** The doc's configuration with the placeholders filled in: the emulator's API, and the projects' token hashes. */
function configurationFrom(block: MarkedBlock, apiBaseUrl: string): string {
  const document = parseDocument(block.body);
  expect(document.getIn(['cloudflare', 'apiBaseUrl']), 'the doc configures the real API').toBe('https://api.cloudflare.com/client/v4');
  document.setIn(['cloudflare', 'apiBaseUrl'], apiBaseUrl);
  const projects = document.getIn(['projects']) as { items: unknown[] };
  projects.items.forEach((_, index) => {
    const name = document.getIn(['projects', index, 'name']) as keyof typeof projectTokens;
    expect(document.getIn(['projects', index, 'tokenHash']), `projects[${index}].tokenHash is a placeholder in the doc`).toBe('sha256:…');
    expect(projectTokens[name], `a token for ${name}`).toBeDefined();
    document.setIn(['projects', index, 'tokenHash'], hashToken(projectTokens[name]));
  });
  return document.toString();
}

/** Requests through the edge to the route, in the background, one line per answer in /run/prober.log. */
function startProber(): void {
  sh(`rm -f /run/prober.log
systemd-run --quiet --unit tm-ci-prober bash -c 'while :; do echo "$(curl -s -o /dev/null -m 5 -w %{http_code} -H "Host: ${ROUTE}" http://127.0.0.1:8790/)" >> /run/prober.log; sleep 0.05; done'`);
}
const probeAnswers = () => sh('cat /run/prober.log 2>/dev/null || true').stdout.trim().split('\n').filter(Boolean);
/** Waits until the prober has answered COUNT more times than AFTER answers. */
const moreProbes = (after: number, count: number) => waitFor(`${count} more requests through the edge`, 60_000, () => (probeAnswers().length >= after + count ? true : undefined));

/** Waits until systemd in the container has finished booting (`running` or `degraded`). */
const systemdBooted = (what: string) =>
  waitFor(what, 120_000, () => {
    const state = docker(['exec', container, 'systemctl', 'is-system-running'], { allowFailure: true }).stdout.trim();
    return state === 'running' || state === 'degraded' ? state : undefined;
  });
describe.skipIf(images === null)('deploy/tunnel-manager.service under systemd as PID 1, installed as docs/operations.md says', () => {
  beforeAll(async () => {
    const image = (images as NonNullable<typeof images>).systemd;
    repository = workingTreeRepository();
    docker([
      'run', '-d', '--name', container, '--label', DEPLOY_TEST_LABEL, '--hostname', 'bare-vm',
      // systemd as PID 1 on this engine: its own /run and /tmp, the host's cgroup tree, and SYS_ADMIN for the mounts
      // of its sandboxing (namespaces, credentials); no --privileged.
      '--tmpfs', '/run', '--tmpfs', '/run/lock', '--tmpfs', '/tmp', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw', '--cgroupns=host', '--cap-add', 'SYS_ADMIN',
      '-v', `${repository.path}:/srv/tunnel-manager:ro`,
      // As on a host, mounts propagate (systemd shares / itself unless it runs in a container): LoadCredential=
      // mounts its credentials in a namespace of its own, and with private propagation the service finds them empty.
      '--entrypoint', '/bin/sh', image, '-c', 'mount --make-rshared / && exec /sbin/init',
    ]);
    await systemdBooted('systemd to finish booting');
    // The prerequisites step 1 names (Node 24 is /usr/bin/node already; git is installed): cloudflared, here the
    // stand-in, which registers with the stand-in edge. A persistent journal, read at the end across the reboot.
    sh(`mkdir -p ${dirname(CI_DIST)} /var/log/journal && journalctl --flush`);
    docker(['cp', join(PACKAGE_ROOT, 'dist'), `${container}:${dirname(CI_DIST)}/`]);
    sh(`printf '#!/bin/sh\\nTM_STANDIN_EDGE=127.0.0.1:8790 exec /usr/bin/node ${CI_DIST}/standin-cloudflared.js "$@"\\n' > /usr/bin/cloudflared
chmod 755 /usr/bin/cloudflared`);
  }, 180_000);

  // Each test goes on from where the one before left the host: after a failure the rest would only fail with it.
  let failed: string | null = null;
  beforeEach((context) => {
    if (failed !== null) context.skip(`skipped: "${failed}" failed`);
  });
  afterEach((context) => {
    if (context.task.result?.state === 'fail') failed ??= context.task.name;
  });

  afterAll(() => {
    if (process.env.TM_DEPLOY_KEEP !== '1') docker(['rm', '-f', '-v', container], { allowFailure: true });
    repository?.remove();
  });

  it('step 1 of the doc installs the manager (git clone, npm ci, the system user)', () => {
    const install = blocks[0] as MarkedBlock;
    expect(install.body).toContain('<this repository>');
    const result = sh(`cd /root\nset -x\n${install.body.replace('<this repository>', '/srv/tunnel-manager')}`, { allowFailure: true, timeoutMs: 900_000 });
    expect(result.status, `${result.stdout.slice(-3000)}\n${result.stderr.slice(-6000)}`).toBe(0);
    expect(sh('id tunnel-manager').stdout).toContain('tunnel-manager');
  }, 900_000);

  it('the unit starts (sandbox mode) on a host without Docker, without a credential and without /etc/cloudflared', () => {
    const result = sh(`! getent group docker            # no Docker on this host
test ! -e /etc/cloudflared
test ! -e /etc/credstore/tunnel-manager.cloudflare_api_token
install -d -m 0750 -g tunnel-manager /etc/tunnel-manager
printf 'metrics:\\n  listen: 127.0.0.1:9464\\n' > /etc/tunnel-manager/tunnel-manager.yml   # no cloudflare.apiBaseUrl: the sandbox
chgrp tunnel-manager /etc/tunnel-manager/tunnel-manager.yml && chmod 0640 /etc/tunnel-manager/tunnel-manager.yml
cp /opt/tunnel-manager/deploy/tunnel-manager.service /etc/systemd/system/ && systemctl daemon-reload
systemctl start tunnel-manager || { systemctl status --no-pager tunnel-manager; journalctl -u tunnel-manager --no-pager -n 40; exit 1; }
systemctl show tunnel-manager -p ActiveState -p SubState -p StatusText
curl -sf 127.0.0.1:9464/healthz
systemctl stop tunnel-manager
# The sandbox stops its stand-in cloudflared with it: nothing of the service's user is left running.
! pgrep -u tunnel-manager -a
# Back to the bare host for the documented installation.
rm -rf /etc/tunnel-manager /var/lib/tunnel-manager /etc/systemd/system/tunnel-manager.service
systemctl daemon-reload`, { allowFailure: true, timeoutMs: 300_000 });
    expect(result.status, `${result.stdout.slice(-4000)}\n${result.stderr.slice(-2000)}`).toBe(0);
    expect(result.stdout).toContain('ActiveState=active\n');
    expect(result.stdout).toContain('SubState=running\n');
    expect(result.stdout).toMatch(/^StatusText=serving: tunnel running/m);
  }, 300_000);

  it('steps 2 to 9 run as written on a host whose cloudflared serves the tunnel, and doctor finds no problem', async () => {
    // The VM the doc starts from: the Cloudflare API (the emulator, with the account's zones and the tunnel's four
    // CNAMEs), the edge, a service on port 3100, and cloudflared serving the tunnel from /etc/cloudflared.
    sh(`install -d /etc/cloudflared /srv/www && echo 'hello from the origin' > /srv/www/index.html
cat > /etc/cloudflared/${TUNNEL_ID}.json <<EOF
{"AccountTag":"${ACCOUNT_ID}","TunnelSecret":"${tunnelSecret}","TunnelID":"${TUNNEL_ID}"}
EOF
chmod 600 /etc/cloudflared/${TUNNEL_ID}.json
cat > /etc/cloudflared/config.yml <<EOF
tunnel: ${TUNNEL_ID}
credentials-file: /etc/cloudflared/${TUNNEL_ID}.json
ingress:
  - hostname: chat.153.se
    service: http://localhost:3100
  - hostname: consilio.153.se
    service: http://localhost:3100
  - service: http_status:404
EOF
unit() { printf '[Unit]\\nDescription=%s\\n[Service]\\n%s\\n[Install]\\nWantedBy=multi-user.target\\n' "$2" "$3" > /etc/systemd/system/$1.service; }
unit tm-ci-emulator 'the Cloudflare API (emulator)' "ExecStart=/usr/bin/node ${CI_DIST}/cloudflare-emulator.js --port 8788 --token ${apiToken} --state /var/lib/tm-ci-emulator/cloudflare.json
StateDirectory=tm-ci-emulator
StandardOutput=null"
unit tm-ci-edge 'the edge (stand-in)' "ExecStart=/usr/bin/node ${CI_DIST}/standin-cloudflared.js standin-edge --listen 127.0.0.1:8790"
unit tm-ci-origin 'a service on port 3100' 'ExecStart=/usr/bin/python3 -m http.server 3100 --bind 127.0.0.1 --directory /srv/www'
unit cloudflared 'cloudflared, as cloudflared service install makes it' "ExecStart=/usr/bin/cloudflared --no-autoupdate tunnel --config /etc/cloudflared/config.yml --metrics 127.0.0.1:20241 run ${TUNNEL_ID}"
systemctl daemon-reload && systemctl enable --now --quiet tm-ci-emulator tm-ci-edge tm-ci-origin cloudflared`);
    await waitFor('the old cloudflared to serve chat.153.se through the edge', 60_000, () => (edgeGet('chat.153.se').endsWith(' 200') ? true : undefined));

    const rest = blocks.slice(1);
    const configuration = rest.find((block) => block.kind === 'file') as MarkedBlock;
    const filled = rest.map((block) => (block === configuration ? { ...block, body: configurationFrom(block, 'http://127.0.0.1:8788/client/v4') } : block));
    // Steps 2 to 9 go on in step 1's shell, which ended in the checkout.
    const result = sh(`cd /opt/tunnel-manager\nexport CLOUDFLARE_API_TOKEN='${apiToken}'\nset -x\n${asScript(filled)}`, { allowFailure: true, timeoutMs: 600_000 });
    expect(result.status, `${result.stdout.slice(-5000)}\n${result.stderr.slice(-5000)}`).toBe(0);
    expect(result.stdout).toContain('No problem found.');
    expect(result.stdout).toContain('{"status":"ready","reason":"tunnel running.up"}');
    expect(result.stdout).toMatch(/tunnel_manager_tunnel_up 1$/m);
    expect(result.stdout).toMatch(/wrote \/var\/lib\/tunnel-manager\/backups\/tunnel-manager-.*\.db/);
  }, 900_000);

  it('is active with READY from the service (Type=notify), the old cloudflared retired, the manager\'s carrying the tunnel', () => {
    expect(unitProperty('ActiveState')).toBe('active');
    expect(unitProperty('SubState')).toBe('running');
    expect(unitProperty('StatusText')).toMatch(/^serving: tunnel running/);
    expect(sh('systemctl is-enabled cloudflared', { allowFailure: true }).stdout.trim()).toBe('disabled');
    expect(sh('systemctl is-active cloudflared', { allowFailure: true }).stdout.trim()).toBe('inactive');
    expect(tunnelStatus()).toMatchObject({ state: 'running.up', pid: cloudflaredPid() });
    expect(edgeGet('chat.153.se')).toMatch(/hello from the origin\n 200$/);
  });

  it('publishes a route for a project: the record at Cloudflare, the rule in config.yml, answered through the edge', async () => {
    const call = (args: string) => sh(`node /opt/tunnel-manager/bin/tunnel-manager.js call ${args} --token '${projectTokens.consilio}' --url http://127.0.0.1:8787/mcp`);
    call('port_allocate port=3100 purpose=deploy-test');
    expect(call('tunnel_request_cname subdomain=deploy-test targetPort=3100').stdout).toContain(ROUTE);
    const { state } = (JSON.parse(sh(`curl -sf -H 'Authorization: Bearer ${apiToken}' http://127.0.0.1:8788/__admin/state`).stdout) as { result: { state: { records: { name: string; content: string }[] } } }).result;
    expect(state.records.filter((record) => record.name === ROUTE)).toEqual([expect.objectContaining({ content: `${TUNNEL_ID}.cfargotunnel.com` })]);
    expect(sh('cat /etc/cloudflared/config.yml').stdout).toContain(`hostname: ${ROUTE}`);
    await waitFor(`${ROUTE} to answer through the edge`, 30_000, () => (edgeGet(ROUTE).endsWith(' 200') ? true : undefined));
    startProber();
    await moreProbes(0, 10);
  }, 120_000);

  it('systemctl restart: the same cloudflared is adopted, and no request through the edge fails', async () => {
    const pid = cloudflaredPid();
    const before = probeAnswers().length;
    sh('systemctl restart tunnel-manager'); // Type=notify: returns once the new manager said READY
    await moreProbes(before, 20);
    expect(unitProperty('ActiveState')).toBe('active');
    expect(tunnelStatus()).toMatchObject({ state: 'running.up', pid, adopted: true });
    expect(cloudflaredPid()).toBe(pid);
    expect(probeAnswers().filter((code) => code !== '200')).toEqual([]);
  }, 180_000);

  it('systemctl kill --kill-who=main -s KILL: systemd restarts it, the same cloudflared is adopted, no request fails', async () => {
    const pid = cloudflaredPid();
    const restarts = Number(unitProperty('NRestarts'));
    const managerPid = unitProperty('MainPID');
    const before = probeAnswers().length;
    sh('systemctl kill --kill-who=main -s KILL tunnel-manager');
    await waitFor('systemd to restart the manager (RestartSec=5) and READY', 120_000, () =>
      Number(unitProperty('NRestarts')) === restarts + 1 && unitProperty('ActiveState') === 'active' && unitProperty('SubState') === 'running' && unitProperty('MainPID') !== managerPid ? true : undefined,
    );
    await moreProbes(before, 20);
    expect(tunnelStatus()).toMatchObject({ state: 'running.up', pid, adopted: true });
    expect(probeAnswers().filter((code) => code !== '200')).toEqual([]);
  }, 180_000);

  it('systemctl stop leaves the tunnel serving; after a reboot the enabled unit starts a new cloudflared and serves the route', async () => {
    sh('systemctl stop tunnel-manager');
    const before = probeAnswers().length;
    await moreProbes(before, 10);
    expect(probeAnswers().filter((code) => code !== '200'), 'the route answers while the manager is stopped').toEqual([]);
    const oldPid = cloudflaredPid();

    docker(['restart', '-t', '60', container], { timeoutMs: 180_000 });
    await systemdBooted('systemd to boot again');
    await waitFor('the manager to be READY after the reboot', 150_000, () => (unitProperty('ActiveState') === 'active' && unitProperty('SubState') === 'running' ? true : undefined));
    expect(unitProperty('StatusText')).toMatch(/^serving: tunnel running/);
    await waitFor(`${ROUTE} to answer through the edge after the reboot`, 60_000, () => (edgeGet(ROUTE).endsWith(' 200') ? true : undefined));
    const status = tunnelStatus();
    expect(status).toMatchObject({ state: 'running.up', adopted: false });
    expect(status.pid).not.toBe(oldPid);
  }, 420_000);

  it('the journal holds no secret, and the lines the doc explains', () => {
    const journal = sh('journalctl --no-pager -o verbose --all').stdout;
    for (const [what, secret] of Object.entries({ 'the API token': apiToken, 'the tunnel secret': tunnelSecret, ...projectTokens })) {
      expect(journal.includes(secret), `${what} is in the journal`).toBe(false);
    }
    const manager = sh('journalctl --no-pager -o cat -u tunnel-manager').stdout;
    // docs/operations.md, "Expected lines in the journal": the adopted cloudflared is the left-over process of each
    // restart of the unit (intended: KillMode=process), and the configuration directory's mode is the unit's.
    // (Node 24 names its main thread, and so the process, MainThread.)
    expect(manager).toMatch(/Unit process \d+ \(\S+\) remains running after unit stopped\./);
    expect(manager).toMatch(/Found left-over process \d+ \(\S+\) in control group while starting unit\. Ignoring\./);
    expect(manager).not.toMatch(/ConfigurationDirectory|configuration directory/i);
  });
});
