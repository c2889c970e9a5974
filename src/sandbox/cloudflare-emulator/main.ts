import { parseArgs } from 'node:util';
import { startCloudflareEmulator } from './server.ts';

/**
 * Runs the emulator on its own: `node dist/cloudflare-emulator.js [--port 8788] [--state FILE] [--token T]` (built by `npm run build`).
 * Prints one JSON line with the URLs and the sandbox token (a sandbox token, not a secret), then serves until SIGINT/SIGTERM.
 */
const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    state: { type: 'string' },
    token: { type: 'string' },
    'admin-token': { type: 'string' },
  },
});

const emulator = await startCloudflareEmulator({
  port: Number(values.port),
  ...(values.state !== undefined ? { statePath: values.state } : {}),
  ...(values.token !== undefined ? { token: values.token } : {}),
  ...(values['admin-token'] !== undefined ? { adminToken: values['admin-token'] } : {}),
});
process.stdout.write(
  JSON.stringify({ url: emulator.url, apiBaseUrl: emulator.apiBaseUrl, token: emulator.token, accountId: emulator.accountId, tunnelId: emulator.tunnelId }) + '\n',
);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void emulator.close().then(() => process.exit(0));
  });
}
