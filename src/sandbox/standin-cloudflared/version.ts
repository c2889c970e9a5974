/** The stand-in's version line (`--version`): the mark tells the sandbox it is not the real cloudflared. */
export const STANDIN_VERSION = '2025.1.0-standin';
export const STANDIN_MARK = 'tunnel-manager stand-in';
