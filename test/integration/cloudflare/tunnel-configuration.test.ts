import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startCloudflareSandbox, type CloudflareSandbox } from '../../helpers/cloudflare-sandbox.ts';

let sandbox: CloudflareSandbox;
beforeEach(async () => {
  sandbox = await startCloudflareSandbox();
});
afterEach(async () => {
  await sandbox.close();
});

describe('remotely managed tunnel configuration through the real SDK', () => {
  it('reads the configuration, replaces it, and reads back the new version', async () => {
    const provider = sandbox.provider();
    const before = await provider.getTunnelConfiguration();
    expect(before).toMatchObject({ version: 0, source: 'local', ingress: [] });

    const ingress = [
      { hostname: 'app.153.se', service: 'http://localhost:3100', originRequest: { connectTimeout: '10s' } },
      { service: 'http_status:404' },
    ];
    const written = await provider.putTunnelConfiguration({ ingress });
    expect(written).toMatchObject({ version: 1, source: 'cloudflare', ingress });
    expect(await provider.getTunnelConfiguration()).toEqual(written);
    expect(sandbox.emulator.state().tunnels[0]?.config?.ingress).toHaveLength(2);
    // The API keeps timeouts in seconds; config.yml's duration strings are converted on the way out and back.
    expect(sandbox.emulator.state().tunnels[0]?.config?.ingress[0]).toMatchObject({ originRequest: { connectTimeout: 10 } });
  });

  it('converts every cloudflared duration to the API\'s seconds, and back', async () => {
    const provider = sandbox.provider();
    const originRequest = { connectTimeout: '1m30s', tlsTimeout: '500ms', keepAliveTimeout: '2m', noTLSVerify: true };
    const written = await provider.putTunnelConfiguration({ ingress: [{ service: 'http_status:404' }], originRequest });
    expect(sandbox.emulator.state().tunnels[0]?.config).toMatchObject({ originRequest: { connectTimeout: 90, tlsTimeout: 0.5, keepAliveTimeout: 120, noTLSVerify: true } });
    expect(written.originRequest).toEqual({ connectTimeout: '90s', tlsTimeout: '0.5s', keepAliveTimeout: '120s', noTLSVerify: true });
  });

  it('a configuration cloudflared would refuse is CLOUDFLARE_REQUEST_FAILED and changes nothing', async () => {
    const provider = sandbox.provider();
    await expect(provider.putTunnelConfiguration({ ingress: [{ hostname: 'app.153.se', service: 'http://localhost:3100' }] })).rejects.toMatchObject({
      code: 'CLOUDFLARE_REQUEST_FAILED',
      details: { httpStatus: 400 },
    });
    expect((await provider.getTunnelConfiguration()).version).toBe(0);
  });

  it('an unknown tunnel is an error naming the tunnel', async () => {
    const provider = sandbox.provider({ tunnelId: '00000000-0000-0000-0000-000000000000' });
    await expect(provider.getTunnelConfiguration()).rejects.toMatchObject({ message: expect.stringContaining('00000000-0000-0000-0000-000000000000') });
  });
});
