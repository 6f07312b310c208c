/**
 * What a pipeline operation refuses, so each caller says it its own way: the HTTP handlers map these
 * to 400/404/409, the CLI prints the message. A refused operation has changed nothing.
 */

/** No row with that id (404). */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** The row is not in a state that allows it, e.g. a run holds it (409). */
export class StateConflictError extends Error {
  override name = 'StateConflictError';
}

/** The input names something that does not exist, e.g. a topic the blueprint lacks (400). */
export class InvalidRequestError extends Error {
  override name = 'InvalidRequestError';
}

/** A harvest item's source_url is already stored (409): `index` is its place in a bulk insert. */
export class DuplicateSourceUrlError extends Error {
  override name = 'DuplicateSourceUrlError';
  readonly sourceUrl: string;
  readonly existingId: number;
  readonly index: number | undefined;
  constructor(sourceUrl: string, existingId: number, index?: number) {
    super(`${index === undefined ? 'source_url' : `items[${index}].source_url`}: ${sourceUrl} is already stored as harvest item ${existingId}`);
    this.sourceUrl = sourceUrl;
    this.existingId = existingId;
    this.index = index;
  }
}
