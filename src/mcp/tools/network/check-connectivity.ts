import { portAnalysisTool } from './port-analysis.ts';

export const checkConnectivity = portAnalysisTool({
  name: 'tunnel_check_connectivity',
  title: 'Check what cloudflared reaches',
  description:
    'For one of your ports: which target cloudflared would use (localhost:PORT or container-name:PORT) and why, and whether it really answers, ' +
    'tested from where cloudflared runs (TCP connect and an HTTP request). Says exactly which check was done.',
  ask: 'checkConnectivity',
});
