/**
 * What the stand-in counts, under cloudflared's metric names, and their Prometheus text rendering.
 */
export class RequestCounters {
  totalRequests = 0;
  requestErrors = 0;
  concurrentRequests = 0;
  haConnections = 0;
  readonly responsesByCode = new Map<number, number>();

  recordResponse(status: number): void {
    this.totalRequests += 1;
    this.responsesByCode.set(status, (this.responsesByCode.get(status) ?? 0) + 1);
  }

  recordOriginError(): void {
    this.requestErrors += 1;
  }

  /** Registrations the edge accepted (cloudflared counts them once each, and says where each connection landed). */
  registrations = 0;
  readonly locations = new Map<number, string>();

  render(info: { version: string }): string {
    const lines = [
      '# HELP build_info Build and version information',
      '# TYPE build_info gauge',
      `build_info{goversion="standin",revision="standin",type="standin",version="${info.version}"} 1`,
      '# HELP cloudflared_tunnel_ha_connections Number of active ha connections',
      '# TYPE cloudflared_tunnel_ha_connections gauge',
      `cloudflared_tunnel_ha_connections ${this.haConnections}`,
      '# HELP cloudflared_tunnel_total_requests Amount of requests proxied through all the tunnels',
      '# TYPE cloudflared_tunnel_total_requests counter',
      `cloudflared_tunnel_total_requests ${this.totalRequests}`,
      '# HELP cloudflared_tunnel_request_errors Count of error proxying to origin',
      '# TYPE cloudflared_tunnel_request_errors counter',
      `cloudflared_tunnel_request_errors ${this.requestErrors}`,
      '# HELP cloudflared_tunnel_concurrent_requests_per_tunnel Concurrent requests proxied through each tunnel',
      '# TYPE cloudflared_tunnel_concurrent_requests_per_tunnel gauge',
      `cloudflared_tunnel_concurrent_requests_per_tunnel ${this.concurrentRequests}`,
      '# HELP cloudflared_tunnel_response_by_code Count of responses by HTTP status code',
      '# TYPE cloudflared_tunnel_response_by_code counter',
      ...[...this.responsesByCode.entries()]
        .sort(([a], [b]) => a - b)
        .map(([code, count]) => `cloudflared_tunnel_response_by_code{status_code="${code}"} ${count}`),
      // As cloudflared: present only once a connection has registered.
      ...(this.registrations === 0
        ? []
        : [
            '# HELP cloudflared_tunnel_tunnel_register_success Count of successful tunnel registrations',
            '# TYPE cloudflared_tunnel_tunnel_register_success counter',
            `cloudflared_tunnel_tunnel_register_success{rpcName="registerConnection"} ${this.registrations}`,
            '# HELP cloudflared_tunnel_server_locations Where each tunnel is connected to. 1 means current location, 0 means previous locations.',
            '# TYPE cloudflared_tunnel_server_locations gauge',
            ...[...this.locations.entries()].sort(([a], [b]) => a - b).map(([index, location]) => `cloudflared_tunnel_server_locations{connection_id="${index}",edge_location="${location}"} 1`),
          ]),
    ];
    return `${lines.join('\n')}\n`;
  }
}
