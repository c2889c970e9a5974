/** A config.yml as people write them: comments everywhere, foreign rules, originRequest, keys we do not model. */
export const REAL_WORLD_CONFIG = `# cloudflared on vm-7 — edited by hand, please keep the comments
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: /etc/cloudflared/6ff42ae2-765d-4adf-8112-31c55c1551ef.json
metrics: 127.0.0.1:20241
loglevel:   info          # debug when chasing 502s

originRequest:
  connectTimeout: 30s   # slow origins
  noTLSVerify: false
  keepAliveConnections: 100

warp-routing:
  enabled: true

ingress:
  # Grafana, set up by hand in 2023
  - hostname: grafana.example.com
    service: http://localhost:3000
    originRequest:
      httpHostHeader: grafana.internal
      originServerName: grafana.internal

  - hostname: "*.preview.example.com"   # previews, one per branch
    path: ^/api/.*$
    service: 'https://localhost:8443'
    originRequest: { noTLSVerify: true }

  # static files over a socket
  - hostname: static.example.com
    service: unix:/run/static.sock
  - service: http_status:404   # everything else
# end of ingress
retries: 5
`;
