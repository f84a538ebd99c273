/**
 * Pages of a list in creation order (oldest first), for the admin API's cursors: a page is read
 * after the last item of the previous one, so items created or deleted meanwhile never shift
 * what the next page holds.
 */

/** Where a page starts: after the item created at `at` (ISO 8601, milliseconds) with id `id`. */
export interface PagePosition {
  readonly at: string;
  readonly id: string;
}

export interface PageQuery {
  /** Absent: from the first item. */
  readonly after?: PagePosition | undefined;
  readonly limit: number;
}

export interface Page<T> {
  readonly items: T[];
  /** Where the next page starts; undefined on the last page. */
  readonly next: PagePosition | undefined;
}
