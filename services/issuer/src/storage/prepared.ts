/**
 * Query options that make a statement a named prepared statement: PostgreSQL parses and plans
 * it once per connection instead of on every request. For the statements every token request
 * or sign-in runs; each name must always stand for the same SQL text. A pooler in transaction
 * mode needs protocol-level prepared statements (PgBouncer 1.21+, max_prepared_statements);
 * session mode needs nothing. PGlite ignores the name.
 *
 * @example
 * ```ts
 * await db.raw('SELECT 1 FROM users WHERE id = ?', [id]).options(prepared('user_exists'));
 * ```
 */
export const prepared = (name: string): { readonly name: string } => ({ name: `sigil_${name}` });
