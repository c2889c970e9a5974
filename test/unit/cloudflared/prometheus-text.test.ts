import { describe, expect, it } from 'vitest';
import { parsePrometheusText, sumSamples } from '../../../src/cloudflared/prometheus-text.ts';

const CLOUDFLARED_SAMPLE = `# HELP cloudflared_tunnel_ha_connections Number of active ha connections
# TYPE cloudflared_tunnel_ha_connections gauge
cloudflared_tunnel_ha_connections 4
# TYPE cloudflared_tunnel_total_requests counter
cloudflared_tunnel_total_requests 1.5e3
cloudflared_tunnel_request_errors 7 1700000000000
cloudflared_tunnel_response_by_code{status_code="200"} 1400
cloudflared_tunnel_response_by_code{status_code="404"} 93
cloudflared_tunnel_server_locations{connection_id="0",edge_location="ams01"} 1
build_info{goversion="go1.22",version="2025.1.0",note="a \\"quoted\\" \\\\ value\\nwith newline"} 1
go_gc_duration_seconds{quantile="1"} +Inf
weird_metric NaN
`;

describe('Prometheus text parser', () => {
  it('reads samples, labels, escapes, timestamps and types', () => {
    const { samples, types, invalidLines } = parsePrometheusText(CLOUDFLARED_SAMPLE);
    expect(invalidLines).toEqual([]);
    expect(types).toEqual({ cloudflared_tunnel_ha_connections: 'gauge', cloudflared_tunnel_total_requests: 'counter' });
    expect(sumSamples(samples, 'cloudflared_tunnel_ha_connections')).toBe(4);
    expect(sumSamples(samples, 'cloudflared_tunnel_total_requests')).toBe(1500);
    expect(samples.find((s) => s.name === 'cloudflared_tunnel_request_errors')).toEqual({ name: 'cloudflared_tunnel_request_errors', labels: {}, value: 7, timestampMs: 1700000000000 });
    expect(sumSamples(samples, 'cloudflared_tunnel_response_by_code')).toBe(1493);
    expect(sumSamples(samples, 'cloudflared_tunnel_response_by_code', { status_code: '404' })).toBe(93);
    expect(samples.find((s) => s.name === 'build_info')?.labels.note).toBe('a "quoted" \\ value\nwith newline');
    expect(sumSamples(samples, 'go_gc_duration_seconds')).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(sumSamples(samples, 'weird_metric'))).toBe(true);
  });

  it('tells absent from zero', () => {
    const { samples } = parsePrometheusText('present 0\n');
    expect(sumSamples(samples, 'present')).toBe(0);
    expect(sumSamples(samples, 'absent')).toBeNull();
  });

  it('reports lines it cannot read instead of guessing', () => {
    const { samples, invalidLines } = parsePrometheusText('ok 1\n{no_name="x"} 1\nbad_value abc\nunterminated{a="x} 1\n');
    expect(samples).toHaveLength(1);
    expect(invalidLines.map((line) => line.line)).toEqual([2, 3, 4]);
    expect(invalidLines[1]?.problem).toBe('expected a number, found "abc"');
  });
});
