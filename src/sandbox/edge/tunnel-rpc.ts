import { buildMessage, rootOf, type StructBuilder, type StructReader } from './capnp.ts';

/**
 * The messages of Cap'n Proto RPC (rpc.capnp) that cloudflared's control stream carries, and the three methods of
 * its RegistrationServer interface, by field position. cloudflared is the RPC client: it asks for the edge's
 * bootstrap capability and calls registerConnection on it (pipelined on the bootstrap's answer), later
 * updateLocalConfiguration and, at shutdown, unregisterConnection. The edge only answers.
 */

/** The RegistrationServer interface of cloudflared's tunnelrpc schema. */
export const REGISTRATION_SERVER_INTERFACE = 0xf71695ec7fe85497n;
export const METHOD_REGISTER_CONNECTION = 0;
export const METHOD_UNREGISTER_CONNECTION = 1;
export const METHOD_UPDATE_LOCAL_CONFIGURATION = 2;

/** rpc.capnp Message union tags. */
const MESSAGE = { unimplemented: 0, abort: 1, call: 2, return: 3, finish: 4, resolve: 5, release: 6, bootstrap: 8 } as const;

export type RpcMessage =
  | { kind: 'bootstrap'; questionId: number }
  | {
      kind: 'call';
      questionId: number;
      interfaceId: bigint;
      methodId: number;
      /** What the call is addressed to: a capability we exported, or the answer to an earlier question. */
      target: { importedCap: number } | { promisedAnswer: number };
      params: StructReader | null;
    }
  | { kind: 'finish'; questionId: number }
  | { kind: 'release'; id: number; count: number }
  | { kind: 'abort'; reason: string }
  | { kind: 'other'; which: number };

function decodeCall(body: StructReader | null, which: number): RpcMessage {
  if (body === null) return { kind: 'other', which };
  const target = body.struct(0);
  const promised = target !== null && target.u16(4) === 1;
  return {
    kind: 'call',
    questionId: body.u32(0),
    interfaceId: body.u64(8),
    methodId: body.u16(4),
    target: promised ? { promisedAnswer: target.struct(0)?.u32(0) ?? 0 } : { importedCap: target?.u32(0) ?? 0 },
    params: body.struct(1)?.struct(0) ?? null,
  };
}

/** One decoder per Message union tag the edge reads; every other tag is `other`. */
const DECODERS: Partial<Record<number, (body: StructReader | null, which: number) => RpcMessage>> = {
  [MESSAGE.bootstrap]: (body) => ({ kind: 'bootstrap', questionId: body?.u32(0) ?? 0 }),
  [MESSAGE.call]: decodeCall,
  [MESSAGE.finish]: (body) => ({ kind: 'finish', questionId: body?.u32(0) ?? 0 }),
  [MESSAGE.release]: (body) => ({ kind: 'release', id: body?.u32(0) ?? 0, count: body?.u32(4) ?? 0 }),
  [MESSAGE.abort]: (body) => ({ kind: 'abort', reason: body?.text(0) ?? '' }),
};

export function decodeRpcMessage(segments: readonly Buffer[]): RpcMessage {
  const message = rootOf(segments);
  const which = message.u16(0);
  const decode = DECODERS[which];
  return decode === undefined ? { kind: 'other', which } : decode(message.struct(0), which);
}

/** A Return message whose union is `results`: `fill` writes the Payload (content pointer 0, cap table pointer 1). */
function returnResults(answerId: number, fill: (payload: StructBuilder) => void): Buffer {
  return buildMessage(1, 1, (message) => {
    message.setU16(0, MESSAGE.return);
    // Return (2 words, 1 pointer): answerId at byte 0; releaseParamCaps (bit 32, stored inverted: 0 = true); union at byte 6 = results.
    const ret = message.initStruct(0, 2, 1).setU32(0, answerId).setU16(6, 0);
    fill(ret.initStruct(0, 0, 2));
  });
}

/** The answer to Bootstrap: the edge's one capability (the RegistrationServer), exported under `exportId`. */
export function encodeBootstrapReturn(answerId: number, exportId: number): Buffer {
  return returnResults(answerId, (payload) => {
    payload.setCapability(0, 0);
    // CapDescriptor (1 word, 1 pointer): union at byte 0 = senderHosted (1), its export id at byte 4.
    const [descriptor] = payload.initStructList(1, 1, 1, 1);
    descriptor?.setU16(0, 1).setU32(4, exportId);
  });
}

/** An empty result (unregisterConnection, updateLocalConfiguration). */
export function encodeEmptyReturn(answerId: number): Buffer {
  return returnResults(answerId, (payload) => {
    payload.setEmptyStruct(0);
    payload.initStructList(1, 0, 1, 1);
  });
}

export type RegistrationAnswer =
  | { ok: true; connectionId: Buffer; location: string; remotelyManaged: boolean }
  | { ok: false; cause: string; shouldRetry: boolean };

/** The answer to registerConnection: a ConnectionResponse holding ConnectionDetails or a ConnectionError. */
export function encodeRegistrationReturn(answerId: number, answer: RegistrationAnswer): Buffer {
  return returnResults(answerId, (payload) => {
    // results (0 words, 1 pointer) → ConnectionResponse (1 word, 1 pointer): union at byte 0, error 0 / details 1.
    const response = payload.initStruct(0, 0, 1).initStruct(0, 1, 1);
    if (answer.ok) {
      response.setU16(0, 1);
      // ConnectionDetails (1, 2): uuid (16 bytes), locationName, tunnelIsRemotelyManaged at bit 0.
      response.initStruct(0, 1, 2).setData(0, answer.connectionId).setText(1, answer.location).setBool(0, answer.remotelyManaged);
    } else {
      response.setU16(0, 0);
      // ConnectionError (2, 1): cause, retryAfter (i64 at byte 0, left 0), shouldRetry at bit 64.
      response.initStruct(0, 2, 1).setText(0, answer.cause).setBool(64, answer.shouldRetry);
    }
    payload.initStructList(1, 0, 1, 1);
  });
}

/** An exception answer, for a call the edge does not implement. */
export function encodeExceptionReturn(answerId: number, reason: string, type: 'failed' | 'unimplemented' = 'unimplemented'): Buffer {
  return buildMessage(1, 1, (message) => {
    message.setU16(0, MESSAGE.return);
    const ret = message.initStruct(0, 2, 1).setU32(0, answerId).setU16(6, 1);
    // Exception (1, 1): reason, type at byte 4 (failed 0, unimplemented 3).
    ret.initStruct(0, 1, 1).setText(0, reason).setU16(4, type === 'failed' ? 0 : 3);
  });
}

/** What cloudflared says about itself when it registers a connection. */
export interface ConnectionRegistration {
  accountTag: string;
  tunnelSecret: Buffer;
  tunnelId: string;
  connIndex: number;
  connectorId: string;
  version: string;
  arch: string;
  features: string[];
  numPreviousAttempts: number;
  originLocalIp: string | null;
}

export function uuidText(bytes: Buffer | null): string {
  if (bytes === null || bytes.length !== 16) return '';
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function ipText(bytes: Buffer | null): string | null {
  if (bytes === null || bytes.length === 0) return null;
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16 && bytes.subarray(0, 12).equals(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]))) return [...bytes.subarray(12)].join('.');
  return bytes.toString('hex').replace(/(.{4})(?!$)/g, '$1:');
}

/** ClientInfo: who is connecting (connector id, version, architecture, features). */
function decodeClient(client: StructReader | null): Pick<ConnectionRegistration, 'connectorId' | 'version' | 'arch' | 'features'> {
  if (client === null) return { connectorId: '', version: '', arch: '', features: [] };
  return { connectorId: uuidText(client.data(0)), version: client.text(2) ?? '', arch: client.text(3) ?? '', features: client.textList(1) };
}

/** ConnectionAuth: the account tag and the tunnel's secret. */
function decodeAuth(auth: StructReader | null): Pick<ConnectionRegistration, 'accountTag' | 'tunnelSecret'> {
  return { accountTag: auth?.text(0) ?? '', tunnelSecret: auth?.data(1) ?? Buffer.alloc(0) };
}

/** ConnectionOptions: the client, how many attempts came before, the origin's local IP. */
function decodeOptions(options: StructReader | null): Pick<ConnectionRegistration, 'connectorId' | 'version' | 'arch' | 'features' | 'numPreviousAttempts' | 'originLocalIp'> {
  return {
    ...decodeClient(options?.struct(0) ?? null),
    numPreviousAttempts: options?.u8(2) ?? 0,
    originLocalIp: ipText(options?.data(1) ?? null),
  };
}

/** registerConnection's parameters (auth, tunnelId, connIndex, options). */
export function decodeRegistration(params: StructReader | null): ConnectionRegistration {
  return {
    ...decodeAuth(params?.struct(0) ?? null),
    tunnelId: uuidText(params?.data(1) ?? null),
    connIndex: params?.u8(0) ?? 0,
    ...decodeOptions(params?.struct(2) ?? null),
  };
}

/** updateLocalConfiguration's one parameter: cloudflared's local configuration as JSON. */
export function decodeLocalConfiguration(params: StructReader | null): string {
  return params?.data(0)?.toString('utf8') ?? '';
}
