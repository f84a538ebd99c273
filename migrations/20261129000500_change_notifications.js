// @ts-check
/**
 * Change notifications: every write to `clients` (whoever makes it: the CLI, another replica,
 * an operator's SQL) sends NOTIFY on the `sigil_changes` channel with the payload
 * `<table>:<id>`, or `<table>:*` for a TRUNCATE. Issuers listen and drop what they cached.
 * A notification is delivered only when the writing transaction commits.
 * @param {import('knex').Knex} knex
 */
export async function up(knex) {
  await knex.raw(`
    CREATE FUNCTION sigil_notify_row_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('sigil_changes', TG_TABLE_NAME || ':' || OLD.id::text);
      END IF;
      IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('sigil_changes', TG_TABLE_NAME || ':' || NEW.id::text);
      END IF;
      RETURN NULL;
    END
    $$`);
  await knex.raw(`
    CREATE FUNCTION sigil_notify_table_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('sigil_changes', TG_TABLE_NAME || ':*');
      RETURN NULL;
    END
    $$`);
  await knex.raw(
    'CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients FOR EACH ROW EXECUTE FUNCTION sigil_notify_row_change()',
  );
  await knex.raw('CREATE TRIGGER clients_truncated AFTER TRUNCATE ON clients FOR EACH STATEMENT EXECUTE FUNCTION sigil_notify_table_change()');
}

/** @param {import('knex').Knex} knex */
export async function down(knex) {
  await knex.raw('DROP TRIGGER IF EXISTS clients_truncated ON clients');
  await knex.raw('DROP TRIGGER IF EXISTS clients_changed ON clients');
  await knex.raw('DROP FUNCTION IF EXISTS sigil_notify_table_change()');
  await knex.raw('DROP FUNCTION IF EXISTS sigil_notify_row_change()');
}
