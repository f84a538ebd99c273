import type { KoaContextWithOIDC } from 'oidc-provider';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/gu, (char) => ESCAPES[char] ?? char);
}

/**
 * The page a browser sees when an authorization request cannot be redirected back to the
 * client (unknown client, unregistered redirect URI…). It shows the OAuth error and its
 * description; never a stack.
 */
export async function renderError(
  ctx: KoaContextWithOIDC,
  out: { error: string; error_description?: string | undefined },
): Promise<void> {
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in error</title>
</head>
<body>
<main>
<h1>Sign-in could not continue</h1>
<p><strong>${escapeHtml(out.error)}</strong>${out.error_description === undefined ? '' : `: ${escapeHtml(out.error_description)}`}</p>
</main>
</body>
</html>`;
}
