/** Whether `tz` is an IANA time zone this runtime knows. A leaf: env.ts and the scheduling code both check zones. */
export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
