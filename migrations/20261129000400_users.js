// @ts-check
/**
 * People: users (username unique case-insensitively; argon2id password hashes), roles and
 * their assignment; brute-force counters shared by every replica; and the audit trail of
 * sign-in events.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.schema.createTable('users', (table) => {
    table.uuid('id').primary();
    table.text('username').notNullable();
    table.text('email');
    table.text('password_hash').notNullable();
    table.boolean('disabled').notNullable().defaultTo(false);
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('CREATE UNIQUE INDEX users_username_lower_idx ON users (lower(username))');

  await knex.schema.createTable('roles', (table) => {
    table.text('name').primary();
    table.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('user_roles', (table) => {
    table.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE');
    table.text('role').notNullable().references('roles.name').onDelete('CASCADE');
    table.primary(['user_id', 'role']);
  });

  await knex.schema.createTable('login_throttle', (table) => {
    table.text('key').primary();
    table.integer('failures').notNullable();
    table.timestamp('window_started_at', { useTz: true }).notNullable();
    table.timestamp('locked_until', { useTz: true });
    table.timestamp('updated_at', { useTz: true }).notNullable();
    table.index(['updated_at'], 'login_throttle_updated_at_idx');
  });

  await knex.schema.createTable('auth_events', (table) => {
    table.bigIncrements('id').primary();
    table.timestamp('at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    table.text('event').notNullable();
    table.uuid('user_id');
    table.text('username');
    table.text('client_id');
    table.text('ip');
    table.jsonb('detail');
    table.index(['at'], 'auth_events_at_idx');
    table.index(['user_id'], 'auth_events_user_id_idx');
  });
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  for (const table of ['auth_events', 'login_throttle', 'user_roles', 'roles', 'users']) {
    await knex.schema.dropTable(table);
  }
}
