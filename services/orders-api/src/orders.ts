import { randomUUID } from 'node:crypto';

import { z } from 'zod';

export const newOrderSchema = z
  .object({
    item: z.string().trim().min(1).max(100),
    quantity: z.number().int().min(1).max(1000),
  })
  .strict();

export type NewOrder = z.infer<typeof newOrderSchema>;

export interface Order extends NewOrder {
  readonly id: string;
  /** `sub` of the caller that placed it. */
  readonly placedBy: string;
  readonly placedAt: string;
}

/** The example's whole domain: orders kept in memory, newest last. */
export class OrderBook {
  readonly #orders: Order[] = [];

  list(): readonly Order[] {
    return this.#orders;
  }

  place(order: NewOrder, placedBy: string): Order {
    const placed = { ...order, id: randomUUID(), placedBy, placedAt: new Date().toISOString() };
    this.#orders.push(placed);
    return placed;
  }

  stats(): { orders: number; quantity: number } {
    return { orders: this.#orders.length, quantity: this.#orders.reduce((sum, order) => sum + order.quantity, 0) };
  }
}
