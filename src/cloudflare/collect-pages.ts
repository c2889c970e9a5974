/**
 * Reads every page of a v4 list. The SDK's iterator asks for one more page until it gets an empty
 * one; `result_info.total_pages` tells us when to stop, which saves a request per listing.
 */

interface V4Page<T> {
  getPaginatedItems(): T[];
  hasNextPage(): boolean;
  getNextPage(): Promise<V4Page<T>>;
  result_info?: { page?: number; total_pages?: number };
}

export async function collectAllPages<T>(first: PromiseLike<V4Page<T>>): Promise<T[]> {
  const items: T[] = [];
  let page = await first;
  for (;;) {
    items.push(...page.getPaginatedItems());
    const info = page.result_info;
    const lastKnown = info?.page !== undefined && info.total_pages !== undefined && info.page >= info.total_pages;
    if (lastKnown || !page.hasNextPage()) return items;
    page = await page.getNextPage();
  }
}
