// @ts-check
/**
 * Sign-in attempts are reserved before any password work (domain/login-throttle.ts): each
 * throttle row also counts the attempts in flight under its key (`in_flight`, treated as none
 * once `in_flight_at` is older than the in-flight expiry, so a crashed process cannot hold
 * them), the account's row keeps the distinct addresses that failed in its window
 * (`addresses`), and `outcome` is what the last statement decided for the row (PostgreSQL 15
 * cannot return a row as it was before an update, so the statement writes its decision and
 * returns it).
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.alterTable('login_throttle', (table) => {
    table.specificType('addresses', 'text[]').notNullable().defaultTo('{}');
    table.integer('in_flight').notNullable().defaultTo(0);
    table.timestamp('in_flight_at', { useTz: true });
    table.text('outcome');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.schema.alterTable('login_throttle', (table) => {
    for (const column of ['addresses', 'in_flight', 'in_flight_at', 'outcome']) table.dropColumn(column);
  });
}
