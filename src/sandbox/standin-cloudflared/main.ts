/**
 * The stand-in cloudflared as its own program:
 *   node --import tsx src/sandbox/standin-cloudflared/main.ts tunnel --config F --metrics ADDR run ID
 *   node --import tsx src/sandbox/standin-cloudflared/main.ts standin-edge --listen 127.0.0.1:PORT
 * The CLI exposes the same thing as `tunnel-manager sandbox-cloudflared …` through run.ts.
 */
import { runStandinCloudflared } from './run.ts';

const code = await runStandinCloudflared(process.argv.slice(2));
process.exit(code);
