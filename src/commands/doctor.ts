import { formatDoctor, runDoctor } from '../app/operations/doctor.ts';
import { STANDIN_CLOUDFLARED_BUNDLE } from '../package-root.ts';
import { configFrom } from './config-option.ts';
import { EXIT, print, type Command } from './options.ts';
import { managerPidfile } from './manager-process.ts';

/** `tunnel-manager doctor [--json] [--listen …] [--edge-listen …]`: checks what serve needs; exit 1 on a problem. */
export const doctor: Command = async (_positionals, options) => {
  const config = configFrom(options);
  const checks = await runDoctor(
    config,
    { managerPidfile: managerPidfile(config), standin: STANDIN_CLOUDFLARED_BUNDLE },
    { ...(options.listen ? { listen: options.listen } : {}), ...(options['edge-listen'] ? { edgeListen: options['edge-listen'] } : {}) },
  );
  const problem = checks.some((check) => check.status === 'problem');
  print(options.json ? JSON.stringify({ ok: !problem, checks }, null, 2) : formatDoctor(checks));
  return problem ? EXIT.failed : EXIT.ok;
};
