/** One finding of `doctor`: `ok`, a `warning` (works, but worth knowing), or a `problem` (something will fail). */
export interface DoctorCheck {
  name: string;
  status: 'ok' | 'warning' | 'problem' | 'skipped';
  detail: string;
  fix?: string;
}

export function check(name: string, status: DoctorCheck['status'], detail: string, fix?: string): DoctorCheck {
  return { name, status, detail, ...(fix === undefined ? {} : { fix }) };
}

/** The message of a caught error, whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
