/**
 * Sizing of the store's growable SharedArrayBuffers (the hash index, the GDSF heap): reserved up
 * front for the most items an arena can hold, so that growing them in place never needs telling
 * another thread.
 */

/** Growable SharedArrayBuffers above 2 GiB are refused (seen in Bun 1.4.5). */
export const MAX_GROWABLE_BYTES = 2 ** 31;

/** The smallest item is two units (a 56-byte header and a key of at least one byte). */
const MIN_ITEM_UNITS = 2;

/** The most items an arena of `totalUnits` units can hold at once. */
export function mostItems(totalUnits: number): number {
  return Math.ceil(totalUnits / MIN_ITEM_UNITS);
}
