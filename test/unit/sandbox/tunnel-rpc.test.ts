import { describe, expect, it } from 'vitest';
import { buildMessage, readFrame, rootOf } from '../../../src/sandbox/edge/capnp.ts';
import {
  decodeRegistration,
  decodeRpcMessage,
  encodeBootstrapReturn,
  encodeEmptyReturn,
  encodeExceptionReturn,
  encodeRegistrationReturn,
  REGISTRATION_SERVER_INTERFACE,
} from '../../../src/sandbox/edge/tunnel-rpc.ts';

/** Hex written as cloudflared's bytes were recorded: 8-byte words, spaces and bars ignored. */
function bytes(hex: string): Buffer {
  return Buffer.from(hex.replace(/[\s|]/g, ''), 'hex');
}

function decode(frame: Buffer) {
  const message = readFrame(frame);
  if (message === null) throw new Error('incomplete frame');
  expect(message.length).toBe(frame.length);
  return { segments: message.segments, rpc: decodeRpcMessage(message.segments) };
}

describe('Cap\'n Proto RPC as cloudflared 2026.3.0 speaks it', () => {
  it('reads the Bootstrap and Finish messages cloudflared sends (bytes recorded from the binary)', () => {
    expect(decode(bytes('00000000 05000000 | 00000000 01000100 | 08000000 00000000 | 00000000 01000100 | 00000000 00000000 | 00000000 00000000')).rpc).toEqual({
      kind: 'bootstrap',
      questionId: 0,
    });
    expect(decode(bytes('00000000 04000000 | 00000000 01000100 | 04000000 00000000 | 00000000 01000000 | 01000000 01000000')).rpc).toEqual({
      kind: 'finish',
      questionId: 1,
    });
  });

  it('waits for a whole frame: a message split across DATA frames is read once complete', () => {
    const frame = bytes('00000000 05000000 | 00000000 01000100 | 08000000 00000000 | 00000000 01000100 | 07000000 00000000 | 00000000 00000000');
    expect(readFrame(frame.subarray(0, 3))).toBeNull();
    expect(readFrame(frame.subarray(0, 20))).toBeNull();
    expect(readFrame(Buffer.concat([frame, Buffer.from([1, 2, 3])]))?.length).toBe(frame.length);
  });

  it('reads registerConnection\'s parameters: credentials, tunnel, connection index and the client', () => {
    const tunnelId = Buffer.from('fe2ec8b5790f4973ad07e03a4e4dd45b', 'hex');
    const connectorId = Buffer.from('60641301524840aaad9ff43fb2e14d00', 'hex');
    // A Call as cloudflared builds it: pipelined on the bootstrap answer (promisedAnswer q0), method 0.
    const frame = buildMessage(1, 1, (message) => {
      message.setU16(0, 2);
      const call = message.initStruct(0, 3, 3).setU32(0, 1).setU16(4, 0);
      call.setU32(8, 0x7fe85497).setU32(12, 0xf71695ec);
      const target = call.initStruct(0, 1, 1).setU16(4, 1);
      target.initStruct(0, 1, 1).setU32(0, 0);
      const params = call.initStruct(1, 0, 2).initStruct(0, 1, 3);
      params.setU16(0, 2);
      params.initStruct(0, 0, 2).setText(0, 'account-tag').setData(1, Buffer.alloc(32, 9));
      params.setData(1, tunnelId);
      const options = params.initStruct(2, 1, 2).setU16(2, 3);
      options.setData(1, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]));
      const client = options.initStruct(0, 0, 4);
      client.setData(0, connectorId).setTextList(1, ['serialized_headers', 'allow_remote_config']).setText(2, '2026.3.0').setText(3, 'linux_amd64');
    });
    const { rpc } = decode(frame);
    expect(rpc).toMatchObject({ kind: 'call', questionId: 1, interfaceId: REGISTRATION_SERVER_INTERFACE, methodId: 0, target: { promisedAnswer: 0 } });
    if (rpc.kind !== 'call') throw new Error('not a call');
    expect(decodeRegistration(rpc.params)).toMatchObject({
      accountTag: 'account-tag',
      tunnelSecret: Buffer.alloc(32, 9),
      tunnelId: 'fe2ec8b5-790f-4973-ad07-e03a4e4dd45b',
      connIndex: 2,
      connectorId: '60641301-5248-40aa-ad9f-f43fb2e14d00',
      version: '2026.3.0',
      arch: 'linux_amd64',
      features: ['serialized_headers', 'allow_remote_config'],
      numPreviousAttempts: 3,
      originLocalIp: '127.0.0.1',
    });
  });

  it('answers with Return messages whose results hold what cloudflared reads', () => {
    const bootstrap = rootOf(decode(encodeBootstrapReturn(0, 5)).segments);
    expect(bootstrap.u16(0)).toBe(3);
    const payload = bootstrap.struct(0)?.struct(0);
    expect(payload?.capability(0)).toBe(0);

    const registered = rootOf(decode(encodeRegistrationReturn(1, { ok: true, connectionId: Buffer.alloc(16, 0xab), location: 'sbx01', remotelyManaged: true })).segments);
    const ret = registered.struct(0);
    expect([ret?.u32(0), ret?.u16(6)]).toEqual([1, 0]);
    const response = ret?.struct(0)?.struct(0)?.struct(0);
    expect(response?.u16(0)).toBe(1);
    const details = response?.struct(0);
    expect([details?.data(0), details?.text(1), details?.bool(0)]).toEqual([Buffer.alloc(16, 0xab), 'sbx01', true]);

    const refused = rootOf(decode(encodeRegistrationReturn(1, { ok: false, cause: 'Unauthorized: Invalid tunnel secret', shouldRetry: false })).segments);
    const error = refused.struct(0)?.struct(0)?.struct(0)?.struct(0);
    expect(refused.struct(0)?.struct(0)?.struct(0)?.struct(0)?.u16(0)).toBe(0);
    expect(refused.struct(0)?.struct(0)?.struct(0)?.struct(0)?.struct(0)?.text(0)).toBe('Unauthorized: Invalid tunnel secret');
    expect(error).not.toBeNull();

    const empty = rootOf(decode(encodeEmptyReturn(7)).segments);
    expect(empty.struct(0)?.u32(0)).toBe(7);
    const exception = rootOf(decode(encodeExceptionReturn(8, 'no such method')).segments).struct(0);
    expect([exception?.u16(6), exception?.struct(0)?.text(0), exception?.struct(0)?.u16(4)]).toEqual([1, 'no such method', 3]);
  });
});
