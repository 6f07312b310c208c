/**
 * A setting that cannot work: the process (service or CLI) exits 2 with this message, and a run
 * that hits one fails once and is not retried (retrying cannot fix a setting). `variables` names
 * what the operator should change.
 */
export class ConfigurationError extends Error {
  readonly variables: readonly string[];
  constructor(message: string, variables: readonly string[]) {
    super(message);
    this.name = 'ConfigurationError';
    this.variables = variables;
  }
}

/** Exit code of a process stopped by a configuration error (bad usage included). */
export const CONFIGURATION_EXIT_CODE = 2;
